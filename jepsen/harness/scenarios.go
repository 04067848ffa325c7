package harness

import (
	"fmt"
	"sort"
	"strings"
)

// Quick lists the scenarios of `make jepsen-quick` (run by `make test` on
// every change): few, robust, together a few minutes on a 2-core machine.
func Quick() []Scenario {
	return []Scenario{
		{Name: "quick-register-partition", Workload: "register", Faults: []string{"partition-leader", "partition-oneway"}},
		{Name: "quick-register-kill", Workload: "register", Faults: []string{"kill-leader", "kill-one"}},
		{Name: "quick-register-pause", Workload: "register", Faults: []string{"pause-leader", "pause-one"}},
		{Name: "quick-set-halves-kill", Workload: "set", Faults: []string{"partition-halves", "kill-all"}},
		{Name: "quick-register-member", Workload: "register", Faults: []string{"member"}},
		{Name: "quick-register-ring-bridge", Workload: "register", Faults: []string{"partition-ring", "partition-bridge"}, Nodes: 5},
	}
}

// Full lists the full matrix of `make jepsen`: every registered workload
// under every fault on its own, then under all of them mixed.
func Full() []Scenario {
	var out []Scenario
	names := FaultNames()
	var ws []string
	for w := range Workloads() {
		ws = append(ws, w)
	}
	sort.Strings(ws)
	for _, w := range ws {
		for _, f := range names {
			out = append(out, Scenario{Name: w + "-" + f, Workload: w, Faults: []string{f}})
		}
		out = append(out, Scenario{Name: w + "-mixed", Workload: w, Faults: names})
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
