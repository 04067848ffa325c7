package crdt

import (
	"encoding/binary"
	"maps"
	"slices"
)

// ORSet is an add-wins observed-remove set of strings without tombstones
// (the ORSWOT design): each element carries the dots of the adds that
// produced it, and a CausalContext records every dot the replica has seen.
// A remove deletes the element's dots; the context alone remembers them,
// so a removed element costs nothing once the context's vector covers its
// dots. An add concurrent with a remove of the same element wins, because
// the remove cannot have seen the add's new dot. The zero value is an empty
// set.
type ORSet struct {
	elems map[string][]Dot // each slice sorted by compareDots
	ctx   CausalContext
}

var _ State = (*ORSet)(nil)

// NewORSet returns an empty set.
func NewORSet() *ORSet { return &ORSet{} }

// Kind returns KindORSet.
func (s *ORSet) Kind() Kind { return KindORSet }

// Add inserts elem on behalf of replica and returns the delta: the element
// with one new dot, and a context holding that dot and the dots it
// supersedes.
func (s *ORSet) Add(replica, elem string) *ORSet {
	d := &ORSet{}
	for _, dot := range s.elems[elem] {
		d.ctx.Add(dot)
	}
	dot := s.ctx.next(replica)
	d.ctx.Add(dot)
	if s.elems == nil {
		s.elems = map[string][]Dot{}
	}
	s.elems[elem] = []Dot{dot}
	d.elems = map[string][]Dot{elem: {dot}}
	return d
}

// Remove deletes elem and returns the delta: an empty store with a context
// holding the removed dots. Removing an absent element returns an empty
// delta.
func (s *ORSet) Remove(elem string) *ORSet {
	d := &ORSet{}
	for _, dot := range s.elems[elem] {
		d.ctx.Add(dot)
	}
	delete(s.elems, elem)
	return d
}

// Clear removes every element and returns the delta.
func (s *ORSet) Clear() *ORSet {
	d := &ORSet{}
	for _, dots := range s.elems {
		for _, dot := range dots {
			d.ctx.Add(dot)
		}
	}
	s.elems = nil
	return d
}

// Contains reports whether elem is in the set.
func (s *ORSet) Contains(elem string) bool { return len(s.elems[elem]) > 0 }

// Elements returns the elements in ascending order.
func (s *ORSet) Elements() []string { return sortedKeys(s.elems) }

// Len returns the number of elements.
func (s *ORSet) Len() int { return len(s.elems) }

// ContextLen returns the number of entries the causal context stores,
// a measure of metadata overhead independent of how many removes happened.
func (s *ORSet) ContextLen() int { return s.ctx.Len() }

// Merge joins o into s: an element's dot survives if both sides hold it,
// or one side holds it and the other has not seen it; the contexts are
// united. Reports whether s changed.
func (s *ORSet) Merge(o *ORSet) bool {
	changed := false
	for e, dots := range s.elems {
		od := o.elems[e]
		kept := dots[:0:0]
		for _, d := range dots {
			if slices.Contains(od, d) || !o.ctx.Contains(d) {
				kept = append(kept, d)
			}
		}
		if len(kept) != len(dots) {
			changed = true
			if len(kept) == 0 {
				delete(s.elems, e)
			} else {
				s.elems[e] = kept
			}
		}
	}
	for e, od := range o.elems {
		dots := s.elems[e]
		added := false
		for _, d := range od {
			if !s.ctx.Contains(d) && !slices.Contains(dots, d) {
				dots = append(dots, d)
				added = true
			}
		}
		if added {
			slices.SortFunc(dots, compareDots)
			if s.elems == nil {
				s.elems = map[string][]Dot{}
			}
			s.elems[e] = dots
			changed = true
		}
	}
	if s.ctx.Merge(&o.ctx) {
		changed = true
	}
	return changed
}

// MergeState implements State.
func (s *ORSet) MergeState(o State) (bool, error) {
	x, ok := o.(*ORSet)
	if !ok {
		return false, mismatch(s, o)
	}
	return s.Merge(x), nil
}

// Clone returns a deep copy.
func (s *ORSet) Clone() *ORSet {
	c := &ORSet{ctx: s.ctx.clone()}
	if s.elems != nil {
		c.elems = make(map[string][]Dot, len(s.elems))
		for e, d := range s.elems {
			c.elems[e] = slices.Clone(d)
		}
	}
	return c
}

// CloneState implements State.
func (s *ORSet) CloneState() State { return s.Clone() }

// AppendBinary appends: version | kind | uvarint n | n × (string elem | uvarint k | k × dot) | context,
// elements and dots ascending (see MVRegister.AppendBinary for dot and
// context).
func (s *ORSet) AppendBinary(b []byte) ([]byte, error) {
	b = appendHeader(b, KindORSet)
	b = binary.AppendUvarint(b, uint64(len(s.elems)))
	for _, e := range sortedKeys(s.elems) {
		b = appendString(b, e)
		b = binary.AppendUvarint(b, uint64(len(s.elems[e])))
		for _, d := range s.elems[e] {
			b = appendDot(b, d)
		}
	}
	return s.ctx.appendBinary(b), nil
}

// MarshalBinary implements encoding.BinaryMarshaler.
func (s *ORSet) MarshalBinary() ([]byte, error) { return s.AppendBinary(nil) }

// UnmarshalBinary replaces s with the decoded state. It never panics.
func (s *ORSet) UnmarshalBinary(b []byte) error {
	r := newReader(b, KindORSet)
	var x ORSet
	n := r.count(3)
	prev := ""
	seen := map[Dot]bool{}
	for i := range n {
		e := r.string()
		k := r.count(2)
		if r.err != nil {
			break
		}
		if (i > 0 && e <= prev) || k == 0 {
			r.fail("orset elements not canonical")
			break
		}
		prev = e
		dots := make([]Dot, 0, k)
		for j := range k {
			d := r.dot()
			if r.err != nil {
				break
			}
			if (j > 0 && compareDots(dots[j-1], d) >= 0) || seen[d] {
				r.fail("orset dots not canonical")
				break
			}
			seen[d] = true
			dots = append(dots, d)
		}
		if x.elems == nil {
			x.elems = make(map[string][]Dot, n)
		}
		x.elems[e] = dots
	}
	x.ctx = r.causalContext()
	for d := range seen {
		if r.err == nil && !x.ctx.Contains(d) {
			r.fail("element dot outside context")
		}
	}
	if err := r.done(); err != nil {
		return err
	}
	*s = x
	return nil
}

// Equal reports whether s and o hold the same elements, dots and context.
func (s *ORSet) Equal(o *ORSet) bool {
	return maps.EqualFunc(s.elems, o.elems, slices.Equal) && s.ctx.equal(&o.ctx)
}
