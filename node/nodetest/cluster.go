package nodetest

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/statenode/statenode/node"
)

// Cluster is a set of real nodes on loopback.
type Cluster struct {
	// Nodes holds the running node at each index (nil while killed).
	Nodes []*node.Node

	mu      sync.Mutex
	ids     []string // node IDs by index; fixed at creation
	cfgs    []node.Config
	proxies [][]*linkProxy // proxies[i][j]: node i dialing node j
}

// Option changes every node's configuration before start.
type Option func(i int, c *node.Config)

// WithConfig applies f to each node's configuration.
func WithConfig(f func(i int, c *node.Config)) Option { return Option(f) }

// MakeCluster starts n nodes with fast timeouts as one fixed-size cluster
// (every node bootstraps with the same member list) and waits for a
// leader. Everything is stopped and removed at the end of the test.
func MakeCluster(t testing.TB, n int, opts ...Option) *Cluster {
	t.Helper()
	c := newCluster(t, n, opts...)
	peers := make([]node.Peer, n)
	for i := range c.cfgs {
		peers[i] = node.Peer{ID: c.cfgs[i].ID, RaftAddr: c.cfgs[i].RaftAddr}
	}
	for i := range c.cfgs {
		if n == 1 {
			c.cfgs[i].Bootstrap = true
		} else {
			c.cfgs[i].InitialCluster = peers
		}
	}
	for i := range c.cfgs {
		c.start(t, i)
	}
	c.WaitForMembers(t, n)
	return c
}

// MakeJoinedCluster starts node 0 with Bootstrap and has the others Join
// it through its client API: the path an operator takes by hand.
func MakeJoinedCluster(t testing.TB, n int, opts ...Option) *Cluster {
	t.Helper()
	c := newCluster(t, n, opts...)
	c.cfgs[0].Bootstrap = true
	c.start(t, 0)
	c.Leader(t)
	for i := 1; i < n; i++ {
		cfg := c.cfgs[i]
		cfg.Join = []string{c.Nodes[0].HTTPAddr()}
		c.startWith(t, i, cfg)
	}
	c.WaitForMembers(t, n)
	return c
}

func newCluster(t testing.TB, n int, opts ...Option) *Cluster {
	t.Helper()
	c := &Cluster{Nodes: make([]*node.Node, n), cfgs: make([]node.Config, n)}
	t.Cleanup(c.shutdownAll)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if os.Getenv("STATENODE_TEST_LOG") != "" {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	for i := 0; i < n; i++ {
		cfg := node.DefaultLocalConfig()
		cfg.ID = fmt.Sprintf("n%d", i+1)
		cfg.DataDir = t.TempDir()
		cfg.RaftAddr = FreeAddr(t)
		cfg.HTTPAddr = FreeAddr(t)
		cfg.Logger = logger.With("test_node", cfg.ID)
		for _, o := range opts {
			o(i, &cfg)
		}
		c.cfgs[i] = cfg
		c.ids = append(c.ids, cfg.ID)
	}
	c.proxies = make([][]*linkProxy, n)
	for i := range c.proxies {
		c.proxies[i] = make([]*linkProxy, n)
		for j := range c.proxies[i] {
			if i == j {
				continue
			}
			p, err := newLinkProxy(c.cfgs[j].RaftAddr)
			if err != nil {
				t.Fatalf("nodetest: proxy: %v", err)
			}
			c.proxies[i][j] = p
		}
	}
	for i := range c.cfgs {
		c.cfgs[i].ServerAddressProvider = &provider{c: c, from: i}
	}
	return c
}

// provider routes node `from`'s Raft dials through the link proxies.
type provider struct {
	c    *Cluster
	from int
}

func (p *provider) ServerAddr(id raft.ServerID) (raft.ServerAddress, error) {
	for j, cid := range p.c.ids {
		if cid != string(id) {
			continue
		}
		if j == p.from {
			// Raft encodes its own address into the header of every RPC:
			// answer it without an error (raft would log one per RPC).
			return raft.ServerAddress(p.c.cfgs[j].RaftAddr), nil
		}
		return raft.ServerAddress(p.c.proxies[p.from][j].addr()), nil
	}
	return "", fmt.Errorf("nodetest: unknown server %q", id)
}

// handedOut holds every port FreeAddr has returned in this process: a
// cluster picks all its addresses before any member binds one, so a free
// port must not be handed out twice.
var handedOut = struct {
	sync.Mutex
	ports map[int]bool
}{ports: map[int]bool{}}

// FreeAddr picks a free loopback port below the kernel's ephemeral range
// (32768+), so that later ":0" listeners and outgoing connections cannot
// be handed the same port between this check and the process binding it.
// It never returns the same port twice in one process.
func FreeAddr(t testing.TB) string {
	t.Helper()
	handedOut.Lock()
	defer handedOut.Unlock()
	for range 1000 {
		port := 10000 + rand.IntN(20000)
		if handedOut.ports[port] {
			continue
		}
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			continue
		}
		ln.Close()
		handedOut.ports[port] = true
		return addr
	}
	t.Fatalf("nodetest: no free port")
	return ""
}

func (c *Cluster) start(t testing.TB, i int) {
	t.Helper()
	c.startWith(t, i, c.cfgs[i])
}

func (c *Cluster) startWith(t testing.TB, i int, cfg node.Config) {
	t.Helper()
	n, err := node.New(cfg)
	if err != nil {
		t.Fatalf("nodetest: node %d: %v", i, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := n.Start(ctx); err != nil {
		t.Fatalf("nodetest: start node %d: %v", i, err)
	}
	c.mu.Lock()
	c.Nodes[i] = n
	c.mu.Unlock()
}

// Config returns node i's configuration.
func (c *Cluster) Config(i int) node.Config { return c.cfgs[i] }

// Kill stops node i abruptly (no leave); its data directory stays.
func (c *Cluster) Kill(t testing.TB, i int) {
	t.Helper()
	c.mu.Lock()
	n := c.Nodes[i]
	c.Nodes[i] = nil
	c.mu.Unlock()
	if n == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.Shutdown(ctx); err != nil {
		t.Logf("nodetest: shutdown node %d: %v", i, err)
	}
}

// Restart starts node i again on its data directory and addresses.
func (c *Cluster) Restart(t testing.TB, i int) {
	t.Helper()
	cfg := c.cfgs[i]
	cfg.Bootstrap, cfg.InitialCluster, cfg.Join = false, nil, nil
	c.startWith(t, i, cfg)
}

// Running returns the indexes of running nodes.
func (c *Cluster) Running() []int {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []int
	for i, n := range c.Nodes {
		if n != nil {
			out = append(out, i)
		}
	}
	return out
}

// Node returns node i (nil if killed).
func (c *Cluster) Node(i int) *node.Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.Nodes[i]
}

// Leader waits (up to 10s) until exactly one running node leads and is
// ready, and returns it.
func (c *Cluster) Leader(t testing.TB) *node.Node {
	t.Helper()
	i := c.LeaderIndex(t)
	return c.Node(i)
}

// LeaderIndex is Leader, returning the node's index.
func (c *Cluster) LeaderIndex(t testing.TB) int {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		leader, count := -1, 0
		for _, i := range c.Running() {
			n := c.Node(i)
			if n != nil && n.Status().State == "Leader" {
				leader = i
				count++
			}
		}
		if count == 1 && c.Node(leader).Ready() {
			return leader
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("nodetest: no single ready leader within 10s")
	return -1
}

// Followers returns the running nodes that are not the leader.
func (c *Cluster) Followers(t testing.TB) []*node.Node {
	t.Helper()
	l := c.LeaderIndex(t)
	var out []*node.Node
	for _, i := range c.Running() {
		if i != l {
			out = append(out, c.Node(i))
		}
	}
	return out
}

// WaitForMembers waits until the leader's configuration has n members and
// every member's client address is known.
func (c *Cluster) WaitForMembers(t testing.TB, n int) {
	t.Helper()
	c.eventually(t, 15*time.Second, func() error {
		ms, err := c.Leader(t).Members(context.Background())
		if err != nil {
			return err
		}
		if len(ms) != n {
			return fmt.Errorf("%d members, want %d", len(ms), n)
		}
		for _, m := range ms {
			if m.HTTPAddr == "" {
				return fmt.Errorf("member %s has no client address yet", m.ID)
			}
		}
		return nil
	})
}

// WaitForReplication waits until every running node has applied the
// leader's last log index.
func (c *Cluster) WaitForReplication(t testing.TB) {
	t.Helper()
	c.eventually(t, 15*time.Second, func() error {
		l := c.Leader(t)
		// Raft's own entries (a new term's no-op) never reach the FSM, so
		// compare with what the leader's FSM applied, once the leader has
		// applied everything it committed.
		if l.Raft().AppliedIndex() < l.Raft().CommitIndex() {
			return fmt.Errorf("leader has not applied its commit index yet")
		}
		last := l.FSM().AppliedIndex()
		for _, i := range c.Running() {
			n := c.Node(i)
			if got := n.FSM().AppliedIndex(); got < last {
				return fmt.Errorf("node %s applied %d < %d", n.ID(), got, last)
			}
		}
		return nil
	})
}

// EnsureSame waits for replication and checks that every running node's
// state machine hashes the same.
func (c *Cluster) EnsureSame(t testing.TB) {
	t.Helper()
	c.WaitForReplication(t)
	c.eventually(t, 10*time.Second, func() error {
		var first uint64
		for k, i := range c.Running() {
			h := c.Node(i).FSM().Hash()
			if k == 0 {
				first = h
			} else if h != first {
				return fmt.Errorf("node %s state hash %x differs from %x", c.Node(i).ID(), h, first)
			}
		}
		return nil
	})
}

// Partition cuts every Raft link between nodes of different groups.
// Nodes in no group keep all their links.
func (c *Cluster) Partition(t testing.TB, groups ...[]int) {
	t.Helper()
	group := map[int]int{}
	for g, members := range groups {
		for _, i := range members {
			group[i] = g
		}
	}
	for i := range c.proxies {
		for j, p := range c.proxies[i] {
			if p == nil {
				continue
			}
			gi, iok := group[i]
			gj, jok := group[j]
			if iok && jok && gi != gj {
				p.setBlocked(true)
			}
		}
	}
}

// Isolate cuts node i off from every other node.
func (c *Cluster) Isolate(t testing.TB, i int) {
	t.Helper()
	var rest []int
	for j := range c.cfgs {
		if j != i {
			rest = append(rest, j)
		}
	}
	c.Partition(t, []int{i}, rest)
}

// Heal restores every link.
func (c *Cluster) Heal(t testing.TB) {
	t.Helper()
	for i := range c.proxies {
		for _, p := range c.proxies[i] {
			if p != nil {
				p.setBlocked(false)
			}
		}
	}
}

func (c *Cluster) eventually(t testing.TB, d time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	var err error
	for time.Now().Before(deadline) {
		if err = f(); err == nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("nodetest: condition not met within %v: %v", d, err)
}

func (c *Cluster) shutdownAll() {
	var wg sync.WaitGroup
	for i := range c.Nodes {
		c.mu.Lock()
		n := c.Nodes[i]
		c.Nodes[i] = nil
		c.mu.Unlock()
		if n == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = n.Shutdown(ctx)
		}()
	}
	wg.Wait()
	for i := range c.proxies {
		for _, p := range c.proxies[i] {
			if p != nil {
				p.close()
			}
		}
	}
}
