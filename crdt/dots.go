package crdt

import (
	"cmp"
	"encoding/binary"
	"maps"
	"slices"
)

// Dot names one event: the Counter-th update issued by Replica.
type Dot struct {
	Replica string
	Counter uint64
}

func compareDots(a, b Dot) int {
	if c := cmp.Compare(a.Replica, b.Replica); c != 0 {
		return c
	}
	return cmp.Compare(a.Counter, b.Counter)
}

// CausalContext is a set of dots kept compact: a version vector holds, per
// replica, the contiguous prefix 1..n of its dots, and a small "cloud"
// holds dots received out of order beyond that prefix. Dots move from the
// cloud into the vector as gaps fill, so a context costs one entry per
// replica once deltas have all arrived, however many updates (including
// removes) it records. The zero value is an empty context.
type CausalContext struct {
	vv    map[string]uint64
	cloud map[Dot]struct{}
}

// Contains reports whether d is in the context.
func (c *CausalContext) Contains(d Dot) bool {
	if d.Counter <= c.vv[d.Replica] {
		return true
	}
	_, ok := c.cloud[d]
	return ok
}

// Max returns the highest counter of replica in the context.
func (c *CausalContext) Max(replica string) uint64 {
	m := c.vv[replica]
	for d := range c.cloud {
		if d.Replica == replica && d.Counter > m {
			m = d.Counter
		}
	}
	return m
}

// next returns a dot of replica not in the context and adds it.
func (c *CausalContext) next(replica string) Dot {
	d := Dot{Replica: replica, Counter: c.Max(replica) + 1}
	c.Add(d)
	return d
}

// Add inserts d and reports whether it was new.
func (c *CausalContext) Add(d Dot) bool {
	if d.Counter == 0 || c.Contains(d) {
		return false
	}
	if d.Counter == c.vv[d.Replica]+1 {
		if c.vv == nil {
			c.vv = make(map[string]uint64)
		}
		c.vv[d.Replica] = d.Counter
	} else {
		if c.cloud == nil {
			c.cloud = make(map[Dot]struct{})
		}
		c.cloud[d] = struct{}{}
	}
	c.compact()
	return true
}

// Merge adds every dot of o and reports whether any was new.
func (c *CausalContext) Merge(o *CausalContext) bool {
	changed := false
	for r, n := range o.vv {
		if n > c.vv[r] {
			if c.vv == nil {
				c.vv = make(map[string]uint64)
			}
			c.vv[r] = n
			changed = true
		}
	}
	for d := range o.cloud {
		if !c.Contains(d) {
			if c.cloud == nil {
				c.cloud = make(map[Dot]struct{})
			}
			c.cloud[d] = struct{}{}
			changed = true
		}
	}
	if changed {
		c.compact()
	}
	return changed
}

// compact drops cloud dots covered by the vector and folds contiguous ones
// into it.
func (c *CausalContext) compact() {
	for progress := true; progress; {
		progress = false
		for d := range c.cloud {
			n := c.vv[d.Replica]
			switch {
			case d.Counter <= n:
				delete(c.cloud, d)
			case d.Counter == n+1:
				if c.vv == nil {
					c.vv = make(map[string]uint64)
				}
				c.vv[d.Replica] = d.Counter
				delete(c.cloud, d)
				progress = true
			}
		}
	}
}

// Len returns the number of entries the context stores (vector entries
// plus cloud dots), not the number of dots it represents.
func (c *CausalContext) Len() int { return len(c.vv) + len(c.cloud) }

func (c *CausalContext) clone() CausalContext {
	return CausalContext{vv: maps.Clone(c.vv), cloud: maps.Clone(c.cloud)}
}

func (c *CausalContext) equal(o *CausalContext) bool {
	return maps.Equal(c.vv, o.vv) && maps.Equal(c.cloud, o.cloud)
}

func (c *CausalContext) appendBinary(b []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(c.vv)))
	for _, r := range sortedKeys(c.vv) {
		b = appendString(b, r)
		b = binary.AppendUvarint(b, c.vv[r])
	}
	dots := slices.SortedFunc(maps.Keys(c.cloud), compareDots)
	b = binary.AppendUvarint(b, uint64(len(dots)))
	for _, d := range dots {
		b = appendDot(b, d)
	}
	return b
}

func appendDot(b []byte, d Dot) []byte {
	b = appendString(b, d.Replica)
	return binary.AppendUvarint(b, d.Counter)
}

func (r *reader) dot() Dot {
	d := Dot{Replica: r.string(), Counter: r.uvarint()}
	if r.err == nil && d.Counter == 0 {
		r.fail("zero dot counter")
	}
	return d
}

// causalContext decodes a context, rejecting unsorted entries and cloud
// dots that a compact context would not hold.
func (r *reader) causalContext() CausalContext {
	var c CausalContext
	n := r.count(2)
	prev := ""
	for i := range n {
		id, v := r.string(), r.uvarint()
		if r.err != nil {
			break
		}
		if (i > 0 && id <= prev) || v == 0 {
			r.fail("context vector not canonical")
			break
		}
		prev = id
		if c.vv == nil {
			c.vv = make(map[string]uint64, n)
		}
		c.vv[id] = v
	}
	n = r.count(2)
	var last Dot
	for i := range n {
		d := r.dot()
		if r.err != nil {
			break
		}
		if (i > 0 && compareDots(last, d) >= 0) || d.Counter <= c.vv[d.Replica]+1 {
			r.fail("context cloud not canonical")
			break
		}
		last = d
		if c.cloud == nil {
			c.cloud = make(map[Dot]struct{}, n)
		}
		c.cloud[d] = struct{}{}
	}
	return c
}
