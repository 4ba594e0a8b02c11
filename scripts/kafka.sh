#!/usr/bin/env bash
# A single-node Apache Kafka 4.x (KRaft, combined broker + controller) on loopback, for tests and benchmarks.
#
#   scripts/kafka.sh fetch         download the broker jars from Maven Central into .cache/kafka (once)
#   scripts/kafka.sh start [DIR]   format and start a broker on free ports; prints KAFKA_BROKERS=host:port
#   scripts/kafka.sh stop  [DIR]   SIGTERM the broker started in DIR, wait, then kill; removes DIR
#   scripts/kafka.sh status [DIR]  exit 0 when the broker in DIR answers metadata requests
#   scripts/kafka.sh kill [DIR]    kill -9 the broker started in DIR; keeps its log dir, config and ports
#   scripts/kafka.sh restart [DIR] start the broker in DIR again on the same log dir and ports (after kill)
#
# DIR defaults to .cache/kafka/run. The broker's log is DIR/logs/server.log.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
version=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$root/scripts/kafka/pom.xml")
cache="$root/.cache/kafka/$version"
libs="$cache/libs"
run_dir="${2:-$root/.cache/kafka/run}"

log() { printf 'kafka.sh: %s\n' "$*" >&2; }

fetch() {
  # The stamp holds the pom's checksum: a changed pom fetches again.
  local sum; sum=$(sha256sum "$root/scripts/kafka/pom.xml" | cut -c1-64)
  if [[ -f "$cache/.complete" && "$(cat "$cache/.complete")" == "$sum" ]]; then return 0; fi
  command -v mvn >/dev/null || { log "mvn is required to fetch Kafka (apt-get install maven)"; exit 1; }
  command -v java >/dev/null || { log "java 17+ is required to run Kafka"; exit 1; }
  log "fetching org.apache.kafka:kafka_2.13:$version and its dependencies into $libs"
  rm -rf "$libs" && mkdir -p "$libs"
  mvn -q -B -f "$root/scripts/kafka/pom.xml" dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$libs" >&2
  echo "$sum" > "$cache/.complete"
}

free_port() {
  node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}

answers() { # $1 = host:port; true when the broker answers a metadata request
  node "$root/scripts/kafka-ready.mjs" "$1" >/dev/null 2>&1
}

start() {
  fetch
  if [[ -f "$run_dir/pid" ]] && kill -0 "$(cat "$run_dir/pid")" 2>/dev/null; then
    local existing; existing=$(cat "$run_dir/brokers")
    if answers "$existing"; then echo "KAFKA_BROKERS=$existing"; return 0; fi
    stop
  fi
  rm -rf "$run_dir" && mkdir -p "$run_dir/data" "$run_dir/logs"
  local port ctl
  port=${KAFKA_PORT:-$(free_port)}; ctl=$(free_port)
  while [[ "$ctl" == "$port" ]]; do ctl=$(free_port); done
  cat > "$run_dir/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$ctl
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$ctl
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs=$run_dir/data
num.partitions=3
offsets.topic.replication.factor=1
offsets.topic.num.partitions=3
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=true
log.flush.interval.messages=9223372036854775807
# A restart on the same log dir waits until the controller (in this same process, restarted too) expires the
# previous incarnation's broker session: 9 s by default. A separate controller quorum would have expired it
# while the broker was down; 3 s keeps a single-node restart close to that.
broker.session.timeout.ms=3000
broker.heartbeat.interval.ms=1000
PROPS
  local id; id=$(java -cp "$libs/*" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n 1)
  java "${jvm[@]}" -cp "$libs/*" kafka.tools.StorageTool format -t "$id" -c "$run_dir/server.properties" \
    >"$run_dir/logs/format.log" 2>&1 || { cat "$run_dir/logs/format.log" >&2; exit 1; }
  echo "127.0.0.1:$port" > "$run_dir/brokers"
  launch
}

jvm=(-Xms256m -Xmx512m -XX:+UseG1GC -Djava.awt.headless=true
  "-Dkafka.logs.dir=$run_dir/logs" "-Dlog4j2.configurationFile=$root/scripts/kafka/log4j2.xml")

# Runs the broker configured in $run_dir (formatted already) and waits until it answers.
launch() {
  local port; port=$(cat "$run_dir/brokers"); port=${port##*:}
  nohup java "${jvm[@]}" -cp "$libs/*" kafka.Kafka "$run_dir/server.properties" \
    >>"$run_dir/logs/stdout.log" 2>&1 &
  echo $! > "$run_dir/pid"
  local deadline=$((SECONDS + 90))
  until answers "127.0.0.1:$port"; do
    if ! kill -0 "$(cat "$run_dir/pid")" 2>/dev/null; then
      log "broker exited during startup; last log lines:"; tail -n 40 "$run_dir/logs/stdout.log" "$run_dir/logs/server.log" >&2 || true
      exit 1
    fi
    if (( SECONDS > deadline )); then log "broker did not answer within 90 s"; stop; exit 1; fi
    sleep 0.5
  done
  log "broker ready on 127.0.0.1:$port (pid $(cat "$run_dir/pid"), logs in $run_dir/logs)"
  echo "KAFKA_BROKERS=127.0.0.1:$port"
}

stop() {
  [[ -f "$run_dir/pid" ]] || return 0
  local pid; pid=$(cat "$run_dir/pid")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    if kill -0 "$pid" 2>/dev/null; then log "broker $pid ignored SIGTERM for 30 s; killing it"; kill -KILL "$pid" || true; fi
  fi
  rm -rf "$run_dir"
}

status() { [[ -f "$run_dir/brokers" ]] && answers "$(cat "$run_dir/brokers")"; }

kill_broker() {
  [[ -f "$run_dir/pid" ]] || { log "no broker in $run_dir"; exit 1; }
  local pid; pid=$(cat "$run_dir/pid")
  if kill -0 "$pid" 2>/dev/null; then
    kill -KILL "$pid"
    while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
  fi
}

restart() {
  [[ -f "$run_dir/server.properties" && -f "$run_dir/brokers" ]] || { log "no broker was started in $run_dir"; exit 1; }
  if [[ -f "$run_dir/pid" ]] && kill -0 "$(cat "$run_dir/pid")" 2>/dev/null; then
    log "the broker in $run_dir is still running"; exit 1
  fi
  launch
}

case "${1:-}" in
  fetch) fetch ;;
  start) start ;;
  stop) stop ;;
  status) status ;;
  kill) kill_broker ;;
  restart) restart ;;
  *) sed -n '2,12p' "$0"; exit 2 ;;
esac
