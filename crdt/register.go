package crdt

import (
	"bytes"
	"encoding/binary"
	"maps"
	"slices"
)

// LWWRegister holds one value; the write with the greatest Timestamp wins.
// Timestamps come from a hybrid logical clock, so a write issued after a
// replica has seen another write wins over it, and concurrent writes are
// ordered by physical time, then logical counter, then replica ID.
// The zero value is an empty register.
type LWWRegister struct {
	value []byte
	ts    Timestamp
}

var _ State = (*LWWRegister)(nil)

// NewLWWRegister returns an empty register.
func NewLWWRegister() *LWWRegister { return &LWWRegister{} }

// Kind returns KindLWWRegister.
func (r *LWWRegister) Kind() Kind { return KindLWWRegister }

// Set writes value with a timestamp from c (after c observes the current
// one, so this write wins over it) and returns the delta. The register
// keeps its own copy of value.
func (r *LWWRegister) Set(c *Clock, value []byte) *LWWRegister {
	c.Observe(r.ts)
	r.ts = c.Now()
	r.value = bytes.Clone(value)
	if r.value == nil {
		r.value = []byte{}
	}
	return r.Clone()
}

// Get returns the value, its timestamp, and whether the register was ever
// written. The returned slice must not be modified.
func (r *LWWRegister) Get() ([]byte, Timestamp, bool) { return r.value, r.ts, !r.ts.IsZero() }

// Merge joins o into r (the greater timestamp wins; on an exact timestamp
// tie, which one Clock never produces, the greater value) and reports
// whether r changed.
func (r *LWWRegister) Merge(o *LWWRegister) bool {
	c := o.ts.Compare(r.ts)
	if c > 0 || (c == 0 && bytes.Compare(o.value, r.value) > 0) {
		r.ts, r.value = o.ts, bytes.Clone(o.value)
		return true
	}
	return false
}

// MergeState implements State.
func (r *LWWRegister) MergeState(o State) (bool, error) {
	x, ok := o.(*LWWRegister)
	if !ok {
		return false, mismatch(r, o)
	}
	return r.Merge(x), nil
}

// Clone returns a deep copy.
func (r *LWWRegister) Clone() *LWWRegister {
	return &LWWRegister{value: bytes.Clone(r.value), ts: r.ts}
}

// CloneState implements State.
func (r *LWWRegister) CloneState() State { return r.Clone() }

// AppendBinary appends: version | kind | 0 (empty) or 1 | timestamp | bytes value,
// where timestamp is varint wall | uvarint logical | string replica.
func (r *LWWRegister) AppendBinary(b []byte) ([]byte, error) {
	b = appendHeader(b, KindLWWRegister)
	if r.ts.IsZero() {
		return append(b, 0), nil
	}
	b = appendTimestamp(append(b, 1), r.ts)
	return appendBytes(b, r.value), nil
}

// MarshalBinary implements encoding.BinaryMarshaler.
func (r *LWWRegister) MarshalBinary() ([]byte, error) { return r.AppendBinary(nil) }

// UnmarshalBinary replaces r with the decoded state. It never panics.
func (r *LWWRegister) UnmarshalBinary(b []byte) error {
	rd := newReader(b, KindLWWRegister)
	var x LWWRegister
	switch rd.byte() {
	case 0:
	case 1:
		x.ts, x.value = rd.timestamp(), rd.bytes()
		if rd.err == nil && x.ts.IsZero() {
			rd.fail("zero timestamp")
		}
	default:
		rd.fail("bad register flag")
	}
	if err := rd.done(); err != nil {
		return err
	}
	*r = x
	return nil
}

// MVRegister is a multi-value register: a write replaces every value its
// replica has seen, and concurrent writes are all kept until a later write
// supersedes them, so Values returns one value per concurrent writer.
// The zero value is an empty register.
type MVRegister struct {
	vals map[Dot][]byte
	ctx  CausalContext
}

var _ State = (*MVRegister)(nil)

// NewMVRegister returns an empty register.
func NewMVRegister() *MVRegister { return &MVRegister{} }

// Kind returns KindMVRegister.
func (r *MVRegister) Kind() Kind { return KindMVRegister }

// Set writes value on behalf of replica, superseding every value r holds,
// and returns the delta.
func (r *MVRegister) Set(replica string, value []byte) *MVRegister {
	d := &MVRegister{}
	for dot := range r.vals {
		d.ctx.Add(dot)
	}
	dot := r.ctx.next(replica)
	d.ctx.Add(dot)
	v := bytes.Clone(value)
	if v == nil {
		v = []byte{}
	}
	r.vals = map[Dot][]byte{dot: v}
	d.vals = map[Dot][]byte{dot: bytes.Clone(v)}
	return d
}

// Values returns the concurrent values, ordered by (replica, counter) of
// the write that produced them. The slices must not be modified.
func (r *MVRegister) Values() [][]byte {
	dots := slices.SortedFunc(maps.Keys(r.vals), compareDots)
	out := make([][]byte, len(dots))
	for i, d := range dots {
		out[i] = r.vals[d]
	}
	return out
}

// Merge joins o into r: a value survives if both hold it, or if one holds
// it and the other has not seen (and so not overwritten) it. Reports
// whether r changed.
func (r *MVRegister) Merge(o *MVRegister) bool {
	changed := false
	for d := range r.vals {
		if _, ok := o.vals[d]; !ok && o.ctx.Contains(d) {
			delete(r.vals, d)
			changed = true
		}
	}
	for d, v := range o.vals {
		if _, ok := r.vals[d]; !ok && !r.ctx.Contains(d) {
			if r.vals == nil {
				r.vals = map[Dot][]byte{}
			}
			r.vals[d] = bytes.Clone(v)
			changed = true
		}
	}
	if r.ctx.Merge(&o.ctx) {
		changed = true
	}
	return changed
}

// MergeState implements State.
func (r *MVRegister) MergeState(o State) (bool, error) {
	x, ok := o.(*MVRegister)
	if !ok {
		return false, mismatch(r, o)
	}
	return r.Merge(x), nil
}

// Clone returns a deep copy.
func (r *MVRegister) Clone() *MVRegister {
	c := &MVRegister{ctx: r.ctx.clone()}
	if r.vals != nil {
		c.vals = make(map[Dot][]byte, len(r.vals))
		for d, v := range r.vals {
			c.vals[d] = bytes.Clone(v)
		}
	}
	return c
}

// CloneState implements State.
func (r *MVRegister) CloneState() State { return r.Clone() }

// AppendBinary appends: version | kind | uvarint n | n × (dot | bytes value) | context,
// dots ascending; a dot is string replica | uvarint counter; a context is
// uvarint n | n × (string replica | uvarint max) | uvarint m | m × dot.
func (r *MVRegister) AppendBinary(b []byte) ([]byte, error) {
	b = appendHeader(b, KindMVRegister)
	dots := slices.SortedFunc(maps.Keys(r.vals), compareDots)
	b = binary.AppendUvarint(b, uint64(len(dots)))
	for _, d := range dots {
		b = appendBytes(appendDot(b, d), r.vals[d])
	}
	return r.ctx.appendBinary(b), nil
}

// MarshalBinary implements encoding.BinaryMarshaler.
func (r *MVRegister) MarshalBinary() ([]byte, error) { return r.AppendBinary(nil) }

// UnmarshalBinary replaces r with the decoded state. It never panics.
func (r *MVRegister) UnmarshalBinary(b []byte) error {
	rd := newReader(b, KindMVRegister)
	var x MVRegister
	n := rd.count(3)
	var last Dot
	for i := range n {
		d, v := rd.dot(), rd.bytes()
		if rd.err != nil {
			break
		}
		if i > 0 && compareDots(last, d) >= 0 {
			rd.fail("mvregister dots not sorted")
			break
		}
		last = d
		if x.vals == nil {
			x.vals = make(map[Dot][]byte, n)
		}
		x.vals[d] = v
	}
	x.ctx = rd.causalContext()
	for d := range x.vals {
		if rd.err == nil && !x.ctx.Contains(d) {
			rd.fail("value dot outside context")
		}
	}
	if err := rd.done(); err != nil {
		return err
	}
	*r = x
	return nil
}
