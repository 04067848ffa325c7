package crdt

import "errors"

// Errors returned by this package. Compare with errors.Is; decoders wrap
// ErrMalformed with a description of what was wrong.
var (
	// ErrMalformed reports an encoding that is truncated, has trailing
	// bytes, a non-canonical varint, unsorted or duplicate keys, a zero
	// entry, or a count larger than the input could hold.
	ErrMalformed = errors.New("crdt: malformed encoding")
	// ErrUnsupportedVersion reports an encoding whose version byte this
	// build does not understand.
	ErrUnsupportedVersion = errors.New("crdt: unsupported encoding version")
	// ErrUnknownKind reports a Kind this package does not define.
	ErrUnknownKind = errors.New("crdt: unknown kind")
	// ErrKindMismatch reports a merge of two states of different kinds, or
	// decoding a state of one kind into a value of another.
	ErrKindMismatch = errors.New("crdt: kind mismatch")
	// ErrInsufficientRights reports a BoundedCounter decrement or transfer
	// larger than the rights the replica holds locally.
	ErrInsufficientRights = errors.New("crdt: insufficient rights")
	// ErrInvalidArgument reports an empty replica ID or a negative amount.
	ErrInvalidArgument = errors.New("crdt: invalid argument")
)
