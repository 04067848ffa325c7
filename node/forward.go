package node

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/raft"

	"github.com/statenode/statenode/fsm"
)

// Internal API: member-to-member calls on the client HTTP port. Writes and
// read-index requests are forwarded to the leader; membership changes too.
// The leader never forwards an internal call again (no loops): if it lost
// leadership it answers not_leader and the caller retries.
const (
	internalApply     = "/v1/internal/apply"
	internalReadIndex = "/v1/internal/readindex"
	internalJoin      = "/v1/internal/join"
	internalRemove    = "/v1/internal/remove"
	internalTransfer  = "/v1/internal/transfer"

	// errorCodeHeader carries the error class of an internal call.
	errorCodeHeader = "X-Statenode-Error-Code"
)

// Error classes of internal calls. notLeader and noLeader mean the request
// was certainly not applied.
const (
	codeNotLeader = "not_leader"
	codeNoLeader  = "no_leader"
	codeInvalid   = "invalid"
	codeTooLarge  = "too_large"
	codeTimeout   = "timeout"
	codeStopped   = "stopped"
	codeUnknown   = "unknown_member"
	codeInternal  = "internal"
)

type joinRequest struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raft_addr,omitempty"`
	HTTPAddr string `json:"http_addr,omitempty"`
	NonVoter bool   `json:"non_voter,omitempty"`
}

func (n *Node) registerInternal(mux *http.ServeMux) {
	mux.HandleFunc("POST "+internalApply, n.handleInternalApply)
	mux.HandleFunc("POST "+internalReadIndex, n.handleInternalReadIndex)
	mux.HandleFunc("POST "+internalJoin, n.handleInternalMember(func(ctx context.Context, r joinRequest) error {
		return n.addMember(ctx, r)
	}))
	mux.HandleFunc("POST "+internalRemove, n.handleInternalMember(func(ctx context.Context, r joinRequest) error {
		return n.Remove(ctx, r.ID)
	}))
	mux.HandleFunc("POST "+internalTransfer, n.handleInternalMember(func(ctx context.Context, r joinRequest) error {
		return n.TransferLeadership(ctx, r.ID)
	}))
}

func (n *Node) handleInternalApply(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, int64(n.limits.MaxRequestSize)+64<<10))
	if err != nil {
		writeInternalError(w, err)
		return
	}
	cmd, err := fsm.DecodeCommand(body)
	if err == nil {
		err = cmd.Validate(n.limits)
	}
	if err != nil {
		writeInternalError(w, err)
		return
	}
	if n.raft == nil || n.raft.State() != raft.Leader {
		writeInternalError(w, n.translate(raft.ErrNotLeader))
		return
	}
	resp, err := n.applyLocal(r.Context(), cmd)
	if err != nil {
		writeInternalError(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	_, _ = w.Write(fsm.AppendResponse(nil, resp))
}

func (n *Node) handleInternalReadIndex(w http.ResponseWriter, r *http.Request) {
	if n.raft == nil || n.raft.State() != raft.Leader {
		writeInternalError(w, n.translate(raft.ErrNotLeader))
		return
	}
	idx, err := n.readIndex(r.Context())
	if err != nil {
		writeInternalError(w, err)
		return
	}
	_, _ = w.Write(strconv.AppendUint(nil, idx, 10))
}

func (n *Node) handleInternalMember(f func(context.Context, joinRequest) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req joinRequest
		if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&req); err != nil {
			writeInternalError(w, fmt.Errorf("%w: %w", fsm.ErrInvalid, err))
			return
		}
		if err := f(r.Context(), req); err != nil {
			writeInternalError(w, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}
}

func writeInternalError(w http.ResponseWriter, err error) {
	code, status := codeInternal, http.StatusInternalServerError
	var nle *NotLeaderError
	switch {
	case errors.As(err, &nle):
		code, status = codeNotLeader, http.StatusServiceUnavailable
		w.Header().Set("X-Statenode-Leader", nle.LeaderHTTP)
	case errors.Is(err, ErrNoLeader), errors.Is(err, ErrNotLeader):
		code, status = codeNoLeader, http.StatusServiceUnavailable
	case errors.Is(err, fsm.ErrTooLarge):
		code, status = codeTooLarge, http.StatusRequestEntityTooLarge
	case errors.Is(err, fsm.ErrInvalid), errors.Is(err, fsm.ErrCorrupt),
		errors.Is(err, fsm.ErrUnknownCommand), errors.Is(err, fsm.ErrUnsupportedVersion):
		code, status = codeInvalid, http.StatusBadRequest
	case errors.Is(err, ErrTimeout):
		code, status = codeTimeout, http.StatusGatewayTimeout
	case errors.Is(err, ErrStopped):
		code, status = codeStopped, http.StatusServiceUnavailable
	case errors.Is(err, ErrUnknownMember):
		code, status = codeUnknown, http.StatusNotFound
	}
	w.Header().Set(errorCodeHeader, code)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, err.Error())
}

// internalError turns an internal call's error answer back into an error.
func internalError(resp *http.Response) error {
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	text := strings.TrimSpace(string(msg))
	switch resp.Header.Get(errorCodeHeader) {
	case codeNotLeader:
		return &NotLeaderError{LeaderHTTP: resp.Header.Get("X-Statenode-Leader")}
	case codeNoLeader:
		return fmt.Errorf("%w: %s", ErrNoLeader, text)
	case codeInvalid:
		return fmt.Errorf("%w: %s", fsm.ErrInvalid, text)
	case codeTooLarge:
		return fmt.Errorf("%w: %s", fsm.ErrTooLarge, text)
	case codeTimeout:
		return fmt.Errorf("%w: %s", ErrTimeout, text)
	case codeStopped:
		// The leader was stopping: a write may have been in flight there.
		return fmt.Errorf("%w: leader stopping: %s", ErrTimeout, text)
	case codeUnknown:
		return fmt.Errorf("%w: %s", ErrUnknownMember, text)
	default:
		return fmt.Errorf("node: leader answered %s: %s", resp.Status, text)
	}
}

// post sends an internal call. A failure to connect means the request was
// never delivered (ErrNoLeader, retryable); a failure after that leaves the
// outcome unknown (ErrTimeout).
func (n *Node) post(ctx context.Context, addr, path, contentType string, body []byte) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, n.scheme()+addr+path, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	req.Header.Set("Content-Type", contentType)
	resp, err := n.peers.Do(req)
	if err != nil {
		if isDialError(err) {
			return nil, fmt.Errorf("%w: leader unreachable: %w", ErrNoLeader, err)
		}
		return nil, fmt.Errorf("%w: forwarding to the leader: %w; the request may or may not have applied", ErrTimeout, err)
	}
	return resp, nil
}

func (n *Node) scheme() string {
	if n.cfg.TLS != nil {
		return "https://"
	}
	return "http://"
}

func (n *Node) forwardApply(ctx context.Context, addr string, cmd []byte) (*fsm.Response, error) {
	resp, err := n.post(ctx, addr, internalApply, "application/octet-stream", cmd)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, internalError(resp)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("%w: reading the leader's answer: %w", ErrTimeout, err)
	}
	r, err := fsm.DecodeResponse(b)
	if err != nil {
		return nil, fmt.Errorf("node: leader's answer: %w", err)
	}
	return r, nil
}

func (n *Node) forwardReadIndex(ctx context.Context, addr string) (uint64, error) {
	resp, err := n.post(ctx, addr, internalReadIndex, "text/plain", nil)
	if err != nil {
		if errors.Is(err, ErrTimeout) {
			// A read changes nothing: an unknown outcome is simply a retry.
			return 0, fmt.Errorf("%w: %w", ErrNoLeader, err)
		}
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, internalError(resp)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64))
	if err != nil {
		return 0, fmt.Errorf("%w: %w", ErrNoLeader, err)
	}
	idx, err := strconv.ParseUint(string(b), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("node: leader's read index %q: %w", b, err)
	}
	return idx, nil
}

// onLeader runs local on the leader, or forwards req to path on the leader.
func (n *Node) onLeader(ctx context.Context, path string, req joinRequest, local func(context.Context) error) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, n.cfg.ApplyTimeout)
		defer cancel()
	}
	body, _ := json.Marshal(req)
	backoff := time.Millisecond
	for {
		if n.stopped() || n.raft == nil {
			return ErrStopped
		}
		changed := n.leaderChanged()
		var err error
		if n.raft.State() == raft.Leader {
			err = local(ctx)
		} else if l := n.Leader(); l.ID != "" && l.HTTPAddr != "" && l.ID != n.cfg.ID {
			var resp *http.Response
			resp, err = n.post(ctx, n.forwardAddr(l), path, "application/json", body)
			if err == nil {
				if resp.StatusCode != http.StatusNoContent {
					err = internalError(resp)
				}
				resp.Body.Close()
			}
		} else {
			err = ErrNoLeader
		}
		if err == nil || !retryable(err) {
			return err
		}
		// Certainly not done: wait for a leader change, or a moment (the
		// leader's client address may still be replicating to us).
		select {
		case <-ctx.Done():
			return err
		case <-changed:
		case <-n.ctx.Done():
			return ErrStopped
		case <-time.After(backoff):
			backoff = min(backoff*2, 100*time.Millisecond)
		}
	}
}

// join asks the members listed in Config.Join, in turn, to add this node.
func (n *Node) join(ctx context.Context) error {
	body, _ := json.Marshal(joinRequest{ID: n.cfg.ID, RaftAddr: n.RaftAddr(), HTTPAddr: n.httpAdvertise(), NonVoter: n.cfg.NonVoter})
	var last error
	for attempt := 0; ; attempt++ {
		for _, addr := range n.cfg.Join {
			cctx, cancel := context.WithTimeout(ctx, n.cfg.ApplyTimeout)
			resp, err := n.post(cctx, addr, internalJoin, "application/json", body)
			if err == nil {
				if resp.StatusCode == http.StatusNoContent {
					resp.Body.Close()
					cancel()
					n.log.Info("joined the cluster", "via", addr)
					return nil
				}
				err = internalError(resp)
				resp.Body.Close()
			}
			cancel()
			last = err
			n.log.Warn("join attempt failed", "via", addr, "err", err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("node: could not join through %v: %w", n.cfg.Join, last)
		case <-n.ctx.Done():
			return ErrStopped
		case <-timeAfter(attempt):
		}
	}
}
