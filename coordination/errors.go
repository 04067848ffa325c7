package coordination

import (
	"errors"
	"fmt"

	"github.com/statenode/statenode/client"
	"github.com/statenode/statenode/fsm"
	"github.com/statenode/statenode/node"
)

// Errors of the primitives; match with errors.Is. They wrap the backend's
// own error (node or client), which stays reachable with errors.As.
var (
	// ErrSessionExpired: the session ended (expired, destroyed, or lost:
	// no keepalive succeeded for a whole TTL); everything it held is gone.
	ErrSessionExpired = errors.New("coordination: session expired")
	// ErrLocked: TryLock found the lock held.
	ErrLocked = errors.New("coordination: lock is held")
	// ErrNotOwner: Unlock, Resign or Proclaim without holding or leading
	// (or with a stale token).
	ErrNotOwner = errors.New("coordination: not the owner")
	// ErrDeadlock: waiting would close a cycle of sessions waiting for each
	// other; the message names the cycle.
	ErrDeadlock = errors.New("coordination: deadlock")
	// ErrFenced: a fenced write was refused because a newer token exists.
	ErrFenced = errors.New("coordination: fencing token is stale")
	// ErrReentrancyLimit: the session holds the lock as often as allowed.
	ErrReentrancyLimit = errors.New("coordination: reentrancy limit reached")
	// ErrWaitTimeout: a blocking call's context ended; the wait was
	// withdrawn and nothing is held.
	ErrWaitTimeout = errors.New("coordination: wait timed out")
	// ErrClosed: the session was closed by its owner.
	ErrClosed = errors.New("coordination: session closed")
	// ErrMismatch: the semaphore, barrier or latch exists with another
	// size (permits, parties, count) or kind; nothing changed.
	ErrMismatch = errors.New("coordination: size or kind mismatch")
	// ErrBroken: the barrier is broken: a registered party's session ended
	// (the message names it) or someone reset it while parties waited.
	// Every later request fails the same way until Reset.
	ErrBroken = errors.New("coordination: barrier is broken")
	// ErrNoPermits: TryAcquire found too few permits free.
	ErrNoPermits = errors.New("coordination: not enough permits")
	// ErrNotFound: the latch does not exist (never created, or deleted).
	ErrNotFound = errors.New("coordination: no such object")
	// ErrUnsupported: the session's backend lacks the primitive.
	ErrUnsupported = errors.New("coordination: backend does not support this primitive")
)

// translate maps a backend error onto the package's sentinels.
func translate(err error) error {
	if err == nil {
		return nil
	}
	for _, m := range []struct {
		ours   error
		theirs []error
	}{
		{ErrSessionExpired, []error{fsm.ErrSessionNotFound, client.ErrSessionNotFound}},
		{ErrLocked, []error{fsm.ErrLocked, client.ErrLocked}},
		{ErrNotOwner, []error{fsm.ErrNotOwner, client.ErrNotOwner}},
		{ErrDeadlock, []error{fsm.ErrDeadlock, client.ErrDeadlock}},
		{ErrFenced, []error{fsm.ErrFenced, client.ErrFenced}},
		{ErrReentrancyLimit, []error{fsm.ErrReentrancyLimit, client.ErrReentrancyLimit}},
		{ErrWaitTimeout, []error{node.ErrWaitTimeout, client.ErrWaitTimeout}},
		{ErrMismatch, []error{fsm.ErrMismatch, client.ErrMismatch}},
		{ErrBroken, []error{fsm.ErrBroken, client.ErrBroken}},
		{ErrNoPermits, []error{fsm.ErrNoPermits, client.ErrNoPermits}},
		{ErrNotFound, []error{fsm.ErrNotFound, client.ErrObjectNotFound}},
	} {
		for _, t := range m.theirs {
			if errors.Is(err, t) {
				return fmt.Errorf("%w: %w", m.ours, err)
			}
		}
	}
	return err
}
