package coordination

import (
	"context"
	"errors"
	"fmt"

	"github.com/statenode/statenode/api"
)

// LatchBackend is the optional ability of a Backend to run countdown
// latches (*node.Node and *client.Client have it). AwaitLatch blocks
// (bounded by ctx).
type LatchBackend interface {
	CreateLatch(ctx context.Context, name string, req api.LatchRequest) (*api.LatchInfo, error)
	CountDownLatch(ctx context.Context, name string, req api.LatchRequest) (*api.LatchInfo, error)
	DeleteLatch(ctx context.Context, name string, req api.LatchRequest) error
	LatchInfo(ctx context.Context, name string) (*api.LatchInfo, error)
	AwaitLatch(ctx context.Context, name string) (*api.LatchInfo, error)
}

// Latch is a named countdown latch owned by the state machine. It is a
// durable object, not tied to any session: it survives the sessions that
// created it or counted it down, and lives until Delete. The session only
// makes each count-down exactly-once (a retried count-down applies once).
type Latch struct {
	s    *Session
	lb   LatchBackend
	name string
}

// NewLatch creates latch name with the given count, or opens it if it
// exists with that count (another count: ErrMismatch).
func NewLatch(ctx context.Context, s *Session, name string, count int) (*Latch, error) {
	lb, ok := s.b.(LatchBackend)
	if !ok {
		return nil, fmt.Errorf("%w: latches", ErrUnsupported)
	}
	if _, err := lb.CreateLatch(ctx, name, api.LatchRequest{Session: s.id, RequestID: s.nextRequestID(), Count: int64(count)}); err != nil {
		return nil, fmt.Errorf("coordination: create latch %q: %w", name, translate(err))
	}
	return &Latch{s: s, lb: lb, name: name}, nil
}

// CountDown decrements the count (never below zero) and returns the new
// count. When it reaches zero every Await returns. Its request ID is the
// session's own: a call retried by the backend (after a broken connection
// or a leader change) applies once, but a second CountDown is a second
// count-down (see CountDownID).
func (l *Latch) CountDown(ctx context.Context) (int64, error) {
	return l.countDown(ctx, l.s.nextRequestID())
}

// Caller-chosen request IDs. A Session numbers its own requests 1, 2, 3,
// ... and never reaches the top half of the ID space, so an ID the caller
// chooses is sent with CallerRequestIDBit set and cannot collide with the
// session's own requests. Caller IDs run from 1 to MaxCallerRequestID; the
// CLI uses the same space (statenode latch countdown --session S
// --request-id N sends CallerRequestIDBit|N, and its random IDs set the
// next bit too, above every caller ID).
const (
	// CallerRequestIDBit is set in the wire request ID of every
	// caller-chosen ID (CountDownID's id is sent as CallerRequestIDBit|id).
	CallerRequestIDBit = 1 << 63
	// MaxCallerRequestID is the largest ID CountDownID accepts.
	MaxCallerRequestID = 1<<62 - 1
)

// CountDownID is CountDown with a request ID the caller chooses, from 1 to
// MaxCallerRequestID. IDs are remembered per session, not per latch: an ID
// must be unique among the caller-chosen IDs of the latch's session, over
// every latch it counts down. A count-down whose answer was lost (a
// timeout, a broken connection) can be sent again with the same ID and is
// applied once, answering the count it left behind. An ID out of
// range fails at once and sends nothing. The session remembers the ID
// while it lives, until 256 newer requests of the session have applied: a
// resend must come before that.
func (l *Latch) CountDownID(ctx context.Context, id uint64) (int64, error) {
	if id == 0 || id > MaxCallerRequestID {
		return 0, fmt.Errorf("coordination: count down latch %q: request ID %d is not in 1..%d", l.name, id, uint64(MaxCallerRequestID))
	}
	return l.countDown(ctx, CallerRequestIDBit|id)
}

func (l *Latch) countDown(ctx context.Context, reqID uint64) (int64, error) {
	res, err := l.lb.CountDownLatch(ctx, l.name, api.LatchRequest{Session: l.s.id, RequestID: reqID})
	if err != nil {
		return 0, fmt.Errorf("coordination: count down latch %q: %w", l.name, translate(err))
	}
	return res.Count, nil
}

// Await blocks until the count is zero or ctx ends (ErrWaitTimeout). A
// deleted latch fails with ErrNotFound. It needs no live session.
func (l *Latch) Await(ctx context.Context) error {
	if _, err := l.lb.AwaitLatch(ctx, l.name); err != nil {
		if ctx.Err() != nil && !errors.Is(translate(err), ErrWaitTimeout) {
			return fmt.Errorf("%w: latch %q: %w", ErrWaitTimeout, l.name, err)
		}
		return fmt.Errorf("coordination: await latch %q: %w", l.name, translate(err))
	}
	return nil
}

// Count reads the current count.
func (l *Latch) Count(ctx context.Context) (int64, error) {
	res, err := l.lb.LatchInfo(ctx, l.name)
	if err != nil {
		return 0, fmt.Errorf("coordination: latch %q: %w", l.name, translate(err))
	}
	return res.Count, nil
}

// Delete deletes the latch; waiters fail with ErrNotFound.
func (l *Latch) Delete(ctx context.Context) error {
	if err := l.lb.DeleteLatch(ctx, l.name, api.LatchRequest{Session: l.s.id, RequestID: l.s.nextRequestID()}); err != nil {
		return fmt.Errorf("coordination: delete latch %q: %w", l.name, translate(err))
	}
	return nil
}

// Name is the latch's name.
func (l *Latch) Name() string { return l.name }
