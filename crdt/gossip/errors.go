package gossip

import "errors"

// Errors returned by this package. Compare with errors.Is.
var (
	// ErrInvalidConfig reports a Config that Validate rejects.
	ErrInvalidConfig = errors.New("gossip: invalid config")
	// ErrNotStarted reports a call that needs the network before Start.
	ErrNotStarted = errors.New("gossip: not started")
	// ErrClosed reports a call after Shutdown.
	ErrClosed = errors.New("gossip: closed")
	// ErrInvalidName reports an object name that is empty or longer than
	// MaxNameLen bytes.
	ErrInvalidName = errors.New("gossip: invalid object name")
	// ErrMalformedMessage reports a gossip message or stored record that
	// does not decode.
	ErrMalformedMessage = errors.New("gossip: malformed message")
	// ErrMessageTooLarge reports a message larger than the configured limit.
	ErrMessageTooLarge = errors.New("gossip: message too large")
	// ErrCorruptStore reports a data directory whose CRDT state does not
	// decode; the node refuses to start rather than reuse its replica
	// identity with lost state.
	ErrCorruptStore = errors.New("gossip: corrupt state store")
)
