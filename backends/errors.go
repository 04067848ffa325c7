package backends

import (
	"errors"
	"fmt"
)

// Sentinel errors returned by every Backend. Stores and wrappers wrap them
// with %w and add context; compare with errors.Is.
var (
	// ErrNotFound is returned by Get (and CompareAndSwap on a missing key
	// with a non-zero expected version reports ErrVersionMismatch instead)
	// when the key does not exist or has expired.
	ErrNotFound = errors.New("backends: key not found")

	// ErrVersionMismatch is returned by CompareAndSwap when the key's
	// current version is not the expected one.
	ErrVersionMismatch = errors.New("backends: version mismatch")

	// ErrFenced is returned by a write carrying a Fence when the store has
	// already seen a newer token for the same lock. Nothing was written.
	// The concrete error is a *FencedError.
	ErrFenced = errors.New("backends: fenced: a newer fencing token was seen")

	// ErrUnavailable is returned when the store cannot be reached (network
	// error, failover in progress, circuit breaker open). The operation may
	// or may not have been applied if it was a write.
	ErrUnavailable = errors.New("backends: store unavailable")

	// ErrInvalidKey is returned for a key that is empty, longer than
	// MaxKeySize bytes, not valid UTF-8, or contains a NUL byte.
	ErrInvalidKey = errors.New("backends: invalid key")

	// ErrTooLarge is returned for a value longer than MaxValueSize bytes.
	ErrTooLarge = errors.New("backends: value too large")

	// ErrClosed is returned by every call made after Close.
	ErrClosed = errors.New("backends: backend closed")
)

// FencedError is the error behind ErrFenced: Token was presented for Lock,
// but the store had already seen Seen (> Token).
type FencedError struct {
	Lock  string // the lock name of the rejected Fence
	Token uint64 // the token the write carried
	Seen  uint64 // the highest token the store has seen for Lock
}

func (e *FencedError) Error() string {
	return fmt.Sprintf("backends: fenced: lock %q token %d is older than token %d already seen", e.Lock, e.Token, e.Seen)
}

// Is reports whether target is ErrFenced.
func (e *FencedError) Is(target error) bool { return target == ErrFenced }
