package crdt_test

import (
	"testing"
	"time"

	"github.com/statenode/statenode/crdt"
)

type fakeTime struct{ ns int64 }

func (f *fakeTime) now() time.Time { return time.Unix(0, f.ns) }

func TestClockMonotonic(t *testing.T) {
	ft := &fakeTime{ns: 100}
	c := crdt.NewClock("a", ft.now)
	t1 := c.Now()
	t2 := c.Now() // same physical instant: logical tick
	ft.ns = 50    // physical clock stepped back
	t3 := c.Now()
	ft.ns = 200
	t4 := c.Now()
	for i, p := range [][2]crdt.Timestamp{{t1, t2}, {t2, t3}, {t3, t4}} {
		if p[0].Compare(p[1]) >= 0 {
			t.Fatalf("pair %d not increasing: %v then %v", i, p[0], p[1])
		}
	}
	if t3.Wall != 100 || t3.Logical != 2 {
		t.Fatalf("after step back got %+v, want wall 100 logical 2", t3)
	}
	if t4.Wall != 200 || t4.Logical != 0 {
		t.Fatalf("after advance got %+v, want wall 200 logical 0", t4)
	}
}

func TestClockObserve(t *testing.T) {
	ft := &fakeTime{ns: 100}
	a := crdt.NewClock("a", ft.now)
	remote := crdt.Timestamp{Wall: 500, Logical: 7, Replica: "b"}
	a.Observe(remote)
	if got := a.Now(); got.Compare(remote) <= 0 || got.Wall != 500 || got.Logical != 8 {
		t.Fatalf("after observing %v got %v", remote, got)
	}
	// Ties on wall and logical are broken by replica ID.
	x := crdt.Timestamp{Wall: 1, Logical: 1, Replica: "a"}
	y := crdt.Timestamp{Wall: 1, Logical: 1, Replica: "b"}
	if x.Compare(y) != -1 || y.Compare(x) != 1 || x.Compare(x) != 0 {
		t.Fatal("replica tie break")
	}
}

// A write issued after seeing another write wins even if the writer's
// physical clock is behind.
func TestLWWCausalWriteWins(t *testing.T) {
	fast := crdt.NewClock("a", func() time.Time { return time.Unix(1000, 0) })
	slow := crdt.NewClock("b", func() time.Time { return time.Unix(10, 0) })
	ra, rb := crdt.NewLWWRegister(), crdt.NewLWWRegister()
	rb.Merge(ra.Set(fast, []byte("first")))
	ra.Merge(rb.Set(slow, []byte("second")))
	if v, _, _ := ra.Get(); string(v) != "second" {
		t.Fatalf("got %q, want the later causal write", v)
	}
}
