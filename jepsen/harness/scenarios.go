package harness

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"
)

// Quick lists the scenarios of `make jepsen-quick` (run by `make test` on
// every change): few, robust, together a few minutes on a 2-core machine.
func Quick() []Scenario {
	short := 30 * time.Second
	return []Scenario{
		{Name: "quick-register-partition", Workload: "register", Faults: []string{"partition-leader", "partition-oneway"}},
		{Name: "quick-register-kill", Workload: "register", Faults: []string{"kill-leader", "kill-one"}, Time: short},
		{Name: "quick-register-pause", Workload: "register", Faults: []string{"pause-leader", "pause-one"}, Time: short},
		{Name: "quick-set-halves-kill", Workload: "set", Faults: []string{"partition-halves", "kill-all"}, Time: short},
		{Name: "quick-register-member", Workload: "register", Faults: []string{"member"}, Time: short},
		{Name: "quick-register-ring-bridge", Workload: "register", Faults: []string{"partition-ring", "partition-bridge"}, Nodes: 5},
		{Name: "quick-lock-clock-pause", Workload: "lock", Faults: []string{"clock", "pause-leader"}, Time: short},
		{Name: "quick-crdt-kill-pause", Workload: "crdt", Faults: []string{"kill-one", "pause-one"}, Time: short},
	}
}

// coordFaults are the faults of the coordination workloads' own
// scenarios in the full matrix, and coordMixed those of their mixed one.
var (
	coordFaults = map[string][]string{
		"lock":     {"partition-leader", "pause-leader", "clock"},
		"counter":  {"pause-leader", "clock"},
		"election": {"partition-leader", "kill-leader"},
		// Sessions end under pauses and partitions (permits return by
		// expiry; barriers break); latches are durable, so kills.
		"semaphore": {"pause-leader", "clock"},
		"latch":     {"kill-leader", "partition-halves"},
		"barrier":   {"pause-one", "partition-one"},
	}
	coordMixed = []string{"partition-leader", "partition-halves", "partition-oneway", "kill-leader", "kill-one",
		"pause-leader", "pause-one", "member", "clock"}
	// CRDTs live on every member and spread by gossip, which the proxies
	// do not carry: only process faults reach them. "member" wipes a
	// member's data, and with it updates not yet gossiped: not a fault a
	// CRDT survives.
	crdtFaults = []string{"kill-minority", "pause-one"}
	crdtMixed  = []string{"kill-one", "kill-minority", "kill-all", "pause-one", "pause-leader"}
)

// coordTime is the workload time of the coordination and CRDT scenarios
// of the full matrix (the register and set ones take the run's --time).
const coordTime = 45 * time.Second

// WorkloadFaults lists the faults that make sense for a workload: all but
// the clock for register and set (the store has no wall-clock logic), all
// for the coordination workloads (sessions have TTLs), the process faults
// for CRDTs.
func WorkloadFaults(workload string) []string {
	switch workload {
	case "lock", "counter", "election", "semaphore", "latch", "barrier":
		return FaultNames()
	case "crdt":
		return crdtMixed
	}
	return slices.DeleteFunc(FaultNames(), func(f string) bool { return f == "clock" })
}

// Full lists the full matrix of `make jepsen`: register and set under
// every fault on its own, then under all of them mixed; the coordination
// and CRDT workloads under a few faults each and then mixed.
func Full() []Scenario {
	var out []Scenario
	var ws []string
	for w := range Workloads() {
		ws = append(ws, w)
	}
	sort.Strings(ws)
	for _, w := range ws {
		var single, mixed []string
		var t time.Duration
		switch w {
		case "lock", "counter", "election", "semaphore", "latch", "barrier":
			single, mixed, t = coordFaults[w], coordMixed, coordTime
		case "crdt":
			single, mixed, t = crdtFaults, crdtMixed, coordTime
		default:
			single, mixed = WorkloadFaults(w), WorkloadFaults(w)
		}
		for _, f := range single {
			out = append(out, Scenario{Name: w + "-" + f, Workload: w, Faults: []string{f}, Time: t})
		}
		out = append(out, Scenario{Name: w + "-mixed", Workload: w, Faults: mixed, Time: t})
	}
	return out
}

// Lookup finds a scenario of Quick or Full by name, or builds one from
// "workload:fault+fault".
func Lookup(name string) (Scenario, error) {
	for _, s := range append(Quick(), Full()...) {
		if s.Name == name {
			return s, nil
		}
	}
	if w, fs, ok := strings.Cut(name, ":"); ok {
		sc := Scenario{Name: w + "-" + fs, Workload: w, Faults: strings.Split(fs, "+")}
		if _, err := LookupWorkload(w); err != nil {
			return Scenario{}, err
		}
		all := Faults()
		for _, f := range sc.Faults {
			if _, ok := all[f]; !ok {
				return Scenario{}, fmt.Errorf("%w: fault %q (see `jepsen list`)", ErrUnknownScenario, f)
			}
		}
		return sc, nil
	}
	return Scenario{}, fmt.Errorf("%w: %q (see `jepsen list`)", ErrUnknownScenario, name)
}
