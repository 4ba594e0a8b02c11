# smartflow-notification. `make help` lists the targets.
SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-builtin-rules

STAMP := node_modules/.install-stamp

$(STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

.PHONY: help
help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "} {printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2}'

.PHONY: install
install: $(STAMP) ## Install the npm dependencies (npm ci)

.PHONY: run
run: $(STAMP) ## Run the service on its embedded default (SQLite + in-process bus)
	npx tsx src/main.ts

.PHONY: test
test: $(STAMP) check ## Lint, typecheck, check generated code, the whole suite on MariaDB + Kafka, then the fault scenarios
	scripts/test.sh
	FAULTS_RECOVERY_GOAL=report $(MAKE) --no-print-directory test-faults

.PHONY: fuzz-rpc
fuzz-rpc: $(STAMP) ## Property-based input tests over every RPC, 100,000 cases (FUZZ_RUNS to change)
	FUZZ_RUNS=$${FUZZ_RUNS:-100000} node --import tsx --test --test-reporter=spec --test-timeout=0 test/integration/grpc-fuzz.test.ts

.PHONY: fuzz-consumer
fuzz-consumer: $(STAMP) ## Property-based tests of the outbox consumer on MariaDB+Kafka and SQLite, 100,000 cases each (FUZZ_RUNS to change)
	FUZZ_RUNS=$${FUZZ_RUNS:-100000} scripts/test.sh test/integration/consumer-fuzz.test.ts

.PHONY: test-faults
test-faults: $(STAMP) ## Fault scenarios on a private MariaDB + Kafka, asserting the 15 s recovery (FAULTS=1,3 picks some; ~5 min)
	node --import tsx --test --test-reporter=spec --test-concurrency=1 test/faults/faults.suite.ts

.PHONY: check
check: $(STAMP) lint typecheck gen-check ## Static checks only

.PHONY: lint
lint: $(STAMP) ## Biome (warnings are errors), buf lint, the architecture's rules and the README's config table
	npx biome check --error-on-warnings .
	npx buf lint
	npx tsx scripts/check-architecture.ts
	npx tsx scripts/config-table.ts --check

.PHONY: typecheck
typecheck: $(STAMP) ## tsc --noEmit, strict
	npx tsc -p tsconfig.json --noEmit

.PHONY: generate
generate: $(STAMP) ## Regenerate src/gen from proto/ (buf generate)
	npx buf generate

.PHONY: gen-check
gen-check: $(STAMP) ## Fail when src/gen differs from what buf generate writes
	npx buf generate
	git diff --exit-code --stat -- src/gen || { echo "src/gen is stale: run make generate and commit"; exit 1; }
	test -z "$$(git status --porcelain -- src/gen)" || { git status --porcelain -- src/gen; echo "untracked files in src/gen"; exit 1; }

.PHONY: config-table
config-table: $(STAMP) ## Rewrite the README's configuration table from src/config/config-spec.ts
	npx tsx scripts/config-table.ts

.PHONY: format
format: $(STAMP) ## Format the code with Biome
	npx biome check --write .

.PHONY: build
build: $(STAMP) ## Compile src/ to dist/ (what the image runs: node dist/main.js)
	npx tsc -p tsconfig.build.json

.PHONY: kafka-fetch
kafka-fetch: ## Download the Kafka broker jars into .cache/kafka (Maven Central)
	scripts/kafka.sh fetch

.PHONY: kafka-start
kafka-start: ## Start a local single-node Kafka (tests reuse it); prints KAFKA_BROKERS
	scripts/kafka.sh start

.PHONY: kafka-stop
kafka-stop: ## Stop the local Kafka
	scripts/kafka.sh stop

.PHONY: go-gateway
go-gateway: ## Build the grpc-go gateway client (Debian packages, installed when missing) into .cache/go-gateway
	scripts/go-gateway.sh

.PHONY: bench
bench: $(STAMP) ## Benchmarks (bench/README.md), BENCH=relay|delivery|grpc|requests|instances|reseal|soak (soak builds dist/ and runs SOAK_MS, default 10 min; not part of all); starts Kafka like the tests
	scripts/bench.sh $(BENCH)

.PHONY: clean
clean: ## Remove build output and the local SQLite database
	rm -rf dist data
