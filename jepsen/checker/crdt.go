package checker

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/statenode/statenode/jepsen/history"
)

// CRDT checks the CRDT workload: counters incremented on random members
// and OR-sets with unique adds and removes, then, after the faults healed
// and a quiet period, one final read of every object on every member.
//
// crdt-converge: every member that served the workload reports the same
// value of every object. crdt-counter: the value is at least the sum of
// the acknowledged increments and at most that plus the indeterminate
// ones. crdt-orset: every element read was added (by an acknowledged or
// indeterminate add; a failed add's element must not appear); an
// acknowledged add that no remove could have observed (every remove of the
// element, acknowledged, returned before the add was called; an
// indeterminate remove may take effect at any time) is present; an element
// whose acknowledged add was followed, on the same member, by an
// acknowledged remove is absent (that remove saw the add: removes are not
// beaten by adds they observed).
func CRDT(ops []history.Op) []Result {
	conv := Result{Name: "crdt-converge"}
	ctr := Result{Name: "crdt-counter"}
	set := Result{Name: "crdt-orset"}

	nodes := map[string]bool{}
	type tally struct{ ok, info int64 }
	incs := map[string]*tally{}
	adds := map[string]map[string][]*history.Op{} // set → element → adds
	rems := map[string]map[string][]*history.Op{} // set → element → removes
	finals := map[string]map[string]*history.Op{} // object → node → last final read
	kinds := map[string]string{}                  // object → FCounterRead or FSetRead
	note := func(m map[string]map[string][]*history.Op, o *history.Op) {
		if m[o.Key] == nil {
			m[o.Key] = map[string][]*history.Op{}
		}
		m[o.Key][o.Value] = append(m[o.Key][o.Value], o)
	}
	for i := range ops {
		o := &ops[i]
		switch o.F {
		case history.FCounterInc:
			ctr.Ops++
			nodes[o.Node] = true
			t := incs[o.Key]
			if t == nil {
				t = &tally{}
				incs[o.Key] = t
			}
			switch o.Type {
			case history.TypeOK:
				t.ok += o.N
			case history.TypeInfo:
				t.info += o.N
			}
			kinds[o.Key] = history.FCounterRead
		case history.FSetAddElem:
			set.Ops++
			nodes[o.Node] = true
			note(adds, o)
			kinds[o.Key] = history.FSetRead
		case history.FSetRemove:
			set.Ops++
			nodes[o.Node] = true
			note(rems, o)
			kinds[o.Key] = history.FSetRead
		case history.FCounterRead, history.FSetRead:
			conv.Ops++
			if o.Type != history.TypeOK {
				continue
			}
			if finals[o.Key] == nil {
				finals[o.Key] = map[string]*history.Op{}
			}
			if p := finals[o.Key][o.Node]; p == nil || o.Call >= p.Call {
				finals[o.Key][o.Node] = o
			}
			kinds[o.Key] = o.F
		}
	}
	members := sortedKeys(nodes)

	// Convergence.
	for _, obj := range sortedKeys(kinds) {
		var first *history.Op
		for _, n := range members {
			r := finals[obj][n]
			if r == nil {
				conv.Anomalies = append(conv.Anomalies, fmt.Sprintf("%s: no final read on %s", obj, n))
				continue
			}
			if first == nil {
				first = r
			} else if r.N != first.N || !slices.Equal(r.Values, first.Values) {
				conv.Anomalies = append(conv.Anomalies, fmt.Sprintf("%s: members differ after the quiet period: %s reads %s, %s reads %s",
					obj, first.Node, crdtValue(first), r.Node, crdtValue(r)))
			}
		}
	}
	if len(kinds) == 0 {
		conv.Anomalies = append(conv.Anomalies, "no CRDT operations")
	}
	conv.Valid = len(conv.Anomalies) == 0
	conv.Summary = fmt.Sprintf("%d objects on %d members, %d anomalies", len(kinds), len(members), len(conv.Anomalies))

	// Counters.
	var sums []string
	for _, obj := range sortedKeys(incs) {
		t := incs[obj]
		for _, n := range sortedKeys(finals[obj]) {
			if v := finals[obj][n].N; v < t.ok || v > t.ok+t.info {
				ctr.Anomalies = append(ctr.Anomalies, fmt.Sprintf("%s: %s reads %d, outside [%d acknowledged, %d acknowledged+indeterminate]", obj, n, v, t.ok, t.ok+t.info))
			}
		}
		sums = append(sums, fmt.Sprintf("%s: %d acknowledged, %d indeterminate", obj, t.ok, t.info))
	}
	ctr.Valid = len(ctr.Anomalies) == 0
	ctr.Summary = strings.Join(sums, "; ")

	// OR-sets.
	required, forbidden := 0, 0
	for _, obj := range sortedKeys(kinds) {
		if kinds[obj] != history.FSetRead {
			continue
		}
		must := map[string]bool{}    // present on every member
		mustNot := map[string]bool{} // absent on every member
		for elem, as := range adds[obj] {
			rs := rems[obj][elem]
			for _, a := range as {
				if a.Type != history.TypeOK {
					continue
				}
				unseen := true
				for _, r := range rs {
					if r.Type == history.TypeInfo || (r.Type == history.TypeOK && r.Return >= a.Call) {
						unseen = false
					}
					if r.Type == history.TypeOK && r.Node == a.Node && r.Call > a.Return && len(as) == 1 {
						mustNot[elem] = true
					}
				}
				if unseen {
					must[elem] = true
				}
			}
		}
		required += len(must)
		forbidden += len(mustNot)
		for _, n := range sortedKeys(finals[obj]) {
			r := finals[obj][n]
			have := map[string]bool{}
			for _, v := range r.Values {
				have[v] = true
				as := adds[obj][v]
				if len(as) == 0 {
					set.Anomalies = append(set.Anomalies, fmt.Sprintf("%s: %s reads %q, which was never added", obj, n, v))
					continue
				}
				if !slices.ContainsFunc(as, func(a *history.Op) bool { return a.Type != history.TypeFail }) {
					set.Anomalies = append(set.Anomalies, fmt.Sprintf("%s: %s reads %q, whose add was reported as not applied", obj, n, v))
				}
				if mustNot[v] {
					set.Anomalies = append(set.Anomalies, fmt.Sprintf("%s: %s reads %q, removed on the member that had acknowledged its add", obj, n, v))
				}
			}
			for _, e := range sortedKeys(must) {
				if !have[e] {
					set.Anomalies = append(set.Anomalies, fmt.Sprintf("%s: %s lost %q: acknowledged add, never removed", obj, n, e))
				}
			}
		}
	}
	set.Valid = len(set.Anomalies) == 0
	set.Summary = fmt.Sprintf("%d elements required present, %d required absent, %d anomalies", required, forbidden, len(set.Anomalies))
	return []Result{conv, ctr, set}
}

func crdtValue(o *history.Op) string {
	if o.F == history.FCounterRead {
		return fmt.Sprint(o.N)
	}
	v := append([]string(nil), o.Values...)
	sort.Strings(v)
	if len(v) > 8 {
		return fmt.Sprintf("%d elements [%s ...]", len(v), strings.Join(v[:8], " "))
	}
	return fmt.Sprintf("[%s]", strings.Join(v, " "))
}
