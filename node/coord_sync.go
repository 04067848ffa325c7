package node

import (
	"context"
	"errors"
	"fmt"

	"github.com/statenode/statenode/api"
	"github.com/statenode/statenode/fsm"
)

// Semaphores, barriers and countdown latches. Like locks, every mutation
// is a CmdCoord command; a queued request waits for its remembered result
// to change, woken by the apply that changes the object (no polling).

// waitResult waits for the outcome of session's queued request reqID,
// committed at coordination index idx. changed returns the object's
// notification channel. When ctx ends, withdraw is called with the cause
// and its error returned.
func (n *Node) waitResult(ctx context.Context, session, reqID, idx uint64, what string,
	changed func() <-chan struct{}, withdraw func(cause error) error) (*fsm.CoordResult, error) {
	if err := n.waitQueued(ctx, idx, withdraw); err != nil {
		return nil, err
	}
	for {
		leader := n.leaderChanged()
		ch := changed()
		res, ok := n.fsm.Result(session, reqID)
		if ok && res.Code != fsm.CoordQueued {
			return &res, res.Err()
		}
		if !ok {
			if _, alive := n.fsm.Session(session); !alive {
				return nil, fmt.Errorf("%w: session %d ended while waiting for %s", fsm.ErrSessionNotFound, session, what)
			}
			return nil, fmt.Errorf("%w: the wait for %s was withdrawn", fsm.ErrNotWaiting, what)
		}
		select {
		case <-ch:
		case <-leader:
			if n.abandonWait(ctx) {
				return nil, fmt.Errorf("%w: this member stopped leading while waiting for %s; retry elsewhere", ErrNoLeader, what)
			}
		case <-ctx.Done():
			return nil, withdraw(ctx.Err())
		case <-n.ctx.Done():
			return nil, ErrStopped
		}
	}
}

// withdraw commits cancel (a cancel command) after a waiter gave up, and
// returns the waiter's error: ErrWaitTimeout (nothing is held) when the
// cancel withdrew the wait or found nothing to withdraw (fsm.ErrNotWaiting,
// fsm.ErrSessionNotFound, or one of nothing), ErrTimeout (outcome unknown)
// when the cancel itself failed.
func (n *Node) withdraw(cancel *fsm.CoordRequest, what string, cause error, nothing ...error) error {
	ctx, stop := context.WithTimeout(n.ctx, cancelTimeout)
	defer stop()
	_, err := n.coord(ctx, cancel)
	if err == nil || errors.Is(err, fsm.ErrSessionNotFound) || errors.Is(err, fsm.ErrNotWaiting) {
		return fmt.Errorf("%w: %s: %w", ErrWaitTimeout, what, cause)
	}
	for _, e := range nothing {
		if errors.Is(err, e) {
			return fmt.Errorf("%w: %s: %w", ErrWaitTimeout, what, cause)
		}
	}
	// The wait may still be queued, or granted: its outcome is unknown, and
	// ErrWaitTimeout would tell the caller that nothing is held.
	return fmt.Errorf("%w: %s: %w; withdrawing the wait failed (%w): it may still be queued or granted", ErrTimeout, what, cause, err)
}

// --- semaphores ---------------------------------------------------------------

// AcquireSemaphore takes req.Count of the req.Permits permits of semaphore
// name for req.Session. Waiters are granted in strict FIFO order: a large
// request at the head of the queue blocks smaller ones behind it. It blocks
// until granted or ctx ends (the wait is withdrawn; ErrWaitTimeout); with
// req.Try it fails at once with fsm.ErrNoPermits. A size other than the
// semaphore's fails with fsm.ErrMismatch; a wait that would close a
// wait-for cycle with fsm.ErrDeadlock. A retry with the same RequestID is
// applied once.
func (n *Node) AcquireSemaphore(ctx context.Context, name string, req api.SemaphoreRequest) (*api.SemaphoreResponse, error) {
	cr := &fsm.CoordRequest{Op: fsm.OpSemAcquire, Session: req.Session, RequestID: req.RequestID, Name: name, N: req.Permits, K: req.Count}
	if req.Try {
		cr.Token = 1
	}
	res, err := n.coord(ctx, cr)
	if err != nil {
		return nil, err
	}
	if res.Code == fsm.CoordQueued {
		what := fmt.Sprintf("semaphore %q", name)
		res, err = n.waitResult(ctx, req.Session, req.RequestID, res.Index, what,
			func() <-chan struct{} { return n.fsm.SemaphoreChanged(name) },
			func(cause error) error {
				return n.withdraw(&fsm.CoordRequest{Op: fsm.OpSemCancel, Session: req.Session, Name: name, Token: req.RequestID}, what, cause)
			})
		if err != nil {
			return nil, err
		}
	}
	return &api.SemaphoreResponse{Token: res.Token, Count: res.Count}, nil
}

// ReleaseSemaphore returns req.Count permits of semaphore name held by
// req.Session (0: all of them) and grants waiters in the same command. A
// session that holds fewer gets fsm.ErrNotOwner. A retry with the same
// RequestID is applied once.
func (n *Node) ReleaseSemaphore(ctx context.Context, name string, req api.SemaphoreReleaseRequest) error {
	_, err := n.coord(ctx, &fsm.CoordRequest{Op: fsm.OpSemRelease, Session: req.Session, RequestID: req.RequestID, Name: name, K: req.Count})
	return err
}

// SemaphoreInfo describes semaphore name (linearizable).
func (n *Node) SemaphoreInfo(ctx context.Context, name string) (*api.SemaphoreInfo, error) {
	if name == "" {
		return nil, fmt.Errorf("%w: semaphore name is empty", fsm.ErrInvalid)
	}
	if err := n.linearize(ctx); err != nil {
		return nil, err
	}
	m := n.fsm.Semaphore(name)
	out := &api.SemaphoreInfo{Name: m.Name, Permits: m.Permits, Used: m.Used,
		Holders: make([]api.SemaphoreHold, 0, len(m.Holders)), Waiters: make([]api.SemaphoreHold, 0, len(m.Waiters))}
	for _, h := range m.Holders {
		out.Holders = append(out.Holders, api.SemaphoreHold{Session: h.Session, Permits: h.Permits})
	}
	for _, w := range m.Waiters {
		out.Waiters = append(out.Waiters, api.SemaphoreHold{Session: w.Session, Permits: w.Permits})
	}
	return out, nil
}

// --- barriers -------------------------------------------------------------------

// Barrier runs one barrier action for req.Session (see api.BarrierRequest):
//
//   - await (cyclic barrier of req.Parties): blocks until the generation's
//     last party arrives; every party learns the generation (the log
//     position of the trip) and its arrival index.
//   - enter (double barrier): blocks until req.Parties parties entered.
//   - leave (double barrier): blocks until every entered party left.
//   - reset: repairs a broken barrier.
//
// If a registered party's session ends, the barrier breaks: every waiter
// gets fsm.ErrBroken naming that session, and so does every later request
// until a reset. When ctx ends a pending await or enter is withdrawn
// (ErrWaitTimeout); a leave stays done.
func (n *Node) Barrier(ctx context.Context, name string, req api.BarrierRequest) (*api.BarrierResponse, error) {
	cr := &fsm.CoordRequest{Session: req.Session, RequestID: req.RequestID, Name: name, N: req.Parties}
	switch req.Action {
	case "", api.BarrierAwait:
		cr.Op = fsm.OpBarrierAwait
	case api.BarrierEnter:
		cr.Op = fsm.OpBarrierEnter
	case api.BarrierLeave:
		cr.Op, cr.N = fsm.OpBarrierLeave, 0
	case api.BarrierReset:
		cr.Op, cr.N = fsm.OpBarrierReset, 0
	default:
		return nil, fmt.Errorf("%w: unknown barrier action %q", fsm.ErrInvalid, req.Action)
	}
	res, err := n.coord(ctx, cr)
	if err != nil {
		return nil, err
	}
	if res.Code == fsm.CoordQueued {
		what := fmt.Sprintf("barrier %q", name)
		res, err = n.waitResult(ctx, req.Session, req.RequestID, res.Index, what,
			func() <-chan struct{} { return n.fsm.BarrierChanged(name) },
			func(cause error) error {
				if cr.Op == fsm.OpBarrierLeave {
					return fmt.Errorf("%w: %s: %w", ErrWaitTimeout, what, cause)
				}
				return n.withdraw(&fsm.CoordRequest{Op: fsm.OpBarrierCancel, Session: req.Session, Name: name, Token: req.RequestID}, what, cause)
			})
		if err != nil {
			return nil, err
		}
	}
	return &api.BarrierResponse{Generation: res.Token, Arrival: res.Count}, nil
}

// BarrierInfo describes barrier name (linearizable).
func (n *Node) BarrierInfo(ctx context.Context, name string) (*api.BarrierInfo, error) {
	if name == "" {
		return nil, fmt.Errorf("%w: barrier name is empty", fsm.ErrInvalid)
	}
	if err := n.linearize(ctx); err != nil {
		return nil, err
	}
	b := n.fsm.Barrier(name)
	arrived := b.Arrived
	if arrived == nil {
		arrived = []uint64{}
	}
	return &api.BarrierInfo{Name: b.Name, Double: b.Double, Parties: b.Parties, Arrived: arrived, Left: b.Left,
		Leaving: b.Leaving, Broken: b.Broken, Detail: b.Detail}, nil
}

// --- latches -----------------------------------------------------------------------

func latchToAPI(l fsm.LatchInfo) *api.LatchInfo {
	return &api.LatchInfo{Name: l.Name, Initial: l.Initial, Count: l.Count}
}

// CreateLatch creates latch name with count req.Count. Creating an
// existing latch with the same count changes nothing and reports its
// current count; another count fails with fsm.ErrMismatch. A latch is not
// tied to a session (req.Session only deduplicates the request): it lives
// until DeleteLatch.
func (n *Node) CreateLatch(ctx context.Context, name string, req api.LatchRequest) (*api.LatchInfo, error) {
	res, err := n.coord(ctx, &fsm.CoordRequest{Op: fsm.OpLatchCreate, Session: req.Session, RequestID: req.RequestID, Name: name, N: req.Count})
	if err != nil {
		return nil, err
	}
	return &api.LatchInfo{Name: name, Initial: req.Count, Count: res.Count}, nil
}

// CountDownLatch decrements latch name (not below zero) once per request
// ID: a retried count-down is applied once and answers as the first did.
// The answer holds the new count and the latch's initial count. A missing
// latch is fsm.ErrNotFound.
func (n *Node) CountDownLatch(ctx context.Context, name string, req api.LatchRequest) (*api.LatchInfo, error) {
	res, err := n.coord(ctx, &fsm.CoordRequest{Op: fsm.OpLatchCountDown, Session: req.Session, RequestID: req.RequestID, Name: name})
	if err != nil {
		return nil, err
	}
	return &api.LatchInfo{Name: name, Count: res.Count, Initial: int64(res.Token)}, nil
}

// DeleteLatch deletes latch name; its waiters fail with fsm.ErrNotFound.
func (n *Node) DeleteLatch(ctx context.Context, name string, req api.LatchRequest) error {
	_, err := n.coord(ctx, &fsm.CoordRequest{Op: fsm.OpLatchDelete, Session: req.Session, RequestID: req.RequestID, Name: name})
	return err
}

// LatchInfo describes latch name (linearizable); fsm.ErrNotFound if it
// does not exist.
func (n *Node) LatchInfo(ctx context.Context, name string) (*api.LatchInfo, error) {
	if name == "" {
		return nil, fmt.Errorf("%w: latch name is empty", fsm.ErrInvalid)
	}
	if err := n.linearize(ctx); err != nil {
		return nil, err
	}
	l := n.fsm.Latch(name)
	if !l.Exists {
		return nil, fmt.Errorf("%w: latch %q", fsm.ErrNotFound, name)
	}
	return latchToAPI(l), nil
}

// AwaitLatch blocks until latch name reaches zero (woken by the apply that
// counts it down to zero) or ctx ends (ErrWaitTimeout). A latch that does
// not exist, or is deleted meanwhile, is fsm.ErrNotFound.
func (n *Node) AwaitLatch(ctx context.Context, name string) (*api.LatchInfo, error) {
	if name == "" {
		return nil, fmt.Errorf("%w: latch name is empty", fsm.ErrInvalid)
	}
	if err := n.linearize(ctx); err != nil {
		return nil, err
	}
	for {
		ch := n.fsm.LatchChanged(name)
		l := n.fsm.Latch(name)
		switch {
		case !l.Exists:
			return nil, fmt.Errorf("%w: latch %q", fsm.ErrNotFound, name)
		case l.Count == 0:
			return latchToAPI(l), nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, fmt.Errorf("%w: latch %q still at %d: %w", ErrWaitTimeout, name, l.Count, ctx.Err())
		case <-n.ctx.Done():
			return nil, ErrStopped
		}
	}
}

// --- ephemeral keys -------------------------------------------------------------

// PutEphemeral sets key to value attached to session: the key is deleted
// in the command that ends the session (expiry or destroy), and watchers
// see the delete. A later put without a session detaches it. A session
// that does not exist is fsm.ErrSessionNotFound and nothing is written.
func (n *Node) PutEphemeral(ctx context.Context, key, value []byte, session uint64) (int64, error) {
	if session == 0 {
		return 0, fmt.Errorf("%w: ephemeral put without a session", fsm.ErrInvalid)
	}
	resp, err := n.Txn(ctx, &fsm.Request{Success: []fsm.Op{{Type: fsm.OpPut, Key: key, Value: value, Session: session}}})
	if err != nil {
		return 0, err
	}
	return resp.Revision, nil
}
