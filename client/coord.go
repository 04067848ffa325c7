package client

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/statenode/statenode/api"
)

// Coordination: sessions, fenced locks, elections, semaphores, barriers and
// latches over the HTTP API.
// Every mutating call carries the request ID it is given, so the client
// retries it freely (on a broken connection, a leader change, a 504): the
// server applies it once.

// Errors of the coordination calls (codes of docs/API.md).
var (
	// ErrSessionNotFound: the session expired, was destroyed or never existed.
	ErrSessionNotFound = errors.New("client: session not found")
	// ErrNotOwner: a release/resign/proclaim by a non-owner, or a stale token.
	ErrNotOwner = errors.New("client: not the owner")
	// ErrLocked: a try-lock found the lock held.
	ErrLocked = errors.New("client: lock is held")
	// ErrReentrancyLimit: the session already holds the lock as often as allowed.
	ErrReentrancyLimit = errors.New("client: reentrancy limit reached")
	// ErrDeadlock: waiting would close a wait-for cycle; the message names it.
	ErrDeadlock = errors.New("client: deadlock")
	// ErrFenced: a fenced write carried a stale token; nothing was written.
	ErrFenced = errors.New("client: fencing token is stale")
	// ErrWaitTimeout: a blocking acquire or campaign ran out of time and
	// was withdrawn; nothing is held.
	ErrWaitTimeout = errors.New("client: wait timed out")
	// ErrMismatch: the semaphore, barrier or latch exists with another
	// size or kind; nothing changed.
	ErrMismatch = errors.New("client: size or kind mismatch")
	// ErrBroken: the barrier is broken; the message names the session
	// whose end (or reset) broke it.
	ErrBroken = errors.New("client: barrier is broken")
	// ErrNoPermits: a try-acquire found too few permits free.
	ErrNoPermits = errors.New("client: not enough permits")
	// ErrObjectNotFound: no such latch.
	ErrObjectNotFound = errors.New("client: no such object")
)

func coordIs(code string, target error) bool {
	switch code {
	case api.CodeSessionNotFound:
		return target == ErrSessionNotFound
	case api.CodeNotOwner:
		return target == ErrNotOwner
	case api.CodeLocked:
		return target == ErrLocked
	case api.CodeReentrancy:
		return target == ErrReentrancyLimit
	case api.CodeDeadlock:
		return target == ErrDeadlock
	case api.CodeFenced:
		return target == ErrFenced
	case api.CodeWaitTimeout:
		return target == ErrWaitTimeout
	case api.CodeMismatch:
		return target == ErrMismatch
	case api.CodeBroken:
		return target == ErrBroken
	case api.CodeNoPermits:
		return target == ErrNoPermits
	case api.CodeObjectNotFound:
		return target == ErrObjectNotFound
	}
	return false
}

// maxBlockingWait bounds a blocking call whose context has no deadline
// (the server accepts budgets up to 24h).
const maxBlockingWait = 23 * time.Hour

func (c *Client) coordCall(ctx context.Context, method, path string, in, out any, blocking bool) error {
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return fmt.Errorf("%w: %w", ErrInvalid, err)
		}
	}
	if _, ok := ctx.Deadline(); !ok && blocking {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, maxBlockingWait)
		defer cancel()
	}
	res, err := c.do(ctx, &call{method: method, path: path, body: body, ctype: "application/json",
		write: method != http.MethodGet || blocking, idempotent: true, to: toLeader})
	if err != nil {
		return err
	}
	defer putBuf(res.body)
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(*res.body, out); err != nil {
		return fmt.Errorf("client: malformed answer to %s %s: %w", method, path, err)
	}
	return nil
}

func namePath(prefix, name string) string {
	p := keyPath(name)
	return prefix + strings.TrimPrefix(p, "/v1/kv/")
}

// CreateSession creates a session with the given TTL (ms) and label.
func (c *Client) CreateSession(ctx context.Context, req api.SessionRequest) (*api.Session, error) {
	var out api.Session
	if err := c.coordCall(ctx, http.MethodPost, "/v1/session", req, &out, false); err != nil {
		return nil, err
	}
	return &out, nil
}

// KeepAliveSessions renews the sessions ids in one request and returns
// those that no longer exist. Each endpoint gets at most a third of the
// time left in ctx (readAttemptBudget without a deadline) before the next
// is tried; see KeepAliveSessionsWithin.
func (c *Client) KeepAliveSessions(ctx context.Context, ids []uint64) ([]uint64, error) {
	return c.KeepAliveSessionsWithin(ctx, ids, 0)
}

// KeepAliveSessionsWithin is KeepAliveSessions giving each endpoint at most
// perEndpoint (0: a third of the time left in ctx) to answer before it
// tries the next one: a member cut off from the cluster, which still
// accepts connections but cannot commit, holds a keepalive for that long
// at most. Renewing is idempotent, so a keepalive is retried until ctx
// ends. Callers pick perEndpoint well below the shortest TTL of ids
// (coordination uses TTL/3).
func (c *Client) KeepAliveSessionsWithin(ctx context.Context, ids []uint64, perEndpoint time.Duration) ([]uint64, error) {
	if perEndpoint < 0 {
		return nil, fmt.Errorf("%w: negative keepalive attempt timeout %v", ErrInvalid, perEndpoint)
	}
	if len(ids) == 0 {
		return nil, nil
	}
	if perEndpoint == 0 {
		perEndpoint = readAttemptBudget
		if d, ok := ctx.Deadline(); ok {
			perEndpoint = max(time.Until(d)/3, 50*time.Millisecond)
		}
	}
	body, err := json.Marshal(api.KeepAliveRequest{IDs: ids})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	res, err := c.do(ctx, &call{method: http.MethodPost, path: "/v1/session/keepalive", body: body,
		ctype: "application/json", write: true, idempotent: true, to: toLeader, attempt: perEndpoint})
	if err != nil {
		return nil, err
	}
	defer putBuf(res.body)
	var out api.KeepAliveResponse
	if err := json.Unmarshal(*res.body, &out); err != nil {
		return nil, fmt.Errorf("client: malformed answer to POST /v1/session/keepalive: %w", err)
	}
	return out.Missing, nil
}

// DestroySession ends a session, releasing everything it holds.
func (c *Client) DestroySession(ctx context.Context, id uint64) error {
	return c.coordCall(ctx, http.MethodDelete, "/v1/session/"+strconv.FormatUint(id, 10), nil, nil, false)
}

// Sessions lists the live sessions.
func (c *Client) Sessions(ctx context.Context) ([]api.Session, error) {
	var out []api.Session
	if err := c.coordCall(ctx, http.MethodGet, "/v1/session", nil, &out, false); err != nil {
		return nil, err
	}
	return out, nil
}

// WaitSession blocks until session id ends (nil) or ctx ends, long-polling
// the server (which answers when the session's end is applied).
func (c *Client) WaitSession(ctx context.Context, id uint64) error {
	for {
		pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		var out api.SessionWaitResponse
		err := c.coordCall(pctx, http.MethodGet, "/v1/session/"+strconv.FormatUint(id, 10)+"/wait", nil, &out, true)
		cancel()
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, ErrSessionNotFound):
			return nil
		case err != nil && !errors.Is(err, ErrUnavailable):
			return err
		case err == nil && !out.Alive:
			return nil
		}
	}
}

// Lock acquires lock name for req.Session, waiting server-side in FIFO
// order until granted or ctx ends (ErrWaitTimeout: the wait was withdrawn).
func (c *Client) Lock(ctx context.Context, name string, req api.LockRequest) (*api.LockResponse, error) {
	var out api.LockResponse
	if err := c.coordCall(ctx, http.MethodPost, namePath("/v1/lock/", name), req, &out, true); err != nil {
		return nil, err
	}
	return &out, nil
}

// Unlock releases one hold of lock name.
func (c *Client) Unlock(ctx context.Context, name string, req api.UnlockRequest) error {
	return c.coordCall(ctx, http.MethodDelete, namePath("/v1/lock/", name), req, nil, false)
}

// LockInfo describes lock name.
func (c *Client) LockInfo(ctx context.Context, name string) (*api.LockInfo, error) {
	var out api.LockInfo
	if err := c.coordCall(ctx, http.MethodGet, namePath("/v1/lock/", name), nil, &out, false); err != nil {
		return nil, err
	}
	return &out, nil
}

// PutFenced sets key to value only if fence is the newest grant of its
// lock (ErrFenced otherwise) and returns the revision of the write.
func (c *Client) PutFenced(ctx context.Context, key string, value []byte, fence api.Fence) (int64, error) {
	if value == nil {
		value = []byte{}
	}
	res, err := c.do(ctx, &call{
		method: http.MethodPut, path: keyPath(key), query: "raw",
		body: value, ctype: "application/octet-stream", write: true, to: toLeader,
		header: fenceHeader(fence),
	})
	if err != nil {
		return 0, err
	}
	defer putBuf(res.body)
	var out api.PutResponse
	if err := json.Unmarshal(*res.body, &out); err != nil {
		return 0, fmt.Errorf("%w: the write succeeded but its answer is malformed: %w", ErrIndeterminate, err)
	}
	return out.Revision, nil
}

// TxnFenced runs a transaction only if fence is the newest grant of its
// lock (ErrFenced otherwise).
func (c *Client) TxnFenced(ctx context.Context, req *api.TxnRequest, fence api.Fence) (*api.TxnResponse, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	res, err := c.do(ctx, &call{method: http.MethodPost, path: "/v1/txn", body: body, ctype: "application/json",
		write: true, to: toLeader, header: fenceHeader(fence)})
	if err != nil {
		return nil, err
	}
	defer putBuf(res.body)
	var out api.TxnResponse
	if err := json.Unmarshal(*res.body, &out); err != nil {
		return nil, fmt.Errorf("%w: the txn ran but its answer is malformed: %w", ErrIndeterminate, err)
	}
	return &out, nil
}

func fenceHeader(f api.Fence) http.Header {
	return http.Header{api.HeaderFenceLock: {f.Lock}, api.HeaderFenceToken: {strconv.FormatUint(f.Token, 10)}}
}

// Campaign enters req.Session into election name and blocks until it
// leads or ctx ends (ErrWaitTimeout: the candidacy was withdrawn).
func (c *Client) Campaign(ctx context.Context, name string, req api.CampaignRequest) (*api.Election, error) {
	var out api.Election
	if err := c.coordCall(ctx, http.MethodPost, namePath("/v1/election/", name), req, &out, true); err != nil {
		return nil, err
	}
	return &out, nil
}

// Resign leaves election name; as leader, the next candidate leads.
func (c *Client) Resign(ctx context.Context, name string, req api.ElectionRequest) error {
	return c.coordCall(ctx, http.MethodDelete, namePath("/v1/election/", name), req, nil, false)
}

// Proclaim sets the leader's value.
func (c *Client) Proclaim(ctx context.Context, name string, req api.ElectionRequest) error {
	return c.coordCall(ctx, http.MethodPut, namePath("/v1/election/", name), req, nil, false)
}

// ElectionLeader describes election name (Leader 0: nobody leads).
func (c *Client) ElectionLeader(ctx context.Context, name string) (*api.Election, error) {
	var out api.Election
	if err := c.coordCall(ctx, http.MethodGet, namePath("/v1/election/", name), nil, &out, false); err != nil {
		return nil, err
	}
	return &out, nil
}

// ObserveElection streams the state of election name: the current one,
// then each change. Terms never go backwards: after a reconnect, states
// older than the last one delivered are skipped. The channel closes when
// ctx ends or the client is closed.
func (c *Client) ObserveElection(ctx context.Context, name string) (<-chan api.Election, error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, ErrClosed
	}
	c.wg.Add(1)
	c.mu.Unlock()
	out := make(chan api.Election, 1)
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(c.ctx, cancel)
	go func() {
		defer c.wg.Done()
		defer close(out)
		defer stop()
		defer cancel()
		var last api.Election
		for attempt := 0; ctx.Err() == nil; attempt++ {
			base := c.pick(ctx, toAny)
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+namePath("/v1/election/", name)+"?observe", nil)
			if err != nil {
				return
			}
			resp, err := c.rt.RoundTrip(req)
			if err == nil && resp.StatusCode == http.StatusOK {
				attempt = 0
				sc := bufio.NewScanner(resp.Body)
				for sc.Scan() {
					var e api.Election
					if json.Unmarshal(sc.Bytes(), &e) != nil || e.Term < last.Term || e == last {
						continue
					}
					last = e
					select {
					case out <- e:
					case <-ctx.Done():
						resp.Body.Close()
						return
					}
				}
			}
			if resp != nil {
				resp.Body.Close()
			}
			c.endpointFailed(base)
			if !sleepBackoff(ctx, attempt) {
				return
			}
		}
	}()
	return out, nil
}

// AcquireSemaphore takes req.Count of the req.Permits permits of semaphore
// name, waiting server-side in strict FIFO order until granted or ctx ends
// (ErrWaitTimeout: the wait was withdrawn). With req.Try: ErrNoPermits at
// once.
func (c *Client) AcquireSemaphore(ctx context.Context, name string, req api.SemaphoreRequest) (*api.SemaphoreResponse, error) {
	var out api.SemaphoreResponse
	if err := c.coordCall(ctx, http.MethodPost, namePath("/v1/semaphore/", name), req, &out, !req.Try); err != nil {
		return nil, err
	}
	return &out, nil
}

// ReleaseSemaphore returns req.Count permits (0: all the session holds).
func (c *Client) ReleaseSemaphore(ctx context.Context, name string, req api.SemaphoreReleaseRequest) error {
	return c.coordCall(ctx, http.MethodDelete, namePath("/v1/semaphore/", name), req, nil, false)
}

// SemaphoreInfo describes semaphore name: size, holders, waiters.
func (c *Client) SemaphoreInfo(ctx context.Context, name string) (*api.SemaphoreInfo, error) {
	var out api.SemaphoreInfo
	if err := c.coordCall(ctx, http.MethodGet, namePath("/v1/semaphore/", name), nil, &out, false); err != nil {
		return nil, err
	}
	return &out, nil
}

// Barrier runs a barrier action (await, enter, leave, reset), waiting
// server-side until it completes or ctx ends (ErrWaitTimeout). A broken
// barrier fails with ErrBroken.
func (c *Client) Barrier(ctx context.Context, name string, req api.BarrierRequest) (*api.BarrierResponse, error) {
	var out api.BarrierResponse
	blocking := req.Action != api.BarrierReset
	if err := c.coordCall(ctx, http.MethodPost, namePath("/v1/barrier/", name), req, &out, blocking); err != nil {
		return nil, err
	}
	return &out, nil
}

// BarrierInfo describes barrier name.
func (c *Client) BarrierInfo(ctx context.Context, name string) (*api.BarrierInfo, error) {
	var out api.BarrierInfo
	if err := c.coordCall(ctx, http.MethodGet, namePath("/v1/barrier/", name), nil, &out, false); err != nil {
		return nil, err
	}
	return &out, nil
}

// CreateLatch creates latch name with count req.Count (idempotent with
// the same count; ErrMismatch otherwise).
func (c *Client) CreateLatch(ctx context.Context, name string, req api.LatchRequest) (*api.LatchInfo, error) {
	var out api.LatchInfo
	if err := c.coordCall(ctx, http.MethodPut, namePath("/v1/latch/", name), req, &out, false); err != nil {
		return nil, err
	}
	return &out, nil
}

// CountDownLatch decrements latch name once per request ID.
func (c *Client) CountDownLatch(ctx context.Context, name string, req api.LatchRequest) (*api.LatchInfo, error) {
	var out api.LatchInfo
	if err := c.coordCall(ctx, http.MethodPost, namePath("/v1/latch/", name), req, &out, false); err != nil {
		return nil, err
	}
	return &out, nil
}

// DeleteLatch deletes latch name.
func (c *Client) DeleteLatch(ctx context.Context, name string, req api.LatchRequest) error {
	return c.coordCall(ctx, http.MethodDelete, namePath("/v1/latch/", name), req, nil, false)
}

// LatchInfo describes latch name (ErrObjectNotFound if it does not exist).
func (c *Client) LatchInfo(ctx context.Context, name string) (*api.LatchInfo, error) {
	var out api.LatchInfo
	if err := c.coordCall(ctx, http.MethodGet, namePath("/v1/latch/", name), nil, &out, false); err != nil {
		return nil, err
	}
	return &out, nil
}

// AwaitLatch blocks until latch name reaches zero or ctx ends
// (ErrWaitTimeout).
func (c *Client) AwaitLatch(ctx context.Context, name string) (*api.LatchInfo, error) {
	var out api.LatchInfo
	if err := c.coordCall(ctx, http.MethodGet, namePath("/v1/latch/", name)+"?wait", nil, &out, true); err != nil {
		return nil, err
	}
	return &out, nil
}
