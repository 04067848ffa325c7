package checker

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/statenode/statenode/jepsen/history"
)

// forever is the end of an interval that no operation in the history
// bounds (a hold whose session may still live).
const forever = int64(math.MaxInt64)

// byKey groups the operations of the functions fs by Key, each group in
// call order.
func byKey(ops []history.Op, fs ...string) map[string][]*history.Op {
	m := map[string][]*history.Op{}
	for i := range ops {
		o := &ops[i]
		for _, f := range fs {
			if o.F == f {
				m[o.Key] = append(m[o.Key], o)
				break
			}
		}
	}
	for _, g := range m {
		sort.SliceStable(g, func(i, j int) bool { return g[i].Call < g[j].Call })
	}
	return m
}

// hold is a semaphore grant and what the history says about how long it
// lasted.
type hold struct {
	grant *history.Op
	// release is the session's next operation on the semaphore if it is
	// an acknowledged release, or nil.
	release *history.Op
}

// certain is the real-time span in which the grant's permits were
// certainly held: from the grant's return (it applied before) to the
// call of its acknowledged release (which applied after, and found them
// still held: a session never comes back, and nothing else of the session
// returned them meanwhile). Empty without an acknowledged release.
func (h hold) certain() (from, to int64, ok bool) {
	if h.release == nil || h.grant.Return >= h.release.Call {
		return 0, 0, false
	}
	return h.grant.Return, h.release.Call, true
}

// possible is the span in which the grant's permits may have been held:
// from its call to its release's return, or forever (the session may
// live on until it expires, after the history ends).
func (h hold) possible() (from, to int64) {
	if h.release != nil {
		return h.grant.Call, h.release.Return
	}
	return h.grant.Call, forever
}

// permits is what a grant holds: the count granted, or the count asked.
func permits(o *history.Op) int64 {
	if o.Count > 0 {
		return o.Count
	}
	return o.N
}

// Semaphore checks the semaphore workload (every semaphore of Size
// permits) and returns two results:
//
// "semaphore": never more than Size permits held by acknowledged holders
// at once. A grant is certainly held from its return to the call of its
// acknowledged release; holds whose certain spans overlap must not sum to
// more than Size. A session may end at any time (its permits return), so
// a grant without an acknowledged release never constrains the model; an
// indeterminate acquire never does either, but it may explain a later
// refusal. Also: a grant gives what was asked, tokens are non-zero and
// increase in real-time order (a grant that returned before another was
// called has the smaller token; one command may grant several waiters, so
// tokens may repeat), an acknowledged release follows a grant of its own
// session, and a try refused with no_permits is explained: during it
// another acquire was pending (FIFO: a try never barges) or the possible
// holds overlapping it leave fewer permits than it asked.
//
// "semaphore-witness": each holder puts a key attached to its session
// (deleted with the session, in the same command that returns its
// permits) under the semaphore's witness prefix, reads the prefix
// linearizably, then deletes its key before it releases. A key exists only
// while its writer holds its permits, so every read must sum to at most
// Size permits, and name only sessions that asked for the semaphore.
func Semaphore(ops []history.Op) []Result {
	res := Result{Name: "semaphore"}
	wit := Result{Name: "semaphore-witness"}
	sems := byKey(ops, history.FSemAcquire, history.FSemRelease)
	grants, releases, refusals := 0, 0, 0
	for _, name := range sortedKeys(sems) {
		sem := sems[name]
		var size int64
		var holds []hold
		// per session, in call order (a client is sequential)
		sess := map[uint64][]*history.Op{}
		for _, o := range sem {
			res.Ops++
			sess[o.Session] = append(sess[o.Session], o)
			if o.F == history.FSemAcquire && o.Size > 0 {
				if size != 0 && o.Size != size {
					res.Anomalies = append(res.Anomalies, fmt.Sprintf("semaphore %s: asked with %d and %d permits: %s", name, size, o.Size, o))
				}
				size = o.Size
			}
		}
		for _, id := range sortedSessions(sess) {
			so := sess[id]
			held := false
			for i, o := range so {
				switch {
				case o.F == history.FSemAcquire && o.Type == history.TypeOK:
					grants++
					h := hold{grant: o}
					if i+1 < len(so) && so[i+1].F == history.FSemRelease && so[i+1].Type == history.TypeOK {
						h.release = so[i+1]
					}
					holds = append(holds, h)
					held = true
					if o.Token == 0 {
						res.Anomalies = append(res.Anomalies, fmt.Sprintf("semaphore %s: granted with token 0: %s", name, o))
					}
					if o.Count != 0 && o.Count != o.N {
						res.Anomalies = append(res.Anomalies, fmt.Sprintf("semaphore %s: asked for %d permits, granted %d: %s", name, o.N, o.Count, o))
					}
				case o.F == history.FSemAcquire && o.Type == history.TypeInfo:
					held = true // it may have been granted
				case o.F == history.FSemRelease && o.Type == history.TypeOK:
					releases++
					if !held {
						res.Anomalies = append(res.Anomalies, fmt.Sprintf("semaphore %s: release by session %d, which was never granted a permit: %s", name, id, o))
					}
				}
			}
		}
		res.Anomalies = append(res.Anomalies, overGranted(name, size, holds)...)
		res.Anomalies = append(res.Anomalies, tokensInOrder(name, holds)...)
		for _, o := range sem {
			if o.F == history.FSemAcquire && o.Value == "try" && o.Type == history.TypeFail && strings.Contains(o.Err, "no_permits") {
				refusals++
				if a := unexplainedRefusal(name, size, o, sem, holds); a != "" {
					res.Anomalies = append(res.Anomalies, a)
				}
			}
		}
	}
	res.Valid = len(res.Anomalies) == 0
	res.Summary = fmt.Sprintf("%d semaphores, %d acknowledged grants, %d acknowledged releases, %d refused tries, %d anomalies",
		len(sems), grants, releases, refusals, len(res.Anomalies))

	reads := 0
	for i := range ops {
		o := &ops[i]
		if o.F != history.FSemWitness {
			continue
		}
		wit.Ops++
		if o.Type != history.TypeOK {
			continue
		}
		reads++
		var size int64
		asked := map[uint64]bool{}
		for _, a := range sems[o.Key] {
			if a.F == history.FSemAcquire && a.Call < o.Return {
				asked[a.Session] = true
				size = max(size, a.Size)
			}
		}
		var sum int64
		for _, v := range o.Values {
			s, k, err := parseWitness(v)
			if err != nil {
				wit.Anomalies = append(wit.Anomalies, fmt.Sprintf("semaphore %s: malformed witness %q: %s", o.Key, v, o))
				continue
			}
			sum += k
			if !asked[s] {
				wit.Anomalies = append(wit.Anomalies, fmt.Sprintf("semaphore %s: witness of session %d, which never asked for a permit: %s", o.Key, s, o))
			}
		}
		if sum != o.N {
			wit.Anomalies = append(wit.Anomalies, fmt.Sprintf("semaphore %s: witness read sums to %d, recorded %d: %s", o.Key, sum, o.N, o))
		}
		if size > 0 && sum > size {
			wit.Anomalies = append(wit.Anomalies, fmt.Sprintf("semaphore %s: over-granted: holders of %d permits at once, %d allowed: %s %v", o.Key, sum, size, o, o.Values))
		}
	}
	wit.Valid = len(wit.Anomalies) == 0
	wit.Summary = fmt.Sprintf("%d witness reads, %d anomalies", reads, len(wit.Anomalies))
	return []Result{res, wit}
}

// WitnessValue is how a semaphore witness read lists one key: the holder's
// session and the permits it holds.
func WitnessValue(session uint64, permits int64) string {
	return fmt.Sprintf("%d:%d", session, permits)
}

func parseWitness(v string) (session uint64, permits int64, err error) {
	a, b, ok := strings.Cut(v, ":")
	if !ok {
		return 0, 0, fmt.Errorf("no ':'")
	}
	if session, err = strconv.ParseUint(a, 10, 64); err != nil {
		return 0, 0, err
	}
	if permits, err = strconv.ParseInt(b, 10, 64); err != nil {
		return 0, 0, err
	}
	return session, permits, nil
}

// overGranted sweeps the certain spans of the holds in time order and
// reports each moment more than size permits were certainly held.
func overGranted(name string, size int64, holds []hold) []string {
	type ev struct {
		at    int64
		delta int64
		h     int
	}
	var evs []ev
	for i, h := range holds {
		if from, to, ok := h.certain(); ok {
			evs = append(evs, ev{from, permits(h.grant), i}, ev{to, -permits(h.grant), i})
		}
	}
	// Ends before starts at the same instant: touching spans do not overlap.
	sort.Slice(evs, func(i, j int) bool {
		if evs[i].at != evs[j].at {
			return evs[i].at < evs[j].at
		}
		return evs[i].delta < evs[j].delta
	})
	var out []string
	var sum int64
	open := map[int]bool{}
	reported := false
	for _, e := range evs {
		sum += e.delta
		if e.delta > 0 {
			open[e.h] = true
		} else {
			delete(open, e.h)
			reported = false
		}
		if size > 0 && sum > size && !reported {
			reported = true
			var who []string
			for _, i := range sortedInts(open) {
				who = append(who, holds[i].grant.String()+" until "+holds[i].release.String())
			}
			out = append(out, fmt.Sprintf("semaphore %s: over-granted: %d permits of %d held at once by acknowledged holders: %s",
				name, sum, size, strings.Join(who, "; ")))
		}
	}
	return out
}

// tokensInOrder: a grant that returned before another was called has the
// smaller token.
func tokensInOrder(name string, holds []hold) []string {
	gs := make([]*history.Op, 0, len(holds))
	for _, h := range holds {
		gs = append(gs, h.grant)
	}
	sort.SliceStable(gs, func(i, j int) bool { return gs[i].Token < gs[j].Token })
	var out []string
	var earliest *history.Op // among the larger tokens, the one that returned first
	for i := len(gs) - 1; i >= 0; i-- {
		o := gs[i]
		if earliest != nil && earliest.Token > o.Token && earliest.Return < o.Call {
			out = append(out, fmt.Sprintf("semaphore %s: tokens go backwards in real time: %s returned before %s was called", name, earliest, o))
		}
		if i > 0 && gs[i-1].Token == o.Token && (gs[i-1].Return < o.Call || o.Return < gs[i-1].Call) {
			out = append(out, fmt.Sprintf("semaphore %s: token %d given to two grants that do not overlap in time: %s and %s", name, o.Token, gs[i-1], o))
		}
		if earliest == nil || o.Return < earliest.Return || (o.Token < earliest.Token && o.Return == earliest.Return) {
			earliest = o
		}
	}
	return out
}

// unexplainedRefusal returns an anomaly if try t was refused although,
// during all of it, no other acquire was pending and the holds that could
// have existed left enough permits free.
func unexplainedRefusal(name string, size int64, t *history.Op, sem []*history.Op, holds []hold) string {
	if size == 0 {
		return ""
	}
	for _, o := range sem {
		if o != t && o.F == history.FSemAcquire && o.Value != "try" && o.Call < t.Return && o.Return > t.Call {
			return "" // a waiter may have been queued ahead
		}
	}
	var possible int64
	for _, o := range sem {
		if o == t || o.F != history.FSemAcquire || o.Type != history.TypeInfo {
			continue
		}
		if o.Call < t.Return { // an indeterminate acquire may hold from its call on
			possible += o.N
		}
	}
	for _, h := range holds {
		if h.grant == t {
			continue
		}
		if from, to := h.possible(); from < t.Return && to > t.Call {
			possible += permits(h.grant)
		}
	}
	if possible+t.N <= size {
		return fmt.Sprintf("semaphore %s: try for %d permits refused while at most %d of %d could be held and nobody waited: %s",
			name, t.N, possible, size, t)
	}
	return ""
}

// Latch checks the latch workload: count-downs carry request IDs chosen
// by the client (a retry reuses its ID) and a latch of count C opens after
// exactly C distinct IDs applied. Per latch:
//
//   - every acknowledged answer to one ID reports the same count (a retry
//     applies once), and distinct IDs answered with a count above zero
//     report distinct counts below C (each applied once, by one);
//   - a count-down that answered c returned after at least C-c distinct
//     IDs were invoked, and an Await returned ok (count 0) only after at
//     least C distinct IDs were invoked;
//   - the final count f lies in [C - acknowledged-or-indeterminate IDs,
//     C - acknowledged IDs] (clamped at zero): an applied retry would
//     take it lower, a lost count-down leave it higher.
func Latch(ops []history.Op) Result {
	res := Result{Name: "latch"}
	latches := byKey(ops, history.FLatchCreate, history.FCountDown, history.FLatchAwait, history.FLatchRead)
	opened, cds := 0, 0
	for _, name := range sortedKeys(latches) {
		type id struct {
			s, r uint64
		}
		var c int64
		var final *history.Op
		created, openedBefore := false, opened
		invoked := map[id]int64{} // first call of each ID
		ok := map[id]*history.Op{}
		maybe := map[id]bool{}
		for _, o := range latches[name] {
			res.Ops++
			switch o.F {
			case history.FLatchCreate:
				if o.Type == history.TypeOK {
					created = true
				}
				if o.Size > 0 {
					if c != 0 && c != o.Size {
						res.Anomalies = append(res.Anomalies, fmt.Sprintf("latch %s: created with counts %d and %d", name, c, o.Size))
					}
					c = o.Size
				}
			case history.FCountDown:
				k := id{o.Session, o.ReqID}
				if _, seen := invoked[k]; !seen {
					invoked[k] = o.Call
				}
				switch o.Type {
				case history.TypeOK:
					cds++
					maybe[k] = true
					if p := ok[k]; p == nil {
						ok[k] = o
					} else if p.Count != o.Count {
						res.Anomalies = append(res.Anomalies, fmt.Sprintf("latch %s: request %d of session %d applied twice: answered %d, then %d (%s)", name, o.ReqID, o.Session, p.Count, o.Count, o))
					}
				case history.TypeInfo:
					maybe[k] = true
				}
			case history.FLatchRead:
				if o.Type == history.TypeOK && (final == nil || o.Call > final.Call) {
					final = o
				}
			}
		}
		if c == 0 {
			res.Anomalies = append(res.Anomalies, fmt.Sprintf("latch %s: used without a create", name))
			continue
		}
		invokedBefore := func(t int64) int64 {
			var n int64
			for _, call := range invoked {
				if call < t {
					n++
				}
			}
			return n
		}
		byCount := map[int64]*history.Op{}
		for _, k := range sortedIDs(ok, func(k id) (uint64, uint64) { return k.s, k.r }) {
			o := ok[k]
			if o.Count < 0 || o.Count >= c {
				res.Anomalies = append(res.Anomalies, fmt.Sprintf("latch %s: count-down answered %d of %d: %s", name, o.Count, c, o))
				continue
			}
			if o.Count > 0 {
				if p := byCount[o.Count]; p != nil {
					res.Anomalies = append(res.Anomalies, fmt.Sprintf("latch %s: two count-downs both left %d: %s and %s", name, o.Count, p, o))
				}
				byCount[o.Count] = o
			}
			// every ok answer of this ID, not only the first
			for _, a := range latches[name] {
				if a.F == history.FCountDown && a.Type == history.TypeOK && a.Session == k.s && a.ReqID == k.r {
					if n := invokedBefore(a.Return); c-a.Count > n {
						res.Anomalies = append(res.Anomalies, fmt.Sprintf("latch %s: count-down answered %d (%d applied) when only %d distinct count-downs had been invoked: %s",
							name, a.Count, c-a.Count, n, a))
					}
				}
			}
		}
		for _, o := range latches[name] {
			if o.F != history.FLatchAwait || o.Type != history.TypeOK {
				continue
			}
			opened++
			if o.Count != 0 {
				res.Anomalies = append(res.Anomalies, fmt.Sprintf("latch %s: await returned with count %d: %s", name, o.Count, o))
			}
			if n := invokedBefore(o.Return); n < c {
				res.Anomalies = append(res.Anomalies, fmt.Sprintf("latch %s: await returned when only %d of %d distinct count-downs had been invoked: %s", name, n, c, o))
			}
		}
		if final == nil {
			if len(invoked) > 0 {
				res.Anomalies = append(res.Anomalies, fmt.Sprintf("latch %s: no successful final read", name))
			}
			continue
		}
		if final.Count == history.LatchAbsent {
			// Nothing deletes latches in this workload: a latch may be
			// absent only if no create and no count-down was acknowledged.
			if created || len(ok) > 0 || opened > openedBefore {
				res.Anomalies = append(res.Anomalies, fmt.Sprintf("latch %s: absent at the end although acknowledged (create ok: %t, %d count-downs, %d awaits): %s",
					name, created, len(ok), opened-openedBefore, final))
			}
			continue
		}
		lo := max(0, c-int64(len(maybe)))
		hi := max(0, c-int64(len(ok)))
		if final.Count < lo || final.Count > hi {
			res.Anomalies = append(res.Anomalies, fmt.Sprintf("latch %s: final count %d outside [%d, %d]: %d of %d, %d distinct count-downs acknowledged, %d acknowledged or indeterminate",
				name, final.Count, lo, hi, final.Count, c, len(ok), len(maybe)))
		}
	}
	res.Valid = len(res.Anomalies) == 0
	res.Summary = fmt.Sprintf("%d latches, %d acknowledged count-downs, %d awaits returned open, %d anomalies", len(latches), cds, opened, len(res.Anomalies))
	return res
}

// BarrierCulprit parses the session a broken barrier's answer names.
func BarrierCulprit(msg string) uint64 {
	const marker = "session "
	for i := strings.Index(msg, marker); i >= 0; {
		rest := msg[i+len(marker):]
		j := 0
		for j < len(rest) && rest[j] >= '0' && rest[j] <= '9' {
			j++
		}
		if j > 0 {
			n, err := strconv.ParseUint(rest[:j], 10, 64)
			if err == nil {
				return n
			}
		}
		k := strings.Index(rest, marker)
		if k < 0 {
			break
		}
		i += len(marker) + k
	}
	return 0
}

// Barrier checks the cyclic barrier workload (barriers never reset). Per
// barrier of Size parties:
//
//   - the acknowledged awaits of one generation are at most Size, of
//     distinct sessions, with distinct arrivals in [0, Size); generations
//     are non-zero and increase in real-time order;
//   - no await of generation g returned before Size parties could have
//     arrived: counting distinct sessions whose awaits were called before
//     the first of g returned, leaving out awaits acknowledged in another
//     generation and failed ones that had returned before the last
//     acknowledged party of g was called;
//   - every broken answer names the same session (nothing resets the
//     barrier), which had awaited the barrier before, did nothing
//     acknowledged after the first broken answer returned, and, if that
//     answer returned before the sessions alive at the end of the
//     workload were listed, is not among them: it really ended;
//   - no await hung: each returned within hang of its call.
func Barrier(ops []history.Op, hang int64) Result {
	res := Result{Name: "barrier"}
	bars := byKey(ops, history.FBarrier)
	var alive map[uint64]bool
	var aliveAt *history.Op
	for i := range ops {
		if o := &ops[i]; o.F == history.FSessions && o.Type == history.TypeOK {
			aliveAt, alive = o, map[uint64]bool{}
			for _, v := range o.Values {
				if n, err := strconv.ParseUint(v, 10, 64); err == nil {
					alive[n] = true
				}
			}
		}
	}
	bySession := map[uint64][]*history.Op{}
	for i := range ops {
		if o := &ops[i]; o.Session != 0 && o.Type == history.TypeOK && o.F != history.FSessions {
			bySession[o.Session] = append(bySession[o.Session], o)
		}
	}
	trips, broken := 0, 0
	for _, name := range sortedKeys(bars) {
		bar := bars[name]
		var size int64
		gens := map[uint64][]*history.Op{}
		var firstBroken *history.Op
		for _, o := range bar {
			res.Ops++
			if o.Size > 0 {
				if size != 0 && o.Size != size {
					res.Anomalies = append(res.Anomalies, fmt.Sprintf("barrier %s: awaited with %d and %d parties", name, size, o.Size))
				}
				size = o.Size
			}
			if hang > 0 && (o.Return-o.Call > hang || strings.HasPrefix(o.Err, "hung")) {
				res.Anomalies = append(res.Anomalies, fmt.Sprintf("barrier %s: await hung for %s: %s", name, fmtDur(o.Return-o.Call), o))
			}
			switch {
			case o.Type == history.TypeOK:
				if o.Token == 0 {
					res.Anomalies = append(res.Anomalies, fmt.Sprintf("barrier %s: generation 0: %s", name, o))
				}
				gens[o.Token] = append(gens[o.Token], o)
			case strings.Contains(o.Err, "barrier_broken"):
				broken++
				if o.Culprit == 0 {
					res.Anomalies = append(res.Anomalies, fmt.Sprintf("barrier %s: broken answer names no session: %s", name, o))
					continue
				}
				if firstBroken == nil || o.Return < firstBroken.Return {
					if firstBroken != nil && firstBroken.Culprit != o.Culprit {
						res.Anomalies = append(res.Anomalies, fmt.Sprintf("barrier %s: broken by session %d and by %d, never reset: %s", name, firstBroken.Culprit, o.Culprit, o))
					}
					firstBroken = o
				} else if firstBroken.Culprit != o.Culprit {
					res.Anomalies = append(res.Anomalies, fmt.Sprintf("barrier %s: broken by session %d and by %d, never reset: %s", name, firstBroken.Culprit, o.Culprit, o))
				}
			}
		}
		if size == 0 {
			continue
		}
		// generations
		var gs []uint64
		for g := range gens {
			gs = append(gs, g)
		}
		sort.Slice(gs, func(i, j int) bool { return gs[i] < gs[j] })
		for _, g := range gs {
			trips++
			ws := gens[g]
			if int64(len(ws)) > size {
				res.Anomalies = append(res.Anomalies, fmt.Sprintf("barrier %s: generation %d released %d parties, %d allowed", name, g, len(ws), size))
			}
			sessions, arrivals := map[uint64]bool{}, map[int64]bool{}
			first, lastCall := ws[0], int64(0)
			for _, w := range ws {
				if sessions[w.Session] {
					res.Anomalies = append(res.Anomalies, fmt.Sprintf("barrier %s: session %d released twice in generation %d: %s", name, w.Session, g, w))
				}
				sessions[w.Session] = true
				if w.Arrival < 0 || w.Arrival >= size || arrivals[w.Arrival] {
					res.Anomalies = append(res.Anomalies, fmt.Sprintf("barrier %s: arrival %d repeated or out of [0, %d) in generation %d: %s", name, w.Arrival, size, g, w))
				}
				arrivals[w.Arrival] = true
				if w.Return < first.Return {
					first = w
				}
				lastCall = max(lastCall, w.Call)
			}
			parties := map[uint64]bool{}
			for _, o := range bar {
				if o.Call >= first.Return {
					continue
				}
				if o.Type == history.TypeOK && o.Token != g {
					continue
				}
				if o.Type == history.TypeFail && o.Return < lastCall {
					continue
				}
				parties[o.Session] = true
			}
			if int64(len(parties)) < size {
				res.Anomalies = append(res.Anomalies, fmt.Sprintf("barrier %s: generation %d released %s when at most %d of %d parties had arrived",
					name, g, first, len(parties), size))
			}
		}
		for i, g := range gs {
			for _, h := range gs[i+1:] {
				// an await of the later generation h that returned before
				// one of g was called: generations went backwards
				for _, a := range gens[h] {
					for _, b := range gens[g] {
						if a.Return < b.Call {
							res.Anomalies = append(res.Anomalies, fmt.Sprintf("barrier %s: generations go backwards in real time: %s returned before %s was called", name, a, b))
						}
					}
				}
			}
		}
		if firstBroken != nil {
			c := firstBroken.Culprit
			awaited := false
			for _, o := range bar {
				if o.Session == c && o.Call < firstBroken.Return {
					awaited = true
				}
			}
			if !awaited {
				res.Anomalies = append(res.Anomalies, fmt.Sprintf("barrier %s: broken by session %d, which had not awaited it: %s", name, c, firstBroken))
			}
			for _, o := range bySession[c] {
				if o.Call > firstBroken.Return {
					res.Anomalies = append(res.Anomalies, fmt.Sprintf("barrier %s: broken by session %d (%s), which was still alive after: %s", name, c, firstBroken, o))
					break
				}
			}
			switch {
			case alive == nil:
				res.Anomalies = append(res.Anomalies, fmt.Sprintf("barrier %s: broken by session %d, and no final list of live sessions to tell whether it ended", name, c))
			case alive[c] && firstBroken.Return < aliveAt.Call:
				res.Anomalies = append(res.Anomalies, fmt.Sprintf("barrier %s: broken by session %d, which was still alive at the end: %s", name, c, firstBroken))
			}
		}
	}
	res.Valid = len(res.Anomalies) == 0
	res.Summary = fmt.Sprintf("%d barriers, %d generations, %d broken answers, %d anomalies", len(bars), trips, broken, len(res.Anomalies))
	return res
}

func fmtDur(ns int64) string { return fmt.Sprintf("%.1fs", float64(ns)/1e9) }

func sortedSessions[V any](m map[uint64]V) []uint64 {
	ks := make([]uint64, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Slice(ks, func(i, j int) bool { return ks[i] < ks[j] })
	return ks
}

func sortedInts(m map[int]bool) []int {
	ks := make([]int, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Ints(ks)
	return ks
}

func sortedIDs[K comparable, V any](m map[K]V, parts func(K) (uint64, uint64)) []K {
	ks := make([]K, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Slice(ks, func(i, j int) bool {
		a1, a2 := parts(ks[i])
		b1, b2 := parts(ks[j])
		if a1 != b1 {
			return a1 < b1
		}
		return a2 < b2
	})
	return ks
}
