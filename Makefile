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
# e2e/ joins MODULES once it has packages (go vet fails on a pattern with none).
MODULES  := ./pkg/... $(foreach s,$(SERVICES),./services/$(s)/...) ./cmd/onexctl/... ./deploy/chartcheck/... ./bench/...
INFRA    := scripts/infra
# Every target that talks to the servers runs with the addresses env.sh prints.
WITH_ENV := eval "$$($(INFRA)/env.sh)" &&

.PHONY: help
help: ## list targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

.PHONY: infra-up infra-down infra-env
infra-up: ## install (first time) and start Kafka, PostgreSQL and Consul on loopback
	$(INFRA)/up.sh
infra-down: ## stop the local servers (data is kept under $$ONEX_STATE_DIR)
	$(INFRA)/down.sh
infra-env: ## print the environment that points at the local servers
	@$(INFRA)/env.sh

.PHONY: helm-tools
helm-tools: ## install helm v3 into $$ONEX_CACHE_DIR/bin (built from the Go module proxy; for the chart tests)
	scripts/tools/helm.sh

.PHONY: build
build: ## build the four services and onexctl into bin/
	@mkdir -p $(BIN)
	@for s in $(SERVICES); do CGO_ENABLED=0 $(GO) build -o $(BIN)/$$s ./services/$$s/cmd/$$s; done
	CGO_ENABLED=0 $(GO) build -o $(BIN)/onexctl ./cmd/onexctl

.PHONY: lint
lint: ## gofmt and go vet over every module
	@out="$$(gofmt -l pkg services cmd e2e deploy bench)"; if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(MODULES)

.PHONY: run
run: ## the fleet against real local servers with a live view (Ctrl-C stops it)
	scripts/run.sh

.PHONY: topics
topics: build ## create every platform topic that is missing and report drift
	$(WITH_ENV) $(BIN)/onexctl topics provision

.PHONY: test test-unit
test-unit: ## unit tests only (no servers needed)
	ONEX_REQUIRE_INFRA=0 $(GO) test -short -count=1 $(MODULES)

# Packages run one at a time (-p 1): several suites start real services that
# consume the shared fleet topics, and two of them at once would each see the
# other's traffic. Coverage is per package, merged, counted over pkg/ and
# services/ only.
test: infra-up lint build helm-tools ## everything, against the real servers (what CI runs)
	@mkdir -p $(CURDIR)/.state
	$(WITH_ENV) ONEX_REQUIRE_INFRA=1 $(GO) test -count=1 -p 1 -timeout 45m \
		-coverprofile=$(CURDIR)/.state/coverage.out $(MODULES)
	@awk 'NR==1 || $$1 ~ /onex-fleet\/(pkg|services)\//' $(CURDIR)/.state/coverage.out > $(CURDIR)/.state/coverage-core.out
	@echo -n "total statement coverage of pkg/ and services/: "; \
		$(GO) tool cover -func=$(CURDIR)/.state/coverage-core.out | awk '/^total:/ {print $$3}'

# The fleet's performance figures next to the servers' own ceilings, in one
# run of about ten minutes; docs/performance.md explains the method.
.PHONY: bench
bench: infra-up build ## performance figures against the real servers (~10 min): table, bench/results/{results.json,results.md,latency-curve.png}
	$(GO) build -o $(BIN)/fleetbench ./bench/cmd/fleetbench
	$(WITH_ENV) $(BIN)/onexctl topics provision >/dev/null || echo "topic drift reported (existing topics are never changed)"
	$(WITH_ENV) $(BIN)/fleetbench $(BENCH_FLAGS)

.PHONY: fuzz
fuzz: ## run every fuzz target for FUZZTIME (default 60s each)
	$(GO) test -run='^$$' -fuzz=FuzzDecode -fuzztime=$${FUZZTIME:-60s} ./pkg/envelope/
	$(GO) test -run='^$$' -fuzz=FuzzDecodeIntrospection -fuzztime=$${FUZZTIME:-60s} ./pkg/registration/
	$(GO) test -run='^$$' -fuzz=FuzzSanitizeString -fuzztime=$${FUZZTIME:-60s} -fuzzminimizetime=2s ./pkg/infraerr/
	$(GO) test -run='^$$' -fuzz=FuzzRedactDSN -fuzztime=$${FUZZTIME:-60s} -fuzzminimizetime=2s ./pkg/infraerr/
	$(GO) test -run='^$$' -fuzz=FuzzRecordJSON -fuzztime=$${FUZZTIME:-60s} ./pkg/dlq/
	$(GO) test -run='^$$' -fuzz=FuzzParse -fuzztime=$${FUZZTIME:-60s} ./pkg/topics/
	$(GO) test -run='^$$' -fuzz=FuzzSanitize -fuzztime=$${FUZZTIME:-60s} ./pkg/config/infisical/

.PHONY: clean
clean: ## remove build output (not the server caches)
	rm -rf $(BIN) .state

# protoc from Debian (apt-get install -y protobuf-compiler); the Go plugins
# are installed from the module proxy at pinned versions into $(BIN)/tools.
PROTOC_GEN_GO_VERSION      ?= v1.36.12
PROTOC_GEN_GO_GRPC_VERSION ?= v1.6.2
PROTO_TOOLS := $(BIN)/tools

.PHONY: proto
proto: ## regenerate the gRPC/protobuf Go code under proto/ (needs protoc)
	@command -v protoc >/dev/null || { echo "protoc not found: apt-get install -y protobuf-compiler"; exit 1; }
	GOBIN=$(PROTO_TOOLS) GOFLAGS= $(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)
	GOBIN=$(PROTO_TOOLS) GOFLAGS= $(GO) install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION)
	cd proto && PATH="$(PROTO_TOOLS):$$PATH" protoc -I . \
		--go_out=. --go_opt=paths=source_relative \
		--go-grpc_out=. --go-grpc_opt=paths=source_relative \
		onex/registry/v1/registry.proto
