#!/usr/bin/env bash
# The whole suite against real parts: MariaDB (MYSQL_URL, default root@127.0.0.1:3306) and a real Kafka
# broker (KAFKA_BROKERS, or one this script starts from .cache/kafka and stops afterwards).
#   scripts/test.sh [test files…]     default: every test/**/*.test.ts
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

log() { printf 'test.sh: %s\n' "$*" >&2; }

# MariaDB: reuse the running server; start the machine's own if it is down.
export MYSQL_URL="${MYSQL_URL:-mysql://root@127.0.0.1:3306}"
if [[ "$MYSQL_URL" == "mysql://root@127.0.0.1:3306" ]] && ! mysqladmin -h127.0.0.1 -uroot ping >/dev/null 2>&1; then
  if [[ -x /usr/sbin/mariadbd ]]; then
    log "MariaDB is not answering; starting it"
    start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
    for _ in $(seq 1 60); do mysqladmin -h127.0.0.1 -uroot ping >/dev/null 2>&1 && break; sleep 0.5; done
  fi
  mysqladmin -h127.0.0.1 -uroot ping >/dev/null 2>&1 || { log "no MariaDB/MySQL at $MYSQL_URL"; exit 1; }
fi

# Kafka: KAFKA_BROKERS if set; else a broker that `make kafka-start` left running; else one of our own.
if [[ -z "${KAFKA_BROKERS:-}" ]]; then
  if scripts/kafka.sh status >/dev/null 2>&1; then
    KAFKA_BROKERS=$(cat .cache/kafka/run/brokers)
    log "reusing the broker at $KAFKA_BROKERS"
  else
    run_dir=".cache/kafka/test-$$"
    trap 'scripts/kafka.sh stop "$run_dir" || true' EXIT
    KAFKA_BROKERS=$(scripts/kafka.sh start "$run_dir" | sed -n 's/^KAFKA_BROKERS=//p')
  fi
  export KAFKA_BROKERS
fi

if (( $# > 0 )); then files=("$@"); else mapfile -t files < <(find test -name '*.test.ts' | sort); fi
node --import tsx --test --test-reporter=spec "${files[@]}"
