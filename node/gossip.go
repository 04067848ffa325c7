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

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"

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
	// seconds, on a LAN). A removed node that comes back alive in gossip
	// is added again by the leader.
	GossipDeadRemoveAfter time.Duration
	// BootstrapExpect, if positive, forms a new cluster once this many
	// servers (voters, this one included) are alive in gossip and none of
	// them belongs to a cluster yet: the server with the lowest ID
	// bootstraps Raft with every server it sees. Every server of the
	// initial set should use the same value. Exclusive with Bootstrap and
	// InitialCluster; ignored when the data directory holds state.
	BootstrapExpect int
	// NonVoter makes this node join (through gossip) as a Raft non-voter:
	// it replicates the log and serves stale reads, watches and CRDTs, but
	// does not count toward quorum. Requires GossipAddr.
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
	if c.GossipDeadRemoveAfter < 0 || c.BootstrapExpect < 0 {
		errs = append(errs, errors.New("GossipDeadRemoveAfter and BootstrapExpect must not be negative"))
	}
	if c.GossipAddr == "" {
		if c.BootstrapExpect > 0 || c.NonVoter || len(c.GossipJoin) > 0 || c.GossipDeadRemoveAfter > 0 || c.GossipAdvertise != "" {
			errs = append(errs, errors.New("GossipJoin, GossipAdvertise, GossipDeadRemoveAfter, BootstrapExpect and NonVoter need GossipAddr"))
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

// gossipState is the node's gossip member and what the duties loop needs.
type gossipState struct {
	g   *gossip.Gossip
	reg *trackedRegisterer

	stopOnce sync.Once
	stopErr  error
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
	n.gsp.Store(&gossipState{g: g, reg: reg})
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
	if n.cfg.GossipProfile == gossip.ProfileLocal {
		return 250 * time.Millisecond
	}
	return 2 * time.Second
}

// runGossipDuties reconciles the Raft configuration with the gossip pool
// on every membership event and every reconcileInterval, until Shutdown.
func (n *Node) runGossipDuties(hasState bool) {
	events := n.gsp.Load().g.Watch(n.ctx)
	tick := time.NewTicker(n.reconcileInterval())
	defer tick.Stop()
	bootstrapped := hasState
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
		n.reconcileGossip(&bootstrapped)
	}
}

// reconcileGossip runs one round of the gossip duties.
func (n *Node) reconcileGossip(bootstrapped *bool) {
	members := n.gsp.Load().g.Members()
	f := n.raft.GetConfiguration()
	if f.Error() != nil {
		return
	}
	servers := f.Configuration().Servers
	if len(servers) == 0 {
		if !*bootstrapped && n.cfg.BootstrapExpect > 0 && n.maybeBootstrapExpect(members) {
			*bootstrapped = true
		}
		return
	}
	if !n.isReadyLeader() {
		return
	}
	n.addGossipServers(members, servers)
	n.removeDeadServers(members, servers)
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
// changed.
func (n *Node) addGossipServers(members []gossip.Member, servers []raft.Server) {
	conf := make(map[string]raft.Server, len(servers))
	for _, s := range servers {
		conf[string(s.ID)] = s
	}
	for _, m := range members {
		addr := m.Meta[metaRaft]
		if m.ID == n.cfg.ID || m.State != gossip.StateAlive || addr == "" {
			continue
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
