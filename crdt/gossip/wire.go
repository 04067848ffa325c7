package gossip

import (
	"encoding/binary"
	"fmt"
	"maps"
	"slices"

	"github.com/statenode/statenode/crdt"
)

// Message format, version 1. Integers are varints (encoding/binary); a
// "string" or "bytes" is a uvarint length and that many bytes; a state is
// a crdt encoding (crdt.Decode).
//
//	delta: 0x01 | 0x01 | varint origin time (Unix ns) | kind | string name | bytes state
//	state: 0x01 | 0x02 | uvarint n | n × (kind | string name | bytes state)
//	leave: 0x01 | 0x03 | string node ID (sent before a graceful leave)
//	meta:  0x01 | uvarint n | n × (string key | string value), keys ascending
const (
	wireVersion byte = 1
	msgDelta    byte = 1
	msgState    byte = 2
	msgLeave    byte = 3
)

func appendLeave(b []byte, id string) []byte {
	b = append(b, wireVersion, msgLeave)
	b = binary.AppendUvarint(b, uint64(len(id)))
	return append(b, id...)
}

func decodeLeave(b []byte) (string, error) {
	c := &cursor{b: b}
	c.header(msgLeave)
	id := c.raw(MaxNameLen)
	if c.err == nil && (len(id) == 0 || len(c.b) != 0) {
		c.fail("bad leave message")
	}
	return string(id), c.err
}

// key identifies one replicated object: its kind and name.
type key struct {
	kind crdt.Kind
	name string
}

func (k key) String() string { return k.kind.String() + "/" + k.name }

// storeKey is key's form in the bbolt bucket: kind byte then name.
func (k key) storeKey() []byte { return append([]byte{byte(k.kind)}, k.name...) }

func parseStoreKey(b []byte) (key, error) {
	if len(b) < 2 || len(b)-1 > MaxNameLen {
		return key{}, fmt.Errorf("%w: store key %x", ErrMalformedMessage, b)
	}
	return key{kind: crdt.Kind(b[0]), name: string(b[1:])}, nil
}

func appendDelta(b []byte, origin int64, k key, state []byte) []byte {
	b = append(b, wireVersion, msgDelta)
	b = binary.AppendVarint(b, origin)
	b = append(b, byte(k.kind))
	b = binary.AppendUvarint(b, uint64(len(k.name)))
	b = append(b, k.name...)
	b = binary.AppendUvarint(b, uint64(len(state)))
	return append(b, state...)
}

type delta struct {
	origin int64
	key    key
	state  crdt.State
}

// cursor reads a message; the first error sticks.
type cursor struct {
	b   []byte
	err error
}

func (c *cursor) fail(what string) {
	if c.err == nil {
		c.err = fmt.Errorf("%w: %s", ErrMalformedMessage, what)
	}
	c.b = nil
}

func (c *cursor) uvarint() uint64 {
	if c.err != nil {
		return 0
	}
	v, n := binary.Uvarint(c.b)
	if n <= 0 {
		c.fail("bad varint")
		return 0
	}
	c.b = c.b[n:]
	return v
}

func (c *cursor) varint() int64 {
	if c.err != nil {
		return 0
	}
	v, n := binary.Varint(c.b)
	if n <= 0 {
		c.fail("bad varint")
		return 0
	}
	c.b = c.b[n:]
	return v
}

func (c *cursor) byte() byte {
	if c.err != nil || len(c.b) == 0 {
		c.fail("truncated")
		return 0
	}
	v := c.b[0]
	c.b = c.b[1:]
	return v
}

func (c *cursor) raw(limit int) []byte {
	n := c.uvarint()
	if c.err != nil {
		return nil
	}
	if n > uint64(len(c.b)) || n > uint64(limit) {
		c.fail("length exceeds input or limit")
		return nil
	}
	v := c.b[:n:n]
	c.b = c.b[n:]
	return v
}

func (c *cursor) key() key {
	k := key{kind: crdt.Kind(c.byte())}
	name := c.raw(MaxNameLen)
	if c.err == nil && len(name) == 0 {
		c.fail("empty name")
	}
	k.name = string(name)
	return k
}

// state decodes a crdt state of kind k.
func (c *cursor) state(k crdt.Kind) crdt.State {
	b := c.raw(len(c.b))
	if c.err != nil {
		return nil
	}
	s, err := crdt.Decode(b)
	if err != nil {
		c.err = fmt.Errorf("%w: %w", ErrMalformedMessage, err)
		return nil
	}
	if s.Kind() != k {
		c.fail("state kind differs from key kind")
		return nil
	}
	return s
}

func (c *cursor) header(want byte) {
	if v := c.byte(); c.err == nil && v != wireVersion {
		c.fail(fmt.Sprintf("unsupported version %d", v))
	}
	if t := c.byte(); c.err == nil && t != want {
		c.fail(fmt.Sprintf("message type %d, want %d", t, want))
	}
}

// decodeDelta decodes a delta message; it never panics.
func decodeDelta(b []byte) (delta, error) {
	c := &cursor{b: b}
	c.header(msgDelta)
	d := delta{origin: c.varint(), key: c.key()}
	d.state = c.state(d.key.kind)
	if c.err == nil && len(c.b) != 0 {
		c.fail("trailing bytes")
	}
	return d, c.err
}

type entry struct {
	key   key
	state []byte
}

func appendState(b []byte, entries []entry) []byte {
	b = append(b, wireVersion, msgState)
	b = binary.AppendUvarint(b, uint64(len(entries)))
	for _, e := range entries {
		b = append(b, byte(e.key.kind))
		b = binary.AppendUvarint(b, uint64(len(e.key.name)))
		b = append(b, e.key.name...)
		b = binary.AppendUvarint(b, uint64(len(e.state)))
		b = append(b, e.state...)
	}
	return b
}

// decodeState decodes a full-state message; it never panics.
func decodeState(b []byte) (map[key]crdt.State, error) {
	c := &cursor{b: b}
	c.header(msgState)
	n := c.uvarint()
	if c.err == nil && n > uint64(len(c.b)/4) {
		c.fail("count exceeds input")
	}
	out := make(map[key]crdt.State, min(n, 1024))
	for range n {
		k := c.key()
		s := c.state(k.kind)
		if c.err != nil {
			break
		}
		if _, dup := out[k]; dup {
			c.fail("duplicate object " + k.String())
			break
		}
		out[k] = s
	}
	if c.err == nil && len(c.b) != 0 {
		c.fail("trailing bytes")
	}
	if c.err != nil {
		return nil, c.err
	}
	return out, nil
}

func encodeMeta(m map[string]string) []byte {
	if len(m) == 0 {
		return nil
	}
	b := []byte{wireVersion}
	b = binary.AppendUvarint(b, uint64(len(m)))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		b = binary.AppendUvarint(b, uint64(len(k)))
		b = append(b, k...)
		b = binary.AppendUvarint(b, uint64(len(m[k])))
		b = append(b, m[k]...)
	}
	return b
}

// decodeMeta decodes member metadata; bad input yields nil, never a panic.
func decodeMeta(b []byte) map[string]string {
	if len(b) == 0 {
		return nil
	}
	c := &cursor{b: b}
	if c.byte() != wireVersion {
		return nil
	}
	n := c.uvarint()
	if c.err != nil || n > uint64(len(c.b)/2) {
		return nil
	}
	m := make(map[string]string, n)
	for range n {
		k := string(c.raw(len(c.b)))
		v := string(c.raw(len(c.b)))
		if c.err != nil {
			return nil
		}
		m[k] = v
	}
	return m
}

func sortObjects(o []Object) {
	slices.SortFunc(o, func(a, b Object) int {
		if a.Kind != b.Kind {
			return int(a.Kind) - int(b.Kind)
		}
		if a.Name < b.Name {
			return -1
		}
		if a.Name > b.Name {
			return 1
		}
		return 0
	})
}
