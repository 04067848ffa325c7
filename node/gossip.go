package node

// Gossip membership and CRDTs inside a node (docs/CRDT.md, "Node
// integration"). Optional: everything here is inert unless
// Config.GossipAddr is set.
//
// The node runs one crdt/gossip member beside its Raft replica. Its
// memberlist metadata publishes the node's Raft and client API addresses
// and whether it wants a vote, which lets the leader:
//
//   - add servers that are alive in gossip but absent from the Raft
//     configuration (as voters, or non-voters if their metadata says so);
//   - optionally remove voters gossip has reported dead (or left) for
//     longer than GossipDeadRemoveAfter;
//
// and lets a node started with BootstrapExpect form the cluster once it
// sees that many servers (Consul's -bootstrap-expect).
//
// Removal is final for the process that is removed, as in etcd. Every
// node's duties loop notes which servers leave the Raft configuration and
// when; the leader does not add back a member that has been alive in
// gossip since before its removal (only one that joined gossip again
// after it: a restart, or a return from dead), nor any member gossip
// reports left. A node that sees itself leave the configuration after it
// had been in it (and hears no leader for a while, so that a removal lost
// with a failed leader is not mistaken for one) considers itself removed:
// it writes a marker file in its data directory, leaves the gossip pool
// (peers record it "left"), and reports State "Removed" in Status. Started
// again on that data directory it stays out of gossip; started on a new
// data directory it may join again.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/statenode/statenode/api"
	"github.com/statenode/statenode/crdt/gossip"
	"github.com/statenode/statenode/fsm"
)

// ErrGossipDisabled: the node runs without gossip (Config.GossipAddr is
// empty), so it has no CRDTs and no gossip membership.
var ErrGossipDisabled = errors.New("node: gossip disabled")

const gossipProfileLocal = gossip.ProfileLocal

// Gossip metadata keys published by every node.
const (
	metaRaft   = "raft"   // Raft address other members dial
	metaHTTP   = "http"   // client API address
	metaVoter  = "voter"  // "true" or "false"
	metaExpect = "expect" // BootstrapExpect, if set
)

// GossipConfig configures gossip membership and CRDTs; embedded in Config.
// Gossip is off unless GossipAddr is set.
type GossipConfig struct {
	// GossipAddr is the host:port memberlist listens on, UDP and TCP on the
	// same port ("127.0.0.1:0" picks a free port). "" disables gossip,
	// CRDTs and every automatic membership feature below. The usual port
	// is 7946.
	GossipAddr string
	// GossipAdvertise is the gossip host:port other members reach this
	// node at; default: the bound GossipAddr.
	GossipAdvertise string
	// GossipJoin lists gossip addresses (host:port) of existing members.
	// Start tries them once; while the node is alone it retries them
	// (Consul's retry-join), so members may start in any order.
	GossipJoin []string
	// GossipProfile selects memberlist's timings: "lan" (the default:
	// 1s probes, 30s push/pull) or "local" (DefaultLocalConfig: fast
	// failure detection for single-host clusters and tests).
	GossipProfile string
	// GossipDeadRemoveAfter, if positive, makes the leader remove from the
	// Raft configuration a member that gossip has reported dead (or left)
	// for this long. 0 (the default) never removes anyone automatically.
	//
	// Trade-off: removal keeps the quorum size matched to the live nodes,
	// so a cluster that loses nodes one at a time keeps accepting writes
	// (a 5-node cluster survives 3 successive failures instead of 2). But
	// gossip cannot tell a crashed node from a partitioned one: a member
	// cut off longer than this is removed although it may come back, and
	// a short value turns a flapping network into configuration churn.
	// Keep it well above the failure detector's reach (minutes, not
	// seconds, on a LAN). A node removed this way that comes back alive
	// in gossip is added again by the leader (unlike a node removed while
	// it runs, which learns of its removal and stays out).
	GossipDeadRemoveAfter time.Duration
	// BootstrapExpect, if positive, forms a new cluster once this many
	// servers (voters, this one included) are alive in gossip and none of
	// them belongs to a cluster yet: the server with the lowest ID
	// bootstraps Raft with every server it sees. Every server of the
	// initial set should use the same value. Exclusive with Bootstrap and
	// InitialCluster; ignored when the data directory holds state.
	BootstrapExpect int
	// GossipReconcileInterval is how often the duties loop reconciles the
	// Raft configuration with the gossip pool when no membership event
	// wakes it. 0 (the default) means 2s in the "lan" profile and 250ms in
	// the "local" one: a membership event runs it at once anyway, so the
	// interval only bounds how soon a retry happens.
	GossipReconcileInterval time.Duration
	// NonVoter makes this node join as a Raft non-voter, through gossip
	// or through Join: it replicates the log and serves stale reads,
	// watches and CRDTs, but does not count toward quorum. Requires
	// GossipAddr or Join.
	NonVoter bool
}

func defaultGossipConfig() GossipConfig {
	return GossipConfig{GossipProfile: gossip.ProfileLAN}
}

// validateGossip checks the gossip fields and how they relate to the rest.
func (c *Config) validateGossip() []error {
	var errs []error
	if c.GossipProfile == "" {
		c.GossipProfile = gossip.ProfileLAN
	}
	if c.GossipProfile != gossip.ProfileLAN && c.GossipProfile != gossip.ProfileLocal {
		errs = append(errs, fmt.Errorf("GossipProfile %q is neither %q nor %q", c.GossipProfile, gossip.ProfileLAN, gossip.ProfileLocal))
	}
	if c.GossipDeadRemoveAfter < 0 || c.BootstrapExpect < 0 || c.GossipReconcileInterval < 0 {
		errs = append(errs, errors.New("GossipDeadRemoveAfter, GossipReconcileInterval and BootstrapExpect must not be negative"))
	}
	if c.GossipAddr == "" {
		if c.BootstrapExpect > 0 || (c.NonVoter && len(c.Join) == 0) || len(c.GossipJoin) > 0 || c.GossipDeadRemoveAfter > 0 || c.GossipAdvertise != "" {
			errs = append(errs, errors.New("GossipJoin, GossipAdvertise, GossipDeadRemoveAfter and BootstrapExpect need GossipAddr; NonVoter needs GossipAddr or Join"))
		}
		return errs
	}
	if _, _, err := splitHostPortStrict(c.GossipAddr); err != nil {
		errs = append(errs, fmt.Errorf("GossipAddr: %w", err))
	}
	if c.GossipAdvertise != "" {
		if _, _, err := splitHostPortStrict(c.GossipAdvertise); err != nil {
			errs = append(errs, fmt.Errorf("GossipAdvertise: %w", err))
		}
	}
	if c.BootstrapExpect > 0 && (c.Bootstrap || len(c.InitialCluster) > 0) {
		errs = append(errs, errors.New("BootstrapExpect is exclusive with Bootstrap and InitialCluster"))
	}
	if c.NonVoter && (c.Bootstrap || len(c.InitialCluster) > 0 || c.BootstrapExpect > 0 || len(c.Join) > 0) {
		errs = append(errs, errors.New("a NonVoter neither bootstraps nor joins by Join (which adds voters): it is added through gossip"))
	}
	return errs
}

func splitHostPortStrict(addr string) (string, int, error) {
	i := strings.LastIndexByte(addr, ':')
	if i < 0 {
		return "", 0, fmt.Errorf("missing port in %q", addr)
	}
	p, err := strconv.Atoi(addr[i+1:])
	if err != nil || p < 0 || p > 65535 {
		return "", 0, fmt.Errorf("bad port in %q", addr)
	}
	return addr[:i], p, nil
}

// StatusRemoved is Status.State of a node that saw itself removed from
// the Raft configuration (with gossip; see the file comment).
const StatusRemoved = "Removed"

// removedMarker names the file, in the data directory, that records that
// this node was removed from the cluster.
const removedMarker = "removed"

// gossipState is the node's gossip member and what the duties loop needs.
type gossipState struct {
	g   *gossip.Gossip
	reg *trackedRegisterer

	removed atomic.Bool // this node saw itself removed from the Raft configuration

	rmu       sync.Mutex
	removedAt map[string]time.Time // servers that left the configuration, when this node saw it

	stopOnce sync.Once
	stopErr  error
}

// Removed reports whether this node saw itself removed from the Raft
// configuration (gossip enabled only). A removed node has left the gossip
// pool and stays out of it, even when restarted on the same data
// directory.
func (n *Node) Removed() bool {
	s := n.gsp.Load()
	return s != nil && s.removed.Load()
}

// CRDT returns the node's gossip member: CRDT handles
// (n.CRDT().Counter("visits").Inc(ctx, 1)), membership and Watch. It is
// nil when gossip is disabled (Config.GossipAddr empty) or before Start;
// GossipEnabled tells.
func (n *Node) CRDT() *gossip.Gossip {
	s := n.gsp.Load()
	if s == nil {
		return nil
	}
	return s.g
}

// GossipEnabled reports whether the node runs gossip.
func (n *Node) GossipEnabled() bool { return n.gsp.Load() != nil }

// GossipMembers returns the gossip pool as this node sees it, sorted by
// ID, or ErrGossipDisabled.
func (n *Node) GossipMembers() ([]gossip.Member, error) {
	s := n.gsp.Load()
	if s == nil {
		return nil, ErrGossipDisabled
	}
	return s.g.Members(), nil
}

// gossipMeta is what this node publishes about itself.
func (n *Node) gossipMeta() map[string]string {
	m := map[string]string{
		metaRaft:  n.RaftAddr(),
		metaHTTP:  n.httpAdvertise(),
		metaVoter: strconv.FormatBool(!n.cfg.NonVoter),
	}
	if n.cfg.BootstrapExpect > 0 {
		m[metaExpect] = strconv.Itoa(n.cfg.BootstrapExpect)
	}
	return m
}

// startGossip creates and starts the gossip member (called by Start once
// the Raft and HTTP listeners are bound, so that their addresses can be
// published) and the duties loop. No-op when gossip is disabled.
func (n *Node) startGossip(ctx context.Context, hasState bool) error {
	if n.cfg.GossipAddr == "" {
		return nil
	}
	gc := gossip.DefaultConfig()
	if n.cfg.GossipProfile == gossip.ProfileLocal {
		gc = gossip.DefaultLocalConfig()
	}
	gc.NodeID = n.cfg.ID
	gc.BindAddr = n.cfg.GossipAddr
	gc.AdvertiseAddr = n.cfg.GossipAdvertise
	gc.Join = n.cfg.GossipJoin
	gc.DataDir = filepath.Join(n.cfg.DataDir, "gossip")
	gc.Profile = n.cfg.GossipProfile
	gc.Meta = n.gossipMeta()
	gc.Logger = n.log
	reg := &trackedRegisterer{reg: n.cfg.Registry}
	gc.Registry = reg
	g, err := gossip.New(gc)
	if err != nil {
		reg.unregisterAll()
		return fmt.Errorf("node: %w", err)
	}
	st := &gossipState{g: g, reg: reg, removedAt: map[string]time.Time{}}
	n.gsp.Store(st)
	if _, err := os.Stat(filepath.Join(n.cfg.DataDir, removedMarker)); err == nil {
		// Removed earlier: do not gossip (the leader would take this node
		// for a member that joined again and add it back).
		st.removed.Store(true)
		n.log.Warn("this node was removed from the cluster; it stays out of gossip. Start it on a new data directory to join again",
			"marker", filepath.Join(n.cfg.DataDir, removedMarker))
		if err := n.stopGossip(ctx); err != nil {
			n.log.Warn("closing gossip", "err", err)
		}
		return nil
	}
	if err := g.Start(ctx); err != nil {
		return fmt.Errorf("node: %w", err)
	}
	n.goFunc(func() { n.runGossipDuties(hasState) })
	return nil
}

// stopGossip leaves the gossip pool (so that peers see this node "left",
// not dead) and closes the CRDT store. Safe to call twice and without
// gossip.
func (n *Node) stopGossip(ctx context.Context) error {
	s := n.gsp.Load()
	if s == nil {
		return nil
	}
	s.stopOnce.Do(func() {
		s.stopErr = s.g.Shutdown(ctx)
		s.reg.unregisterAll()
	})
	return s.stopErr
}

// reconcileInterval is how often the duties loop runs without a
// membership event to wake it.
func (n *Node) reconcileInterval() time.Duration {
	if n.cfg.GossipReconcileInterval > 0 {
		return n.cfg.GossipReconcileInterval
	}
	if n.cfg.GossipProfile == gossip.ProfileLocal {
		return 250 * time.Millisecond
	}
	return 2 * time.Second
}

// duties is the duties loop's memory between rounds.
type duties struct {
	bootstrapped bool
	wasMember    bool      // this node has been in the Raft configuration
	absentSince  time.Time // since when it is not, after it was
	lastAsked    time.Time // when it last asked a peer whether it is still a member
	prev         map[string]bool
}

// runGossipDuties reconciles the Raft configuration with the gossip pool
// on every membership event and every reconcileInterval, until Shutdown
// or until this node finds itself removed.
func (n *Node) runGossipDuties(hasState bool) {
	events := n.gsp.Load().g.Watch(n.ctx)
	tick := time.NewTicker(n.reconcileInterval())
	defer tick.Stop()
	d := &duties{bootstrapped: hasState}
	for {
		select {
		case <-n.ctx.Done():
			return
		case _, ok := <-events:
			if !ok {
				events = nil
				continue
			}
		case <-tick.C:
		}
		if n.stopped() {
			return
		}
		if n.reconcileGossip(d) {
			return
		}
	}
}

// reconcileGossip runs one round of the gossip duties. It reports whether
// this node found itself removed (and left gossip).
func (n *Node) reconcileGossip(d *duties) bool {
	s := n.gsp.Load()
	members := s.g.Members()
	f := n.raft.GetConfiguration()
	if f.Error() != nil {
		return false
	}
	servers := f.Configuration().Servers
	s.trackRemovals(d, servers, time.Now())
	if n.checkRemoved(d, servers, members) {
		return true
	}
	if len(servers) == 0 {
		if !d.bootstrapped && n.cfg.BootstrapExpect > 0 && n.maybeBootstrapExpect(members) {
			d.bootstrapped = true
		}
		return false
	}
	if !n.isReadyLeader() {
		return false
	}
	n.addGossipServers(members, servers, s.removals())
	n.removeDeadServers(members, servers)
	return false
}

// trackRemovals records the servers that left the configuration since
// the last round, and forgets those that are back in it.
func (s *gossipState) trackRemovals(d *duties, servers []raft.Server, now time.Time) {
	cur := make(map[string]bool, len(servers))
	for _, srv := range servers {
		cur[string(srv.ID)] = true
	}
	s.rmu.Lock()
	defer s.rmu.Unlock()
	for id, at := range s.removedAt {
		// Still (or again) in the configuration well after the removal was
		// noted: the removal failed, or the member was added again.
		if cur[id] && now.Sub(at) > removalSettle {
			delete(s.removedAt, id)
		}
	}
	for id := range d.prev {
		if !cur[id] {
			s.removedAt[id] = now
		}
	}
	d.prev = cur
}

// removalSettle is how long a removal noted by noteRemoved is kept while
// the member is still in the configuration (the removal is in flight).
const removalSettle = 5 * time.Second

// noteRemoved records that this node (the leader) is removing id from the
// configuration, so that no round adds it back, even one that never saw
// it in the configuration. Called before the change is proposed.
func (n *Node) noteRemoved(id string) {
	if s := n.gsp.Load(); s != nil {
		s.rmu.Lock()
		s.removedAt[id] = time.Now()
		s.rmu.Unlock()
	}
}

// removals returns a copy of the removal times.
func (s *gossipState) removals() map[string]time.Time {
	s.rmu.Lock()
	defer s.rmu.Unlock()
	return maps.Clone(s.removedAt)
}

// checkRemoved reports whether this node, having been a member, was
// removed from the Raft configuration; if so it records the removal and
// leaves gossip. It was if, without hearing from a leader for
// removalGrace, either its own configuration has left it out for that
// long, or a peer that knows a leader lists it no more: the leader stops
// replicating to a removed server once it has sent the removal entry,
// which a server still catching up may never get. A removal that a failed
// leader never committed is undone by the next leader, which contacts
// this node within a few election timeouts.
func (n *Node) checkRemoved(d *duties, servers []raft.Server, members []gossip.Member) bool {
	if len(servers) == 0 {
		return false
	}
	in := false
	for _, s := range servers {
		in = in || string(s.ID) == n.cfg.ID
	}
	now := time.Now()
	switch {
	case in:
		d.wasMember, d.absentSince = true, time.Time{}
	case d.absentSince.IsZero():
		d.absentSince = now
	}
	// Only servers in a leader's configuration hear from it (or are asked
	// for a vote), so any contact also means this node was a member.
	if !d.wasMember && n.raft.LastContact().IsZero() {
		return false
	}
	grace := n.removalGrace()
	if now.Sub(n.raft.LastContact()) < grace || n.raft.State() == raft.Leader {
		return false
	}
	removed := !in && now.Sub(d.absentSince) >= grace
	if !removed && now.Sub(d.lastAsked) >= grace {
		d.lastAsked = now
		removed = n.peerListsMeNoMore(members)
	}
	if removed {
		n.markRemoved()
	}
	return removed
}

// peerListsMeNoMore asks up to two alive gossip peers for their member
// list (GET /v1/members) and reports whether one that knows a leader
// does not list this node in its Raft configuration.
func (n *Node) peerListsMeNoMore(members []gossip.Member) bool {
	asked := 0
	for _, m := range members {
		addr := m.Meta[metaHTTP]
		if m.ID == n.cfg.ID || m.State != gossip.StateAlive || addr == "" || asked == 2 {
			continue
		}
		asked++
		ms, err := n.peerMemberList(addr)
		if err != nil {
			n.log.Debug("asking a peer for the member list", "member", m.ID, "err", err)
			continue
		}
		leader, listed := false, false
		for _, pm := range ms {
			leader = leader || pm.Leader
			listed = listed || (pm.ID == n.cfg.ID && pm.RaftRole != api.RaftRoleNone)
		}
		if listed {
			return false
		}
		if leader {
			n.log.Info("a peer no longer lists this node in the Raft configuration", "peer", m.ID)
			return true
		}
	}
	return false
}

// peerMemberList fetches GET /v1/members from the client API at addr.
func (n *Node) peerMemberList(addr string) ([]api.Member, error) {
	ctx, cancel := context.WithTimeout(n.ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, n.scheme()+addr+"/v1/members", nil)
	if err != nil {
		return nil, err
	}
	resp, err := n.peers.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status %d", resp.StatusCode)
	}
	var ms []api.Member
	if err := json.NewDecoder(io.LimitReader(resp.Body, 8<<20)).Decode(&ms); err != nil {
		return nil, err
	}
	return ms, nil
}

// removalGrace is how long a node waits, out of the configuration and
// without leader contact, before it considers itself removed.
func (n *Node) removalGrace() time.Duration {
	return max(3*n.cfg.ElectionTimeout, 2*n.reconcileInterval())
}

// markRemoved records that this node was removed: the marker file (so a
// restart on this data directory stays out), Status "Removed", and a
// graceful leave of the gossip pool, so that peers record it left and the
// leader never adds it back.
func (n *Node) markRemoved() {
	s := n.gsp.Load()
	s.removed.Store(true)
	path := filepath.Join(n.cfg.DataDir, removedMarker)
	note := "removed from the Raft configuration at " + time.Now().UTC().Format(time.RFC3339) + "\n"
	if err := os.WriteFile(path, []byte(note), 0o600); err != nil {
		n.log.Error("recording the removal", "path", path, "err", err)
	}
	n.log.Warn("this node was removed from the cluster: leaving gossip")
	ctx, cancel := context.WithTimeout(n.ctx, 5*time.Second)
	defer cancel()
	if err := n.stopGossip(ctx); err != nil {
		n.log.Warn("leaving gossip", "err", err)
	}
}

// maybeBootstrapExpect bootstraps Raft if BootstrapExpect servers are alive
// in gossip, this node has the lowest ID among them, and none of them is
// part of a cluster yet. It reports whether it bootstrapped.
func (n *Node) maybeBootstrapExpect(members []gossip.Member) bool {
	var servers []gossip.Member
	for _, m := range members {
		if m.State != gossip.StateAlive || m.Meta[metaRaft] == "" || m.Meta[metaVoter] == "false" {
			continue
		}
		if e := m.Meta[metaExpect]; e != "" && e != strconv.Itoa(n.cfg.BootstrapExpect) {
			n.log.Warn("bootstrap-expect differs between servers; not bootstrapping", "member", m.ID, "theirs", e, "ours", n.cfg.BootstrapExpect)
			return false
		}
		servers = append(servers, m)
	}
	if len(servers) < n.cfg.BootstrapExpect {
		return false
	}
	slices.SortFunc(servers, func(a, b gossip.Member) int { return strings.Compare(a.ID, b.ID) })
	if servers[0].ID != n.cfg.ID {
		return false // the lowest ID bootstraps; the others are added by its leader
	}
	// A server already in a cluster (a restart, a late server) means the
	// cluster exists: wait to be added by its leader instead of forming a
	// second one.
	for _, m := range servers {
		if m.ID == n.cfg.ID {
			continue
		}
		members, err := n.peerMembers(m.Meta[metaHTTP])
		if err != nil {
			n.log.Debug("bootstrap-expect: cannot ask a server; will retry", "member", m.ID, "err", err)
			return false
		}
		if members > 0 {
			n.log.Info("bootstrap-expect: a cluster already exists; waiting to be added", "member", m.ID)
			return false
		}
	}
	conf := raft.Configuration{}
	for _, m := range servers {
		addr := raft.ServerAddress(m.Meta[metaRaft])
		if m.ID == n.cfg.ID {
			addr = n.trans.LocalAddr()
		}
		conf.Servers = append(conf.Servers, raft.Server{ID: raft.ServerID(m.ID), Address: addr, Suffrage: raft.Voter})
	}
	if err := n.raft.BootstrapCluster(conf).Error(); err != nil {
		n.log.Warn("bootstrap-expect: bootstrap failed", "err", err)
		return false
	}
	n.log.Info("bootstrap-expect: bootstrapped a new cluster", "members", len(conf.Servers))
	return true
}

// peerMembers asks the node at the client API address addr how many
// members its Raft configuration has.
func (n *Node) peerMembers(addr string) (int, error) {
	if addr == "" {
		return 0, errors.New("no client API address")
	}
	ctx, cancel := context.WithTimeout(n.ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, n.scheme()+addr+"/v1/status", nil)
	if err != nil {
		return 0, err
	}
	resp, err := n.peers.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("status %d", resp.StatusCode)
	}
	var st struct {
		Members int `json:"members"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return 0, err
	}
	return st.Members, nil
}

// addGossipServers adds (leader only) alive gossip members that publish a
// Raft address and are missing from the configuration, or whose address
// changed. It skips members that are not alive (a member that left is
// never added back) and members removed from the configuration that have
// not joined gossip again since (removedAt).
func (n *Node) addGossipServers(members []gossip.Member, servers []raft.Server, removedAt map[string]time.Time) {
	conf := make(map[string]raft.Server, len(servers))
	for _, s := range servers {
		conf[string(s.ID)] = s
	}
	for _, m := range members {
		addr := m.Meta[metaRaft]
		if m.ID == n.cfg.ID || m.State != gossip.StateAlive || addr == "" {
			continue
		}
		if t, ok := removedAt[m.ID]; ok && !m.Joined.After(t) {
			continue // removed while running; it leaves gossip by itself
		}
		voter := m.Meta[metaVoter] != "false"
		if s, ok := conf[m.ID]; ok {
			if string(s.Address) == addr {
				continue
			}
			voter = s.Suffrage == raft.Voter // an address change keeps the suffrage
		}
		if n.stopped() || !n.isReadyLeader() {
			return
		}
		ctx, cancel := context.WithTimeout(n.ctx, n.cfg.ApplyTimeout)
		var f raft.IndexFuture
		if voter {
			f = n.raft.AddVoter(raft.ServerID(m.ID), raft.ServerAddress(addr), 0, n.timeout(ctx))
		} else {
			f = n.raft.AddNonvoter(raft.ServerID(m.ID), raft.ServerAddress(addr), 0, n.timeout(ctx))
		}
		err := f.Error()
		if err == nil && m.Meta[metaHTTP] != "" {
			_, err = n.apply(ctx, &fsm.Command{Type: fsm.CmdPutMember, Member: &fsm.Member{ID: m.ID, RaftAddr: addr, HTTPAddr: m.Meta[metaHTTP]}})
		}
		cancel()
		if err != nil {
			n.log.Warn("gossip: adding member failed; will retry", "member", m.ID, "voter", voter, "err", n.translate(err))
			continue
		}
		n.log.Info("gossip: added member", "member", m.ID, "raft_addr", addr, "voter", voter)
	}
}

// removeDeadServers removes (leader only, if GossipDeadRemoveAfter is set)
// one member that gossip has reported dead or left for longer than
// GossipDeadRemoveAfter. Members gossip does not know are never removed.
func (n *Node) removeDeadServers(members []gossip.Member, servers []raft.Server) {
	if n.cfg.GossipDeadRemoveAfter <= 0 {
		return
	}
	byID := make(map[string]gossip.Member, len(members))
	for _, m := range members {
		byID[m.ID] = m
	}
	for _, s := range servers {
		m, ok := byID[string(s.ID)]
		if !ok || m.ID == n.cfg.ID || (m.State != gossip.StateDead && m.State != gossip.StateLeft) {
			continue
		}
		if time.Since(m.Since) < n.cfg.GossipDeadRemoveAfter {
			continue
		}
		ctx, cancel := context.WithTimeout(n.ctx, n.cfg.ApplyTimeout)
		err := n.raft.RemoveServer(s.ID, 0, n.timeout(ctx)).Error()
		if err == nil {
			_, err = n.apply(ctx, &fsm.Command{Type: fsm.CmdRemoveMember, Member: &fsm.Member{ID: m.ID}})
		}
		cancel()
		if err != nil {
			n.log.Warn("gossip: removing dead member failed; will retry", "member", m.ID, "err", n.translate(err))
			return
		}
		n.log.Warn("gossip: removed member dead in gossip", "member", m.ID, "state", m.State, "since", m.Since)
		return // one per round: the next round sees the new configuration
	}
}

// trackedRegisterer registers the gossip member's collectors on the node's
// registry and unregisters them at shutdown, so that a node restarted on
// the same registry registers them again instead of panicking.
type trackedRegisterer struct {
	reg *prometheus.Registry

	mu   sync.Mutex
	regd []prometheus.Collector
}

var _ prometheus.Registerer = (*trackedRegisterer)(nil)

func (t *trackedRegisterer) Register(c prometheus.Collector) error {
	if t.reg == nil {
		return nil
	}
	err := t.reg.Register(c)
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		// Left behind by an earlier gossip member of this registry.
		t.reg.Unregister(are.ExistingCollector)
		err = t.reg.Register(c)
	}
	if err == nil {
		t.mu.Lock()
		t.regd = append(t.regd, c)
		t.mu.Unlock()
	}
	return err
}

func (t *trackedRegisterer) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := t.Register(c); err != nil {
			panic(err)
		}
	}
}

func (t *trackedRegisterer) Unregister(c prometheus.Collector) bool {
	if t.reg == nil {
		return false
	}
	return t.reg.Unregister(c)
}

func (t *trackedRegisterer) unregisterAll() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, c := range t.regd {
		t.reg.Unregister(c)
	}
	t.regd = nil
}
