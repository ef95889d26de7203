# poolagent and poolserver: build, test, lint, cross-compile, demo, bench.
GO        ?= go
BIN       ?= bin
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X github.com/poolagent/poolagent/internal/version.Version=$(VERSION)
GOBIN     ?= $(shell $(GO) env GOPATH)/bin
STATICCHECK := $(GOBIN)/staticcheck
STATICCHECK_VERSION ?= latest
NFPM      := $(GOBIN)/nfpm
# Keep equal to packaging.NFPMVersion (a test checks): later nfpm releases
# need modules the Go module proxy does not serve.
NFPM_VERSION ?= v2.45.0
DIST      ?= dist
TEST_TIMEOUT ?= 15m
# Test binaries (and builds) go test runs at once. The heaviest packages
# (cmd/poolagent, cmd/poolserver, test/e2e) mostly wait on the processes
# and timers they drive, so more of them than cores keep the CPU busy.
TEST_P    ?= 4

.PHONY: all build test test-windows lint vet staticcheck tidy-check cross packages demo demo-api bench bench-rollout bench-heartbeat soak clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/ ./cmd/...

$(STATICCHECK):
	$(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

vet:
	$(GO) vet ./...

staticcheck: $(STATICCHECK)
	$(STATICCHECK) ./...

# Fails when go.mod or go.sum are not what `go mod tidy` would write
# (direct and indirect requirements told apart, no stale sums).
tidy-check:
	@$(GO) mod tidy -diff || { echo "go.mod/go.sum are not tidy: run go mod tidy"; exit 1; }

lint: vet staticcheck tidy-check
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

# The test command README.md names: lint, then every test with the race detector.
test: lint
	$(GO) test -race -count=1 -p $(TEST_P) -timeout $(TEST_TIMEOUT) ./...

# The Windows suite (test/windows): poolagent.exe under Wine against a real
# poolserver. Needs wine64, wineserver and x86_64-w64-mingw32-gcc (Debian:
# wine wine64 gcc-mingw-w64-x86-64); with CI=true their absence fails it.
test-windows:
	POOLAGENT_TEST_WINE=1 $(GO) test -count=1 -timeout $(TEST_TIMEOUT) -v ./test/windows/

# Every package (tests included: go vet compiles them) must build and vet on
# each supported platform; then poolagent and poolserver are built for it.
CROSS_PLATFORMS ?= linux/amd64 linux/arm64 windows/amd64 darwin/arm64

cross:
	@set -e; for p in $(CROSS_PLATFORMS); do \
		os=$${p%/*}; arch=$${p#*/}; ext=; [ $$os = windows ] && ext=.exe; \
		echo "vet ./... $$os/$$arch"; \
		CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch $(GO) vet ./...; \
		for c in poolagent poolserver; do \
			echo "build $$c $$os/$$arch"; \
			CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch $(GO) build -trimpath -ldflags '$(LDFLAGS)' \
				-o $(BIN)/$$os-$$arch/$$c$$ext ./cmd/$$c; \
		done; \
	done

$(NFPM):
	$(GO) install github.com/goreleaser/nfpm/v2/cmd/nfpm@$(NFPM_VERSION)

# .deb and .rpm of poolagent and poolserver for linux/amd64 and linux/arm64,
# and the Windows zip and MSI of poolagent, into $(DIST)/ (docs/install.md).
# The MSI needs msitools (wixl, msibuild, msiinfo: apt-get install wixl msitools).
packages: $(NFPM)
	$(GO) run ./packaging/build --version '$(VERSION)' --nfpm '$(NFPM)' --out '$(DIST)'

# The main job, end to end: real poolserver and poolagent processes on
# 127.0.0.1 roll out a signed release and roll back a bad one.
demo:
	$(GO) run ./examples/demo

# A curl walk through the Agent Pools API against a fresh poolserver.
demo-api: build
	bash scripts/demo.sh

# Every benchmark, a few minutes (the fleet at BENCH_HOSTS, default 10,000).
bench:
	bash scripts/bench.sh

# Big fleet runs (bench/README.md): one rollout, or heartbeats only (the
# simulator's own cost and the idle server's), at HOSTS hosts on a
# ROLLOUT_INTERVAL interval. PG=DSN runs poolserver on PostgreSQL.
#   make bench-rollout HOSTS=100000      make bench-heartbeat HOSTS=300000
HOSTS            ?= 100000
ROLLOUT_INTERVAL ?= 30s
HEARTBEAT_FOR    ?= 3m
BENCH_TIMEOUT    ?= 30m
PG               ?=
FLEET_FLAGS       = -hosts $(HOSTS) -rollout-interval $(ROLLOUT_INTERVAL) -timeout $(BENCH_TIMEOUT) $(if $(PG),-pg '$(PG)')

bench-rollout:
	$(GO) run ./bench/fleet $(FLEET_FLAGS) -rollout-only

bench-heartbeat:
	$(GO) run ./bench/fleet $(FLEET_FLAGS) -heartbeat-only $(HEARTBEAT_FOR)

soak:
	$(GO) run ./bench/fleet -soak 30m -hosts 1000

clean:
	rm -rf $(BIN)
