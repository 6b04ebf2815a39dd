#!/usr/bin/env bash
# A real Apache Kafka broker for development and tests, without Docker: the pinned
# release is fetched from Maven Central with Maven and run in KRaft mode (one combined
# broker + controller) on 127.0.0.1. Usage: kafka.sh start|stop|status|fetch
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

KAFKA_HOST=127.0.0.1
KAFKA_PORT="${KPIPULSE_KAFKA_PORT:-9092}"
CONTROLLER_PORT="${KPIPULSE_KAFKA_CONTROLLER_PORT:-9093}"
KAFKA_HOME="$CACHE_DIR/kafka"
KAFKA_LIBS="$KAFKA_HOME/libs"
KAFKA_DATA="$KAFKA_HOME/data"
KAFKA_PID="$RUN_DIR/kafka.pid"
KAFKA_LOG="$LOG_DIR/kafka.log"
POM="$REPO_ROOT/deploy/local/kafka/pom.xml"
KAFKA_VERSION="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$POM")"

fetch() {
  local stamp="$KAFKA_LIBS/.version"
  if [[ -f "$stamp" && "$(cat "$stamp")" == "$KAFKA_VERSION" ]]; then return; fi
  command -v mvn >/dev/null || die "Maven (mvn) is needed to fetch Kafka; install it (apt-get install maven)"
  command -v java >/dev/null || die "Java 17+ is needed to run Kafka; install it (apt-get install openjdk-17-jre-headless)"
  info "fetching Apache Kafka $KAFKA_VERSION from Maven Central"
  rm -rf "$KAFKA_LIBS"
  if ! mvn -q -B -f "$POM" -Dmaven.repo.local="$CACHE_DIR/m2" \
      dependency:copy-dependencies -DincludeScope=runtime \
      -DoutputDirectory="$KAFKA_LIBS" >"$LOG_DIR/kafka-fetch.log" 2>&1; then
    tail -n 20 "$LOG_DIR/kafka-fetch.log" >&2
    die "could not download Apache Kafka $KAFKA_VERSION with Maven (log: $LOG_DIR/kafka-fetch.log)"
  fi
  echo "$KAFKA_VERSION" > "$stamp"
}

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
  cat > "$KAFKA_HOME/config/log4j2.properties" <<'PROPS'
status = warn
appender.out.type = Console
appender.out.name = out
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = info
rootLogger.appenderRef.out.ref = out
logger.kafka.name = kafka
logger.kafka.level = info
logger.state.name = state.change.logger
logger.state.level = warn
PROPS
}

# One-shot Kafka tools (storage format, ids) share the broker's classpath.
java_cmd() {
  java -Xms64m -Xmx768m -XX:+UseG1GC -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$KAFKA_HOME/config/log4j2.properties" \
    -cp "$KAFKA_LIBS/*" "$@"
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
    local cluster_id
    cluster_id="$(java_cmd kafka.tools.StorageTool random-uuid 2>>"$KAFKA_LOG" | tail -n 1)"
    java_cmd kafka.tools.StorageTool format -t "$cluster_id" \
      -c "$KAFKA_HOME/config/server.properties" >>"$KAFKA_LOG" 2>&1 \
      || die "could not format kafka storage (log: $KAFKA_LOG)"
  fi
  info "starting kafka $KAFKA_VERSION on $KAFKA_HOST:$KAFKA_PORT"
  nohup java -Xms256m -Xmx768m -XX:+UseG1GC -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$KAFKA_HOME/config/log4j2.properties" \
    -cp "$KAFKA_LIBS/*" kafka.Kafka "$KAFKA_HOME/config/server.properties" \
    >>"$KAFKA_LOG" 2>&1 </dev/null &
  echo $! > "$KAFKA_PID"
  if ! wait_for "kafka" 90 port_open "$KAFKA_HOST" "$KAFKA_PORT"; then
    tail -n 30 "$KAFKA_LOG" >&2
    die "kafka did not start within 90 s (log: $KAFKA_LOG)"
  fi
}

stop() {
  if pid_alive "$KAFKA_PID"; then
    local pid; pid="$(cat "$KAFKA_PID")"
    info "stopping kafka (pid $pid)"
    kill "$pid"
    for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -9 "$pid" 2>/dev/null || true
  else
    info "kafka is not running"
  fi
  rm -f "$KAFKA_PID"
}

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
