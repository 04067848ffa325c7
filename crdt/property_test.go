package crdt_test

import (
	"bytes"
	"fmt"
	"slices"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/statenode/statenode/crdt"
)

var replicas = []string{"a", "b", "c"}

// world is a set of replicas of one CRDT driven by random operations and
// random, reordered, duplicated and dropped message deliveries.
type world struct {
	kind   crdt.Kind
	states []crdt.State
	clocks []*crdt.Clock
	tick   int64 // fake physical time, ns; advances randomly
	deltas []crdt.State
	// inflight holds deltas not yet delivered, with their destination.
	inflight []delivery
	// model bookkeeping for semantic checks
	sum      int64               // counters: net amount applied
	lastLWW  map[string]lwwWrite // key ("" for a register) → winning write
	decFails int
}

type delivery struct {
	to    int
	delta crdt.State
}

type lwwWrite struct {
	ts      crdt.Timestamp
	value   string
	deleted bool
}

func newWorld(t *rapid.T, kind crdt.Kind) *world {
	w := &world{kind: kind, lastLWW: map[string]lwwWrite{}}
	for _, r := range replicas {
		s, err := crdt.New(kind)
		if err != nil {
			t.Fatal(err)
		}
		w.states = append(w.states, s)
		// Each replica's physical clock is the shared tick plus a fixed
		// skew, so clocks disagree as real ones do.
		skew := rapid.Int64Range(-50, 50).Draw(t, "skew-"+r)
		w.clocks = append(w.clocks, crdt.NewClock(r, func() time.Time { return time.Unix(0, w.tick+skew) }))
	}
	return w
}

var elems = []string{"e1", "e2", "e3", "e4"}

// op applies one random operation at replica i and returns its delta (nil
// if the operation was refused).
func (w *world) op(t *rapid.T, i int) crdt.State {
	r, clk := replicas[i], w.clocks[i]
	val := rapid.SampledFrom([]string{"", "x", "y", "zz"}).Draw(t, "value")
	switch s := w.states[i].(type) {
	case *crdt.GCounter:
		n := rapid.Uint64Range(0, 20).Draw(t, "n")
		w.sum += int64(n)
		return s.Inc(r, n)
	case *crdt.PNCounter:
		n := rapid.Int64Range(-20, 20).Draw(t, "n")
		w.sum += n
		return s.Inc(r, n)
	case *crdt.LWWRegister:
		d := s.Set(clk, []byte(val))
		_, ts, _ := d.Get()
		w.recordLWW("", lwwWrite{ts: ts, value: val})
		return d
	case *crdt.MVRegister:
		return s.Set(r, []byte(val))
	case *crdt.ORSet:
		e := rapid.SampledFrom(elems).Draw(t, "elem")
		switch rapid.IntRange(0, 9).Draw(t, "orset-op") {
		case 0:
			return s.Clear()
		case 1, 2, 3, 4:
			return s.Remove(e)
		default:
			return s.Add(r, e)
		}
	case *crdt.LWWMap:
		k := rapid.SampledFrom(elems).Draw(t, "key")
		var d *crdt.LWWMap
		del := rapid.Bool().Draw(t, "delete")
		if del {
			d = s.Delete(clk, k)
		} else {
			d = s.Put(clk, k, []byte(val))
		}
		e, ok := d.Entry(k)
		if !ok {
			t.Fatal("delta without its entry")
		}
		w.recordLWW(k, lwwWrite{ts: e.Timestamp, value: val, deleted: del})
		return d
	case *crdt.BoundedCounter:
		n := rapid.Uint64Range(0, 10).Draw(t, "n")
		switch rapid.IntRange(0, 2).Draw(t, "bc-op") {
		case 0:
			w.sum += int64(n)
			return s.Inc(r, n)
		case 1:
			d, err := s.Dec(r, n)
			if err != nil {
				w.decFails++
				return nil
			}
			w.sum -= int64(n)
			return d
		default:
			to := replicas[rapid.IntRange(0, len(replicas)-1).Filter(func(j int) bool { return j != i }).Draw(t, "to")]
			d, err := s.Transfer(r, to, n)
			if err != nil {
				return nil
			}
			return d
		}
	}
	t.Fatalf("no op for %T", w.states[i])
	return nil
}

func (w *world) recordLWW(key string, wr lwwWrite) {
	if old, ok := w.lastLWW[key]; !ok || wr.ts.Compare(old.ts) > 0 {
		w.lastLWW[key] = wr
	}
}

func enc(t interface{ Fatal(...any) }, s crdt.State) []byte {
	b, err := s.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func merge(t interface{ Fatal(...any) }, dst, src crdt.State) bool {
	changed, err := dst.MergeState(src)
	if err != nil {
		t.Fatal(err)
	}
	return changed
}

// run performs a random schedule of operations and deliveries.
func (w *world) run(t *rapid.T) {
	steps := rapid.IntRange(1, 60).Draw(t, "steps")
	for range steps {
		w.tick += rapid.Int64Range(0, 3).Draw(t, "advance") // often 0: logical ticks
		i := rapid.IntRange(0, len(replicas)-1).Draw(t, "replica")
		switch rapid.IntRange(0, 9).Draw(t, "action") {
		case 0, 1, 2, 3, 4:
			d := w.op(t, i)
			if d == nil {
				continue
			}
			w.deltas = append(w.deltas, d)
			for j := range replicas {
				if j != i {
					w.inflight = append(w.inflight, delivery{to: j, delta: d})
				}
			}
		case 5, 6, 7:
			// Deliver a random in-flight delta; sometimes keep it queued
			// (duplicate delivery later).
			if len(w.inflight) == 0 {
				continue
			}
			k := rapid.IntRange(0, len(w.inflight)-1).Draw(t, "msg")
			m := w.inflight[k]
			before := enc(t, w.states[m.to])
			changed := merge(t, w.states[m.to], m.delta)
			if changed == bytes.Equal(before, enc(t, w.states[m.to])) {
				t.Fatalf("merge reported changed=%v but state changed=%v", changed, !changed)
			}
			if !rapid.Bool().Draw(t, "duplicate") {
				w.inflight = slices.Delete(w.inflight, k, k+1)
			}
		case 8:
			// Full-state anti-entropy from j to i.
			j := rapid.IntRange(0, len(replicas)-1).Draw(t, "from")
			merge(t, w.states[i], w.states[j].CloneState())
		case 9:
			// Lose a message.
			if len(w.inflight) > 0 {
				k := rapid.IntRange(0, len(w.inflight)-1).Draw(t, "lost")
				w.inflight = slices.Delete(w.inflight, k, k+1)
			}
		}
		if bc, ok := w.states[i].(*crdt.BoundedCounter); ok && bc.Value() < 0 {
			t.Fatalf("bounded counter went negative: %d", bc.Value())
		}
	}
}

// converge merges every state into every other, in a random order.
func (w *world) converge(t *rapid.T) []byte {
	order := rapid.Permutation([]int{0, 1, 2}).Draw(t, "order")
	acc, _ := crdt.New(w.kind)
	for _, i := range order {
		merge(t, acc, w.states[i])
	}
	want := enc(t, acc)
	for i := range w.states {
		merge(t, w.states[i], acc)
		if got := enc(t, w.states[i]); !bytes.Equal(got, want) {
			t.Fatalf("replica %d did not converge:\n got %x\nwant %x", i, got, want)
		}
	}
	return want
}

var allKinds = []crdt.Kind{
	crdt.KindGCounter, crdt.KindPNCounter, crdt.KindLWWRegister, crdt.KindMVRegister,
	crdt.KindORSet, crdt.KindLWWMap, crdt.KindBoundedCounter,
}

// TestConvergence: replicas updated concurrently, exchanging deltas that
// are reordered, duplicated and lost, and occasional full states, reach the
// same state once all states are merged, whatever the merge order; and a
// replica that receives only the deltas, in any order and with
// duplicates, reaches it too (delta merge ≡ state merge).
func TestConvergence(t *testing.T) {
	for _, k := range allKinds {
		t.Run(k.String(), func(t *testing.T) {
			rapid.Check(t, func(t *rapid.T) {
				w := newWorld(t, k)
				w.run(t)
				want := w.converge(t)

				fresh, _ := crdt.New(k)
				ds := rapid.Permutation(w.deltas).Draw(t, "delta-order")
				for i, d := range ds {
					merge(t, fresh, d)
					if i%3 == 0 {
						merge(t, fresh, d) // duplicate
					}
				}
				if got := enc(t, fresh); !bytes.Equal(got, want) {
					t.Fatalf("deltas-only replica differs:\n got %x\nwant %x", got, want)
				}
				w.checkSemantics(t, fresh)

				// Decoding the canonical encoding gives back an equal state.
				dec, err := crdt.Decode(want)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(enc(t, dec), want) {
					t.Fatal("decode/encode round trip changed the state")
				}
			})
		})
	}
}

// checkSemantics compares the converged state with a sequential model.
func (w *world) checkSemantics(t *rapid.T, s crdt.State) {
	switch s := s.(type) {
	case *crdt.GCounter:
		if int64(s.Value()) != w.sum {
			t.Fatalf("gcounter value %d, want %d", s.Value(), w.sum)
		}
	case *crdt.PNCounter:
		if s.Value() != w.sum {
			t.Fatalf("pncounter value %d, want %d", s.Value(), w.sum)
		}
	case *crdt.BoundedCounter:
		if s.Value() != w.sum || s.Value() < 0 {
			t.Fatalf("bounded counter value %d, want %d (>= 0)", s.Value(), w.sum)
		}
	case *crdt.LWWRegister:
		v, _, ok := s.Get()
		want, written := w.lastLWW[""]
		if ok != written || (ok && string(v) != want.value) {
			t.Fatalf("register %q (set %v), want %q (set %v)", v, ok, want.value, written)
		}
	case *crdt.LWWMap:
		for _, k := range elems {
			v, ok := s.Get(k)
			want, written := w.lastLWW[k]
			present := written && !want.deleted
			if ok != present || (ok && string(v) != want.value) {
				t.Fatalf("key %s = %q (present %v), want %q (present %v)", k, v, ok, want.value, present)
			}
		}
	case *crdt.ORSet:
		// A converged context stores at most one vector entry per replica:
		// removes leave no tombstones behind.
		if s.ContextLen() > len(replicas) {
			t.Fatalf("converged context has %d entries for %d replicas", s.ContextLen(), len(replicas))
		}
	}
}

// TestMergeLaws: for states reachable in one system, merge is commutative,
// associative and idempotent.
func TestMergeLaws(t *testing.T) {
	for _, k := range allKinds {
		t.Run(k.String(), func(t *testing.T) {
			rapid.Check(t, func(t *rapid.T) {
				w := newWorld(t, k)
				w.run(t)
				a, b, c := w.states[0], w.states[1], w.states[2]
				join := func(x, y crdt.State) crdt.State {
					z := x.CloneState()
					merge(t, z, y)
					return z
				}
				if !bytes.Equal(enc(t, join(a, b)), enc(t, join(b, a))) {
					t.Fatal("merge is not commutative")
				}
				if !bytes.Equal(enc(t, join(join(a, b), c)), enc(t, join(a, join(b, c)))) {
					t.Fatal("merge is not associative")
				}
				aa := a.CloneState()
				if merge(t, aa, a) {
					t.Fatal("merging a state into itself reported a change")
				}
				if !bytes.Equal(enc(t, aa), enc(t, a)) {
					t.Fatal("merge is not idempotent")
				}
			})
		})
	}
}

func TestMergeKindMismatch(t *testing.T) {
	for _, k := range allKinds {
		s, _ := crdt.New(k)
		for _, o := range allKinds {
			if o == k {
				continue
			}
			other, _ := crdt.New(o)
			if _, err := s.MergeState(other); err == nil {
				t.Fatalf("merging %v into %v: no error", o, k)
			}
		}
		if _, err := s.MergeState(nil); err == nil {
			t.Fatalf("merging nil into %v: no error", k)
		}
	}
}

func ExampleKind_String() {
	fmt.Println(crdt.KindORSet, crdt.Kind(99))
	// Output: orset kind(99)
}
