# zdm: zero-downtime migration of a live Milvus cluster.
#
#   make demo    a real migration between two local Milvus servers
#   make demo-ha the same on three zdmd, three NATS nodes and HAProxy, with kills
#   make test    every test (starts what the tests need)
#   make bench   benchmarks, each against a baseline of the same run
#   make build   bin/zdmd and bin/zdm-nats
#   make run     zdmd serve with ./data and the simulated data plane

GO        ?= go
BIN       := bin/zdmd
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -X main.version=$(VERSION)
GOTESTFLAGS ?=

# Packages whose tests use a Milvus test bed; they run one at a time on
# it because they share its two servers. make test has two beds: the
# first runs BED_PKGS, the second E2E_BED_PKGS (the end-to-end tests and
# the short packages, so that both beds' groups take about as long).
BED_PKGS := ./dataplane/integration/...
E2E_BED_PKGS := ./e2e/... ./dataplane/milvus/milvustest/... ./cmd/zdmd/datatools/... ./dataplane/provision/...
MILVUS_PKGS := $(BED_PKGS) $(E2E_BED_PKGS)
# What scripts/test.sh is told.
TEST_ENV = BED_PKGS='$(BED_PKGS)' E2E_BED_PKGS='$(E2E_BED_PKGS)' GO='$(GO)' GOTESTFLAGS='$(GOTESTFLAGS)'

.PHONY: build test bench run demo demo-ha vet clean milvus-up milvus-down test-unit test-milvus

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/zdmd
	$(GO) build -o bin/zdm-nats ./cmd/zdm-nats

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }
	$(GO) vet ./...

milvus-up:
	@scripts/milvus-up.sh

milvus-down:
	@scripts/milvus-down.sh

# Every test: the unit tests, the Milvus tests and the end-to-end tests at
# once, the last two each on a test bed of its own, started first and
# stopped after, whatever the outcome (see scripts/test.sh).
test: vet
	@$(TEST_ENV) scripts/test.sh

# One group of make test: the packages that need no Milvus; those that do.
test-unit: vet
	@$(TEST_ENV) scripts/test.sh unit

test-milvus:
	@$(TEST_ENV) scripts/test.sh milvus e2e

# Benchmarks print ratios against baselines measured in the same run; the
# data plane's parts each run on a test bed started afresh, and the
# segment copy once more on a larger set (a million rows).
bench:
	$(GO) run ./bench/controlplane
	$(GO) test -run '^$$' -bench ProxiedInsert -benchmem -benchtime 3000x ./dataplane/capture/
	@GO=$(GO) scripts/bench-dataplane.sh

run: build
	ZDM_ADMIN_TOKEN=$${ZDM_ADMIN_TOKEN:-dev-admin} $(BIN) serve --data-dir ./data --dataplane simulated

demo:
	@scripts/demo.sh

# The same migration on three zdmd sharing a three-node NATS cluster behind
# HAProxy, with the driving zdmd killed mid-sync and mid-switch.
demo-ha:
	@ZDM_HAPROXY=$$(scripts/haproxy.sh) scripts/demo.sh --ha

clean:
	rm -rf bin data
