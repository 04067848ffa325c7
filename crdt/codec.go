package crdt

import (
	"encoding/binary"
	"fmt"
	"slices"
)

// Version is the encoding version this build writes. Decoders accept only
// versions they know and return ErrUnsupportedVersion for others.
const Version byte = 1

// Kind identifies a CRDT type in its encoding.
type Kind uint8

// The CRDT kinds. Values are part of the wire and disk format: never reuse
// or renumber them.
const (
	KindGCounter       Kind = 1
	KindPNCounter      Kind = 2
	KindLWWRegister    Kind = 3
	KindMVRegister     Kind = 4
	KindORSet          Kind = 5
	KindLWWMap         Kind = 6
	KindBoundedCounter Kind = 7
)

var kindNames = map[Kind]string{
	KindGCounter:       "gcounter",
	KindPNCounter:      "pncounter",
	KindLWWRegister:    "lwwregister",
	KindMVRegister:     "mvregister",
	KindORSet:          "orset",
	KindLWWMap:         "lwwmap",
	KindBoundedCounter: "boundedcounter",
}

// String returns the kind's lower-case name ("orset"), or "kind(N)".
func (k Kind) String() string {
	if s, ok := kindNames[k]; ok {
		return s
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// ParseKind returns the Kind named s (as printed by Kind.String).
func ParseKind(s string) (Kind, error) {
	for k, n := range kindNames {
		if n == s {
			return k, nil
		}
	}
	return 0, fmt.Errorf("%w: %q", ErrUnknownKind, s)
}

// State is what every CRDT in this package implements: a join-semilattice
// value that can be merged, copied and encoded. Deltas returned by mutators
// are States of the same kind and merge exactly like full states.
//
// States are not safe for concurrent use; callers serialize access.
type State interface {
	// Kind returns the type of the state.
	Kind() Kind
	// MergeState joins other into the receiver and reports whether the
	// receiver changed. It returns ErrKindMismatch (and changes nothing) if
	// other is of another kind.
	MergeState(other State) (changed bool, err error)
	// CloneState returns a deep copy.
	CloneState() State
	// AppendBinary appends the canonical encoding: equal states encode to
	// equal bytes.
	AppendBinary(b []byte) ([]byte, error)
	// MarshalBinary returns the canonical encoding.
	MarshalBinary() ([]byte, error)
}

// New returns an empty state of kind k.
func New(k Kind) (State, error) {
	switch k {
	case KindGCounter:
		return NewGCounter(), nil
	case KindPNCounter:
		return NewPNCounter(), nil
	case KindLWWRegister:
		return NewLWWRegister(), nil
	case KindMVRegister:
		return NewMVRegister(), nil
	case KindORSet:
		return NewORSet(), nil
	case KindLWWMap:
		return NewLWWMap(), nil
	case KindBoundedCounter:
		return NewBoundedCounter(), nil
	}
	return nil, fmt.Errorf("%w: %d", ErrUnknownKind, uint8(k))
}

// Decode decodes any state encoded by AppendBinary. It never panics: bad
// input yields an error wrapping ErrMalformed, ErrUnsupportedVersion or
// ErrUnknownKind. The result does not alias b.
func Decode(b []byte) (State, error) {
	if len(b) < 2 {
		return nil, fmt.Errorf("%w: %d-byte header", ErrMalformed, len(b))
	}
	if b[0] != Version {
		return nil, fmt.Errorf("%w: %d", ErrUnsupportedVersion, b[0])
	}
	s, err := New(Kind(b[1]))
	if err != nil {
		return nil, err
	}
	if err := s.(interface{ UnmarshalBinary([]byte) error }).UnmarshalBinary(b); err != nil {
		return nil, err
	}
	return s, nil
}

func appendHeader(b []byte, k Kind) []byte { return append(b, Version, byte(k)) }

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendBytes(b []byte, v []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

// reader decodes canonical encodings; the first error sticks and later
// reads return zero values.
type reader struct {
	b   []byte
	err error
}

func newReader(b []byte, k Kind) *reader {
	r := &reader{b: b}
	switch {
	case len(b) < 2:
		r.fail("truncated header")
	case b[0] != Version:
		r.err = fmt.Errorf("%w: %d", ErrUnsupportedVersion, b[0])
	case Kind(b[1]) != k:
		r.err = fmt.Errorf("%w: decoding %v as %v", ErrKindMismatch, Kind(b[1]), k)
	default:
		r.b = b[2:]
	}
	return r
}

func (r *reader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, args...)...)
	}
	r.b = nil
}

func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail("bad varint")
		return 0
	}
	if n != uvarintLen(v) {
		r.fail("non-canonical varint")
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) varint() int64 {
	u := r.uvarint()
	v := int64(u >> 1)
	if u&1 != 0 {
		v = ^v
	}
	return v
}

func (r *reader) byte() byte {
	if r.err != nil {
		return 0
	}
	if len(r.b) == 0 {
		r.fail("truncated")
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

// count reads a collection length, rejecting one that could not fit in the
// remaining input given that every element takes at least minSize bytes.
func (r *reader) count(minSize int) int {
	n := r.uvarint()
	if r.err == nil && n > uint64(len(r.b)/minSize) {
		r.fail("count %d exceeds input", n)
		return 0
	}
	return int(n)
}

func (r *reader) raw() []byte {
	n := r.uvarint()
	if r.err != nil {
		return nil
	}
	if n > uint64(len(r.b)) {
		r.fail("length %d exceeds input", n)
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) string() string { return string(r.raw()) }

func (r *reader) bytes() []byte { return slices.Clone(r.raw()) }

func (r *reader) timestamp() Timestamp {
	return Timestamp{Wall: r.varint(), Logical: r.uvarint(), Replica: r.string()}
}

func (r *reader) done() error {
	if r.err == nil && len(r.b) != 0 {
		r.fail("%d trailing bytes", len(r.b))
	}
	return r.err
}

func uvarintLen(v uint64) int {
	var buf [binary.MaxVarintLen64]byte
	return binary.PutUvarint(buf[:], v)
}

func appendTimestamp(b []byte, t Timestamp) []byte {
	b = binary.AppendVarint(b, t.Wall)
	b = binary.AppendUvarint(b, t.Logical)
	return appendString(b, t.Replica)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
