package gossip

import (
	"bytes"
	"context"

	"github.com/statenode/statenode/crdt"
)

// Handles name one replicated object. Objects are identified by kind and
// name together: Counter("x") and Set("x") are different objects. An
// object exists once first updated (locally or by gossip); reading an
// unknown one returns the empty value. Mutators return after the update
// is applied locally and written to the data directory, before it reaches
// other nodes; they return ErrInvalidName for an empty or too long name,
// ErrClosed after Shutdown, or ctx's error if ctx is done on entry.

// Counter is a PNCounter handle.
type Counter struct {
	g    *Gossip
	name string
}

// Counter returns the handle of the PNCounter name.
func (g *Gossip) Counter(name string) *Counter { return &Counter{g: g, name: name} }

func (c *Counter) key() key { return key{crdt.KindPNCounter, c.name} }

// Inc adds n (negative to decrement).
func (c *Counter) Inc(ctx context.Context, n int64) error {
	return c.g.update(ctx, c.key(), func(s crdt.State) (crdt.State, error) {
		return s.(*crdt.PNCounter).Inc(c.g.replica, n), nil
	})
}

// Dec subtracts n.
func (c *Counter) Dec(ctx context.Context, n int64) error { return c.Inc(ctx, -n) }

// Value returns this node's current value.
func (c *Counter) Value() (v int64) {
	c.g.read(c.key(), func(s crdt.State) { v = s.(*crdt.PNCounter).Value() })
	return v
}

// GCounter is a grow-only counter handle.
type GCounter struct {
	g    *Gossip
	name string
}

// GCounter returns the handle of the GCounter name.
func (g *Gossip) GCounter(name string) *GCounter { return &GCounter{g: g, name: name} }

func (c *GCounter) key() key { return key{crdt.KindGCounter, c.name} }

// Inc adds n.
func (c *GCounter) Inc(ctx context.Context, n uint64) error {
	return c.g.update(ctx, c.key(), func(s crdt.State) (crdt.State, error) {
		return s.(*crdt.GCounter).Inc(c.g.replica, n), nil
	})
}

// Value returns this node's current value.
func (c *GCounter) Value() (v uint64) {
	c.g.read(c.key(), func(s crdt.State) { v = s.(*crdt.GCounter).Value() })
	return v
}

// BoundedCounter is a non-negative counter handle: a node may only
// decrement by rights it holds (its increments plus transfers to it).
type BoundedCounter struct {
	g    *Gossip
	name string
}

// BoundedCounter returns the handle of the BoundedCounter name.
func (g *Gossip) BoundedCounter(name string) *BoundedCounter {
	return &BoundedCounter{g: g, name: name}
}

func (c *BoundedCounter) key() key { return key{crdt.KindBoundedCounter, c.name} }

// Inc adds n, granting this node n rights.
func (c *BoundedCounter) Inc(ctx context.Context, n uint64) error {
	return c.g.update(ctx, c.key(), func(s crdt.State) (crdt.State, error) {
		return s.(*crdt.BoundedCounter).Inc(c.g.replica, n), nil
	})
}

// Dec subtracts n, or returns an error wrapping crdt.ErrInsufficientRights
// if this node holds fewer than n rights.
func (c *BoundedCounter) Dec(ctx context.Context, n uint64) error {
	return c.g.update(ctx, c.key(), func(s crdt.State) (crdt.State, error) {
		return s.(*crdt.BoundedCounter).Dec(c.g.replica, n)
	})
}

// Transfer gives n of this node's rights to the replica toReplica (another
// node's ReplicaID).
func (c *BoundedCounter) Transfer(ctx context.Context, toReplica string, n uint64) error {
	return c.g.update(ctx, c.key(), func(s crdt.State) (crdt.State, error) {
		return s.(*crdt.BoundedCounter).Transfer(c.g.replica, toReplica, n)
	})
}

// Value returns this node's current value.
func (c *BoundedCounter) Value() (v int64) {
	c.g.read(c.key(), func(s crdt.State) { v = s.(*crdt.BoundedCounter).Value() })
	return v
}

// Rights returns the rights this node holds.
func (c *BoundedCounter) Rights() (v int64) {
	c.g.read(c.key(), func(s crdt.State) { v = s.(*crdt.BoundedCounter).Rights(c.g.replica) })
	return v
}

// Set is an add-wins ORSet handle.
type Set struct {
	g    *Gossip
	name string
}

// Set returns the handle of the ORSet name.
func (g *Gossip) Set(name string) *Set { return &Set{g: g, name: name} }

func (s *Set) key() key { return key{crdt.KindORSet, s.name} }

// Add inserts elem.
func (s *Set) Add(ctx context.Context, elem string) error {
	return s.g.update(ctx, s.key(), func(st crdt.State) (crdt.State, error) {
		return st.(*crdt.ORSet).Add(s.g.replica, elem), nil
	})
}

// Remove deletes elem (the adds this node has seen; a concurrent add
// elsewhere wins).
func (s *Set) Remove(ctx context.Context, elem string) error {
	return s.g.update(ctx, s.key(), func(st crdt.State) (crdt.State, error) {
		return st.(*crdt.ORSet).Remove(elem), nil
	})
}

// Contains reports whether elem is in this node's view of the set.
func (s *Set) Contains(elem string) (ok bool) {
	s.g.read(s.key(), func(st crdt.State) { ok = st.(*crdt.ORSet).Contains(elem) })
	return ok
}

// Elements returns the elements in ascending order.
func (s *Set) Elements() (out []string) {
	s.g.read(s.key(), func(st crdt.State) { out = st.(*crdt.ORSet).Elements() })
	return out
}

// Len returns the number of elements.
func (s *Set) Len() (n int) {
	s.g.read(s.key(), func(st crdt.State) { n = st.(*crdt.ORSet).Len() })
	return n
}

// Register is a last-writer-wins register handle.
type Register struct {
	g    *Gossip
	name string
}

// Register returns the handle of the LWWRegister name.
func (g *Gossip) Register(name string) *Register { return &Register{g: g, name: name} }

func (r *Register) key() key { return key{crdt.KindLWWRegister, r.name} }

// Set writes value, stamped by this node's hybrid logical clock.
func (r *Register) Set(ctx context.Context, value []byte) error {
	return r.g.update(ctx, r.key(), func(s crdt.State) (crdt.State, error) {
		return s.(*crdt.LWWRegister).Set(r.g.clock, value), nil
	})
}

// Get returns a copy of the value, its timestamp, and whether the register
// was ever written.
func (r *Register) Get() (v []byte, ts crdt.Timestamp, ok bool) {
	r.g.read(r.key(), func(s crdt.State) {
		v, ts, ok = s.(*crdt.LWWRegister).Get()
		v = bytes.Clone(v)
	})
	return v, ts, ok
}

// MVRegister is a multi-value register handle.
type MVRegister struct {
	g    *Gossip
	name string
}

// MVRegister returns the handle of the MVRegister name.
func (g *Gossip) MVRegister(name string) *MVRegister { return &MVRegister{g: g, name: name} }

func (r *MVRegister) key() key { return key{crdt.KindMVRegister, r.name} }

// Set writes value, superseding the values this node has seen.
func (r *MVRegister) Set(ctx context.Context, value []byte) error {
	return r.g.update(ctx, r.key(), func(s crdt.State) (crdt.State, error) {
		return s.(*crdt.MVRegister).Set(r.g.replica, value), nil
	})
}

// Values returns copies of the concurrent values.
func (r *MVRegister) Values() (out [][]byte) {
	r.g.read(r.key(), func(s crdt.State) {
		for _, v := range s.(*crdt.MVRegister).Values() {
			out = append(out, bytes.Clone(v))
		}
	})
	return out
}

// Map is a last-writer-wins map handle.
type Map struct {
	g    *Gossip
	name string
}

// Map returns the handle of the LWWMap name.
func (g *Gossip) Map(name string) *Map { return &Map{g: g, name: name} }

func (m *Map) key() key { return key{crdt.KindLWWMap, m.name} }

// Put sets k to v.
func (m *Map) Put(ctx context.Context, k string, v []byte) error {
	return m.g.update(ctx, m.key(), func(s crdt.State) (crdt.State, error) {
		return s.(*crdt.LWWMap).Put(m.g.clock, k, v), nil
	})
}

// Delete removes k (leaving a timestamped tombstone).
func (m *Map) Delete(ctx context.Context, k string) error {
	return m.g.update(ctx, m.key(), func(s crdt.State) (crdt.State, error) {
		return s.(*crdt.LWWMap).Delete(m.g.clock, k), nil
	})
}

// Get returns a copy of k's value and whether it is present.
func (m *Map) Get(k string) (v []byte, ok bool) {
	m.g.read(m.key(), func(s crdt.State) {
		v, ok = s.(*crdt.LWWMap).Get(k)
		v = bytes.Clone(v)
	})
	return v, ok
}

// Keys returns the present keys in ascending order.
func (m *Map) Keys() (keys []string) {
	m.g.read(m.key(), func(s crdt.State) { keys = s.(*crdt.LWWMap).Keys() })
	return keys
}

// Snapshot returns a copy of this node's state of the object kind/name
// (an empty state if unknown), for callers that need the full CRDT, such
// as an HTTP API rendering any type.
func (g *Gossip) Snapshot(kind crdt.Kind, name string) (crdt.State, error) {
	if err := validName(name); err != nil {
		return nil, err
	}
	if _, err := crdt.New(kind); err != nil {
		return nil, err
	}
	var out crdt.State
	g.read(key{kind, name}, func(s crdt.State) { out = s.CloneState() })
	return out, nil
}

// Object names one replicated object.
type Object struct {
	Kind crdt.Kind
	Name string
}

// Objects returns every object this node holds, sorted by kind then name.
func (g *Gossip) Objects() []Object {
	objs := g.allObjects()
	out := make([]Object, 0, len(objs))
	for _, o := range objs {
		out = append(out, Object{Kind: o.key.kind, Name: o.key.name})
	}
	sortObjects(out)
	return out
}
