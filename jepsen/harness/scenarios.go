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

// The full matrix groups faults in pairs of the same kind: a scenario's
// time leaves room for every one of its faults to be injected at least
// once (TestFullMatrixInjectsEveryFault), so a pair covers what two
// single-fault scenarios did in little more than the time of one. The
// mixed scenario of each workload draws from all its faults in a random
// order (a seed's run reaches only some of them).
var (
	// storeGroups are the scenarios of register and set: every fault but
	// the clock (the store has no wall-clock logic), by kind.
	storeGroups = []faultGroup{
		{"partition-leader-oneway", []string{"partition-leader", "partition-oneway"}},
		{"partition-one-halves", []string{"partition-one", "partition-halves"}},
		{"partition-ring-bridge", []string{"partition-ring", "partition-bridge"}},
		{"delay-loss", []string{"delay", "loss"}},
		{"kill-leader-one", []string{"kill-leader", "kill-one"}},
		{"kill-minority-all", []string{"kill-minority", "kill-all"}},
		{"pause-leader-one", []string{"pause-leader", "pause-one"}},
		{"member", []string{"member"}},
	}
	// coordGroups are the coordination workloads' own scenarios: each
	// workload under a partition, a kill and a pause, and under the clock
	// where its safety rests on session TTLs.
	coordGroups = map[string][]faultGroup{
		"lock": {
			{"partition-leader-pause-leader", []string{"partition-leader", "pause-leader"}},
			{"clock-kill-leader", []string{"clock", "kill-leader"}},
		},
		"counter": {
			{"clock-pause-leader", []string{"clock", "pause-leader"}},
			{"partition-leader-kill-leader", []string{"partition-leader", "kill-leader"}},
		},
		"election": {
			{"partition-leader-kill-leader", []string{"partition-leader", "kill-leader"}},
			{"pause-leader-partition-oneway", []string{"pause-leader", "partition-oneway"}},
		},
		// Sessions end under pauses and partitions (permits return by
		// expiry; barriers break); latches are durable, so kills.
		"semaphore": {
			{"clock-pause-leader", []string{"clock", "pause-leader"}},
			{"partition-one-kill-leader", []string{"partition-one", "kill-leader"}},
		},
		"latch": {
			{"kill-leader-partition-halves", []string{"kill-leader", "partition-halves"}},
			{"kill-all-pause-one", []string{"kill-all", "pause-one"}},
		},
		"barrier": {
			{"pause-one-partition-one", []string{"pause-one", "partition-one"}},
			{"kill-one-partition-leader", []string{"kill-one", "partition-leader"}},
		},
	}
	coordMixed = []string{"partition-leader", "partition-halves", "partition-oneway", "kill-leader", "kill-one",
		"pause-leader", "pause-one", "member", "clock"}
	// CRDTs live on every member and spread by gossip, which the proxies
	// do not carry: only process faults reach them. "member" wipes a
	// member's data, and with it updates not yet gossiped: not a fault a
	// CRDT survives.
	crdtGroups = []faultGroup{
		{"kill-minority-pause-one", []string{"kill-minority", "pause-one"}},
		{"kill-all-pause-leader", []string{"kill-all", "pause-leader"}},
	}
	crdtMixed = []string{"kill-one", "kill-minority", "kill-all", "pause-one", "pause-leader"}
)

// faultGroup is a scenario of the full matrix: a name suffix and its faults.
type faultGroup struct {
	suffix string
	faults []string
}

// Workload times of the full matrix's scenarios. The workloads produce
// plenty of operations in that time (the register, set and lock ones well
// over 100 a second, the semaphore's slowest one about 10); what a scenario
// needs time for is to inject each of its faults at least once.
const (
	groupTime  = 45 * time.Second // a pair of faults
	singleTime = 40 * time.Second // one fault on its own
	mixedTime  = 60 * time.Second // a workload under all its faults
)

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

// Full lists the full matrix of `make jepsen`: every workload under its
// faults in pairs of one kind, then under all of them mixed. Register and
// set get every fault but the clock; the coordination workloads at least
// a partition, a kill and a pause (and the clock where sessions guard
// safety); CRDTs the process faults.
func Full() []Scenario {
	var out []Scenario
	var ws []string
	for w := range Workloads() {
		ws = append(ws, w)
	}
	sort.Strings(ws)
	for _, w := range ws {
		var groups []faultGroup
		var mixed []string
		switch w {
		case "lock", "counter", "election", "semaphore", "latch", "barrier":
			groups, mixed = coordGroups[w], coordMixed
		case "crdt":
			groups, mixed = crdtGroups, crdtMixed
		default:
			groups, mixed = storeGroups, WorkloadFaults(w)
		}
		for _, g := range groups {
			t := groupTime
			if len(g.faults) == 1 {
				t = singleTime
			}
			out = append(out, Scenario{Name: w + "-" + g.suffix, Workload: w, Faults: g.faults, Time: t})
		}
		out = append(out, Scenario{Name: w + "-mixed", Workload: w, Faults: mixed, Time: mixedTime})
	}
	return out
}

// ScenarioOverhead is the wall time a scenario takes beyond its workload
// time, per workload: starting the cluster, the final write and reads,
// convergence, tear-down and the checks. Measured on a 2-core machine with
// 5 members (docs/JEPSEN.md); the workloads whose clients wait on
// sessions (semaphore, barrier) end later, after their last waits.
func ScenarioOverhead(workload string) time.Duration {
	switch workload {
	case "semaphore", "barrier":
		return 6 * time.Second
	case "crdt", "latch":
		return 3 * time.Second
	}
	return 2 * time.Second
}

// Estimate is the expected wall time of running scs one after another,
// with def the workload time of scenarios that set none: the sum of their
// workload times and overheads.
func Estimate(scs []Scenario, def time.Duration) time.Duration {
	var total time.Duration
	for _, s := range scs {
		t := s.Time
		if t == 0 {
			t = def
		}
		total += t + ScenarioOverhead(s.Workload)
	}
	return total
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
