package node

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/statenode/statenode/api"
	"github.com/statenode/statenode/fsm"
)

// Coordination: sessions, fenced locks and elections. Every mutation is a
// CmdCoord command committed through Raft; waiters sleep on the state
// machine's per-object notification, closed by the apply that grants or
// frees the object (no polling). See docs/COORDINATION.md.

const (
	// minSessionTTL bounds session TTLs from below: a TTL shorter than an
	// election cannot survive a leader change.
	minSessionTTL = 100 * time.Millisecond
	// maxReapDelay bounds how late the leader notices an expired session
	// created after it last looked.
	maxReapDelay = 100 * time.Millisecond
	// cancelTimeout bounds withdrawing a waiter after its caller gave up.
	cancelTimeout = 5 * time.Second
)

// abandonWait reports whether a remote wait should move to another member:
// if this node stops leading, the wait ends with ErrNoLeader (the request
// ID makes the client's retry on the new leader resume the same wait), so
// a client is never stuck on a member cut off from the cluster.
func (n *Node) abandonWait(ctx context.Context) bool {
	return isRemote(ctx) && !n.isReadyLeader()
}

// ErrWaitTimeout: a blocking acquire or campaign ended with its context;
// the wait was withdrawn (nothing is held).
var ErrWaitTimeout = errors.New("node: wait timed out")

// coord validates and commits a coordination request. Application errors
// come back from the result (fsm.ErrNotOwner, ...).
func (n *Node) coord(ctx context.Context, req *fsm.CoordRequest) (*fsm.CoordResult, error) {
	if err := req.Validate(n.limits); err != nil {
		return nil, err
	}
	if n.raft == nil {
		return nil, ErrStopped
	}
	resp, err := n.apply(ctx, &fsm.Command{Type: fsm.CmdCoord, Coord: req})
	if err != nil {
		return nil, err
	}
	if resp == nil || resp.Coord == nil {
		return nil, fmt.Errorf("node: coordination command without a coordination result")
	}
	return resp.Coord, resp.Coord.Err()
}

// waitLocal waits until this node applied the command at coordination
// index idx. A wait served for an HTTP client also ends when this node
// stops leading (or a follower loses its leader) before it applied idx:
// a member cut off after forwarding the command would otherwise hold the
// client until its deadline. That error wraps ErrNoLeader: nothing is
// withdrawn, and the client's retry with the same request ID resumes the
// wait on another member.
func (n *Node) waitLocal(ctx context.Context, idx uint64) error {
	if !isRemote(ctx) {
		return n.fsm.WaitApplied(ctx, idx>>16)
	}
	for {
		leader := n.leaderChanged()
		wctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- n.fsm.WaitApplied(wctx, idx>>16) }()
		select {
		case err := <-done:
			cancel()
			return err
		case <-leader:
			cancel()
			if err := <-done; err == nil || ctx.Err() != nil {
				return err
			}
			if n.abandonWait(ctx) {
				return fmt.Errorf("%w: this member lost its leader before it applied the request; retry elsewhere", ErrNoLeader)
			}
		}
	}
}

// waitQueued is waitLocal for a queued request: when the wait ends with
// ctx, withdraw is called and its error returned; when it moves to another
// member (ErrNoLeader), nothing is withdrawn.
func (n *Node) waitQueued(ctx context.Context, idx uint64, withdraw func(cause error) error) error {
	err := n.waitLocal(ctx, idx)
	if err == nil || errors.Is(err, ErrNoLeader) {
		return err
	}
	return withdraw(err)
}

// --- sessions -------------------------------------------------------------------

func sessionToAPI(s fsm.SessionInfo) api.Session {
	return api.Session{ID: s.ID, Name: s.Name, TTLMillis: s.TTL / int64(time.Millisecond),
		ExpiresMillis: s.Expires / int64(time.Millisecond), Locks: s.Locks, Waiting: s.Waiting}
}

// CreateSession creates a session that lives req.TTLMillis without
// keepalives. Its ID is the log position of its creation.
func (n *Node) CreateSession(ctx context.Context, req api.SessionRequest) (*api.Session, error) {
	ttl := time.Duration(req.TTLMillis) * time.Millisecond
	if ttl < minSessionTTL {
		return nil, fmt.Errorf("%w: session TTL %v is below the minimum %v", fsm.ErrInvalid, ttl, minSessionTTL)
	}
	res, err := n.coord(ctx, &fsm.CoordRequest{Op: fsm.OpSessionCreate, N: int64(ttl), Name: req.Name})
	if err != nil {
		return nil, err
	}
	return &api.Session{ID: res.Session, Name: req.Name, TTLMillis: req.TTLMillis}, nil
}

// KeepAliveSessions renews every session in ids (one command for all) and
// returns those that no longer exist.
func (n *Node) KeepAliveSessions(ctx context.Context, ids []uint64) ([]uint64, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	res, err := n.coord(ctx, &fsm.CoordRequest{Op: fsm.OpSessionKeepAlive, IDs: ids})
	if err != nil {
		return nil, err
	}
	return res.IDs, nil
}

// DestroySession ends a session and releases everything it holds, in one
// command. Destroying a missing session is fsm.ErrSessionNotFound.
func (n *Node) DestroySession(ctx context.Context, id uint64) error {
	_, err := n.coord(ctx, &fsm.CoordRequest{Op: fsm.OpSessionDestroy, Session: id})
	return err
}

// Sessions lists the live sessions (linearizable).
func (n *Node) Sessions(ctx context.Context) ([]api.Session, error) {
	if err := n.linearize(ctx); err != nil {
		return nil, err
	}
	ss := n.fsm.Sessions()
	out := make([]api.Session, len(ss))
	for i, s := range ss {
		out[i] = sessionToAPI(s)
	}
	return out, nil
}

// WaitSession blocks until session id has ended (nil) or ctx ends
// (ctx.Err()). It wakes on the apply that ends the session.
func (n *Node) WaitSession(ctx context.Context, id uint64) error {
	if err := n.linearize(ctx); err != nil {
		return err
	}
	for {
		ch := n.fsm.SessionChanged(id)
		if _, ok := n.fsm.Session(id); !ok {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		case <-n.ctx.Done():
			return ErrStopped
		}
	}
}

// runSessionReaper is the leader's half of session expiry: on each new
// leadership it first gives every session a fresh TTL (its predecessor's
// deadlines were stamped with another clock and keepalives may have been
// lost during the election), then proposes the expiry of sessions whose
// deadline passed, stamped with its own clock. The FSM decides with the
// command's time only.
func (n *Node) runSessionReaper() {
	var renewedTerm uint64
	t := time.NewTimer(maxReapDelay)
	defer t.Stop()
	for {
		changed := n.leaderChanged()
		select {
		case <-n.ctx.Done():
			return
		case <-t.C:
		case <-changed:
		}
		wait := maxReapDelay
		if n.isReadyLeader() {
			ctx, cancel := context.WithTimeout(n.ctx, n.cfg.ApplyTimeout)
			if term := n.leaderReadyTerm.Load(); term != renewedTerm {
				if _, err := n.coord(ctx, &fsm.CoordRequest{Op: fsm.OpSessionRenewAll}); err == nil {
					renewedTerm = term
				} else if !n.stopped() {
					n.log.Warn("session renewal after leader change failed", "err", err)
				}
			} else if ids := n.fsm.ExpiredSessions(n.wallClock().UnixNano(), 1024); len(ids) > 0 {
				if _, err := n.coord(ctx, &fsm.CoordRequest{Op: fsm.OpSessionExpire, IDs: ids}); err != nil && !n.stopped() {
					n.log.Warn("session expiry failed", "err", err)
				}
				wait = time.Millisecond
			} else if next := n.fsm.NextSessionDeadline(); next != 0 {
				wait = min(max(time.Unix(0, next).Sub(n.wallClock()), time.Millisecond), maxReapDelay)
			}
			cancel()
		}
		t.Reset(wait)
	}
}

// --- locks ------------------------------------------------------------------------

// Lock acquires lock name for req.Session. It blocks, in FIFO order of the
// requests, until granted or ctx ends: then the wait is withdrawn and the
// error wraps ErrWaitTimeout. With req.Try it fails at once with
// fsm.ErrLocked. The token is the grant's log position: strictly
// increasing across grants of the lock. A retry with the same RequestID
// is applied once.
func (n *Node) Lock(ctx context.Context, name string, req api.LockRequest) (*api.LockResponse, error) {
	cr := &fsm.CoordRequest{Op: fsm.OpLockAcquire, Session: req.Session, RequestID: req.RequestID, Name: name, N: req.Reentrancy}
	if req.Try {
		cr.K = 1
	}
	res, err := n.coord(ctx, cr)
	if err != nil {
		return nil, err
	}
	if res.Code == fsm.CoordOK {
		return &api.LockResponse{Token: res.Token, Count: res.Count}, nil
	}
	// Queued: wait for the apply that grants it to us.
	if err := n.waitQueued(ctx, res.Index, func(cause error) error { return n.withdrawLock(name, req, cause) }); err != nil {
		return nil, err
	}
	for {
		changed := n.leaderChanged()
		ch := n.fsm.LockChanged(name)
		info := n.fsm.Lock(name)
		if info.Holder == req.Session {
			return &api.LockResponse{Token: info.Token, Count: info.Count}, nil
		}
		if !slices.Contains(info.Waiters, req.Session) {
			if _, ok := n.fsm.Session(req.Session); !ok {
				return nil, fmt.Errorf("%w: session %d ended while waiting for lock %q", fsm.ErrSessionNotFound, req.Session, name)
			}
			return nil, fmt.Errorf("%w: the wait for lock %q was withdrawn", fsm.ErrNotWaiting, name)
		}
		select {
		case <-ch:
		case <-changed:
			if n.abandonWait(ctx) {
				return nil, fmt.Errorf("%w: this member stopped leading while waiting for lock %q; retry elsewhere", ErrNoLeader, name)
			}
		case <-ctx.Done():
			return nil, n.withdrawLock(name, req, ctx.Err())
		case <-n.ctx.Done():
			return nil, ErrStopped
		}
	}
}

// withdrawLock cancels a waiting acquire after its caller gave up. If the
// grant raced the cancel, the cancel releases it: either way nothing is held.
func (n *Node) withdrawLock(name string, req api.LockRequest, cause error) error {
	return n.withdraw(&fsm.CoordRequest{Op: fsm.OpLockCancel, Session: req.Session, Name: name, Token: req.RequestID},
		fmt.Sprintf("lock %q", name), cause, fsm.ErrNotWaiting)
}

// Unlock releases one hold of lock name by req.Session. A session that
// does not hold it, or a token that is not the current grant, gets
// fsm.ErrNotOwner. A retry with the same RequestID is applied once.
func (n *Node) Unlock(ctx context.Context, name string, req api.UnlockRequest) error {
	_, err := n.coord(ctx, &fsm.CoordRequest{Op: fsm.OpLockRelease, Session: req.Session, RequestID: req.RequestID, Name: name, Token: req.Token})
	return err
}

// LockInfo describes lock name (linearizable).
func (n *Node) LockInfo(ctx context.Context, name string) (*api.LockInfo, error) {
	if name == "" {
		return nil, fmt.Errorf("%w: lock name is empty", fsm.ErrInvalid)
	}
	if err := n.linearize(ctx); err != nil {
		return nil, err
	}
	l := n.fsm.Lock(name)
	return &api.LockInfo{Name: l.Name, Holder: l.Holder, Token: l.Token, Count: l.Count, Fence: l.Fence, Waiters: l.Waiters}, nil
}

// FencedTxn commits req only if fence.Token is the newest token granted
// for lock fence.Lock; otherwise nothing is written and the error wraps
// fsm.ErrFenced.
func (n *Node) FencedTxn(ctx context.Context, fence fsm.Fence, req *fsm.Request) (*fsm.Response, error) {
	if req == nil {
		return nil, fmt.Errorf("%w: empty request", fsm.ErrInvalid)
	}
	cmd := &fsm.Command{Type: fsm.CmdFencedTxn, Fence: &fence, Txn: req}
	if err := cmd.Validate(n.limits); err != nil {
		return nil, err
	}
	if n.raft == nil {
		return nil, ErrStopped
	}
	start := nowFunc()
	resp, err := n.apply(ctx, cmd)
	n.metrics.observeWrite(start, err)
	if err != nil {
		return nil, err
	}
	if err := resp.Coord.Err(); err != nil {
		return nil, err
	}
	return resp, nil
}

// PutFenced sets key to value if fence is current (see FencedTxn) and
// returns the revision of the write.
func (n *Node) PutFenced(ctx context.Context, key string, value []byte, fence api.Fence) (int64, error) {
	resp, err := n.FencedTxn(ctx, fsm.Fence{Lock: fence.Lock, Token: fence.Token},
		&fsm.Request{Success: []fsm.Op{{Type: fsm.OpPut, Key: []byte(key), Value: value}}})
	if err != nil {
		return 0, err
	}
	return resp.Revision, nil
}

// --- elections -------------------------------------------------------------------------

func electionToAPI(e fsm.ElectionInfo) api.Election {
	return api.Election{Name: e.Name, Leader: e.Leader, Term: e.Term, Value: string(e.Value)}
}

// Campaign enters req.Session into election name and blocks until it
// leads (or ctx ends: the candidacy is withdrawn and the error wraps
// ErrWaitTimeout). Candidates lead in FIFO order. The term is the log
// position at which the session became leader.
func (n *Node) Campaign(ctx context.Context, name string, req api.CampaignRequest) (*api.Election, error) {
	res, err := n.coord(ctx, &fsm.CoordRequest{Op: fsm.OpElectCampaign, Session: req.Session, RequestID: req.RequestID, Name: name, Value: []byte(req.Value)})
	if err != nil {
		return nil, err
	}
	if err := n.waitQueued(ctx, res.Index, func(cause error) error { return n.withdrawCampaign(name, req.Session, cause) }); err != nil {
		return nil, err
	}
	for {
		changed := n.leaderChanged()
		ch := n.fsm.ElectionChanged(name)
		e := n.fsm.Election(name)
		if e.Leader == req.Session {
			out := electionToAPI(e)
			return &out, nil
		}
		if !slices.Contains(e.Candidates, req.Session) {
			if _, ok := n.fsm.Session(req.Session); !ok {
				return nil, fmt.Errorf("%w: session %d ended while campaigning in %q", fsm.ErrSessionNotFound, req.Session, name)
			}
			return nil, fmt.Errorf("%w: the candidacy in %q was withdrawn", fsm.ErrNotWaiting, name)
		}
		select {
		case <-ch:
		case <-changed:
			if n.abandonWait(ctx) {
				return nil, fmt.Errorf("%w: this member stopped leading while campaigning in %q; retry elsewhere", ErrNoLeader, name)
			}
		case <-ctx.Done():
			return nil, n.withdrawCampaign(name, req.Session, ctx.Err())
		case <-n.ctx.Done():
			return nil, ErrStopped
		}
	}
}

func (n *Node) withdrawCampaign(name string, session uint64, cause error) error {
	return n.withdraw(&fsm.CoordRequest{Op: fsm.OpElectResign, Session: session, Name: name},
		fmt.Sprintf("election %q", name), cause, fsm.ErrNotOwner)
}

// Resign leaves election name (as leader: the next candidate leads, in the
// same command). req.Term, if set, must be the current term.
func (n *Node) Resign(ctx context.Context, name string, req api.ElectionRequest) error {
	_, err := n.coord(ctx, &fsm.CoordRequest{Op: fsm.OpElectResign, Session: req.Session, RequestID: req.RequestID, Name: name, Token: req.Term})
	return err
}

// Proclaim changes the leader's value without an election; only the
// leader (of req.Term, if set) may.
func (n *Node) Proclaim(ctx context.Context, name string, req api.ElectionRequest) error {
	_, err := n.coord(ctx, &fsm.CoordRequest{Op: fsm.OpElectProclaim, Session: req.Session, RequestID: req.RequestID, Name: name, Token: req.Term, Value: []byte(req.Value)})
	return err
}

// ElectionLeader describes election name (linearizable). Leader 0: nobody
// leads.
func (n *Node) ElectionLeader(ctx context.Context, name string) (*api.Election, error) {
	if name == "" {
		return nil, fmt.Errorf("%w: election name is empty", fsm.ErrInvalid)
	}
	if err := n.linearize(ctx); err != nil {
		return nil, err
	}
	e := electionToAPI(n.fsm.Election(name))
	return &e, nil
}

// ObserveElection streams election name's state: the current one first,
// then every change of leader, term or value as this node applies it.
// Terms never go backwards. The channel closes when ctx ends or the node
// stops.
func (n *Node) ObserveElection(ctx context.Context, name string) (<-chan api.Election, error) {
	if name == "" {
		return nil, fmt.Errorf("%w: election name is empty", fsm.ErrInvalid)
	}
	if err := n.linearize(ctx); err != nil {
		return nil, err
	}
	out := make(chan api.Election, 1)
	n.goFunc(func() {
		defer close(out)
		var last api.Election
		first := true
		for {
			ch := n.fsm.ElectionChanged(name)
			e := electionToAPI(n.fsm.Election(name))
			if first || e != last {
				first = false
				last = e
				select {
				case out <- e:
				case <-ctx.Done():
					return
				case <-n.ctx.Done():
					return
				}
			}
			select {
			case <-ch:
			case <-ctx.Done():
				return
			case <-n.ctx.Done():
				return
			}
		}
	})
	return out, nil
}
