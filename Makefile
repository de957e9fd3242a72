# Cairn build and test entry points. `make test` is what CI runs.
GO ?= go
STATICCHECK_VERSION ?= v0.8.2
BIN := bin

.PHONY: all build test test-short lint fmt-check vet staticcheck bench clean proto

all: build

build:
	$(GO) build -o $(BIN)/ ./cmd/...

# The default test run: formatting, vet, the mount tools the mount tests
# use (installed from Debian when missing: scripts/test-deps), then every
# test with the race detector. Long soak/chaos/benchmark runs are separate
# scripts.
test: fmt-check vet
	scripts/test-deps
	$(GO) test -race -timeout 20m ./...

test-short: fmt-check vet
	$(GO) test -short -timeout 10m ./...

lint: fmt-check vet staticcheck

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

staticcheck:
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...

bench:
	$(GO) test -run '^$$' -bench . -benchtime 2x ./chunk/ ./object/

proto:
	scripts/genproto

clean:
	rm -rf $(BIN)
