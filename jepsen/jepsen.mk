# The Jepsen-style harness (module jepsen/, see docs/JEPSEN.md). Included by
# the root Makefile, so paths are relative to the repository root.
#
#   make jepsen-quick              the quick scenarios; part of `make test`
#   make jepsen                    the full matrix (every workload × fault)
#   make jepsen-check RUN=DIR      check a saved run folder again
#
# SEED=N reproduces a run's schedule, TIME=60s, NODES=5 and RATE=200 override
# the defaults; JEPSEN_OUT is where run folders go; JEPSEN_LOG_ENGINE=bolt runs
# every member on the bbolt Raft log (default wal, statenode's default).

JEPSEN_QUICK := jepsen-quick
JEPSEN_OUT   ?= jepsen/out
JEPSEN_FLAGS ?=
JEPSEN_LOG_ENGINE ?= wal
JEPSEN_FLAGS += --log-engine $(JEPSEN_LOG_ENGINE)
ifneq ($(SEED),)
JEPSEN_FLAGS += --seed $(SEED)
endif
ifneq ($(TIME),)
JEPSEN_FLAGS += --time $(TIME)
endif
ifneq ($(NODES),)
JEPSEN_FLAGS += --nodes $(NODES)
endif
ifneq ($(RATE),)
JEPSEN_FLAGS += --rate $(RATE)
endif

.PHONY: jepsen-quick jepsen jepsen-check jepsen-build jepsen-unit

# The product binary is built without -race: the harness measures the
# product, not the race detector's slowdown. The faultclock build (its wall
# clock offset set at run time through a file) runs only the scenarios with
# the clock fault; every other scenario runs the release build.
jepsen-build:
	$(GO) build -o bin/statenode ./cmd/statenode
	$(GO) build -tags faultclock -o bin/statenode-faultclock ./cmd/statenode
	cd jepsen && $(GO) build -o ../bin/jepsen ./cmd/jepsen

# The harness's own tests: each checker rejects hand-made bad histories.
jepsen-unit:
	cd jepsen && $(GO) vet ./... && $(GO) test -race -timeout 5m -count=1 ./...

jepsen-quick: jepsen-build jepsen-unit
	bin/jepsen run --quick --bin bin/statenode --faultclock-bin bin/statenode-faultclock --out $(JEPSEN_OUT) $(JEPSEN_FLAGS)

jepsen: jepsen-build jepsen-unit
	bin/jepsen run --full --bin bin/statenode --faultclock-bin bin/statenode-faultclock --out $(JEPSEN_OUT) $(JEPSEN_FLAGS)

jepsen-check:
	@test -n "$(RUN)" || (echo "usage: make jepsen-check RUN=jepsen/out/<run folder>"; exit 2)
	cd jepsen && $(GO) build -o ../bin/jepsen ./cmd/jepsen
	bin/jepsen check $(RUN)
