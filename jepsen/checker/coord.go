package checker

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/statenode/statenode/jepsen/history"
)

// grants are the acknowledged grants of one lock (or the acknowledged
// campaigns of one election) in token order, the order of the log.
type grants struct {
	ops []*history.Op
	// minRet[i] is the earliest Return among ops[i:]: the earliest time by
	// which some grant with a token >= ops[i].Token had certainly happened.
	minRet []int64
}

// grantsByName collects the ok operations of function f by Key, sorted by
// Token, and reports reused and zero tokens and tokens that go backwards
// in real time (a grant that returned before another was called must have
// the smaller token).
func grantsByName(ops []history.Op, f, what string, res *Result) map[string]*grants {
	m := map[string]*grants{}
	for i := range ops {
		o := &ops[i]
		if o.F != f || o.Type != history.TypeOK {
			continue
		}
		g := m[o.Key]
		if g == nil {
			g = &grants{}
			m[o.Key] = g
		}
		g.ops = append(g.ops, o)
	}
	for _, name := range sortedKeys(m) {
		g := m[name]
		sort.SliceStable(g.ops, func(i, j int) bool { return g.ops[i].Token < g.ops[j].Token })
		g.minRet = make([]int64, len(g.ops))
		for i := len(g.ops) - 1; i >= 0; i-- {
			g.minRet[i] = g.ops[i].Return
			if i+1 < len(g.ops) {
				g.minRet[i] = min(g.minRet[i], g.minRet[i+1])
			}
		}
		var earliest *history.Op // among the larger tokens, the one that returned first
		for i := len(g.ops) - 1; i >= 0; i-- {
			o := g.ops[i]
			if o.Token == 0 {
				res.Anomalies = append(res.Anomalies, fmt.Sprintf("%s %s: %s granted with token 0: %s", what, name, what, o))
			}
			if i > 0 && g.ops[i-1].Token == o.Token {
				res.Anomalies = append(res.Anomalies, fmt.Sprintf("%s %s: token %d granted twice: %s and %s", what, name, o.Token, g.ops[i-1], o))
			}
			if earliest != nil && earliest.Token > o.Token && earliest.Return < o.Call {
				res.Anomalies = append(res.Anomalies, fmt.Sprintf("%s %s: tokens go backwards in real time: %s returned before %s was called", what, name, earliest, o))
			}
			if earliest == nil || o.Return < earliest.Return {
				earliest = o
			}
		}
	}
	return m
}

// find returns the index of the grant with token t, or -1.
func (g *grants) find(t uint64) int {
	if g == nil {
		return -1
	}
	i := sort.Search(len(g.ops), func(i int) bool { return g.ops[i].Token >= t })
	if i < len(g.ops) && g.ops[i].Token == t {
		return i
	}
	return -1
}

// newerBefore returns a grant with a token greater than t that had
// certainly happened before time at (its Return < at), or nil.
func (g *grants) newerBefore(t uint64, at int64) *history.Op {
	if g == nil {
		return nil
	}
	i := sort.Search(len(g.ops), func(i int) bool { return g.ops[i].Token > t })
	if i >= len(g.ops) || g.minRet[i] >= at {
		return nil
	}
	for _, o := range g.ops[i:] {
		if o.Return < at {
			return o
		}
	}
	return nil
}

// FencedMutex checks the lock workload's acquires and releases against a
// fenced-mutex model replayed in the order of the log (the token order):
// an acquire is legal only if the lock is free and its token is greater
// than every earlier token; only the owner releases.
//
// Tokens must be unique, non-zero and increasing in real-time order. Every
// acknowledged release must name a grant of its own session (only the
// owner releases), and must not begin after a newer grant of the lock
// had returned: the lock was free before the newer grant, so a release
// that still found the old grant means two holders. A session may end
// (expire) at any time without an operation in the history, which frees
// its lock: the model allows that, and catches a holder that acts as the
// owner afterwards. Failed and indeterminate acquires never constrain the
// model (their token is unknown), so they are never assumed to have
// failed.
func FencedMutex(ops []history.Op) Result {
	res := Result{Name: "fenced-mutex"}
	gs := grantsByName(ops, history.FAcquire, "lock", &res)
	releases := 0
	for i := range ops {
		o := &ops[i]
		switch o.F {
		case history.FAcquire:
			res.Ops++
		case history.FRelease:
			res.Ops++
			if o.Type != history.TypeOK {
				continue
			}
			releases++
			g := gs[o.Key]
			k := g.find(o.Token)
			if k < 0 {
				res.Anomalies = append(res.Anomalies, fmt.Sprintf("lock %s: release of token %d that was never granted: %s", o.Key, o.Token, o))
				continue
			}
			if owner := g.ops[k]; owner.Session != o.Session {
				res.Anomalies = append(res.Anomalies, fmt.Sprintf("lock %s: released by a non-owner: %s; token %d belongs to session %d (%s)", o.Key, o, o.Token, owner.Session, owner))
				continue
			}
			if n := g.newerBefore(o.Token, o.Call); n != nil {
				res.Anomalies = append(res.Anomalies, fmt.Sprintf("lock %s: two holders: %s began after %s had returned", o.Key, o, n))
			}
		}
	}
	nGrants := 0
	for _, g := range gs {
		nGrants += len(g.ops)
	}
	res.Valid = len(res.Anomalies) == 0
	res.Summary = fmt.Sprintf("%d locks, %d acknowledged grants, %d acknowledged releases, %d anomalies", len(gs), nGrants, releases, len(res.Anomalies))
	return res
}

// streams returns the last ok final stream read of every key.
func streams(ops []history.Op) map[string]*history.Op {
	m := map[string]*history.Op{}
	for i := range ops {
		o := &ops[i]
		if o.F == history.FStream && o.Type == history.TypeOK && (m[o.Key] == nil || o.Call >= m[o.Key].Call) {
			m[o.Key] = o
		}
	}
	return m
}

// FencedRegister checks the fenced writes of the lock and counter
// workloads: a fenced register never accepts a stale token. An
// acknowledged write must not have begun after a newer grant of its lock
// had returned; the acknowledged writes of a key, in revision order, have
// non-decreasing tokens; and the key's final stream (every write it
// accepted, read back at the end in revision order) must hold every
// acknowledged write at its revision, nothing that was never written or
// was refused, and non-decreasing tokens.
func FencedRegister(ops []history.Op) Result {
	res := Result{Name: "fenced-register"}
	gs := grantsByName(ops, history.FAcquire, "lock", &Result{}) // token anomalies are FencedMutex's
	byValue := map[string]*history.Op{}
	keys := map[string][]*history.Op{} // ok writes per key
	acked := 0
	for i := range ops {
		o := &ops[i]
		if o.F != history.FFencedPut {
			continue
		}
		res.Ops++
		byValue[o.Value] = o
		if _, ok := keys[o.Key]; !ok {
			keys[o.Key] = nil
		}
		if o.Type != history.TypeOK {
			continue
		}
		acked++
		keys[o.Key] = append(keys[o.Key], o)
		if n := gs[o.Lock].newerBefore(o.Token, o.Call); n != nil {
			res.Anomalies = append(res.Anomalies, fmt.Sprintf("%s: stale token %d accepted: %s began after %s had returned", o.Key, o.Token, o, n))
		}
	}
	finals := streams(ops)
	for _, key := range sortedKeys(keys) {
		ws := keys[key]
		sort.SliceStable(ws, func(i, j int) bool { return ws[i].Rev < ws[j].Rev })
		for i := 1; i < len(ws); i++ {
			if ws[i].Lock == ws[i-1].Lock && ws[i].Token < ws[i-1].Token {
				res.Anomalies = append(res.Anomalies, fmt.Sprintf("%s: stale token accepted: %s at a later revision than %s", key, ws[i], ws[i-1]))
			}
		}
		st := finals[key]
		if st == nil {
			res.Anomalies = append(res.Anomalies, fmt.Sprintf("%s: no successful final read of the register's writes", key))
			continue
		}
		if len(st.Revs) != len(st.Values) {
			res.Anomalies = append(res.Anomalies, fmt.Sprintf("%s: malformed final read: %d values, %d revisions", key, len(st.Values), len(st.Revs)))
			continue
		}
		at := map[string]int64{}
		var prev *history.Op
		for i, v := range st.Values {
			at[v] = st.Revs[i]
			w := byValue[v]
			switch {
			case w == nil || w.Key != key:
				res.Anomalies = append(res.Anomalies, fmt.Sprintf("%s: revision %d holds %q, which no client wrote", key, st.Revs[i], v))
				continue
			case w.Type == history.TypeFail:
				res.Anomalies = append(res.Anomalies, fmt.Sprintf("%s: refused write applied at revision %d: %s", key, st.Revs[i], w))
			}
			if prev != nil && prev.Lock == w.Lock && w.Token < prev.Token {
				res.Anomalies = append(res.Anomalies, fmt.Sprintf("%s: stale token accepted at revision %d: %s after %s", key, st.Revs[i], w, prev))
			}
			prev = w
		}
		for _, w := range ws {
			if r, ok := at[w.Value]; !ok {
				res.Anomalies = append(res.Anomalies, fmt.Sprintf("%s: acknowledged write lost: %s is not among the register's writes", key, w))
			} else if r != w.Rev {
				res.Anomalies = append(res.Anomalies, fmt.Sprintf("%s: acknowledged write %s found at revision %d", key, w, r))
			}
		}
	}
	res.Valid = len(res.Anomalies) == 0
	res.Summary = fmt.Sprintf("%d registers, %d acknowledged fenced writes, %d anomalies", len(keys), acked, len(res.Anomalies))
	return res
}

// CounterValue is the value a counter write stores: the count, then the
// fence and the writer, so that every write is unique.
func CounterValue(n int64, token uint64, client, seq int) string {
	return fmt.Sprintf("%d/t%d/c%d/s%d", n, token, client, seq)
}

// counterOf parses the count of a CounterValue.
func counterOf(v string) (int64, bool) {
	n, _, _ := strings.Cut(v, "/")
	c, err := strconv.ParseInt(n, 10, 64)
	return c, err == nil
}

// LockCounter checks the lock-protected counter: each client read the
// counter under the lock and wrote the value plus one with a fenced write.
// Read back at the end (every write of the key in revision order), the
// counter must go 1, 2, 3, ... (a stale write accepted would repeat a
// value, a lost update skip one); every acknowledged increment must be
// there; and the final value lies within [acknowledged, acknowledged +
// indeterminate] increments.
func LockCounter(ops []history.Op) Result {
	res := Result{Name: "counter"}
	type tally struct{ ok, info int64 }
	counts := map[string]*tally{}
	for i := range ops {
		o := &ops[i]
		if o.F != history.FFencedPut {
			continue
		}
		res.Ops++
		t := counts[o.Key]
		if t == nil {
			t = &tally{}
			counts[o.Key] = t
		}
		switch o.Type {
		case history.TypeOK:
			t.ok++
		case history.TypeInfo:
			t.info++
		}
	}
	finals := streams(ops)
	var sums []string
	for _, key := range sortedKeys(counts) {
		t := counts[key]
		st := finals[key]
		if st == nil {
			res.Anomalies = append(res.Anomalies, fmt.Sprintf("%s: no successful final read", key))
			continue
		}
		var last int64
		for i, v := range st.Values {
			n, ok := counterOf(v)
			if !ok {
				res.Anomalies = append(res.Anomalies, fmt.Sprintf("%s: malformed counter value %q", key, v))
				continue
			}
			if n != last+1 {
				what := "lost update"
				if n <= last {
					what = "stale write accepted"
				}
				rev := int64(0)
				if i < len(st.Revs) {
					rev = st.Revs[i]
				}
				res.Anomalies = append(res.Anomalies, fmt.Sprintf("%s: %s: %d follows %d at revision %d (%q)", key, what, n, last, rev, v))
			}
			last = n
		}
		if last < t.ok || last > t.ok+t.info {
			res.Anomalies = append(res.Anomalies, fmt.Sprintf("%s: final value %d outside [%d acknowledged, %d acknowledged+indeterminate] increments",
				key, last, t.ok, t.ok+t.info))
		}
		sums = append(sums, fmt.Sprintf("%s=%d (%d acknowledged, %d indeterminate)", key, last, t.ok, t.info))
	}
	res.Valid = len(res.Anomalies) == 0
	res.Summary = strings.Join(sums, ", ")
	if res.Summary == "" {
		res.Summary = "no counter writes"
	}
	return res
}

// Election checks the election workload: at most one leader per term (an
// acknowledged campaign's term is unique, and every observer that saw the
// term saw that leader); terms are non-zero and increase in real-time
// order; a leader's acknowledged proclaim or resign names its own term and
// does not begin after a newer term had been won (two leaders at once);
// each observer's stream never goes back in term; and an observed value is
// one the term's leader campaigned or proclaimed with.
func Election(ops []history.Op) Result {
	res := Result{Name: "election"}
	gs := grantsByName(ops, history.FCampaign, "election", &res)
	values := map[string]map[uint64]map[string]bool{} // election → term → values its leader set
	setValue := func(name string, term uint64, v string) {
		if values[name] == nil {
			values[name] = map[uint64]map[string]bool{}
		}
		if values[name][term] == nil {
			values[name][term] = map[string]bool{}
		}
		values[name][term][v] = true
	}
	for _, name := range sortedKeys(gs) {
		for _, o := range gs[name].ops {
			setValue(name, o.Token, o.Value)
		}
	}
	observers := map[int][]*history.Op{}
	for i := range ops {
		o := &ops[i]
		switch o.F {
		case history.FCampaign:
			res.Ops++
		case history.FProclaim, history.FResign:
			res.Ops++
			if o.Type == history.TypeFail {
				continue
			}
			g := gs[o.Key]
			k := g.find(o.Token)
			if k >= 0 && o.F == history.FProclaim {
				setValue(o.Key, o.Token, o.Value)
			}
			if o.Type != history.TypeOK {
				continue
			}
			if k < 0 {
				res.Anomalies = append(res.Anomalies, fmt.Sprintf("election %s: %s in term %d, which no acknowledged campaign won", o.Key, o, o.Token))
				continue
			}
			if l := g.ops[k]; l.Session != o.Session {
				res.Anomalies = append(res.Anomalies, fmt.Sprintf("election %s: %s by a session that did not lead term %d (%s)", o.Key, o, o.Token, l))
				continue
			}
			if n := g.newerBefore(o.Token, o.Call); n != nil {
				res.Anomalies = append(res.Anomalies, fmt.Sprintf("election %s: two leaders: %s began after %s had returned", o.Key, o, n))
			}
		case history.FObserve:
			res.Ops++
			if o.Type == history.TypeOK {
				observers[o.Client] = append(observers[o.Client], o)
			}
		}
	}
	seen := map[string]map[uint64]*history.Op{} // election → term → first observation with a leader
	var obsIDs []int
	for c := range observers {
		obsIDs = append(obsIDs, c)
	}
	sort.Ints(obsIDs)
	nObs := 0
	for _, c := range obsIDs {
		last := map[string]*history.Op{}
		for _, o := range observers[c] {
			nObs++
			if p := last[o.Key]; p != nil && o.Token < p.Token {
				res.Anomalies = append(res.Anomalies, fmt.Sprintf("election %s: observer %d went back from term %d to %d: %s", o.Key, c, p.Token, o.Token, o))
			}
			last[o.Key] = o
			if o.Session == 0 {
				continue
			}
			if seen[o.Key] == nil {
				seen[o.Key] = map[uint64]*history.Op{}
			}
			if p := seen[o.Key][o.Token]; p == nil {
				seen[o.Key][o.Token] = o
			} else if p.Session != o.Session {
				res.Anomalies = append(res.Anomalies, fmt.Sprintf("election %s: two leaders in term %d: observed sessions %d (%s) and %d (%s)", o.Key, o.Token, p.Session, p, o.Session, o))
			}
			g := gs[o.Key]
			if k := g.find(o.Token); k >= 0 {
				if l := g.ops[k]; l.Session != o.Session {
					res.Anomalies = append(res.Anomalies, fmt.Sprintf("election %s: term %d was won by session %d (%s) but observed led by %d", o.Key, o.Token, l.Session, l, o.Session))
				} else if !values[o.Key][o.Token][o.Value] {
					res.Anomalies = append(res.Anomalies, fmt.Sprintf("election %s: observed value %q in term %d, which its leader never set", o.Key, o.Value, o.Token))
				}
			}
		}
	}
	nTerms := 0
	for _, g := range gs {
		nTerms += len(g.ops)
	}
	res.Valid = len(res.Anomalies) == 0
	res.Summary = fmt.Sprintf("%d elections, %d acknowledged terms, %d observations by %d observers, %d anomalies", len(gs), nTerms, nObs, len(observers), len(res.Anomalies))
	return res
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
