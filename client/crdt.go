package client

// CRDTs and gossip membership (docs/CRDT.md): any member serves them from
// its own state, so requests go to any endpoint and are never forwarded.
// CRDT updates are not idempotent (an increment repeated counts twice):
// like other writes, they are retried only when certainly not applied.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/statenode/statenode/api"
)

// Errors of the CRDT and gossip calls.
var (
	// ErrGossipDisabled: the member runs without gossip (501 gossip_disabled).
	ErrGossipDisabled = errors.New("client: gossip disabled on the member")
	// ErrInsufficientRights: a bounded counter decrement or transfer
	// exceeds the serving member's rights (409 insufficient_rights).
	ErrInsufficientRights = errors.New("client: insufficient rights")
)

func crdtIs(code string, target error) bool {
	switch code {
	case api.CodeGossipDisabled:
		return target == ErrGossipDisabled
	case api.CodeInsufficientRights:
		return target == ErrInsufficientRights
	}
	return false
}

func crdtPath(typ, name string) string {
	return "/v1/crdt/" + url.PathEscape(typ) + "/" + url.PathEscape(name)
}

func decodeCRDT(res *result) (*api.CRDTValue, error) {
	defer putBuf(res.body)
	var v api.CRDTValue
	if err := json.Unmarshal(*res.body, &v); err != nil {
		return nil, fmt.Errorf("client: malformed CRDT answer: %w", err)
	}
	return &v, nil
}

// CRDTGet returns a member's view of the object typ/name (typ: an
// api.CRDT* type or alias such as "counter", "set", "register"). The
// answer names the member that served it (Node).
func (c *Client) CRDTGet(ctx context.Context, typ, name string) (*api.CRDTValue, error) {
	res, err := c.do(ctx, &call{method: http.MethodGet, path: crdtPath(typ, name), to: toAny})
	if err != nil {
		return nil, err
	}
	return decodeCRDT(res)
}

// CRDTUpdate applies op to typ/name on a member and returns that member's
// view after the update. The update is durable on that member when this
// returns and reaches the others by gossip.
func (c *Client) CRDTUpdate(ctx context.Context, typ, name string, op api.CRDTOp) (*api.CRDTValue, error) {
	body, err := json.Marshal(op)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	res, err := c.do(ctx, &call{method: http.MethodPost, path: crdtPath(typ, name), body: body, ctype: "application/json", write: true, to: toAny})
	if err != nil {
		return nil, err
	}
	return decodeCRDT(res)
}

// CRDTObjects lists the objects a member holds.
func (c *Client) CRDTObjects(ctx context.Context) ([]api.CRDTObject, error) {
	res, err := c.do(ctx, &call{method: http.MethodGet, path: "/v1/crdt", to: toAny})
	if err != nil {
		return nil, err
	}
	defer putBuf(res.body)
	var out []api.CRDTObject
	if err := json.Unmarshal(*res.body, &out); err != nil {
		return nil, fmt.Errorf("client: malformed CRDT list: %w", err)
	}
	return out, nil
}

// CounterInc adds delta (negative to subtract) to the counter name and
// returns the serving member's value after it.
func (c *Client) CounterInc(ctx context.Context, name string, delta int64) (int64, error) {
	v, err := c.CRDTUpdate(ctx, api.CRDTPNCounter, name, api.CRDTOp{Op: api.CRDTOpInc, Delta: delta})
	if err != nil {
		return 0, err
	}
	return v.Int()
}

// CounterValue returns a member's value of the counter name.
func (c *Client) CounterValue(ctx context.Context, name string) (int64, error) {
	v, err := c.CRDTGet(ctx, api.CRDTPNCounter, name)
	if err != nil {
		return 0, err
	}
	return v.Int()
}

// SetAdd adds elem to the add-wins set name.
func (c *Client) SetAdd(ctx context.Context, name, elem string) error {
	_, err := c.CRDTUpdate(ctx, api.CRDTORSet, name, api.CRDTOp{Op: api.CRDTOpAdd, Value: elem})
	return err
}

// SetRemove removes elem from the set name (a concurrent add wins).
func (c *Client) SetRemove(ctx context.Context, name, elem string) error {
	_, err := c.CRDTUpdate(ctx, api.CRDTORSet, name, api.CRDTOp{Op: api.CRDTOpRemove, Value: elem})
	return err
}

// SetElements returns a member's view of the set name, sorted.
func (c *Client) SetElements(ctx context.Context, name string) ([]string, error) {
	v, err := c.CRDTGet(ctx, api.CRDTORSet, name)
	if err != nil {
		return nil, err
	}
	return v.Strings()
}

// RegisterSet writes value to the last-writer-wins register name.
func (c *Client) RegisterSet(ctx context.Context, name string, value []byte) error {
	_, err := c.CRDTUpdate(ctx, api.CRDTLWWRegister, name, api.CRDTOp{Op: api.CRDTOpSet, ValueBase64: value})
	return err
}

// RegisterGet returns a member's value of the register name and whether it
// was ever written.
func (c *Client) RegisterGet(ctx context.Context, name string) ([]byte, bool, error) {
	v, err := c.CRDTGet(ctx, api.CRDTLWWRegister, name)
	if err != nil {
		return nil, false, err
	}
	return v.Bytes()
}

// memberWatchIdleTimeout: a member stream silent this long is dead (the
// server writes a heartbeat after 5s of silence).
const memberWatchIdleTimeout = 20 * time.Second

// WatchMembers streams one member's gossip membership events: first one
// event per known member, then every change. The channel is closed when
// ctx ends, when Close is called, or when the stream breaks (watch again
// to resume: the first events are a fresh snapshot).
func (c *Client) WatchMembers(ctx context.Context) (<-chan api.MemberEvent, error) {
	if c.ctx.Err() != nil {
		return nil, ErrClosed
	}
	wctx, cancel := context.WithCancel(ctx)
	stopOnClose := context.AfterFunc(c.ctx, cancel)
	octx, ocancel := c.withTimeout(ctx)
	defer ocancel()
	var lastErr error
	for attempt := 0; ; attempt++ {
		if octx.Err() != nil || (attempt > 0 && !sleepBackoff(octx, attempt)) {
			stopOnClose()
			cancel()
			if c.ctx.Err() != nil {
				return nil, ErrClosed
			}
			return nil, fmt.Errorf("%w: %w (last error: %w)", ErrUnavailable, octx.Err(), lastErr)
		}
		base := c.pick(octx, toAny)
		req, err := http.NewRequestWithContext(wctx, http.MethodGet, base+"/v1/members/watch", nil)
		if err != nil {
			stopOnClose()
			cancel()
			return nil, err
		}
		resp, err := c.rt.RoundTrip(req)
		if err != nil {
			c.endpointFailed(base)
			lastErr = err
			continue
		}
		if resp.StatusCode != http.StatusOK {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
			e := decodeError(&result{status: resp.StatusCode, body: &body})
			if resp.StatusCode == http.StatusServiceUnavailable {
				c.endpointFailed(base)
				lastErr = e
				continue
			}
			stopOnClose()
			cancel()
			return nil, e
		}
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			resp.Body.Close()
			stopOnClose()
			cancel()
			return nil, ErrClosed
		}
		c.wg.Add(1)
		c.mu.Unlock()
		ch := make(chan api.MemberEvent, 16)
		go func() {
			defer c.wg.Done()
			defer stopOnClose()
			defer cancel()
			defer close(ch)
			defer resp.Body.Close()
			idle := time.AfterFunc(memberWatchIdleTimeout, func() { resp.Body.Close() })
			defer idle.Stop()
			sc := bufio.NewScanner(resp.Body)
			sc.Buffer(make([]byte, 0, 4096), 1<<20)
			for sc.Scan() {
				idle.Reset(memberWatchIdleTimeout)
				var ev api.MemberEvent
				if len(sc.Bytes()) == 0 || json.Unmarshal(sc.Bytes(), &ev) != nil || ev.Heartbeat {
					continue
				}
				select {
				case ch <- ev:
				case <-wctx.Done():
					return
				}
			}
		}()
		return ch, nil
	}
}
