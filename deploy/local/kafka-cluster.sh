#!/usr/bin/env bash
# Three Apache Kafka nodes in KRaft mode on 127.0.0.1 (each broker and controller, one
# quorum of three), for the fault test that kills a broker under load: what replication
# 3 with min.insync.replicas 2 promises can only be seen with more than one broker.
# Node N listens on BASE+2(N-1) (clients) and BASE+2(N-1)+1 (controller), BASE being
# KPIPULSE_KAFKA_CLUSTER_PORT (default 19092).
# Usage: kafka-cluster.sh start|stop|status|reset|bootstrap|kill N|start-node N
source "$(dirname "${BASH_SOURCE[0]}")/kafka-lib.sh"

NODES=(1 2 3)
BASE="${KPIPULSE_KAFKA_CLUSTER_PORT:-19092}"
CLUSTER_DIR="$KAFKA_HOME/cluster-$BASE"

client_port() { echo $((BASE + 2 * ($1 - 1))); }
controller_port() { echo $((BASE + 2 * ($1 - 1) + 1)); }
pid_file() { echo "$RUN_DIR/kafka-cluster-$BASE-$1.pid"; }
log_file() { echo "$LOG_DIR/kafka-cluster-$BASE-$1.log"; }
config_file() { echo "$CLUSTER_DIR/node-$1.properties"; }

bootstrap() {
  local servers=() node
  for node in "${NODES[@]}"; do servers+=("$KAFKA_HOST:$(client_port "$node")"); done
  (IFS=,; echo "${servers[*]}")
}

write_config() {
  local node="$1" voters=() n
  for n in "${NODES[@]}"; do voters+=("$n@$KAFKA_HOST:$(controller_port "$n")"); done
  mkdir -p "$CLUSTER_DIR"
  cat > "$(config_file "$node")" <<PROPS
process.roles=broker,controller
node.id=$node
controller.quorum.voters=$(IFS=,; echo "${voters[*]}")
listeners=PLAINTEXT://$KAFKA_HOST:$(client_port "$node"),CONTROLLER://$KAFKA_HOST:$(controller_port "$node")
advertised.listeners=PLAINTEXT://$KAFKA_HOST:$(client_port "$node")
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$CLUSTER_DIR/data-$node
num.partitions=6
default.replication.factor=3
min.insync.replicas=2
unclean.leader.election.enable=false
auto.create.topics.enable=false
offsets.topic.replication.factor=3
offsets.topic.num.partitions=6
transaction.state.log.replication.factor=3
transaction.state.log.min.isr=2
share.coordinator.state.topic.replication.factor=3
share.coordinator.state.topic.min.isr=2
group.initial.rebalance.delay.ms=0
log.retention.hours=168
PROPS
}

start_node() {
  local node="$1" port; port="$(client_port "$node")"
  if pid_alive "$(pid_file "$node")"; then
    info "kafka node $node already running on $KAFKA_HOST:$port"
    return
  fi
  for p in "$port" "$(controller_port "$node")"; do
    port_open "$KAFKA_HOST" "$p" && die "port $KAFKA_HOST:$p is taken by another process; stop it or set KPIPULSE_KAFKA_CLUSTER_PORT"
  done
  info "starting kafka node $node on $KAFKA_HOST:$port"
  launch_broker "$(config_file "$node")" "$(log_file "$node")" "$(pid_file "$node")" 512m
}

start() {
  fetch
  write_log4j
  local node cluster_id
  if [[ ! -f "$CLUSTER_DIR/cluster.id" ]]; then
    # Every node of one cluster is formatted with the same id.
    mkdir -p "$CLUSTER_DIR"
    java_cmd kafka.tools.StorageTool random-uuid 2>>"$(log_file 1)" | tail -n 1 > "$CLUSTER_DIR/cluster.id"
  fi
  cluster_id="$(cat "$CLUSTER_DIR/cluster.id")"
  for node in "${NODES[@]}"; do
    write_config "$node"
    if [[ ! -f "$CLUSTER_DIR/data-$node/meta.properties" ]]; then
      format_storage "$(config_file "$node")" "$(log_file "$node")" "$cluster_id"
    fi
  done
  # All three at once: a controller waits for a quorum before its broker listens.
  for node in "${NODES[@]}"; do start_node "$node"; done
  for node in "${NODES[@]}"; do wait_node "$node"; done
}

wait_node() {
  local node="$1"
  if ! wait_for "kafka node $node" 120 port_open "$KAFKA_HOST" "$(client_port "$node")"; then
    tail -n 30 "$(log_file "$node")" >&2
    die "kafka node $node did not start within 120 s (log: $(log_file "$node"))"
  fi
}

stop() {
  local node
  for node in "${NODES[@]}"; do stop_pid "$(pid_file "$node")" "kafka node $node"; done
}

kill_node() {
  local node="$1" pidfile; pidfile="$(pid_file "$node")"
  pid_alive "$pidfile" || die "kafka node $node is not running"
  info "kill -9 kafka node $node (pid $(cat "$pidfile"))"
  kill -9 "$(cat "$pidfile")"
  rm -f "$pidfile"
}

status() {
  local node rc=0
  for node in "${NODES[@]}"; do
    if pid_alive "$(pid_file "$node")" && port_open "$KAFKA_HOST" "$(client_port "$node")"; then
      echo "kafka node $node: running on $KAFKA_HOST:$(client_port "$node") (pid $(cat "$(pid_file "$node")"))"
    else
      echo "kafka node $node: stopped"; rc=1
    fi
  done
  return $rc
}

node_arg() {
  [[ "${1:-}" =~ ^[123]$ ]] || die "name a node: 1, 2 or 3"
  echo "$1"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  bootstrap) bootstrap ;;
  reset) stop; rm -rf "$CLUSTER_DIR" ;;
  kill) kill_node "$(node_arg "${2:-}")" ;;
  start-node) node="$(node_arg "${2:-}")"; start_node "$node"; wait_node "$node" ;;
  *) die "usage: $0 start|stop|status|reset|bootstrap|kill N|start-node N" ;;
esac
