# ONEX registration fleet. The two commands a newcomer needs:
#   make run    the fleet against real local Kafka, PostgreSQL and Consul
#   make test   unit, integration and end-to-end tests against those servers
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

GO       ?= go
BIN      := $(CURDIR)/bin
SERVICES := registration-orchestrator reducer projector-effect consul-effect
# Module-rooted patterns: in go.work mode a pattern whose directory is no
# module itself (./services/..., ./cmd/..., ./deploy/...) fails with "directory
# prefix ... does not contain modules listed in go.work".
# The end-to-end suite (./e2e/...) comes last: it starts servers of its own and
# stops and restarts them, and it takes the longest.
MODULES  := ./proto/... ./pkg/... $(foreach s,$(SERVICES),./services/$(s)/...) ./cmd/onexctl/... ./deploy/chartcheck/... ./bench/... ./e2e/...
INFRA    := scripts/infra
# Every target that talks to the servers runs with the addresses env.sh prints.
WITH_ENV := eval "$$($(INFRA)/env.sh)" &&
# `make test` runs against servers of its own (state, ports, PostgreSQL
# cluster), so the records and rows tests leave never show up in `make run`,
# and a `make run` left running never feeds the tests. The end-to-end suite
# has a third set (e2e/harness).
TEST_INFRA := ONEX_STATE_DIR=/tmp/onex-test ONEX_KAFKA_PORT=39092 ONEX_KAFKA_CONTROLLER_PORT=39093 \
	ONEX_PG_PORT=5456 ONEX_PG_CLUSTER=onextest ONEX_CONSUL_PORT=38500 ONEX_CONSUL_DNS_PORT=38600 \
	ONEX_CONSUL_SERVER_PORT=38300 ONEX_CONSUL_SERF_LAN_PORT=38301 ONEX_CONSUL_SERF_WAN_PORT=38302 \
	ONEX_CONSUL_GRPC_PORT=38502 \
	ONEX_KAFKA_SECURE_PORT=39094 ONEX_PG_SECURE_PORT=5457 ONEX_PG_SECURE_CLUSTER=onextestsecure ONEX_INFRA_SECURE=1
TEST_ENV := eval "$$($(TEST_INFRA) $(INFRA)/env.sh)" &&

.PHONY: help
help: ## list targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

.PHONY: test-infra-up test-infra-down test-infra-env
test-infra-up: ## install (first time) and start the servers `make test` uses (39092, 5456, 38500; secured Kafka 39094-39097, TLS PostgreSQL 5457, ACL Consul 38510)
	$(TEST_INFRA) $(INFRA)/up.sh
test-infra-down: ## stop the test servers
	$(TEST_INFRA) $(INFRA)/down.sh
test-infra-env: ## print the environment that points at the test servers (to run single tests by hand)
	@$(TEST_INFRA) $(INFRA)/env.sh

.PHONY: infra-up infra-down infra-env
infra-up: ## install (first time) and start Kafka, PostgreSQL and Consul on loopback
	$(INFRA)/up.sh
infra-down: ## stop the local servers (data is kept under $$ONEX_STATE_DIR)
	$(INFRA)/down.sh
infra-env: ## print the environment that points at the local servers
	@$(INFRA)/env.sh

.PHONY: helm-tools protoc
helm-tools: ## install helm v3 into $$ONEX_CACHE_DIR/bin (built from the Go module proxy; for the chart tests)
	scripts/tools/helm.sh
protoc: ## install protoc from Debian's packages (for `make proto` and the generated-code check)
	scripts/tools/protoc.sh

.PHONY: python-venv interop-schemas
python-venv: ## create the cached Python venv with the pinned omnibase-infra (interop/python/requirements.lock)
	scripts/python/venv.sh
interop-schemas: python-venv ## regenerate interop/schemas and interop/golden from the pinned package
	py="$$(scripts/python/venv.sh | tail -1)" && "$$py" interop/python/export_schemas.py && "$$py" interop/python/make_goldens.py

.PHONY: build
build: ## build the four services and onexctl into bin/
	@mkdir -p $(BIN)
	@for s in $(SERVICES); do CGO_ENABLED=0 $(GO) build -o $(BIN)/$$s ./services/$$s/cmd/$$s; done
	CGO_ENABLED=0 $(GO) build -o $(BIN)/onexctl ./cmd/onexctl

.PHONY: lint
lint: ## gofmt and go vet over every module
	@out="$$(gofmt -l proto pkg services cmd e2e deploy bench)"; if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(MODULES)

.PHONY: run
# run.sh stops, on Ctrl-C, SIGTERM or SIGHUP, the fleet and each server it
# started. make passes a SIGTERM it receives on to it and waits for it; exec
# makes run.sh make's own child, with no shell in between.
run: ## the fleet against real local servers with a live view (Ctrl-C stops it and the servers it started)
	exec scripts/run.sh

.PHONY: topics
topics: build ## create every platform topic that is missing and report drift
	$(WITH_ENV) $(BIN)/onexctl topics provision

.PHONY: test test-unit
test-unit: ## unit tests only (no servers needed)
	ONEX_REQUIRE_INFRA=0 $(GO) test -short -count=1 $(MODULES)

# Packages run one at a time (-p 1): several suites start real services that
# consume the shared fleet topics, and two of them at once would each see the
# other's traffic. Coverage counts what any test executes in pkg/ and
# services/ (-coverpkg), not only a package's own tests: the shared packages
# are exercised mostly from the services' tests, and test-support packages
# (pkg/testkit, fixtures) only from others. The e2e suite's service binaries
# are built with the same -coverpkg and what they execute counts too; the
# profiles are merged.
COVER_DIR := $(CURDIR)/.state/e2e-cover
E2E_SUMMARY := $(CURDIR)/.state/e2e-summary.txt
COVER_PKG := github.com/omninode/onex-fleet/pkg/...,github.com/omninode/onex-fleet/services/...
test: test-infra-up lint build helm-tools protoc python-venv ## everything, against real servers of its own (what CI runs)
	@mkdir -p $(CURDIR)/.state && rm -rf $(COVER_DIR) $(E2E_SUMMARY) && mkdir -p $(COVER_DIR)
	@# The services' integration tests run on the platform topics of the
	@# test servers; a fresh broker has none until they are provisioned.
	$(TEST_ENV) $(BIN)/onexctl topics provision >/dev/null || echo "topic drift reported (existing topics are never changed)"
	$(TEST_ENV) ONEX_REQUIRE_INFRA=1 ONEX_E2E_COVERDIR=$(COVER_DIR) ONEX_E2E_SUMMARY_FILE=$(E2E_SUMMARY) $(GO) test -count=1 -p 1 -timeout 60m \
		-coverpkg=$(COVER_PKG) -coverprofile=$(CURDIR)/.state/coverage.out $(MODULES)
	@if [ -n "$$(ls -A $(COVER_DIR))" ]; then \
		$(GO) tool covdata textfmt -i=$(COVER_DIR) -o $(CURDIR)/.state/e2e-cover.out && \
		tail -n +2 $(CURDIR)/.state/e2e-cover.out >> $(CURDIR)/.state/coverage.out; fi
	@awk 'NR==1 || $$1 ~ /onex-fleet\/(pkg|services)\//' $(CURDIR)/.state/coverage.out > $(CURDIR)/.state/coverage-core.out
	@echo -n "total statement coverage of pkg/ and services/: "; \
		$(GO) tool cover -func=$(CURDIR)/.state/coverage-core.out | awk '/^total:/ {print $$3}'
	@cat $(E2E_SUMMARY) 2>/dev/null || { echo "the Python interop suite reported no summary"; exit 1; }

# The fleet's performance figures next to the servers' own ceilings, in one
# run of about nine minutes (three of them fill a Consul agent for the agent
# API's ceiling); docs/performance.md explains the method.
.PHONY: bench
bench: infra-up build ## performance figures against the real servers (~9 min): table, bench/results/{results.json,results.md,latency-curve.png}
	$(GO) build -o $(BIN)/fleetbench ./bench/cmd/fleetbench
	$(WITH_ENV) $(BIN)/onexctl topics provision >/dev/null || echo "topic drift reported (existing topics are never changed)"
	$(WITH_ENV) $(BIN)/fleetbench $(BENCH_FLAGS)

.PHONY: e2e
e2e: build ## only the end-to-end suite (servers of its own; ONEX_E2E_PROVIDER=testcontainers with Docker)
	ONEX_E2E=1 $(GO) test -count=1 -timeout 30m -v ./e2e/...

.PHONY: fuzz
fuzz: ## run every fuzz target for FUZZTIME (default 60s each)
	$(GO) test -run='^$$' -fuzz=FuzzDecode -fuzztime=$${FUZZTIME:-60s} ./pkg/envelope/
	$(GO) test -run='^$$' -fuzz=FuzzDecodeIntrospection -fuzztime=$${FUZZTIME:-60s} ./pkg/registration/
	$(GO) test -run='^$$' -fuzz=FuzzSanitizeString -fuzztime=$${FUZZTIME:-60s} -fuzzminimizetime=2s ./pkg/infraerr/
	$(GO) test -run='^$$' -fuzz=FuzzRedactDSN -fuzztime=$${FUZZTIME:-60s} -fuzzminimizetime=2s ./pkg/infraerr/
	$(GO) test -run='^$$' -fuzz=FuzzRecordJSON -fuzztime=$${FUZZTIME:-60s} ./pkg/dlq/
	$(GO) test -run='^$$' -fuzz=FuzzParse -fuzztime=$${FUZZTIME:-60s} ./pkg/topics/
	$(GO) test -run='^$$' -fuzz=FuzzSanitize -fuzztime=$${FUZZTIME:-60s} ./pkg/config/infisical/
	$(GO) test -run='^$$' -fuzz=FuzzDecode -fuzztime=$${FUZZTIME:-60s} ./pkg/operator/
	$(GO) test -run='^$$' -fuzz=FuzzUnmarshalReducerInput -fuzztime=$${FUZZTIME:-60s} ./pkg/pipeline/
	$(GO) test -run='^$$' -fuzz=FuzzUnmarshalIntent -fuzztime=$${FUZZTIME:-60s} ./pkg/pipeline/
	$(GO) test -run='^$$' -fuzz=FuzzUnmarshalEffectResult -fuzztime=$${FUZZTIME:-60s} ./pkg/pipeline/
	$(GO) test -run='^$$' -fuzz=FuzzUnmarshalAggregation -fuzztime=$${FUZZTIME:-60s} ./services/registration-orchestrator/internal/workflow/

.PHONY: clean
clean: ## remove build output (not the server caches)
	rm -rf $(BIN) .state

# protoc from Debian (scripts/tools/protoc.sh installs it); the Go plugins
# are installed from the module proxy at pinned versions into $(BIN)/tools.
PROTOC_GEN_GO_VERSION      ?= v1.36.12
PROTOC_GEN_GO_GRPC_VERSION ?= v1.6.2
PROTO_TOOLS := $(BIN)/tools

# onex/registry/v1 holds gRPC services; onex/fleet/v1 only messages (the
# internal topics' records), so it gets no _grpc.pb.go. proto/regen_test.go
# runs the same commands and fails when a committed file is stale.
.PHONY: proto
proto: protoc ## regenerate the gRPC/protobuf Go code under proto/
	GOBIN=$(PROTO_TOOLS) GOFLAGS= $(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)
	GOBIN=$(PROTO_TOOLS) GOFLAGS= $(GO) install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION)
	cd proto && PATH="$(PROTO_TOOLS):$$PATH" protoc -I . \
		--go_out=. --go_opt=paths=source_relative \
		--go-grpc_out=. --go-grpc_opt=paths=source_relative \
		onex/registry/v1/*.proto
	cd proto && PATH="$(PROTO_TOOLS):$$PATH" protoc -I . \
		--go_out=. --go_opt=paths=source_relative \
		onex/fleet/v1/*.proto
