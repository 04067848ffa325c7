package redlock

import (
	"errors"
	"fmt"
)

// Errors of the package; match with errors.Is. Quorum failures come as a
// *QuorumError that matches ErrNotAcquired or ErrLockLost and also wraps
// the servers' own errors (reachable with errors.Is/errors.As).
var (
	// ErrNotAcquired: no attempt reached a quorum of servers within the
	// validity time (or ctx ended first). Whatever an attempt did get
	// was released.
	ErrNotAcquired = errors.New("redlock: lock not acquired")
	// ErrLockLost: the lock is no longer held by this token on a quorum of
	// servers, or its validity time had ended (Extend, Unlock). Another
	// client may hold it now.
	ErrLockLost = errors.New("redlock: lock lost")
	// ErrInvalidConfig: a Config field, the server list or a lock name is
	// unusable; nothing was sent to any server.
	ErrInvalidConfig = errors.New("redlock: invalid config")
	// ErrClosed: the Redlock was closed.
	ErrClosed = errors.New("redlock: closed")
)

// QuorumError reports an operation that did not reach a quorum of servers.
// It matches its Kind (ErrNotAcquired or ErrLockLost) and every server
// error in Errs with errors.Is; if the caller's context ended, it matches
// ctx.Err() as well.
type QuorumError struct {
	Kind     error   // ErrNotAcquired or ErrLockLost
	Op       string  // "lock", "extend" or "unlock"
	Name     string  // the lock name
	Reached  int     // servers that succeeded in the last attempt
	Servers  int     // servers in the set
	Quorum   int     // Servers/2 + 1
	Attempts int     // attempts made (1 for extend and unlock)
	Reason   string  // why the attempt failed, when not the count alone
	Errs     []error // server and context errors of the last attempt
}

func (e *QuorumError) Error() string {
	s := fmt.Sprintf("%v: %s %q: %d of %d servers (quorum %d)", e.Kind, e.Op, e.Name, e.Reached, e.Servers, e.Quorum)
	if e.Attempts > 1 {
		s += fmt.Sprintf(" after %d attempts", e.Attempts)
	}
	if e.Reason != "" {
		s += ", " + e.Reason
	}
	if len(e.Errs) > 0 {
		s += ": " + errors.Join(e.Errs...).Error()
	}
	return s
}

// Unwrap returns Kind followed by the server errors.
func (e *QuorumError) Unwrap() []error {
	return append([]error{e.Kind}, e.Errs...)
}
