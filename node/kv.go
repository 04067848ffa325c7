package node

import (
	"context"
	"fmt"

	"github.com/statenode/statenode/fsm"
)

// Txn validates req and commits it through Raft as one revision
// (forwarded to the leader if this node is not it). A response with
// Succeeded=false means the compares failed and the Failure ops ran. A
// put attached to a session that does not exist (fsm.Op.Session) fails
// the whole txn with fsm.ErrSessionNotFound; nothing is written.
func (n *Node) Txn(ctx context.Context, req *fsm.Request) (*fsm.Response, error) {
	if req == nil {
		return nil, fmt.Errorf("%w: empty request", fsm.ErrInvalid)
	}
	if err := req.Validate(n.limits); err != nil {
		return nil, err
	}
	if n.raft == nil {
		return nil, ErrStopped
	}
	start := nowFunc()
	resp, err := n.apply(ctx, &fsm.Command{Type: fsm.CmdTxn, Txn: req})
	n.metrics.observeWrite(start, err)
	if err == nil && resp.Coord != nil {
		// Refused as a whole (an ephemeral put naming a missing session).
		if cerr := resp.Coord.Err(); cerr != nil {
			return nil, cerr
		}
	}
	return resp, err
}

// Put sets key to value and returns the revision of the write.
func (n *Node) Put(ctx context.Context, key, value []byte) (int64, error) {
	resp, err := n.Txn(ctx, &fsm.Request{Success: []fsm.Op{{Type: fsm.OpPut, Key: key, Value: value}}})
	if err != nil {
		return 0, err
	}
	return resp.Revision, nil
}

// Delete removes key; it returns how many keys were deleted (0 or 1) and
// the store revision after the delete.
func (n *Node) Delete(ctx context.Context, key []byte) (deleted, rev int64, err error) {
	resp, err := n.Txn(ctx, &fsm.Request{Success: []fsm.Op{{Type: fsm.OpDelete, Key: key}}})
	if err != nil {
		return 0, 0, err
	}
	if len(resp.Results) == 1 {
		deleted = resp.Results[0].Count
	}
	return deleted, resp.Revision, nil
}

// Get returns one key, or ErrKeyNotFound.
func (n *Node) Get(ctx context.Context, key []byte, c Consistency) (*fsm.KeyValue, error) {
	resp, err := n.Range(ctx, fsm.RangeRequest{Key: key}, c)
	if err != nil {
		return nil, err
	}
	if len(resp.KVs) == 0 {
		return nil, fmt.Errorf("%w: %q", ErrKeyNotFound, key)
	}
	return &resp.KVs[0], nil
}

// Range reads keys. Linearizable reads see every write that completed
// before the call began; Stale reads see this node's applied state.
func (n *Node) Range(ctx context.Context, req fsm.RangeRequest, c Consistency) (*fsm.RangeResponse, error) {
	if len(req.Key) == 0 && !req.Prefix {
		return nil, fmt.Errorf("%w: key is empty", fsm.ErrInvalid)
	}
	if len(req.Key) > n.limits.MaxKeySize {
		return nil, fmt.Errorf("%w: key is %d bytes, limit %d", fsm.ErrTooLarge, len(req.Key), n.limits.MaxKeySize)
	}
	if req.Limit < 0 || req.Revision < 0 {
		return nil, fmt.Errorf("%w: limit and revision must not be negative", fsm.ErrInvalid)
	}
	if n.raft == nil || n.stopped() {
		return nil, ErrStopped
	}
	start := nowFunc()
	if c == Linearizable {
		if err := n.linearize(ctx); err != nil {
			n.metrics.observeRead(start, c, err)
			return nil, err
		}
	}
	resp, err := n.fsm.Range(req)
	n.metrics.observeRead(start, c, err)
	return resp, err
}

// Watch streams every change to a key or prefix from req.StartRevision on,
// in order and without gaps, from this node's state machine. A start
// revision older than the retained history fails at once with
// *fsm.CompactedError. The channel closes when ctx ends or the node stops.
func (n *Node) Watch(ctx context.Context, req fsm.WatchRequest) (<-chan fsm.WatchResponse, error) {
	if len(req.Key) == 0 && !req.Prefix {
		return nil, fmt.Errorf("%w: key is empty", fsm.ErrInvalid)
	}
	if len(req.Key) > n.limits.MaxKeySize {
		return nil, fmt.Errorf("%w: key is %d bytes, limit %d", fsm.ErrTooLarge, len(req.Key), n.limits.MaxKeySize)
	}
	if req.StartRevision < 0 {
		return nil, fmt.Errorf("%w: start revision must not be negative", fsm.ErrInvalid)
	}
	if n.raft == nil || n.stopped() {
		return nil, ErrStopped
	}
	// The watch ends with the node as well as with the caller.
	wctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(n.ctx, cancel)
	ch, err := n.fsm.Watch(wctx, req)
	if err != nil {
		stop()
		cancel()
		return nil, err
	}
	context.AfterFunc(wctx, func() { stop() })
	return ch, nil
}
