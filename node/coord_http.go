package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/statenode/statenode/api"
	"github.com/statenode/statenode/fsm"
)

// HTTP routes of the coordination API (docs/API.md):
//
//	POST   /v1/session               create        GET /v1/session            list
//	POST   /v1/session/keepalive     renew many    GET /v1/session/{id}       one
//	DELETE /v1/session/{id}          destroy       GET /v1/session/{id}/wait  long-poll until it ends
//	POST   /v1/lock/{name...}        acquire (blocks server-side up to X-Statenode-Timeout)
//	DELETE /v1/lock/{name...}        release       GET /v1/lock/{name...}     info
//	POST   /v1/election/{name...}    campaign (blocks)
//	DELETE /v1/election/{name...}    resign        PUT /v1/election/{name...} proclaim
//	GET    /v1/election/{name...}    leader; with ?observe an NDJSON stream of changes
//	POST   /v1/semaphore/{name...}   acquire (blocks)
//	DELETE /v1/semaphore/{name...}   release       GET /v1/semaphore/{name...} info
//	POST   /v1/barrier/{name...}     await, enter, leave (block) or reset
//	GET    /v1/barrier/{name...}     info
//	PUT    /v1/latch/{name...}       create        POST /v1/latch/{name...}   count down
//	DELETE /v1/latch/{name...}       delete        GET /v1/latch/{name...}    info; with ?wait blocks until zero
func (n *Node) registerCoord(handle func(string, apiHandler)) {
	handle("POST /v1/session", n.handleSessionCreate)
	handle("GET /v1/session", n.handleSessionList)
	handle("POST /v1/session/keepalive", n.handleSessionKeepAlive)
	handle("GET /v1/session/{id}", n.handleSessionGet)
	handle("DELETE /v1/session/{id}", n.handleSessionDestroy)
	handle("GET /v1/session/{id}/wait", n.handleSessionWait)
	handle("POST /v1/lock/{name...}", n.handleLock)
	handle("DELETE /v1/lock/{name...}", n.handleUnlock)
	handle("GET /v1/lock/{name...}", n.handleLockInfo)
	handle("POST /v1/election/{name...}", n.handleCampaign)
	handle("DELETE /v1/election/{name...}", n.handleResign)
	handle("PUT /v1/election/{name...}", n.handleProclaim)
	handle("GET /v1/election/{name...}", n.handleElection)
	handle("POST /v1/semaphore/{name...}", n.handleSemaphoreAcquire)
	handle("DELETE /v1/semaphore/{name...}", n.handleSemaphoreRelease)
	handle("GET /v1/semaphore/{name...}", n.handleSemaphoreInfo)
	handle("POST /v1/barrier/{name...}", n.handleBarrier)
	handle("GET /v1/barrier/{name...}", n.handleBarrierInfo)
	handle("PUT /v1/latch/{name...}", n.handleLatchCreate)
	handle("POST /v1/latch/{name...}", n.handleLatchCountDown)
	handle("DELETE /v1/latch/{name...}", n.handleLatchDelete)
	handle("GET /v1/latch/{name...}", n.handleLatch)
}

// classifyCoord maps the coordination errors onto statuses and codes.
func classifyCoord(err error) (int, *api.Error, bool) {
	e := &api.Error{Message: err.Error()}
	switch {
	case errors.Is(err, ErrWaitTimeout):
		e.Code = api.CodeWaitTimeout
		return api.StatusWaitTimeout, e, true
	case errors.Is(err, fsm.ErrSessionNotFound):
		e.Code = api.CodeSessionNotFound
		return http.StatusNotFound, e, true
	case errors.Is(err, fsm.ErrNotFound):
		e.Code = api.CodeObjectNotFound
		return http.StatusNotFound, e, true
	case errors.Is(err, fsm.ErrMismatch):
		e.Code = api.CodeMismatch
	case errors.Is(err, fsm.ErrBroken):
		e.Code = api.CodeBroken
	case errors.Is(err, fsm.ErrNoPermits):
		e.Code = api.CodeNoPermits
	case errors.Is(err, fsm.ErrNotOwner):
		e.Code = api.CodeNotOwner
	case errors.Is(err, fsm.ErrLocked):
		e.Code = api.CodeLocked
	case errors.Is(err, fsm.ErrReentrancyLimit):
		e.Code = api.CodeReentrancy
	case errors.Is(err, fsm.ErrDeadlock):
		e.Code = api.CodeDeadlock
	case errors.Is(err, fsm.ErrFenced):
		e.Code = api.CodeFenced
	case errors.Is(err, fsm.ErrNotWaiting):
		e.Code = api.CodeNotWaiting
	default:
		return 0, nil, false
	}
	return http.StatusConflict, e, true
}

// decodeCoordBody strictly decodes a small JSON body into v.
func decodeCoordBody(r *http.Request, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, apiSmallBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return badRequest("body: %v", err)
	}
	return nil
}

// txnHTTP commits req, fenced if the request carries the fence headers.
func (n *Node) txnHTTP(ctx context.Context, r *http.Request, req *fsm.Request) (*fsm.Response, error) {
	lock, tok := r.Header[api.HeaderFenceLock], r.Header[api.HeaderFenceToken]
	if len(lock) == 0 && len(tok) == 0 {
		return n.Txn(ctx, req)
	}
	if len(lock) != 1 || len(tok) != 1 {
		return nil, badRequest("a fence needs exactly one %s and one %s header", api.HeaderFenceLock, api.HeaderFenceToken)
	}
	token, err := strconv.ParseUint(tok[0], 10, 64)
	if err != nil || token == 0 {
		return nil, badRequest("header %s: %q is not a positive token", api.HeaderFenceToken, tok[0])
	}
	return n.FencedTxn(ctx, fsm.Fence{Lock: lock[0], Token: token}, req)
}

func pathID(r *http.Request) (uint64, error) {
	id, err := strconv.ParseUint(r.PathValue("id"), 10, 64)
	if err != nil || id == 0 {
		return 0, badRequest("session ID %q is not a positive integer", r.PathValue("id"))
	}
	return id, nil
}

func pathName(r *http.Request, what string) (string, error) {
	name := r.PathValue("name")
	if name == "" {
		return "", badRequest("%s name is empty", what)
	}
	return name, nil
}

// coordRoute wraps the common part of the routes: the request context
// (X-Statenode-Timeout) and the error mapping.
func (n *Node) coordRoute(w http.ResponseWriter, r *http.Request, f func(ctx context.Context) (any, error)) int {
	ctx, cancel, err := requestContext(r)
	if err != nil {
		return n.writeError(w, err)
	}
	defer cancel()
	out, err := f(ctx)
	if err != nil {
		return n.writeError(w, err)
	}
	if out == nil {
		w.WriteHeader(http.StatusNoContent)
		return http.StatusNoContent
	}
	return writeJSONValue(w, http.StatusOK, out)
}

func (n *Node) handleSessionCreate(w http.ResponseWriter, r *http.Request) int {
	return n.coordRoute(w, r, func(ctx context.Context) (any, error) {
		var req api.SessionRequest
		if err := decodeCoordBody(r, &req); err != nil {
			return nil, err
		}
		return n.CreateSession(ctx, req)
	})
}

func (n *Node) handleSessionList(w http.ResponseWriter, r *http.Request) int {
	return n.coordRoute(w, r, func(ctx context.Context) (any, error) {
		return n.Sessions(ctx)
	})
}

func (n *Node) handleSessionKeepAlive(w http.ResponseWriter, r *http.Request) int {
	return n.coordRoute(w, r, func(ctx context.Context) (any, error) {
		var req api.KeepAliveRequest
		if err := decodeCoordBody(r, &req); err != nil {
			return nil, err
		}
		missing, err := n.KeepAliveSessions(ctx, req.IDs)
		if err != nil {
			return nil, err
		}
		if missing == nil {
			missing = []uint64{}
		}
		return api.KeepAliveResponse{Missing: missing}, nil
	})
}

func (n *Node) handleSessionGet(w http.ResponseWriter, r *http.Request) int {
	return n.coordRoute(w, r, func(ctx context.Context) (any, error) {
		id, err := pathID(r)
		if err != nil {
			return nil, err
		}
		if err := n.linearize(ctx); err != nil {
			return nil, err
		}
		s, ok := n.fsm.Session(id)
		if !ok {
			return nil, fmt.Errorf("%w: session %d", fsm.ErrSessionNotFound, id)
		}
		return sessionToAPI(s), nil
	})
}

func (n *Node) handleSessionDestroy(w http.ResponseWriter, r *http.Request) int {
	return n.coordRoute(w, r, func(ctx context.Context) (any, error) {
		id, err := pathID(r)
		if err != nil {
			return nil, err
		}
		return nil, n.DestroySession(ctx, id)
	})
}

// handleSessionWait long-polls until the session ends or the request's
// time runs out: {"alive":false} or {"alive":true}.
func (n *Node) handleSessionWait(w http.ResponseWriter, r *http.Request) int {
	return n.coordRoute(w, r, func(ctx context.Context) (any, error) {
		id, err := pathID(r)
		if err != nil {
			return nil, err
		}
		// Answer a little before the client's deadline.
		wctx, cancel := context.WithCancel(ctx)
		if d, ok := ctx.Deadline(); ok {
			wctx, cancel = context.WithDeadline(ctx, d.Add(-min(time.Until(d)/10, 100*time.Millisecond)))
		}
		defer cancel()
		err = n.WaitSession(wctx, id)
		switch {
		case err == nil:
			return api.SessionWaitResponse{Alive: false}, nil
		case wctx.Err() != nil && r.Context().Err() == nil:
			return api.SessionWaitResponse{Alive: true}, nil
		}
		return nil, err
	})
}

// named serves a coordination route on .../{kind}/{name} without a body
// (the GET of an object's state).
func (n *Node) named(w http.ResponseWriter, r *http.Request, kind string,
	call func(ctx context.Context, name string) (any, error)) int {
	return n.coordRoute(w, r, func(ctx context.Context) (any, error) {
		name, err := pathName(r, kind)
		if err != nil {
			return nil, err
		}
		return call(ctx, name)
	})
}

// namedWithBody serves a coordination route on .../{kind}/{name} whose
// JSON body decodes into Req, and hands both to call.
func namedWithBody[Req any](n *Node, w http.ResponseWriter, r *http.Request, kind string,
	call func(ctx context.Context, name string, req Req) (any, error)) int {
	return n.coordRoute(w, r, func(ctx context.Context) (any, error) {
		name, err := pathName(r, kind)
		if err != nil {
			return nil, err
		}
		var req Req
		if err := decodeCoordBody(r, &req); err != nil {
			return nil, err
		}
		return call(ctx, name, req)
	})
}

func (n *Node) handleLock(w http.ResponseWriter, r *http.Request) int {
	return namedWithBody(n, w, r, "lock", func(ctx context.Context, name string, req api.LockRequest) (any, error) {
		return n.Lock(ctx, name, req)
	})
}

func (n *Node) handleUnlock(w http.ResponseWriter, r *http.Request) int {
	return namedWithBody(n, w, r, "lock", func(ctx context.Context, name string, req api.UnlockRequest) (any, error) {
		return nil, n.Unlock(ctx, name, req)
	})
}

func (n *Node) handleLockInfo(w http.ResponseWriter, r *http.Request) int {
	return n.named(w, r, "lock", func(ctx context.Context, name string) (any, error) { return n.LockInfo(ctx, name) })
}

func (n *Node) handleCampaign(w http.ResponseWriter, r *http.Request) int {
	return namedWithBody(n, w, r, "election", func(ctx context.Context, name string, req api.CampaignRequest) (any, error) {
		return n.Campaign(ctx, name, req)
	})
}

func (n *Node) handleResign(w http.ResponseWriter, r *http.Request) int {
	return namedWithBody(n, w, r, "election", func(ctx context.Context, name string, req api.ElectionRequest) (any, error) {
		return nil, n.Resign(ctx, name, req)
	})
}

func (n *Node) handleProclaim(w http.ResponseWriter, r *http.Request) int {
	return namedWithBody(n, w, r, "election", func(ctx context.Context, name string, req api.ElectionRequest) (any, error) {
		return nil, n.Proclaim(ctx, name, req)
	})
}

// handleElection serves the leader, or with ?observe an NDJSON stream of
// api.Election lines (current state first) until the client goes away.
func (n *Node) handleElection(w http.ResponseWriter, r *http.Request) int {
	name, err := pathName(r, "election")
	if err != nil {
		return n.writeError(w, err)
	}
	switch r.URL.RawQuery {
	case "":
		return n.coordRoute(w, r, func(ctx context.Context) (any, error) { return n.ElectionLeader(ctx, name) })
	case "observe":
	default:
		return n.writeError(w, badRequest("unknown query %q (only ?observe)", r.URL.RawQuery))
	}
	ch, err := n.ObserveElection(r.Context(), name)
	if err != nil {
		return n.writeError(w, err)
	}
	h := w.Header()
	h["Content-Type"] = hdrNDJSON
	h["Cache-Control"] = hdrNoCache
	w.WriteHeader(http.StatusOK)
	fl, _ := w.(http.Flusher)
	enc := json.NewEncoder(w)
	for e := range ch {
		if enc.Encode(e) != nil {
			break
		}
		if fl != nil {
			fl.Flush()
		}
	}
	for range ch { // drain: the stream ends with r.Context()
	}
	return http.StatusOK
}

func (n *Node) handleSemaphoreAcquire(w http.ResponseWriter, r *http.Request) int {
	return namedWithBody(n, w, r, "semaphore", func(ctx context.Context, name string, req api.SemaphoreRequest) (any, error) {
		return n.AcquireSemaphore(ctx, name, req)
	})
}

func (n *Node) handleSemaphoreRelease(w http.ResponseWriter, r *http.Request) int {
	return namedWithBody(n, w, r, "semaphore", func(ctx context.Context, name string, req api.SemaphoreReleaseRequest) (any, error) {
		return nil, n.ReleaseSemaphore(ctx, name, req)
	})
}

func (n *Node) handleSemaphoreInfo(w http.ResponseWriter, r *http.Request) int {
	return n.named(w, r, "semaphore", func(ctx context.Context, name string) (any, error) { return n.SemaphoreInfo(ctx, name) })
}

func (n *Node) handleBarrier(w http.ResponseWriter, r *http.Request) int {
	return namedWithBody(n, w, r, "barrier", func(ctx context.Context, name string, req api.BarrierRequest) (any, error) {
		return n.Barrier(ctx, name, req)
	})
}

func (n *Node) handleBarrierInfo(w http.ResponseWriter, r *http.Request) int {
	return n.named(w, r, "barrier", func(ctx context.Context, name string) (any, error) { return n.BarrierInfo(ctx, name) })
}

func (n *Node) handleLatchCreate(w http.ResponseWriter, r *http.Request) int {
	return namedWithBody(n, w, r, "latch", func(ctx context.Context, name string, req api.LatchRequest) (any, error) {
		return n.CreateLatch(ctx, name, req)
	})
}

func (n *Node) handleLatchCountDown(w http.ResponseWriter, r *http.Request) int {
	return namedWithBody(n, w, r, "latch", func(ctx context.Context, name string, req api.LatchRequest) (any, error) {
		return n.CountDownLatch(ctx, name, req)
	})
}

func (n *Node) handleLatchDelete(w http.ResponseWriter, r *http.Request) int {
	return namedWithBody(n, w, r, "latch", func(ctx context.Context, name string, req api.LatchRequest) (any, error) {
		return nil, n.DeleteLatch(ctx, name, req)
	})
}

// handleLatch serves the latch's state, or with ?wait blocks until it is
// zero (408 wait_timeout when the request's time runs out).
func (n *Node) handleLatch(w http.ResponseWriter, r *http.Request) int {
	return n.named(w, r, "latch", func(ctx context.Context, name string) (any, error) {
		switch r.URL.RawQuery {
		case "":
			return n.LatchInfo(ctx, name)
		case "wait":
			return n.AwaitLatch(ctx, name)
		}
		return nil, badRequest("unknown query %q (only ?wait)", r.URL.RawQuery)
	})
}
