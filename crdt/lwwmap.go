package crdt

import (
	"bytes"
	"encoding/binary"
)

// lwwEntry is one key of an LWWMap: a value or a deletion, with the
// timestamp of the write that produced it.
type lwwEntry struct {
	value   []byte
	ts      Timestamp
	deleted bool
}

// newer reports whether a wins over b: greater timestamp; on an exact tie
// (never produced by one Clock) a deletion, then the greater value.
func (a lwwEntry) newer(b lwwEntry) bool {
	if c := a.ts.Compare(b.ts); c != 0 {
		return c > 0
	}
	if a.deleted != b.deleted {
		return a.deleted
	}
	return bytes.Compare(a.value, b.value) > 0
}

// LWWMap maps string keys to byte values; each key is an independent
// last-writer-wins register. A delete is a write too: it leaves a
// timestamped tombstone (a few dozen bytes per deleted key) so that an
// older put arriving late cannot resurrect the key. The zero value is an
// empty map.
type LWWMap struct {
	entries map[string]lwwEntry
}

var _ State = (*LWWMap)(nil)

// NewLWWMap returns an empty map.
func NewLWWMap() *LWWMap { return &LWWMap{} }

// Kind returns KindLWWMap.
func (m *LWWMap) Kind() Kind { return KindLWWMap }

func (m *LWWMap) write(c *Clock, key string, e lwwEntry) *LWWMap {
	if old, ok := m.entries[key]; ok {
		c.Observe(old.ts)
	}
	e.ts = c.Now()
	if m.entries == nil {
		m.entries = map[string]lwwEntry{}
	}
	m.entries[key] = e
	return &LWWMap{entries: map[string]lwwEntry{key: {value: bytes.Clone(e.value), ts: e.ts, deleted: e.deleted}}}
}

// Put sets key to value with a timestamp from c and returns the delta.
func (m *LWWMap) Put(c *Clock, key string, value []byte) *LWWMap {
	v := bytes.Clone(value)
	if v == nil {
		v = []byte{}
	}
	return m.write(c, key, lwwEntry{value: v})
}

// Delete removes key with a timestamp from c and returns the delta (a
// tombstone).
func (m *LWWMap) Delete(c *Clock, key string) *LWWMap {
	return m.write(c, key, lwwEntry{deleted: true})
}

// Get returns key's value and whether it is present. The slice must not be
// modified.
func (m *LWWMap) Get(key string) ([]byte, bool) {
	e, ok := m.entries[key]
	if !ok || e.deleted {
		return nil, false
	}
	return e.value, true
}

// LWWEntry is one key of an LWWMap as Entry reports it.
type LWWEntry struct {
	// Value is the key's value; nil for a tombstone. Must not be modified.
	Value []byte
	// Timestamp is when the winning write (put or delete) was issued.
	Timestamp Timestamp
	// Deleted marks a tombstone: the key was deleted.
	Deleted bool
}

// Entry returns key's entry, tombstones included, and whether the map
// holds one.
func (m *LWWMap) Entry(key string) (LWWEntry, bool) {
	e, ok := m.entries[key]
	return LWWEntry{Value: e.value, Timestamp: e.ts, Deleted: e.deleted}, ok
}

// Keys returns the present keys in ascending order.
func (m *LWWMap) Keys() []string {
	var keys []string
	for _, k := range sortedKeys(m.entries) {
		if !m.entries[k].deleted {
			keys = append(keys, k)
		}
	}
	return keys
}

// Len returns the number of present keys.
func (m *LWWMap) Len() int {
	n := 0
	for _, e := range m.entries {
		if !e.deleted {
			n++
		}
	}
	return n
}

// Tombstones returns the number of deleted keys still remembered.
func (m *LWWMap) Tombstones() int { return len(m.entries) - m.Len() }

// Merge joins o into m key by key and reports whether m changed.
func (m *LWWMap) Merge(o *LWWMap) bool {
	changed := false
	for k, e := range o.entries {
		if old, ok := m.entries[k]; !ok || e.newer(old) {
			if m.entries == nil {
				m.entries = map[string]lwwEntry{}
			}
			e.value = bytes.Clone(e.value)
			m.entries[k] = e
			changed = true
		}
	}
	return changed
}

// MergeState implements State.
func (m *LWWMap) MergeState(o State) (bool, error) {
	x, ok := o.(*LWWMap)
	if !ok {
		return false, mismatch(m, o)
	}
	return m.Merge(x), nil
}

// Clone returns a deep copy.
func (m *LWWMap) Clone() *LWWMap {
	c := &LWWMap{}
	if m.entries != nil {
		c.entries = make(map[string]lwwEntry, len(m.entries))
		for k, e := range m.entries {
			e.value = bytes.Clone(e.value)
			c.entries[k] = e
		}
	}
	return c
}

// CloneState implements State.
func (m *LWWMap) CloneState() State { return m.Clone() }

// AppendBinary appends: version | kind | uvarint n | n × (string key | timestamp | 0 tombstone or 1 | bytes value if 1),
// keys ascending (see LWWRegister.AppendBinary for timestamp).
func (m *LWWMap) AppendBinary(b []byte) ([]byte, error) {
	b = appendHeader(b, KindLWWMap)
	b = binary.AppendUvarint(b, uint64(len(m.entries)))
	for _, k := range sortedKeys(m.entries) {
		e := m.entries[k]
		b = appendTimestamp(appendString(b, k), e.ts)
		if e.deleted {
			b = append(b, 0)
		} else {
			b = appendBytes(append(b, 1), e.value)
		}
	}
	return b, nil
}

// MarshalBinary implements encoding.BinaryMarshaler.
func (m *LWWMap) MarshalBinary() ([]byte, error) { return m.AppendBinary(nil) }

// UnmarshalBinary replaces m with the decoded state. It never panics.
func (m *LWWMap) UnmarshalBinary(b []byte) error {
	r := newReader(b, KindLWWMap)
	var x LWWMap
	n := r.count(5)
	prev := ""
	for i := range n {
		k := r.string()
		var e lwwEntry
		e.ts = r.timestamp()
		switch r.byte() {
		case 0:
			e.deleted = true
		case 1:
			e.value = r.bytes()
		default:
			r.fail("bad lwwmap flag")
		}
		if r.err != nil {
			break
		}
		if (i > 0 && k <= prev) || e.ts.IsZero() {
			r.fail("lwwmap entries not canonical")
			break
		}
		prev = k
		if x.entries == nil {
			x.entries = make(map[string]lwwEntry, n)
		}
		x.entries[k] = e
	}
	if err := r.done(); err != nil {
		return err
	}
	*m = x
	return nil
}
