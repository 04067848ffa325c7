package node

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/statenode/statenode/fsm"
)

// maxInflightBatches bounds how many Raft log entries the proposer has in
// flight. While they commit, new writes queue up and leave together as the
// next entry: one client sees one commit of latency, many clients share
// commits (group commit), which is where throughput comes from.
const maxInflightBatches = 4

// eagerBatch is the batch size that leaves at once even while entries are
// in flight. A smaller batch leaves at once only when nothing is in
// flight; otherwise it waits for an entry to commit (collecting whatever
// queues meanwhile). Without this, a freed slot was taken by whichever one
// or two writes had arrived at that instant: most entries carried a single
// command, and the many small entries queued behind each other in Raft.
const eagerBatch = 32

type proposal struct {
	cmd  *fsm.Command
	done chan proposalResult // buffered(1)
}

type proposalResult struct {
	resp *fsm.Response
	err  error
}

// apply commits cmd through Raft, on this node if it leads, otherwise by
// forwarding it to the leader. It retries only while the command is
// certainly not applied (no leader, not leader); once it may have been, the
// outcome is returned as is (ErrTimeout when unknown).
func (n *Node) apply(ctx context.Context, cmd *fsm.Command) (*fsm.Response, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, n.cfg.ApplyTimeout)
		defer cancel()
	}
	var encoded []byte
	backoff := time.Millisecond
	var leaderless time.Time // since when a remote request finds no leader to take it
	for {
		if n.stopped() || n.raft == nil {
			return nil, ErrStopped
		}
		changed := n.leaderChanged()
		var (
			resp *fsm.Response
			err  error
		)
		if n.raft.State() == raft.Leader {
			resp, err = n.applyLocal(ctx, cmd)
		} else if l := n.Leader(); l.ID != "" && l.ID != n.cfg.ID && l.HTTPAddr != "" {
			if encoded == nil {
				encoded = fsm.EncodeCommand(cmd)
			}
			resp, err = n.forwardApply(ctx, n.forwardAddr(l), encoded)
		} else {
			err = ErrNoLeader
		}
		if err == nil || !retryable(err) {
			return resp, err
		}
		// A client can try another member: do not hold its request on a
		// member that has found no leader for longer than an election
		// takes (a member cut off from the majority never will).
		if isRemote(ctx) {
			if leaderless.IsZero() {
				leaderless = time.Now()
			} else if time.Since(leaderless) >= n.leaderlessBound() {
				return nil, err
			}
		}
		// Certainly not applied: wait for the leader to change (or a short
		// backoff, in case we raced with an election), then try again.
		select {
		case <-ctx.Done():
			return nil, err
		case <-n.ctx.Done():
			return nil, ErrStopped
		case <-changed:
		case <-time.After(backoff):
			backoff = min(backoff*2, 100*time.Millisecond)
		}
	}
}

// leaderlessBound is how long a remote request waits for a leader before
// it is answered no_leader: two election timeouts, time for an election
// and its first heartbeat.
func (n *Node) leaderlessBound() time.Duration { return 2 * n.cfg.ElectionTimeout }

// retryable reports whether err guarantees the command was not applied.
func retryable(err error) bool {
	return errors.Is(err, ErrNotLeader) || errors.Is(err, ErrNoLeader)
}

// applyLocal hands cmd to the proposer of this (leader) node.
func (n *Node) applyLocal(ctx context.Context, cmd *fsm.Command) (*fsm.Response, error) {
	p := &proposal{cmd: cmd, done: make(chan proposalResult, 1)}
	select {
	case n.proposeCh <- p:
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: proposal queue full", ErrNoLeader)
	case <-n.ctx.Done():
		return nil, ErrStopped
	}
	select {
	case r := <-p.done:
		return r.resp, r.err
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: %w; the write may or may not have applied", ErrTimeout, ctx.Err())
	case <-n.ctx.Done():
		return nil, fmt.Errorf("%w: node stopped while committing; the write may or may not have applied", ErrStopped)
	}
}

// runProposer packs queued proposals into Raft log entries and applies
// them, keeping at most maxInflightBatches entries in flight.
func (n *Node) runProposer() {
	defer close(n.proposerDone)
	sem := make(chan struct{}, maxInflightBatches)
	// committed gets a token whenever an entry's outcome is known; tokens
	// older than the last entry sent are discarded.
	committed := make(chan struct{}, maxInflightBatches)
	fail := func(batch []*proposal, err error) {
		for _, p := range batch {
			p.done <- proposalResult{err: err}
		}
	}
	drain := func(batch []*proposal) []*proposal {
		for len(batch) < n.cfg.MaxBatch {
			select {
			case p := <-n.proposeCh:
				batch = append(batch, p)
			default:
				return batch
			}
		}
		return batch
	}
	for {
		var batch []*proposal
		select {
		case p := <-n.proposeCh:
			batch = append(make([]*proposal, 0, 16), p)
		case pp := <-n.pauseCh:
			if !holdProposer(n.ctx, sem, pp) {
				fail(drain(nil), ErrStopped)
				return
			}
			continue
		case <-n.ctx.Done():
			fail(drain(nil), ErrStopped)
			return
		}
		batch = drain(batch)
		// Group commit: while entries are in flight, a small batch waits
		// for one of them to commit and leaves then with everything that
		// queued meanwhile. A lone writer (nothing in flight) never waits.
	collect:
		for len(sem) > 0 && len(batch) < eagerBatch {
			select {
			case <-committed:
				break collect
			case p := <-n.proposeCh:
				batch = drain(append(batch, p))
			case <-n.ctx.Done():
				fail(drain(batch), ErrStopped)
				return
			}
		}
		select {
		case sem <- struct{}{}:
		case <-n.ctx.Done():
			fail(drain(batch), ErrStopped)
			return
		}
		batch = drain(batch) // more may have queued while we waited for a slot
		now := n.wallClock().UnixNano()
		var data []byte
		if len(batch) == 1 {
			batch[0].cmd.Time = now
			data = fsm.EncodeCommand(batch[0].cmd)
		} else {
			cmds := make([][]byte, len(batch))
			for i, p := range batch {
				p.cmd.Time = now
				cmds[i] = fsm.EncodeCommand(p.cmd)
			}
			data = fsm.EncodeBatch(cmds)
		}
		start := time.Now()
		f := n.raft.Apply(data, n.cfg.ApplyTimeout)
		for len(committed) > 0 {
			<-committed
		}
		// One goroutine per entry waits for its outcome. It is not tracked
		// by n.wg: raft leaves a future unresolved when it shuts down with
		// the entry still queued, and Shutdown must not wait for that
		// (it waits a little for n.inflight: drainInflight).
		// applyLocal stops waiting at Shutdown on its own (ErrStopped: the
		// outcome is unknown), and this goroutine touches no store.
		n.inflight.Add(1)
		go func() {
			defer n.inflight.Add(-1)
			err := f.Error()
			<-sem
			select {
			case committed <- struct{}{}:
			default:
			}
			n.metrics.observeCommit(time.Since(start), len(batch))
			if err != nil {
				fail(batch, n.translate(err))
				return
			}
			deliver(batch, f.Response())
		}()
	}
}

// proposerPause asks the proposer to stop sending entries to raft: it
// closes paused once every entry it sent is applied (or has failed), then
// sends nothing until resume is closed. Proposals queue meanwhile.
type proposerPause struct{ paused, resume chan struct{} }

// holdProposer carries out pp for runProposer: taking every slot of sem
// waits out the entries in flight. It returns false if ctx ended.
func holdProposer(ctx context.Context, sem chan struct{}, pp *proposerPause) bool {
	taken := 0
	defer func() {
		for ; taken > 0; taken-- {
			<-sem
		}
	}()
	for taken < cap(sem) {
		select {
		case sem <- struct{}{}:
			taken++
		case <-pp.resume: // the caller gave up waiting
			return true
		case <-ctx.Done():
			return false
		}
	}
	close(pp.paused)
	select {
	case <-pp.resume:
		return true
	case <-ctx.Done():
		return false
	}
}

// pauseWrites stops this node's proposer (see proposerPause) and returns
// once every write it sent to raft is applied. Until resume is called, no
// write from this node reaches raft; writes wait in the queue. resume may
// be called more than once.
func (n *Node) pauseWrites(ctx context.Context) (resume func(), err error) {
	pp := &proposerPause{paused: make(chan struct{}), resume: make(chan struct{})}
	resume = sync.OnceFunc(func() { close(pp.resume) })
	select {
	case n.pauseCh <- pp:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-n.ctx.Done():
		return nil, ErrStopped
	}
	select {
	case <-pp.paused:
		return resume, nil
	case <-ctx.Done():
		resume()
		return nil, ctx.Err()
	case <-n.ctx.Done():
		resume()
		return nil, ErrStopped
	}
}

// deliver hands each proposal its part of the apply result.
func deliver(batch []*proposal, res any) {
	switch r := res.(type) {
	case fsm.ApplyResult:
		if len(batch) == 1 {
			batch[0].done <- proposalResult{resp: r.Response, err: r.Err}
			return
		}
	case []fsm.ApplyResult:
		if len(r) == len(batch) {
			for i, p := range batch {
				p.done <- proposalResult{resp: r[i].Response, err: r[i].Err}
			}
			return
		}
	}
	for _, p := range batch {
		p.done <- proposalResult{err: fmt.Errorf("node: unexpected apply result %T", res)}
	}
}
