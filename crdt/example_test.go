package crdt_test

import (
	"fmt"
	"time"

	"github.com/statenode/statenode/crdt"
)

// Two replicas update a counter independently and exchange only deltas.
func ExamplePNCounter() {
	a, b := crdt.NewPNCounter(), crdt.NewPNCounter()
	da := a.Inc("a", 5)
	db := b.Inc("b", -2)
	a.Merge(db)
	b.Merge(da)
	b.Merge(da) // duplicates are harmless
	fmt.Println(a.Value(), b.Value())
	// Output: 3 3
}

// An add concurrent with a remove of the same element wins.
func ExampleORSet() {
	a, b := crdt.NewORSet(), crdt.NewORSet()
	b.Merge(a.Add("a", "alice"))
	rm := b.Remove("alice") // b saw a's add
	add := a.Add("a", "alice")
	a.Merge(rm)
	b.Merge(add)
	fmt.Println(a.Elements(), b.Elements())
	// Output: [alice] [alice]
}

// Concurrent writes to a multi-value register are all kept.
func ExampleMVRegister() {
	a, b := crdt.NewMVRegister(), crdt.NewMVRegister()
	da := a.Set("a", []byte("red"))
	db := b.Set("b", []byte("blue"))
	a.Merge(db)
	b.Merge(da)
	fmt.Printf("%s %s\n", a.Values(), b.Values())
	c := a.Set("a", []byte("green")) // supersedes both
	b.Merge(c)
	fmt.Printf("%s\n", b.Values())
	// Output:
	// [red blue] [red blue]
	// [green]
}

// Each replica may only spend the rights it holds.
func ExampleBoundedCounter() {
	a := crdt.NewBoundedCounter()
	a.Inc("a", 3)
	if _, err := a.Dec("b", 1); err != nil {
		fmt.Println(err)
	}
	d, _ := a.Transfer("a", "b", 2)
	b := crdt.NewBoundedCounter()
	b.Merge(d)
	if _, err := b.Dec("b", 2); err == nil {
		fmt.Println(b.Value(), b.Rights("a"), b.Rights("b"))
	}
	// Output:
	// crdt: insufficient rights: b holds 0, needs 1
	// 1 1 0
}

func ExampleLWWMap() {
	now := time.Unix(1700000000, 0)
	clk := crdt.NewClock("a", func() time.Time { return now })
	m := crdt.NewLWWMap()
	m.Put(clk, "color", []byte("red"))
	m.Put(clk, "size", []byte("L"))
	m.Delete(clk, "size")
	v, _ := m.Get("color")
	fmt.Println(m.Keys(), string(v), m.Tombstones())
	// Output: [color] red 1
}
