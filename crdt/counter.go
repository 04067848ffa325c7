package crdt

import (
	"encoding/binary"
	"fmt"
	"maps"
)

// GCounter is a grow-only counter: one monotonically increasing count per
// replica; the value is their sum and merge takes the per-replica maximum.
// The zero value is not usable; call NewGCounter.
type GCounter struct {
	counts map[string]uint64
}

var _ State = (*GCounter)(nil)

// NewGCounter returns a counter at zero.
func NewGCounter() *GCounter { return &GCounter{counts: map[string]uint64{}} }

// Kind returns KindGCounter.
func (g *GCounter) Kind() Kind { return KindGCounter }

// Inc adds n to replica's count and returns the delta: a GCounter holding
// only replica's new count. Inc by 0 returns an empty delta.
func (g *GCounter) Inc(replica string, n uint64) *GCounter {
	d := NewGCounter()
	if n == 0 {
		return d
	}
	g.counts[replica] += n
	d.counts[replica] = g.counts[replica]
	return d
}

// Value returns the sum of all replicas' counts (wrapping at 2^64).
func (g *GCounter) Value() uint64 {
	var s uint64
	for _, v := range g.counts {
		s += v
	}
	return s
}

// Count returns replica's own count.
func (g *GCounter) Count(replica string) uint64 { return g.counts[replica] }

// Merge joins o into g (per-replica maximum) and reports whether g changed.
func (g *GCounter) Merge(o *GCounter) bool {
	changed := false
	for r, v := range o.counts {
		if v > g.counts[r] {
			g.counts[r] = v
			changed = true
		}
	}
	return changed
}

// MergeState implements State.
func (g *GCounter) MergeState(o State) (bool, error) {
	x, ok := o.(*GCounter)
	if !ok {
		return false, mismatch(g, o)
	}
	return g.Merge(x), nil
}

// Clone returns a deep copy.
func (g *GCounter) Clone() *GCounter { return &GCounter{counts: maps.Clone(g.counts)} }

// CloneState implements State.
func (g *GCounter) CloneState() State { return g.Clone() }

// Equal reports whether g and o hold the same counts.
func (g *GCounter) Equal(o *GCounter) bool { return maps.Equal(g.counts, o.counts) }

// AppendBinary appends: version | kind | uvarint n | n × (string replica | uvarint count),
// replicas in ascending order, counts non-zero.
func (g *GCounter) AppendBinary(b []byte) ([]byte, error) {
	return g.appendBody(appendHeader(b, KindGCounter)), nil
}

func (g *GCounter) appendBody(b []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(g.counts)))
	for _, r := range sortedKeys(g.counts) {
		b = appendString(b, r)
		b = binary.AppendUvarint(b, g.counts[r])
	}
	return b
}

// MarshalBinary implements encoding.BinaryMarshaler.
func (g *GCounter) MarshalBinary() ([]byte, error) { return g.AppendBinary(nil) }

// UnmarshalBinary replaces g with the decoded state. It never panics.
func (g *GCounter) UnmarshalBinary(b []byte) error {
	r := newReader(b, KindGCounter)
	c := r.gcounter()
	if err := r.done(); err != nil {
		return err
	}
	*g = *c
	return nil
}

func (r *reader) gcounter() *GCounter {
	g := NewGCounter()
	n := r.count(2)
	prev := ""
	for i := range n {
		id, v := r.string(), r.uvarint()
		if r.err != nil {
			break
		}
		if (i > 0 && id <= prev) || v == 0 {
			r.fail("gcounter entries not canonical")
			break
		}
		prev = id
		g.counts[id] = v
	}
	return g
}

// PNCounter is a counter that can go up and down: two GCounters, one of
// increments and one of decrements. The zero value is not usable; call
// NewPNCounter.
type PNCounter struct {
	p, n *GCounter
}

var _ State = (*PNCounter)(nil)

// NewPNCounter returns a counter at zero.
func NewPNCounter() *PNCounter { return &PNCounter{p: NewGCounter(), n: NewGCounter()} }

// Kind returns KindPNCounter.
func (c *PNCounter) Kind() Kind { return KindPNCounter }

// Inc adds n (which may be negative) on behalf of replica and returns the
// delta.
func (c *PNCounter) Inc(replica string, n int64) *PNCounter {
	d := NewPNCounter()
	switch {
	case n > 0:
		d.p = c.p.Inc(replica, uint64(n))
	case n < 0:
		d.n = c.n.Inc(replica, uint64(-(n+1))+1)
	}
	return d
}

// Value returns increments minus decrements (wrapping in two's complement).
func (c *PNCounter) Value() int64 { return int64(c.p.Value() - c.n.Value()) }

// Merge joins o into c and reports whether c changed.
func (c *PNCounter) Merge(o *PNCounter) bool {
	a := c.p.Merge(o.p)
	b := c.n.Merge(o.n)
	return a || b
}

// MergeState implements State.
func (c *PNCounter) MergeState(o State) (bool, error) {
	x, ok := o.(*PNCounter)
	if !ok {
		return false, mismatch(c, o)
	}
	return c.Merge(x), nil
}

// Clone returns a deep copy.
func (c *PNCounter) Clone() *PNCounter { return &PNCounter{p: c.p.Clone(), n: c.n.Clone()} }

// CloneState implements State.
func (c *PNCounter) CloneState() State { return c.Clone() }

// Equal reports whether c and o hold the same counts.
func (c *PNCounter) Equal(o *PNCounter) bool { return c.p.Equal(o.p) && c.n.Equal(o.n) }

// AppendBinary appends: version | kind | increments | decrements, each
// encoded as a GCounter body.
func (c *PNCounter) AppendBinary(b []byte) ([]byte, error) {
	b = appendHeader(b, KindPNCounter)
	return c.n.appendBody(c.p.appendBody(b)), nil
}

// MarshalBinary implements encoding.BinaryMarshaler.
func (c *PNCounter) MarshalBinary() ([]byte, error) { return c.AppendBinary(nil) }

// UnmarshalBinary replaces c with the decoded state. It never panics.
func (c *PNCounter) UnmarshalBinary(b []byte) error {
	r := newReader(b, KindPNCounter)
	p, n := r.gcounter(), r.gcounter()
	if err := r.done(); err != nil {
		return err
	}
	c.p, c.n = p, n
	return nil
}

func mismatch(s, o State) error {
	if o == nil {
		return fmt.Errorf("%w: merging nil into %v", ErrKindMismatch, s.Kind())
	}
	return fmt.Errorf("%w: merging %v into %v", ErrKindMismatch, o.Kind(), s.Kind())
}
