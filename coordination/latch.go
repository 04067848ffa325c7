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
// count. When it reaches zero every Await returns.
func (l *Latch) CountDown(ctx context.Context) (int64, error) {
	res, err := l.lb.CountDownLatch(ctx, l.name, api.LatchRequest{Session: l.s.id, RequestID: l.s.nextRequestID()})
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
