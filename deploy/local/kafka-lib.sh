# Shared by kafka.sh (one broker) and kafka-cluster.sh (three): the pinned Apache Kafka
# release from Maven Central, its logging set-up and the Java command line (sourced).
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

KAFKA_HOST=127.0.0.1
KAFKA_HOME="$CACHE_DIR/kafka"
KAFKA_LIBS="$KAFKA_HOME/libs"
POM="$REPO_ROOT/deploy/local/kafka/pom.xml"
KAFKA_VERSION="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$POM")"
KAFKA_LOG4J="$KAFKA_HOME/config/log4j2.properties"

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

write_log4j() {
  mkdir -p "$KAFKA_HOME/config"
  cat > "$KAFKA_LOG4J" <<'PROPS'
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
    -Dlog4j2.configurationFile="$KAFKA_LOG4J" -cp "$KAFKA_LIBS/*" "$@"
}

# format_storage CONFIG LOG [CLUSTER_ID]: KRaft storage of one node, once.
format_storage() {
  local config="$1" log="$2" cluster_id="${3:-}"
  if [[ -z "$cluster_id" ]]; then
    cluster_id="$(java_cmd kafka.tools.StorageTool random-uuid 2>>"$log" | tail -n 1)"
  fi
  java_cmd kafka.tools.StorageTool format -t "$cluster_id" -c "$config" >>"$log" 2>&1 \
    || die "could not format kafka storage (log: $log)"
}

# launch_broker CONFIG LOG PIDFILE HEAP: the broker in the background, its pid recorded.
launch_broker() {
  local config="$1" log="$2" pidfile="$3" heap="$4"
  nohup java -Xms128m "-Xmx$heap" -XX:+UseG1GC -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$KAFKA_LOG4J" \
    -cp "$KAFKA_LIBS/*" kafka.Kafka "$config" >>"$log" 2>&1 </dev/null &
  echo $! > "$pidfile"
}

# stop_pid PIDFILE NAME: SIGTERM, up to 30 s for a clean shutdown, then SIGKILL.
stop_pid() {
  local pidfile="$1" name="$2"
  if pid_alive "$pidfile"; then
    local pid; pid="$(cat "$pidfile")"
    info "stopping $name (pid $pid)"
    kill "$pid"
    for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -9 "$pid" 2>/dev/null || true
  else
    info "$name is not running"
  fi
  rm -f "$pidfile"
}
