#!/usr/bin/env bash
# Benchmarks (bench/README.md), on the MariaDB at MYSQL_URL and a Kafka broker started like the tests do.
#   scripts/bench.sh [relay|delivery|grpc|requests|instances|reseal|all|soak]   (soak is not part of all: it runs SOAK_MS, default 10 min)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export MYSQL_URL="${MYSQL_URL:-mysql://root@127.0.0.1:3306}"
if [[ -z "${KAFKA_BROKERS:-}" ]]; then
  if scripts/kafka.sh status >/dev/null 2>&1; then
    KAFKA_BROKERS=$(cat .cache/kafka/run/brokers)
  else
    run_dir=".cache/kafka/bench-$$"
    trap 'scripts/kafka.sh stop "$run_dir" || true' EXIT
    KAFKA_BROKERS=$(scripts/kafka.sh start "$run_dir" | sed -n 's/^KAFKA_BROKERS=//p')
  fi
  export KAFKA_BROKERS
fi
which="${1:-all}"
# h2load (Debian's nghttp2-client) drives the gRPC benchmark (bench/README.md).
if [[ "$which" == grpc || "$which" == all ]] && ! command -v h2load >/dev/null; then
  if [[ $(id -u) == 0 ]]; then apt-get install -y -qq nghttp2-client >/dev/null || apt-get update -qq && apt-get install -y -qq nghttp2-client >/dev/null; fi
  command -v h2load >/dev/null || echo "bench.sh: h2load not available; the gRPC benchmark falls back to a Node load generator" >&2
fi
if [[ "$which" == relay || "$which" == all ]]; then npx tsx bench/relay.bench.ts "${RELAY_ROWS:-50000}" 3; fi
if [[ "$which" == delivery || "$which" == all ]]; then npx tsx bench/delivery.bench.ts "${DELIVERY_EVENTS:-20000}" 10; fi
if [[ "$which" == grpc || "$which" == all ]]; then npx tsx bench/grpc.bench.ts "${GRPC_CALLS:-20000}" 5; fi
if [[ "$which" == instances || "$which" == all ]]; then npx tsx bench/instances.bench.ts "${INSTANCES_EVENTS:-10000}" 3; fi
if [[ "$which" == reseal || "$which" == all ]]; then npx tsx bench/reseal.bench.ts "${RESEAL_ROWS:-5000}" 3; fi
if [[ "$which" == requests || "$which" == all ]]; then npx tsx bench/requests.bench.ts "${REQUESTS_CALLS:-10000}" "${REQUESTS_ROUNDS:-3}"; fi
if [[ "$which" == soak ]]; then
  npx tsc -p tsconfig.build.json  # the built service, as the image runs it, never a stale dist/
  npx tsx bench/soak.bench.ts
fi
