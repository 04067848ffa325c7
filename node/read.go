package node

import (
	"context"
	"fmt"
	"runtime"
	"time"

	"github.com/hashicorp/raft"
)

type readWaiter struct {
	done chan readResult // buffered(1)
}

type readResult struct {
	index uint64
	err   error
}

// linearize blocks until this node's state machine reflects every write
// that completed before the call: read-index (Raft §6.4). The leader
// records its commit index, confirms with a quorum that it still leads,
// and the reading node waits until it has applied up to that index.
// Concurrent callers share one confirmation.
func (n *Node) linearize(ctx context.Context) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, n.cfg.ApplyTimeout)
		defer cancel()
	}
	backoff := time.Millisecond
	for {
		changed := n.leaderChanged()
		idx, err := n.readIndex(ctx)
		if err == nil {
			if err := n.fsm.WaitApplied(ctx, idx); err != nil {
				return fmt.Errorf("%w: waiting to apply index %d: %w", ErrTimeout, idx, err)
			}
			return nil
		}
		if !retryable(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-n.ctx.Done():
			return ErrStopped
		case <-changed:
		case <-time.After(backoff):
			backoff = min(backoff*2, 100*time.Millisecond)
		}
	}
}

// readIndex joins the next read-index round.
func (n *Node) readIndex(ctx context.Context) (uint64, error) {
	if n.stopped() {
		return 0, ErrStopped
	}
	w := &readWaiter{done: make(chan readResult, 1)}
	select {
	case n.readCh <- w:
	case <-ctx.Done():
		return 0, fmt.Errorf("%w: %w", ErrNoLeader, ctx.Err())
	case <-n.ctx.Done():
		return 0, ErrStopped
	}
	select {
	case r := <-w.done:
		return r.index, r.err
	case <-ctx.Done():
		return 0, fmt.Errorf("%w: %w", ErrNoLeader, ctx.Err())
	case <-n.ctx.Done():
		return 0, ErrStopped
	}
}

// runReadIndex runs read-index rounds one at a time. Every waiter queued
// when a round starts gets that round's index; waiters that arrive during
// a round wait for the next one (its commit index is recorded after they
// arrived, as linearizability requires).
func (n *Node) runReadIndex() {
	last := 0 // waiters in the previous round
	for {
		var batch []*readWaiter
		select {
		case w := <-n.readCh:
			batch = append(batch, w)
		case <-n.ctx.Done():
			return
		}
		batch = n.drainReads(batch)
		// Each round costs a heartbeat round trip to every follower. Under
		// concurrency (the last round had company), yield twice so that
		// reads already on their way join this round: at 100 clients this
		// cut the rounds by a third. A lone reader never waits.
		if last > 1 {
			for range 2 {
				runtime.Gosched()
				batch = n.drainReads(batch)
			}
		}
		last = len(batch)
		start := time.Now()
		idx, err := n.confirmReadIndex()
		n.metrics.observeReadIndex(time.Since(start), len(batch))
		for _, w := range batch {
			w.done <- readResult{index: idx, err: err}
		}
	}
}

// drainReads appends the waiters queued on readCh to batch.
func (n *Node) drainReads(batch []*readWaiter) []*readWaiter {
	for {
		select {
		case w := <-n.readCh:
			batch = append(batch, w)
		default:
			return batch
		}
	}
}

// confirmReadIndex returns a commit index that covers every write
// completed before the call, confirmed by the leader with a quorum.
func (n *Node) confirmReadIndex() (uint64, error) {
	ctx, cancel := context.WithTimeout(n.ctx, n.cfg.ApplyTimeout)
	defer cancel()
	if n.raft.State() == raft.Leader {
		return n.leaderReadIndex(ctx)
	}
	l := n.Leader()
	if l.ID == "" || l.ID == n.cfg.ID || l.HTTPAddr == "" {
		return 0, ErrNoLeader
	}
	return n.forwardReadIndex(ctx, n.forwardAddr(l))
}

// leaderReadIndex is the leader's half of read-index.
func (n *Node) leaderReadIndex(ctx context.Context) (uint64, error) {
	// A new leader's commit index may lag entries committed by its
	// predecessor until it commits an entry of its own term.
	for !n.isReadyLeader() {
		if n.raft.State() != raft.Leader {
			return 0, n.translate(raft.ErrNotLeader)
		}
		select {
		case <-n.leaderChanged():
		case <-ctx.Done():
			return 0, ErrNoLeader
		case <-time.After(10 * time.Millisecond):
		}
	}
	idx := n.raft.CommitIndex()
	if err := n.raft.VerifyLeader().Error(); err != nil {
		return 0, n.translate(err)
	}
	return idx, nil
}
