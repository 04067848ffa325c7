package node

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/hashicorp/raft"

	"github.com/statenode/statenode/fsm"
)

// observeLeader turns raft's leader observations into leaderChange
// broadcasts, so waiters (forwarding, reads, registration) wake without
// polling.
func (n *Node) observeLeader() {
	ch := make(chan raft.Observation, 16)
	obs := raft.NewObserver(ch, false, func(o *raft.Observation) bool {
		switch o.Data.(type) {
		case raft.LeaderObservation, raft.RaftState:
			return true
		}
		return false
	})
	n.raft.RegisterObserver(obs)
	defer n.raft.DeregisterObserver(obs)
	for {
		select {
		case <-n.ctx.Done():
			n.notifyLeaderChange()
			return
		case <-ch:
			n.notifyLeaderChange()
		}
	}
}

func (n *Node) notifyLeaderChange() {
	n.leaderMu.Lock()
	close(n.leaderChange)
	n.leaderChange = make(chan struct{})
	n.leaderMu.Unlock()
}

// leaderChanged returns a channel closed at the next leader change.
func (n *Node) leaderChanged() <-chan struct{} {
	n.leaderMu.Lock()
	defer n.leaderMu.Unlock()
	return n.leaderChange
}

// runLeaderDuties commits a barrier whenever this node becomes leader: once
// it commits, every entry of earlier terms is committed and applied here,
// and read-index may use the commit index (Raft §6.4). Raft's own entries
// of the new term (its no-op) never reach the FSM; the barrier is a FSM
// command so that the commit index always names an entry the FSM applies.
func (n *Node) runLeaderDuties() {
	for {
		select {
		case <-n.ctx.Done():
			return
		case isLeader := <-n.raft.LeaderCh():
			if !isLeader {
				n.leaderReadyTerm.Store(0)
				n.notifyLeaderChange()
				continue
			}
			term := n.raft.CurrentTerm()
			// Commit a no-op *through the state machine* (not raft.Barrier,
			// whose entry the FSM never sees): when it is applied, every
			// earlier entry is applied too, and from now on the entry at
			// the commit index is one the FSM applies, so read-index waits
			// (WaitApplied) always end.
			ctx, cancel := context.WithTimeout(n.ctx, n.cfg.ApplyTimeout)
			_, err := n.applyLocal(ctx, &fsm.Command{Type: fsm.CmdNoop})
			cancel()
			if err != nil {
				n.log.Warn("leader barrier failed", "err", err)
				continue
			}
			if n.raft.State() == raft.Leader && n.raft.CurrentTerm() == term {
				n.leaderReadyTerm.Store(term)
				n.log.Info("leader ready", "term", term)
				n.notifyLeaderChange()
			}
		}
	}
}

// isReadyLeader reports whether this node is leader and has committed its
// barrier in the current term.
func (n *Node) isReadyLeader() bool {
	t := n.leaderReadyTerm.Load()
	return t != 0 && n.raft.State() == raft.Leader && n.raft.CurrentTerm() == t
}

// memberRecheck is how often a registered member re-reads its own entry in
// the replicated member table when no leader change woke it.
const memberRecheck = time.Second

// runMemberRegistration keeps this node's addresses in the replicated member
// table, so that others can forward to it and clients can find it.
func (n *Node) runMemberRegistration() {
	want := fsm.Member{ID: n.cfg.ID, RaftAddr: n.RaftAddr(), HTTPAddr: n.httpAdvertise()}
	backoff := 50 * time.Millisecond
	for {
		changed := n.leaderChanged()
		applied := n.fsm.AppliedIndex()
		got, ok := n.fsm.Member(n.cfg.ID)
		registered := ok && got == want
		if !registered && n.inConfiguration() && n.Leader().ID != "" {
			ctx, cancel := context.WithTimeout(n.ctx, 5*time.Second)
			_, err := n.apply(ctx, &fsm.Command{Type: fsm.CmdPutMember, Member: &want})
			cancel()
			if err != nil && !n.stopped() {
				n.log.Debug("member registration failed; will retry", "err", err)
				select {
				case <-n.ctx.Done():
					return
				case <-time.After(backoff):
				}
				backoff = min(backoff*2, 2*time.Second)
				continue
			}
			backoff = 50 * time.Millisecond
			continue
		}
		if registered {
			// Check again on a leader change, and once a second for
			// changes made by others (a removal and re-join, a restore):
			// waking on every apply cost a goroutine and a context per
			// log entry.
			select {
			case <-changed:
			case <-time.After(memberRecheck):
			case <-n.ctx.Done():
			}
		} else {
			// Not yet in the configuration, or no leader: the next apply
			// or leader change may make registration possible.
			wctx, cancel := context.WithTimeout(n.ctx, 5*time.Second)
			go func() {
				select {
				case <-changed:
				case <-wctx.Done():
				}
				cancel()
			}()
			_ = n.fsm.WaitApplied(wctx, applied+1)
			cancel()
		}
		if n.stopped() {
			return
		}
	}
}

// inConfiguration reports whether this node is in the latest Raft
// configuration.
func (n *Node) inConfiguration() bool {
	f := n.raft.GetConfiguration()
	if f.Error() != nil {
		return false
	}
	for _, s := range f.Configuration().Servers {
		if string(s.ID) == n.cfg.ID {
			return true
		}
	}
	return false
}

// Leader names the current leader as this node knows it (zero if none).
func (n *Node) Leader() LeaderInfo {
	if n.raft == nil {
		return LeaderInfo{}
	}
	addr, id := n.raft.LeaderWithID()
	if id == "" {
		return LeaderInfo{}
	}
	li := LeaderInfo{ID: string(id), RaftAddr: string(addr)}
	if string(id) == n.cfg.ID {
		li.HTTPAddr = n.httpAdvertise()
	} else if m, ok := n.fsm.Member(string(id)); ok {
		li.HTTPAddr = m.HTTPAddr
	}
	return li
}

// Ready reports whether the node can serve linearizable requests: a leader
// is known and, if this node is the leader, it has committed its barrier.
func (n *Node) Ready() bool {
	if n.raft == nil || n.stopped() {
		return false
	}
	l := n.Leader()
	if l.ID == "" {
		return false
	}
	if l.ID == n.cfg.ID {
		return n.isReadyLeader()
	}
	return l.HTTPAddr != ""
}

// Status reports this node's view of the cluster.
func (n *Node) Status() Status {
	s := Status{ID: n.cfg.ID, State: "Shutdown", Version: n.cfg.Version, LogEngine: n.logEngine}
	if n.raft == nil || n.stopped() {
		return s
	}
	s.State = n.raft.State().String()
	if n.Removed() {
		s.State = StatusRemoved // removed from the configuration (gossip.go)
	}
	s.Term = n.raft.CurrentTerm()
	s.Leader = n.Leader()
	s.CommitIndex = n.raft.CommitIndex()
	s.AppliedIndex = n.fsm.AppliedIndex()
	s.LastIndex = n.raft.LastIndex()
	s.Revision = n.fsm.Revision()
	s.CompactRevision = n.fsm.CompactRevision()
	if lc := n.raft.LastContact(); !lc.IsZero() {
		s.LastContact = time.Since(lc)
	}
	if f := n.raft.GetConfiguration(); f.Error() == nil {
		s.Members = len(f.Configuration().Servers)
	}
	return s
}

// Members lists the Raft configuration with each member's addresses.
func (n *Node) Members(ctx context.Context) ([]MemberInfo, error) {
	if n.raft == nil || n.stopped() {
		return nil, ErrStopped
	}
	f := n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, n.translate(err)
	}
	leader := n.Leader().ID
	var out []MemberInfo
	for _, s := range f.Configuration().Servers {
		mi := MemberInfo{ID: string(s.ID), RaftAddr: string(s.Address), Voter: s.Suffrage == raft.Voter, Leader: string(s.ID) == leader}
		if m, ok := n.fsm.Member(mi.ID); ok {
			mi.HTTPAddr = m.HTTPAddr
		}
		if mi.ID == n.cfg.ID {
			mi.HTTPAddr = n.httpAdvertise()
		}
		out = append(out, mi)
	}
	return out, nil
}

// AddVoter adds (or updates) a voting member and records its client API
// address. Forwarded to the leader if this node is not it.
func (n *Node) AddVoter(ctx context.Context, id, raftAddr, httpAddr string) error {
	return n.addMember(ctx, joinRequest{ID: id, RaftAddr: raftAddr, HTTPAddr: httpAddr})
}

// AddNonvoter adds a member that receives the log and serves stale reads
// but does not vote (and so never counts toward a quorum), and records its
// client API address. Forwarded to the leader if this node is not it.
func (n *Node) AddNonvoter(ctx context.Context, id, raftAddr, httpAddr string) error {
	return n.addMember(ctx, joinRequest{ID: id, RaftAddr: raftAddr, HTTPAddr: httpAddr, NonVoter: true})
}

func (n *Node) addMember(ctx context.Context, r joinRequest) error {
	if r.ID == "" || r.RaftAddr == "" {
		return fmt.Errorf("%w: member id and raft address are required", fsm.ErrInvalid)
	}
	if strings.ContainsAny(r.ID, memberIDForbidden) {
		return fmt.Errorf("%w: member id %q must not contain any of %q", fsm.ErrInvalid, r.ID, memberIDForbidden)
	}
	for _, a := range []string{r.RaftAddr, r.HTTPAddr} {
		if _, _, err := net.SplitHostPort(a); a != "" && err != nil {
			return fmt.Errorf("%w: member address %q: %v", fsm.ErrInvalid, a, err)
		}
	}
	return n.onLeader(ctx, internalJoin, r, func(ctx context.Context) error {
		add := n.raft.AddVoter
		if r.NonVoter {
			add = n.raft.AddNonvoter
		}
		if err := add(raft.ServerID(r.ID), raft.ServerAddress(r.RaftAddr), 0, n.timeout(ctx)).Error(); err != nil {
			return n.translate(err)
		}
		if r.HTTPAddr != "" {
			_, err := n.apply(ctx, &fsm.Command{Type: fsm.CmdPutMember, Member: &fsm.Member{ID: r.ID, RaftAddr: r.RaftAddr, HTTPAddr: r.HTTPAddr}})
			return err
		}
		return nil
	})
}

// Remove removes a member from the cluster (a dead one, or one leaving).
// Forwarded to the leader if this node is not it.
func (n *Node) Remove(ctx context.Context, id string) error {
	if id == "" {
		return fmt.Errorf("%w: member id is required", fsm.ErrInvalid)
	}
	return n.onLeader(ctx, internalRemove, joinRequest{ID: id}, func(ctx context.Context) error {
		known := false
		if f := n.raft.GetConfiguration(); f.Error() == nil {
			for _, s := range f.Configuration().Servers {
				known = known || string(s.ID) == id
			}
		}
		if !known {
			return fmt.Errorf("%w: %s", ErrUnknownMember, id)
		}
		// Before the configuration changes, so that gossip reconciliation
		// never adds it back (gossip.go).
		n.noteRemoved(id)
		if err := n.raft.RemoveServer(raft.ServerID(id), 0, n.timeout(ctx)).Error(); err != nil {
			return n.translate(err)
		}
		_, err := n.apply(ctx, &fsm.Command{Type: fsm.CmdRemoveMember, Member: &fsm.Member{ID: id}})
		if errors.Is(err, ErrNotLeader) && id == n.cfg.ID {
			return nil // the leader removed itself and stepped down
		}
		return err
	})
}

// Leave removes this node from the cluster gracefully: if it leads, it
// hands leadership over first; with gossip, it leaves the gossip pool
// (CRDT handles then return gossip.ErrClosed). Call Shutdown afterwards.
func (n *Node) Leave(ctx context.Context) error {
	if n.Leader().ID == n.cfg.ID && n.Status().Members > 1 {
		if err := n.TransferLeadership(ctx, ""); err != nil {
			return err
		}
	}
	// Leave gossip first, so that the leader does not add back a member
	// that is alive in gossip but no longer in Raft (gossip.go).
	if err := n.stopGossip(ctx); err != nil {
		n.log.Warn("leaving gossip", "err", err)
	}
	return n.Remove(ctx, n.cfg.ID)
}

// TransferLeadership hands leadership to id ("" = the most up-to-date
// voter). Forwarded to the leader if this node is not it.
func (n *Node) TransferLeadership(ctx context.Context, id string) error {
	return n.onLeader(ctx, internalTransfer, joinRequest{ID: id}, func(ctx context.Context) error {
		var f raft.Future
		if id == "" {
			f = n.raft.LeadershipTransfer()
		} else {
			var addr raft.ServerAddress
			if cf := n.raft.GetConfiguration(); cf.Error() == nil {
				for _, s := range cf.Configuration().Servers {
					if string(s.ID) == id {
						addr = s.Address
					}
				}
			}
			if addr == "" {
				return fmt.Errorf("%w: %s", ErrUnknownMember, id)
			}
			if id == n.cfg.ID {
				return nil // already the leader
			}
			f = n.raft.LeadershipTransferToServer(raft.ServerID(id), addr)
		}
		return n.translate(f.Error())
	})
}

// timeout is the raft-call timeout derived from ctx.
func (n *Node) timeout(ctx context.Context) time.Duration {
	if d, ok := ctx.Deadline(); ok {
		return max(time.Until(d), time.Millisecond)
	}
	return n.cfg.ApplyTimeout
}

// translate maps raft errors onto this package's errors.
func (n *Node) translate(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipTransferInProgress):
		l := n.Leader()
		if l.ID == "" || l.ID == n.cfg.ID {
			return ErrNoLeader
		}
		return &NotLeaderError{LeaderID: l.ID, LeaderHTTP: l.HTTPAddr}
	case errors.Is(err, raft.ErrLeadershipLost), errors.Is(err, raft.ErrAbortedByRestore):
		return fmt.Errorf("%w: leadership lost before the write was known to commit; it may or may not have applied", ErrTimeout)
	case errors.Is(err, raft.ErrRaftShutdown):
		return ErrStopped
	case errors.Is(err, raft.ErrEnqueueTimeout):
		return fmt.Errorf("%w: raft did not accept the request in time", ErrNoLeader)
	default:
		return fmt.Errorf("node: %w", err)
	}
}
