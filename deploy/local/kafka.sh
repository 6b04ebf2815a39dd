#!/usr/bin/env bash
# A real Apache Kafka broker for development and tests, without Docker: the pinned
# release is fetched from Maven Central with Maven and run in KRaft mode (one combined
# broker + controller) on 127.0.0.1. Usage: kafka.sh start|stop|status|fetch
source "$(dirname "${BASH_SOURCE[0]}")/kafka-lib.sh"

KAFKA_PORT="${KPIPULSE_KAFKA_PORT:-9092}"
CONTROLLER_PORT="${KPIPULSE_KAFKA_CONTROLLER_PORT:-9093}"
KAFKA_DATA="$KAFKA_HOME/data"
KAFKA_PID="$RUN_DIR/kafka.pid"
KAFKA_LOG="$LOG_DIR/kafka.log"

write_config() {
  mkdir -p "$KAFKA_HOME/config"
  cat > "$KAFKA_HOME/config/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@$KAFKA_HOST:$CONTROLLER_PORT
listeners=PLAINTEXT://$KAFKA_HOST:$KAFKA_PORT,CONTROLLER://$KAFKA_HOST:$CONTROLLER_PORT
advertised.listeners=PLAINTEXT://$KAFKA_HOST:$KAFKA_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$KAFKA_DATA
num.partitions=6
auto.create.topics.enable=false
offsets.topic.replication.factor=1
offsets.topic.num.partitions=6
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
min.insync.replicas=1
group.initial.rebalance.delay.ms=0
log.retention.hours=168
PROPS
  write_log4j
}

start() {
  if pid_alive "$KAFKA_PID" && port_open "$KAFKA_HOST" "$KAFKA_PORT"; then
    info "kafka already running on $KAFKA_HOST:$KAFKA_PORT (pid $(cat "$KAFKA_PID"))"
    return
  fi
  for port in "$KAFKA_PORT" "$CONTROLLER_PORT"; do
    port_open "$KAFKA_HOST" "$port" && die "port $KAFKA_HOST:$port is taken by another process; stop it or set KPIPULSE_KAFKA_PORT / KPIPULSE_KAFKA_CONTROLLER_PORT"
  done
  fetch
  write_config
  if [[ ! -f "$KAFKA_DATA/meta.properties" ]]; then
    info "formatting kafka storage (KRaft)"
    format_storage "$KAFKA_HOME/config/server.properties" "$KAFKA_LOG"
  fi
  info "starting kafka $KAFKA_VERSION on $KAFKA_HOST:$KAFKA_PORT"
  launch_broker "$KAFKA_HOME/config/server.properties" "$KAFKA_LOG" "$KAFKA_PID" 768m
  if ! wait_for "kafka" 90 port_open "$KAFKA_HOST" "$KAFKA_PORT"; then
    tail -n 30 "$KAFKA_LOG" >&2
    die "kafka did not start within 90 s (log: $KAFKA_LOG)"
  fi
}

stop() { stop_pid "$KAFKA_PID" kafka; }

status() {
  if pid_alive "$KAFKA_PID" && port_open "$KAFKA_HOST" "$KAFKA_PORT"; then
    echo "kafka: running on $KAFKA_HOST:$KAFKA_PORT (pid $(cat "$KAFKA_PID"))"
  else
    echo "kafka: stopped"; return 1
  fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  fetch) fetch ;;
  reset) stop; rm -rf "$KAFKA_DATA" ;;
  *) die "usage: $0 start|stop|status|fetch|reset" ;;
esac
