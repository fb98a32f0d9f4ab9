# Every go command uses the same tags: changing tags invalidates the build
# cache, and nomsgpack drops gin's slow-to-build msgpack codec.
GO        ?= go
TAGS      = nomsgpack
GOFLAGS_T = -tags $(TAGS)
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   = -X main.version=$(VERSION)

STATICCHECK = honnef.co/go/tools/cmd/staticcheck@v0.8.2
FUZZTIME  ?= 60s
BENCHTIME ?= 1s

# The yjs oracle (node) is needed by the decoder's differential tests. npm
# rewrites node_modules/.package-lock.json on every install, so it doubles as
# a stamp: `npm ci` runs again only when the lockfile changes.
ORACLE_DIR   = tools/yjsoracle
ORACLE_STAMP = $(if $(wildcard $(ORACLE_DIR)/package-lock.json),$(ORACLE_DIR)/node_modules/.package-lock.json)

.PHONY: all build install test lint fuzz bench-yjs bench-webhooks bench-cluster crash-test cluster-fault-test clean docs release

all: build

build:
	$(GO) build $(GOFLAGS_T) -ldflags '$(LDFLAGS)' -o bin/ ./cmd/...

install:
	$(GO) install $(GOFLAGS_T) -ldflags '$(LDFLAGS)' ./cmd/...

# The one command that runs every test.
test: $(ORACLE_STAMP)
	$(GO) test $(GOFLAGS_T) -race ./...

$(ORACLE_DIR)/node_modules/.package-lock.json: $(ORACLE_DIR)/package-lock.json
	npm ci --prefix $(ORACLE_DIR)
	@mkdir -p $(@D) && touch $@

lint:
	@unformatted=$$(find . -name '*.go' -not -path './.git/*' -not -path '*/node_modules/*' -print0 | xargs -0 gofmt -l); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed on:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet $(GOFLAGS_T) ./...
	$(GO) run $(STATICCHECK) $(GOFLAGS_T) ./...

fuzz:
	$(GO) test $(GOFLAGS_T) -run='^$$' -fuzz=FuzzApplyUpdate -fuzztime=$(FUZZTIME) ./internal/yjs

bench-yjs: $(ORACLE_STAMP)
	$(GO) test $(GOFLAGS_T) -run='^$$' -bench=. -benchmem -benchtime=$(BENCHTIME) ./internal/yjs

# Durable webhook acknowledgements: serve (real binary, Badger with
# SyncWrites) against a no-op gin handler, on loopback. See bench/README.md.
BENCH_WEBHOOKS_FLAGS ?=
bench-webhooks: build
	$(GO) run $(GOFLAGS_T) ./bench/webhookload -bin bin/relay-git-sync $(BENCH_WEBHOOKS_FLAGS)

# The same against serve on a 3-node NATS JetStream cluster (nats-server
# needed) with 1, 2 and 3 instances, and the failover time of a folder whose
# lease holder is killed. See bench/README.md.
BENCH_CLUSTER_FLAGS ?=
bench-cluster: build
	$(GO) run $(GOFLAGS_T) ./bench/webhookload -bin bin/relay-git-sync -cluster 1,2,3 $(BENCH_CLUSTER_FLAGS)

# The crash test with more SIGKILLs than the default run of `make test`
# (CRASH_SEED repeats the kill times of an earlier run).
CRASH_KILLS ?= 40
CRASH_SEED  ?=
# The cluster fault test (three serve processes, a 3-node nats-server
# cluster, kill -9 of a serve and of a node) runs once in `make test`; this
# repeats it CLUSTER_FAULT_RUNS times.
CLUSTER_FAULT_RUNS ?= 5
cluster-fault-test:
	$(GO) test $(GOFLAGS_T) -race -count=$(CLUSTER_FAULT_RUNS) -timeout 60m -run '^TestServeClusterKill$$' -v ./cmd/relay-git-sync

crash-test:
	RELAY_GIT_SYNC_CRASH_KILLS=$(CRASH_KILLS) RELAY_GIT_SYNC_CRASH_SEED=$(CRASH_SEED) \
	$(GO) test $(GOFLAGS_T) -race -count=1 -timeout 30m -run '^TestServeCrash$$' -v ./cmd/relay-git-sync

clean:
	rm -rf bin/ coverage.out coverage.html

# The command reference in docs/reference is generated from the commands
# (a test fails when it is stale); man pages and completions go to dist/.
docs:
	$(GO) run $(GOFLAGS_T) ./cmd/relay-git-sync generate --markdown docs/reference

# Static binaries for the usual platforms, with version information, plus
# man pages and shell completions.
RELEASE_PLATFORMS ?= linux/amd64 linux/arm64 darwin/amd64 darwin/arm64
release:
	rm -rf dist && mkdir -p dist
	for p in $(RELEASE_PLATFORMS); do \
		os=$${p%/*}; arch=$${p#*/}; \
		for c in relay-git-sync git-remote-relay; do \
			CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch $(GO) build $(GOFLAGS_T) -trimpath -ldflags '-s -w $(LDFLAGS)' -o dist/$$os-$$arch/$$c ./cmd/$$c || exit 1; \
		done; \
	done
	$(GO) run $(GOFLAGS_T) -ldflags '$(LDFLAGS)' ./cmd/relay-git-sync generate --man dist/man \
		--bash-completion dist/completion/relay-git-sync.bash \
		--zsh-completion dist/completion/_relay-git-sync \
		--fish-completion dist/completion/relay-git-sync.fish
