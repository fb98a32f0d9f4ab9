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

.PHONY: all build install test lint fuzz bench-yjs clean

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

clean:
	rm -rf bin/ coverage.out coverage.html
