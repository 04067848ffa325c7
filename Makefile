# statenode — build, run and test.
#
#   make run     a single-node dev cluster on 127.0.0.1:7001 (client API)
#   make test    everything CI runs: vet, race tests, a short fuzz pass
#   make bench   go test benchmarks of the FSM and codec

GO       ?= go
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -X main.version=$(VERSION)
BIN      := bin/statenode
PKGS     := ./...
FUZZTIME ?= 10s

.PHONY: all build run test vet unit fuzz bench services clean

# The Jepsen-style harness (its own module) adds jepsen-quick to `make test`.
-include jepsen/jepsen.mk

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/statenode

run: build
	./$(BIN) dev

test: services vet unit fuzz $(JEPSEN_QUICK)

vet:
	$(GO) mod download
	$(GO) vet $(PKGS)
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1)

# One test binary at a time (-p 1): the cluster tests run real Raft groups
# with sub-second timeouts, and a 2-core machine running several race-enabled
# binaries at once starves their heartbeats.
unit:
	$(GO) test -race -p 1 -timeout 20m -count=1 $(PKGS)

fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeCommand$$' -fuzztime $(FUZZTIME) ./fsm
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeResponse$$' -fuzztime $(FUZZTIME) ./fsm

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./fsm

# Redis and PostgreSQL are started by the machine; start them if they are down.
services:
	@bash .ci/services

clean:
	rm -rf bin
