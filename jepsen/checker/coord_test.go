package checker

import (
	"strings"
	"testing"

	"github.com/statenode/statenode/jepsen/history"
)

func acq(c int, lock string, s, tok uint64, call, ret int64) history.Op {
	return history.Op{Client: c, F: history.FAcquire, Key: lock, Session: s, Token: tok, Type: history.TypeOK, Call: call * ms, Return: ret * ms}
}

func rel(c int, lock string, s, tok uint64, call, ret int64) history.Op {
	return history.Op{Client: c, F: history.FRelease, Key: lock, Session: s, Token: tok, Type: history.TypeOK, Call: call * ms, Return: ret * ms}
}

func fput(c int, key, lock, v string, s, tok uint64, rev, call, ret int64) history.Op {
	return history.Op{Client: c, F: history.FFencedPut, Key: key, Lock: lock, Value: v, Session: s, Token: tok, Rev: rev, Type: history.TypeOK, Call: call * ms, Return: ret * ms}
}

func stream(key string, vals []string, revs []int64, at int64) history.Op {
	return history.Op{Client: 999, F: history.FStream, Key: key, Values: vals, Revs: revs, Type: history.TypeOK, Call: at * ms, Return: at * ms}
}

func typ(o history.Op, t string) history.Op {
	o.Type = t
	if t != history.TypeOK {
		o.Rev = 0
		if o.F == history.FAcquire || o.F == history.FCampaign {
			o.Token = 0
		}
	}
	return o
}

func wantValid(t *testing.T, r Result, valid bool, substr string) {
	t.Helper()
	if r.Valid != valid {
		t.Fatalf("%s: valid=%v, want %v: %s %v", r.Name, r.Valid, valid, r.Summary, r.Anomalies)
	}
	if !valid && substr != "" && !strings.Contains(strings.Join(r.Anomalies, "\n"), substr) {
		t.Fatalf("%s: anomalies %v do not mention %q", r.Name, r.Anomalies, substr)
	}
}

// A good lock history: two sessions take turns; session 1's second grant
// follows an expiry (no release), an indeterminate acquire and a failed
// one are in between.
func goodLock() []history.Op {
	return []history.Op{
		acq(0, "L", 1, 100, 0, 10),
		fput(0, "R", "L", "a", 1, 100, 5, 11, 12),
		rel(0, "L", 1, 100, 13, 14),
		typ(acq(1, "L", 2, 0, 15, 40), history.TypeInfo),
		acq(1, "L", 3, 200, 41, 50),
		fput(1, "R", "L", "b", 3, 200, 9, 51, 52),
		typ(fput(0, "R", "L", "late", 1, 100, 0, 53, 54), history.TypeFail), // refused: fenced
		acq(0, "L", 1, 300, 60, 70),                                         // session 3 expired holding 200
		fput(0, "R", "L", "c", 1, 300, 12, 71, 72),
		rel(0, "L", 1, 300, 73, 74),
		typ(rel(1, "L", 3, 200, 75, 76), history.TypeFail), // not the owner any more
		stream("R", []string{"a", "b", "c"}, []int64{5, 9, 12}, 100),
	}
}

func TestFencedMutex(t *testing.T) {
	wantValid(t, FencedMutex(goodLock()), true, "")
	cases := []struct {
		name, want string
		ops        []history.Op
	}{
		{"two overlapping holders", "two holders", []history.Op{
			acq(0, "L", 1, 100, 0, 10), acq(1, "L", 2, 200, 11, 20), rel(0, "L", 1, 100, 21, 22),
		}},
		{"reused token", "granted twice", []history.Op{
			acq(0, "L", 1, 100, 0, 10), rel(0, "L", 1, 100, 11, 12), acq(1, "L", 2, 100, 13, 20),
		}},
		{"tokens backwards in real time", "backwards", []history.Op{
			acq(0, "L", 1, 200, 0, 10), rel(0, "L", 1, 200, 11, 12), acq(1, "L", 2, 100, 13, 20),
		}},
		{"release by a non-owner", "non-owner", []history.Op{
			acq(0, "L", 1, 100, 0, 10), rel(1, "L", 2, 100, 11, 12),
		}},
		{"release of a token never granted", "never granted", []history.Op{
			acq(0, "L", 1, 100, 0, 10), rel(0, "L", 1, 150, 11, 12),
		}},
		{"zero token", "token 0", []history.Op{acq(0, "L", 1, 0, 0, 10)}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { wantValid(t, FencedMutex(c.ops), false, c.want) })
	}
	// Indeterminate and failed releases constrain nothing; an
	// indeterminate acquire is never assumed to have failed or succeeded.
	wantValid(t, FencedMutex([]history.Op{
		acq(0, "L", 1, 100, 0, 10), typ(rel(0, "L", 1, 100, 11, 500), history.TypeInfo),
		acq(1, "L", 2, 200, 12, 20), typ(acq(0, "L", 1, 0, 21, 30), history.TypeInfo),
	}), true, "")
}

func TestFencedRegister(t *testing.T) {
	wantValid(t, FencedRegister(goodLock()), true, "")
	base := []history.Op{acq(0, "L", 1, 100, 0, 10), acq(1, "L", 2, 200, 20, 30)}
	cases := []struct {
		name, want string
		ops        []history.Op
	}{
		{"stale token accepted after a newer grant", "stale token 100 accepted", append(base[:2:2],
			fput(0, "R", "L", "x", 1, 100, 7, 40, 41), stream("R", []string{"x"}, []int64{7}, 100))},
		{"tokens go backwards in revision order", "stale token accepted", append(base[:2:2],
			fput(1, "R", "L", "y", 2, 200, 5, 31, 32), fput(0, "R", "L", "x", 1, 100, 7, 15, 50),
			stream("R", []string{"y", "x"}, []int64{5, 7}, 100))},
		{"stale write in the stream only", "stale token accepted at revision 7", append(base[:2:2],
			fput(1, "R", "L", "y", 2, 200, 5, 31, 32), typ(fput(0, "R", "L", "x", 1, 100, 0, 15, 50), history.TypeInfo),
			stream("R", []string{"y", "x"}, []int64{5, 7}, 100))},
		{"refused write applied", "refused write applied", append(base[:2:2],
			typ(fput(0, "R", "L", "x", 1, 100, 0, 15, 16), history.TypeFail), stream("R", []string{"x"}, []int64{7}, 100))},
		{"acknowledged write lost", "lost", append(base[:2:2],
			fput(1, "R", "L", "y", 2, 200, 5, 31, 32), stream("R", nil, nil, 100))},
		{"write from nowhere", "no client wrote", append(base[:2:2],
			fput(1, "R", "L", "y", 2, 200, 5, 31, 32), stream("R", []string{"y", "zz"}, []int64{5, 6}, 100))},
		{"no final read", "no successful final read", append(base[:2:2], fput(1, "R", "L", "y", 2, 200, 5, 31, 32))},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { wantValid(t, FencedRegister(c.ops), false, c.want) })
	}
}

func TestLockCounter(t *testing.T) {
	v := func(n int64, tok uint64, c int) string { return CounterValue(n, tok, c, 1) }
	good := []history.Op{
		acq(0, "L", 1, 100, 0, 1), fput(0, "C", "L", v(1, 100, 0), 1, 100, 3, 2, 3),
		acq(1, "L", 2, 200, 4, 5), typ(fput(1, "C", "L", v(2, 200, 1), 2, 200, 0, 6, 7), history.TypeInfo),
		acq(2, "L", 3, 300, 8, 9), fput(2, "C", "L", v(3, 300, 2), 3, 300, 9, 10, 11),
		typ(fput(0, "C", "L", v(2, 100, 0), 1, 100, 0, 12, 13), history.TypeFail),
		stream("C", []string{v(1, 100, 0), v(2, 200, 1), v(3, 300, 2)}, []int64{3, 6, 9}, 100),
	}
	wantValid(t, LockCounter(good), true, "")
	wantValid(t, FencedRegister(good), true, "")
	// The paused holder's write (token 100, count 2) accepted after the
	// next holder wrote 2: a repeated value, and the final count is below
	// the acknowledged increments.
	stale := []history.Op{
		acq(0, "L", 1, 100, 0, 1), fput(0, "C", "L", v(1, 100, 0), 1, 100, 3, 2, 3),
		acq(1, "L", 2, 200, 4, 5), fput(1, "C", "L", v(2, 200, 1), 2, 200, 6, 6, 7),
		fput(0, "C", "L", v(2, 100, 0), 1, 100, 8, 12, 13),
		stream("C", []string{v(1, 100, 0), v(2, 200, 1), v(2, 100, 0)}, []int64{3, 6, 8}, 100),
	}
	wantValid(t, LockCounter(stale), false, "stale write accepted")
	wantValid(t, FencedRegister(stale), false, "stale token 100 accepted")
	lost := []history.Op{
		fput(0, "C", "L", v(1, 100, 0), 1, 100, 3, 2, 3), fput(1, "C", "L", v(3, 200, 1), 2, 200, 6, 6, 7),
		stream("C", []string{v(1, 100, 0), v(3, 200, 1)}, []int64{3, 6}, 100),
	}
	wantValid(t, LockCounter(lost), false, "lost update")
	short := []history.Op{
		fput(0, "C", "L", v(1, 100, 0), 1, 100, 3, 2, 3), fput(1, "C", "L", v(2, 200, 1), 2, 200, 6, 6, 7),
		stream("C", []string{v(1, 100, 0)}, []int64{3}, 100),
	}
	wantValid(t, LockCounter(short), false, "outside [2 acknowledged")
	wantValid(t, LockCounter(good[:len(good)-1]), false, "no successful final read")
}

func camp(c int, e string, s, term uint64, v string, call, ret int64) history.Op {
	return history.Op{Client: c, F: history.FCampaign, Key: e, Session: s, Token: term, Value: v, Type: history.TypeOK, Call: call * ms, Return: ret * ms}
}

func elop(c int, f, e string, s, term uint64, v string, call, ret int64) history.Op {
	return history.Op{Client: c, F: f, Key: e, Session: s, Token: term, Value: v, Type: history.TypeOK, Call: call * ms, Return: ret * ms}
}

func obs(c int, e string, leader, term uint64, v string, at int64) history.Op {
	return history.Op{Client: c, F: history.FObserve, Key: e, Session: leader, Token: term, Value: v, Type: history.TypeOK, Call: at * ms, Return: at * ms}
}

func TestElection(t *testing.T) {
	good := []history.Op{
		obs(100, "E", 0, 0, "", 0),
		camp(0, "E", 1, 10, "a", 0, 5), obs(100, "E", 1, 10, "a", 6),
		elop(0, history.FProclaim, "E", 1, 10, "a2", 7, 8), obs(100, "E", 1, 10, "a2", 9),
		camp(1, "E", 2, 20, "b", 1, 15),
		elop(0, history.FResign, "E", 1, 10, "", 10, 11), obs(101, "E", 2, 20, "b", 16), obs(100, "E", 2, 20, "b", 17),
		typ(camp(2, "E", 3, 0, "c", 18, 40), history.TypeInfo),
		typ(elop(1, history.FProclaim, "E", 2, 20, "b2", 41, 42), history.TypeFail),
	}
	wantValid(t, Election(good), true, "")
	cases := []struct {
		name, want string
		ops        []history.Op
	}{
		{"two leaders in a term", "granted twice", []history.Op{camp(0, "E", 1, 10, "a", 0, 5), camp(1, "E", 2, 10, "b", 1, 6)}},
		{"observers disagree on a term's leader", "two leaders in term 10", []history.Op{obs(100, "E", 1, 10, "a", 1), obs(101, "E", 2, 10, "b", 2)}},
		{"observed leader is not the winner", "observed led by 2", []history.Op{camp(0, "E", 1, 10, "a", 0, 5), obs(100, "E", 2, 10, "a", 6)}},
		{"old leader proclaims after a new term", "two leaders", []history.Op{
			camp(0, "E", 1, 10, "a", 0, 5), camp(1, "E", 2, 20, "b", 6, 10), elop(0, history.FProclaim, "E", 1, 10, "a2", 11, 12),
		}},
		{"terms backwards in real time", "backwards", []history.Op{camp(0, "E", 1, 20, "a", 0, 5), camp(1, "E", 2, 10, "b", 6, 10)}},
		{"observer goes back", "went back", []history.Op{obs(100, "E", 1, 20, "a", 1), obs(100, "E", 2, 10, "b", 2)}},
		{"observed value never set", "never set", []history.Op{camp(0, "E", 1, 10, "a", 0, 5), obs(100, "E", 1, 10, "zz", 6)}},
		{"resign by a non-leader", "did not lead", []history.Op{camp(0, "E", 1, 10, "a", 0, 5), elop(1, history.FResign, "E", 2, 10, "", 6, 7)}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { wantValid(t, Election(c.ops), false, c.want) })
	}
}

func cop(c int, f, node, key, v string, n int64, call, ret int64) history.Op {
	return history.Op{Client: c, F: f, Node: node, Key: key, Value: v, N: n, Type: history.TypeOK, Call: call * ms, Return: ret * ms}
}

func cread(node, key string, n int64, vals []string) history.Op {
	f := history.FCounterRead
	if vals != nil {
		f = history.FSetRead
	}
	return history.Op{Client: 999, F: f, Node: node, Key: key, N: n, Values: vals, Type: history.TypeOK, Call: 1000 * ms, Return: 1001 * ms}
}

func TestCRDT(t *testing.T) {
	work := []history.Op{
		cop(0, history.FCounterInc, "n1", "c", "", 2, 0, 1),
		cop(1, history.FCounterInc, "n2", "c", "", 3, 0, 1),
		typ(cop(1, history.FCounterInc, "n2", "c", "", 1, 2, 3), history.TypeInfo),
		cop(0, history.FSetAddElem, "n1", "s", "a", 0, 0, 1),
		cop(1, history.FSetAddElem, "n2", "s", "b", 0, 0, 1),
		cop(0, history.FSetRemove, "n1", "s", "a", 0, 2, 3), // same member, after the add: a is gone
		typ(cop(1, history.FSetAddElem, "n2", "s", "c", 0, 4, 5), history.TypeInfo),
		typ(cop(1, history.FSetAddElem, "n2", "s", "d", 0, 4, 5), history.TypeFail),
		cop(1, history.FSetAddElem, "n2", "s", "e", 0, 6, 7),
		cop(0, history.FSetRemove, "n1", "s", "e", 0, 6, 8), // concurrent remove on another member: either
	}
	final := func(c1, c2 int64, s1, s2 []string) []history.Op {
		return append(append([]history.Op(nil), work...), cread("n1", "c", c1, nil), cread("n2", "c", c2, nil),
			cread("n1", "s", 0, s1), cread("n2", "s", 0, s2))
	}
	ok := func(ops []history.Op) {
		t.Helper()
		for _, r := range CRDT(ops) {
			wantValid(t, r, true, "")
		}
	}
	bad := func(ops []history.Op, name, want string) {
		t.Helper()
		for _, r := range CRDT(ops) {
			if r.Name == name {
				wantValid(t, r, false, want)
				return
			}
		}
		t.Fatalf("no %s result", name)
	}
	ok(final(5, 5, []string{"b", "c"}, []string{"b", "c"}))
	ok(final(6, 6, []string{"b", "e"}, []string{"b", "e"}))
	bad(final(5, 6, []string{"b"}, []string{"b"}), "crdt-converge", "members differ")
	bad(final(5, 5, []string{"b"}, []string{"b", "c"}), "crdt-converge", "members differ")
	bad(final(4, 4, []string{"b"}, []string{"b"}), "crdt-counter", "outside [5 acknowledged")
	bad(final(7, 7, []string{"b"}, []string{"b"}), "crdt-counter", "outside")
	bad(final(5, 5, []string{"c"}, []string{"c"}), "crdt-orset", `lost "b"`)
	bad(final(5, 5, []string{"b", "z"}, []string{"b", "z"}), "crdt-orset", "never added")
	bad(final(5, 5, []string{"b", "d"}, []string{"b", "d"}), "crdt-orset", "not applied")
	bad(final(5, 5, []string{"a", "b"}, []string{"a", "b"}), "crdt-orset", "removed on the member")
	bad(append(append([]history.Op(nil), work...), cread("n1", "c", 5, nil), cread("n1", "s", 0, []string{"b"})), "crdt-converge", "no final read on n2")
}
