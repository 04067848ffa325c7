package crdt

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"maps"
	"slices"
)

type transferKey struct{ from, to string }

// BoundedCounter is a counter whose value never drops below zero, even
// under concurrent decrements on partitioned replicas (Balegas et al.,
// "Extending eventually consistent cloud databases for enforcing numeric
// invariants", 2015). Each replica may decrement only by the rights it
// holds: its own increments minus its own decrements plus rights other
// replicas transferred to it minus rights it transferred away. Since rights
// are never spent twice, the sum of all values stays non-negative.
//
// The deltas of Dec and Transfer ("spends") are the whole state (a few
// bytes per replica pair), so a replica can never receive a spend without
// the increments and transfers that justified it: every state reachable
// under any delivery order, with losses and duplicates, has a
// non-negative Value. Inc deltas stay small. The zero value is not usable;
// call NewBoundedCounter.
type BoundedCounter struct {
	p, n      *GCounter
	transfers map[transferKey]uint64 // cumulative, merged by maximum
}

var _ State = (*BoundedCounter)(nil)

// NewBoundedCounter returns a counter at zero.
func NewBoundedCounter() *BoundedCounter {
	return &BoundedCounter{p: NewGCounter(), n: NewGCounter(), transfers: map[transferKey]uint64{}}
}

// Kind returns KindBoundedCounter.
func (c *BoundedCounter) Kind() Kind { return KindBoundedCounter }

// Value returns increments minus decrements; never negative for states
// built by this type's mutators.
func (c *BoundedCounter) Value() int64 { return int64(c.p.Value() - c.n.Value()) }

// Rights returns how much replica may decrement or transfer right now.
func (c *BoundedCounter) Rights(replica string) int64 {
	r := int64(c.p.Count(replica)) - int64(c.n.Count(replica))
	for k, v := range c.transfers {
		if k.to == replica {
			r += int64(v)
		}
		if k.from == replica {
			r -= int64(v)
		}
	}
	return r
}

// Inc adds n on behalf of replica (granting it n rights) and returns the
// delta.
func (c *BoundedCounter) Inc(replica string, n uint64) *BoundedCounter {
	d := NewBoundedCounter()
	d.p = c.p.Inc(replica, n)
	return d
}

// Dec subtracts n on behalf of replica and returns the delta, or
// ErrInsufficientRights (changing nothing) if replica holds fewer than n
// rights locally. Another replica may hold the rights: ask it to Transfer.
func (c *BoundedCounter) Dec(replica string, n uint64) (*BoundedCounter, error) {
	if err := c.spend(replica, n); err != nil {
		return nil, err
	}
	c.n.Inc(replica, n)
	return c.Clone(), nil
}

// Transfer moves n rights from replica from to replica to and returns the
// delta, or ErrInsufficientRights if from holds fewer than n. Only from
// may call it.
func (c *BoundedCounter) Transfer(from, to string, n uint64) (*BoundedCounter, error) {
	if from == to {
		return nil, fmt.Errorf("%w: transfer to self", ErrInvalidArgument)
	}
	if err := c.spend(from, n); err != nil {
		return nil, err
	}
	if n > 0 {
		c.transfers[transferKey{from, to}] += n
	}
	return c.Clone(), nil
}

func (c *BoundedCounter) spend(replica string, n uint64) error {
	if have := c.Rights(replica); have < 0 || uint64(have) < n {
		return fmt.Errorf("%w: %s holds %d, needs %d", ErrInsufficientRights, replica, have, n)
	}
	return nil
}

// Merge joins o into c and reports whether c changed.
func (c *BoundedCounter) Merge(o *BoundedCounter) bool {
	a := c.p.Merge(o.p)
	b := c.n.Merge(o.n)
	changed := a || b
	for k, v := range o.transfers {
		if v > c.transfers[k] {
			c.transfers[k] = v
			changed = true
		}
	}
	return changed
}

// MergeState implements State.
func (c *BoundedCounter) MergeState(o State) (bool, error) {
	x, ok := o.(*BoundedCounter)
	if !ok {
		return false, mismatch(c, o)
	}
	return c.Merge(x), nil
}

// Clone returns a deep copy.
func (c *BoundedCounter) Clone() *BoundedCounter {
	return &BoundedCounter{p: c.p.Clone(), n: c.n.Clone(), transfers: maps.Clone(c.transfers)}
}

// CloneState implements State.
func (c *BoundedCounter) CloneState() State { return c.Clone() }

func compareTransfer(a, b transferKey) int {
	if x := cmp.Compare(a.from, b.from); x != 0 {
		return x
	}
	return cmp.Compare(a.to, b.to)
}

// AppendBinary appends: version | kind | increments | decrements (GCounter
// bodies) | uvarint n | n × (string from | string to | uvarint amount),
// transfers ascending by (from, to), amounts non-zero.
func (c *BoundedCounter) AppendBinary(b []byte) ([]byte, error) {
	b = c.n.appendBody(c.p.appendBody(appendHeader(b, KindBoundedCounter)))
	keys := slices.SortedFunc(maps.Keys(c.transfers), compareTransfer)
	b = binary.AppendUvarint(b, uint64(len(keys)))
	for _, k := range keys {
		b = appendString(appendString(b, k.from), k.to)
		b = binary.AppendUvarint(b, c.transfers[k])
	}
	return b, nil
}

// MarshalBinary implements encoding.BinaryMarshaler.
func (c *BoundedCounter) MarshalBinary() ([]byte, error) { return c.AppendBinary(nil) }

// UnmarshalBinary replaces c with the decoded state. It never panics.
func (c *BoundedCounter) UnmarshalBinary(b []byte) error {
	r := newReader(b, KindBoundedCounter)
	x := NewBoundedCounter()
	x.p, x.n = r.gcounter(), r.gcounter()
	n := r.count(3)
	var last transferKey
	for i := range n {
		k := transferKey{r.string(), r.string()}
		v := r.uvarint()
		if r.err != nil {
			break
		}
		if (i > 0 && compareTransfer(last, k) >= 0) || v == 0 || k.from == k.to {
			r.fail("transfers not canonical")
			break
		}
		last = k
		x.transfers[k] = v
	}
	if err := r.done(); err != nil {
		return err
	}
	*c = *x
	return nil
}
