package harness

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/statenode/statenode/api"
	"github.com/statenode/statenode/client"
	"github.com/statenode/statenode/jepsen/proxy"
)

// Errors returned by this package.
var (
	// ErrNoLeader: no leader that a majority agrees on appeared in time.
	ErrNoLeader = errors.New("harness: no leader")
	// ErrNotRunning: the node's process is not running.
	ErrNotRunning = errors.New("harness: node not running")
	// ErrUnknownScenario: no scenario, workload or fault of that name.
	ErrUnknownScenario = errors.New("harness: unknown scenario")
	// ErrSkipped: a workload whose client API has not landed yet.
	ErrSkipped = errors.New("harness: workload not available")
	// ErrNoFaultClock: a clock fault needs the statenode binary built with
	// -tags faultclock (--faultclock-bin).
	ErrNoFaultClock = errors.New("harness: clock faults need the faultclock build of statenode")
)

// ClusterConfig describes the cluster a run starts.
type ClusterConfig struct {
	// Binary is the statenode binary (built without -race).
	Binary string
	// Nodes is the number of members; 3 or 5 make sense.
	Nodes int
	// Dir receives every node's data directory and log.
	Dir string
	// Seed seeds the proxies' loss and jitter draws.
	Seed uint64
	// Gossip starts every member with gossip (memberlist on a port of its
	// own, profile "local"), which CRDTs need. Gossip does not go through
	// the proxies: partitions and link faults do not reach it.
	Gossip bool
	// FaultClock: Binary was built with the "faultclock" tag; every member
	// reads its clock offset from its ClockFile (SetClockOffset).
	FaultClock bool
	// LogEngine is passed to every member as --log-engine ("bolt" or
	// "wal"); empty leaves the binary's default.
	LogEngine string
	// Timeouts are the Raft timeouts passed to every member: heartbeat,
	// election and leader lease. Short, so that a run sees many elections.
	HeartbeatTimeout, ElectionTimeout, LeaderLeaseTimeout time.Duration
}

// Node is one member process.
type Node struct {
	Index    int
	ID       string
	RaftAddr string // the member's own listeners
	HTTPAddr string
	DataDir  string
	LogPath  string
	// GossipAddr is the member's gossip address (ClusterConfig.Gossip).
	GossipAddr string
	// ClockFile holds the member's clock offset (ClusterConfig.FaultClock).
	ClockFile string

	mu     sync.Mutex
	cmd    *exec.Cmd
	done   chan struct{}
	paused bool
	starts int
	// wiped: the data directory was emptied; the member must join, never
	// bootstrap with the initial cluster again.
	wiped bool
}

// Wiped reports whether node i's data was wiped and it has not been
// started (with --join) since.
func (n *Node) Wiped() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.wiped
}

// Running reports whether the process is alive (paused counts as alive).
func (n *Node) Running() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.done == nil {
		return false
	}
	select {
	case <-n.done:
		return false
	default:
		return true
	}
}

// Paused reports whether the process is stopped with SIGSTOP.
func (n *Node) Paused() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.paused
}

// Cluster is a set of statenode processes on 127.0.0.1 whose member-to-member
// links go through the proxies of Net.
type Cluster struct {
	cfg   ClusterConfig
	Nodes []*Node
	Net   *proxy.Net
	// raftVia[i][j] / httpVia[i][j]: the address node i dials for node j.
	raftVia, httpVia [][]string
	admin            *client.Client
}

// freeAddr returns a 127.0.0.1 address whose port is free at the time of
// the call. Members' ports are drawn below Linux's ephemeral range (32768+)
// so that no outgoing connection, of this harness or of anything else on
// the machine, takes a killed member's port before it restarts.
func freeAddr() (string, error) {
	for range 200 {
		port := 20000 + portRand.IntN(12000)
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			continue
		}
		addr := ln.Addr().String()
		ln.Close()
		return addr, nil
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// portRand draws member ports; seeded by the clock, not the run's seed, so
// that concurrent harnesses do not draw the same ports.
var portRand = rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), uint64(os.Getpid())))

// NewCluster allocates ports, data directories and proxies; it starts nothing.
func NewCluster(cfg ClusterConfig) (*Cluster, error) {
	if cfg.Nodes < 1 {
		return nil, fmt.Errorf("harness: %d nodes", cfg.Nodes)
	}
	if cfg.HeartbeatTimeout == 0 {
		cfg.HeartbeatTimeout, cfg.ElectionTimeout, cfg.LeaderLeaseTimeout = 200*time.Millisecond, 200*time.Millisecond, 100*time.Millisecond
	}
	c := &Cluster{cfg: cfg, Net: proxy.New(cfg.Nodes, cfg.Seed)}
	var https []string
	for i := 0; i < cfg.Nodes; i++ {
		ra, err := freeAddr()
		if err != nil {
			return nil, err
		}
		ha, err := freeAddr()
		if err != nil {
			return nil, err
		}
		id := fmt.Sprintf("n%d", i+1)
		n := &Node{
			Index: i, ID: id, RaftAddr: ra, HTTPAddr: ha,
			DataDir:   filepath.Join(cfg.Dir, "data", id),
			LogPath:   filepath.Join(cfg.Dir, "node-"+id+".log"),
			ClockFile: filepath.Join(cfg.Dir, "clock-"+id),
		}
		if cfg.Gossip {
			if n.GossipAddr, err = freeAddr(); err != nil {
				return nil, err
			}
		}
		if err := os.MkdirAll(n.DataDir, 0o755); err != nil {
			return nil, err
		}
		c.Nodes = append(c.Nodes, n)
		https = append(https, ha)
	}
	c.raftVia = make([][]string, cfg.Nodes)
	c.httpVia = make([][]string, cfg.Nodes)
	for i := range c.Nodes {
		c.raftVia[i] = make([]string, cfg.Nodes)
		c.httpVia[i] = make([]string, cfg.Nodes)
		for j, nj := range c.Nodes {
			if i == j {
				continue
			}
			rl, err := c.Net.AddLink(i, j, "raft", nj.RaftAddr)
			if err != nil {
				c.Net.Close()
				return nil, err
			}
			hl, err := c.Net.AddLink(i, j, "http", nj.HTTPAddr)
			if err != nil {
				c.Net.Close()
				return nil, err
			}
			c.raftVia[i][j], c.httpVia[i][j] = rl.Addr(), hl.Addr()
		}
	}
	admin, err := client.New(client.Config{Endpoints: https, RequestTimeout: 5 * time.Second})
	if err != nil {
		c.Net.Close()
		return nil, err
	}
	c.admin = admin
	return c, nil
}

// Admin is a client of every member (not bound to one), for the harness's
// own requests: membership changes, final reads and writes.
func (c *Cluster) Admin() *client.Client { return c.admin }

// args builds the command line of node i; join makes an empty node ask the
// others for admission instead of bootstrapping with the initial cluster.
func (c *Cluster) args(i int, join bool) []string {
	n := c.Nodes[i]
	a := []string{"agent", "--id", n.ID, "--data-dir", n.DataDir,
		"--raft-addr", n.RaftAddr, "--http-addr", n.HTTPAddr,
		"--heartbeat-timeout", c.cfg.HeartbeatTimeout.String(),
		"--election-timeout", c.cfg.ElectionTimeout.String(),
		"--leader-lease-timeout", c.cfg.LeaderLeaseTimeout.String(),
		"--shutdown-timeout", "5s",
	}
	if c.cfg.LogEngine != "" {
		a = append(a, "--log-engine", c.cfg.LogEngine)
	}
	var initial, praft, phttp, joins []string
	for j, nj := range c.Nodes {
		initial = append(initial, nj.ID+"="+nj.RaftAddr)
		if j == i {
			// The member itself at its own addresses: raft asks the
			// address provider for the local ID too (on every RPC it
			// encodes), and a missing entry is logged as a warning.
			praft = append(praft, nj.ID+"="+nj.RaftAddr)
			phttp = append(phttp, nj.ID+"="+nj.HTTPAddr)
			continue
		}
		praft = append(praft, nj.ID+"="+c.raftVia[i][j])
		phttp = append(phttp, nj.ID+"="+c.httpVia[i][j])
		joins = append(joins, c.httpVia[i][j])
	}
	if join {
		a = append(a, "--join", strings.Join(joins, ","))
	} else {
		a = append(a, "--initial-cluster", strings.Join(initial, ","))
	}
	if c.cfg.Gossip {
		var gjoin []string
		for j, nj := range c.Nodes {
			if j != i {
				gjoin = append(gjoin, nj.GossipAddr)
			}
		}
		a = append(a, "--gossip-addr", n.GossipAddr, "--gossip-profile", "local", "--gossip-join", strings.Join(gjoin, ","))
	}
	if len(praft) > 0 {
		a = append(a, "--peer-raft-addr", strings.Join(praft, ","), "--peer-http-addr", strings.Join(phttp, ","))
	}
	return a
}

// Start starts node i's process (on its existing data directory). It
// returns once the process runs; see WaitUp.
func (c *Cluster) Start(i int, join bool) error {
	n := c.Nodes[i]
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.done != nil {
		select {
		case <-n.done:
		default:
			return fmt.Errorf("harness: %s already running", n.ID)
		}
	}
	if n.wiped && !join {
		return fmt.Errorf("harness: %s was wiped: it must join, not bootstrap again", n.ID)
	}
	logf, err := os.OpenFile(n.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	n.starts++
	fmt.Fprintf(logf, "=== harness: start #%d of %s at %s (join=%t)\n", n.starts, n.ID, time.Now().Format(time.RFC3339Nano), join)
	cmd := exec.Command(c.cfg.Binary, c.args(i, join)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if c.cfg.FaultClock {
		cmd.Env = append(os.Environ(), FaultClockEnv+"="+n.ClockFile)
	}
	// Own process group (a Ctrl-C reaches the harness, which tears down in
	// order); killed with the harness if it dies.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("harness: start %s: %w", n.ID, err)
	}
	done := make(chan struct{})
	go func() {
		err := cmd.Wait()
		fmt.Fprintf(logf, "=== harness: %s exited at %s: %v\n", n.ID, time.Now().Format(time.RFC3339Nano), err)
		logf.Close()
		close(done)
	}()
	n.cmd, n.done, n.paused = cmd, done, false
	if join {
		n.wiped = false
	}
	return nil
}

// FaultClockEnv is the environment variable through which a member built
// with the "faultclock" tag finds its clock offset file (node/clock_fault.go).
const FaultClockEnv = "STATENODE_FAULT_CLOCK_FILE"

// SetClockOffset shifts node i's wall clock by d (a member re-reads its
// offset file at most every 100ms). It fails unless the cluster runs the
// faultclock build.
func (c *Cluster) SetClockOffset(i int, d time.Duration) error {
	if !c.cfg.FaultClock {
		return ErrNoFaultClock
	}
	n := c.Nodes[i]
	tmp := n.ClockFile + ".tmp"
	if err := os.WriteFile(tmp, []byte(d.String()+"\n"), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, n.ClockFile)
}

// Kill sends SIGKILL to node i and waits for the process to exit.
func (c *Cluster) Kill(i int) error {
	n := c.Nodes[i]
	n.mu.Lock()
	cmd, done := n.cmd, n.done
	n.paused = false
	n.mu.Unlock()
	if cmd == nil || done == nil {
		return ErrNotRunning
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-done:
		return nil
	case <-time.After(10 * time.Second):
		return fmt.Errorf("harness: %s did not exit after SIGKILL", n.ID)
	}
}

// Pause stops node i with SIGSTOP.
func (c *Cluster) Pause(i int) error { return c.signal(i, syscall.SIGSTOP, true) }

// Resume continues node i with SIGCONT.
func (c *Cluster) Resume(i int) error { return c.signal(i, syscall.SIGCONT, false) }

func (c *Cluster) signal(i int, sig syscall.Signal, paused bool) error {
	n := c.Nodes[i]
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil || n.done == nil {
		return ErrNotRunning
	}
	select {
	case <-n.done:
		return ErrNotRunning
	default:
	}
	if err := n.cmd.Process.Signal(sig); err != nil {
		return err
	}
	n.paused = paused
	return nil
}

// Wipe deletes node i's data directory (the node must not run).
func (c *Cluster) Wipe(i int) error {
	n := c.Nodes[i]
	if n.Running() {
		return fmt.Errorf("harness: wipe %s while it runs", n.ID)
	}
	if err := os.RemoveAll(n.DataDir); err != nil {
		return err
	}
	n.mu.Lock()
	n.wiped = true
	n.mu.Unlock()
	return os.MkdirAll(n.DataDir, 0o755)
}

// Status asks node i directly (no proxy, no retries).
func (c *Cluster) Status(ctx context.Context, i int) (*api.Status, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	return c.admin.StatusOf(ctx, c.Nodes[i].HTTPAddr)
}

// WaitUp polls node i until it answers /v1/status.
func (c *Cluster) WaitUp(ctx context.Context, i int, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		if !c.Nodes[i].Running() {
			return fmt.Errorf("%w: %s exited (see %s)", ErrNotRunning, c.Nodes[i].ID, c.Nodes[i].LogPath)
		}
		if _, err := c.Status(ctx, i); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("harness: %s not up after %s: %w", c.Nodes[i].ID, timeout, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Leader polls the running, unpaused members until one says it leads and
// a majority of the cluster names it; it returns its index.
func (c *Cluster) Leader(ctx context.Context, timeout time.Duration) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		if i, ok := c.leaderOnce(ctx); ok {
			return i, nil
		}
		select {
		case <-ctx.Done():
			return -1, fmt.Errorf("%w within %s", ErrNoLeader, timeout)
		case <-time.After(25 * time.Millisecond):
		}
	}
}

func (c *Cluster) leaderOnce(ctx context.Context) (int, bool) {
	type view struct {
		st  *api.Status
		err error
	}
	views := make([]view, len(c.Nodes))
	var wg sync.WaitGroup
	for i, n := range c.Nodes {
		if !n.Running() || n.Paused() {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			st, err := c.Status(ctx, i)
			views[i] = view{st, err}
		}()
	}
	wg.Wait()
	votes := map[string]int{}
	leader := -1
	var term uint64
	for i, v := range views {
		if v.st == nil {
			continue
		}
		if v.st.Leader.ID != "" {
			votes[v.st.Leader.ID]++
		}
		if v.st.State == "Leader" && v.st.Term >= term {
			leader, term = i, v.st.Term
		}
	}
	if leader < 0 || votes[c.Nodes[leader].ID] <= len(c.Nodes)/2 {
		return -1, false
	}
	return leader, true
}

// Stop resumes paused members, kills every process and closes the proxies
// and the admin client. Safe to call twice.
func (c *Cluster) Stop() {
	for i, n := range c.Nodes {
		if n.Paused() {
			_ = c.Resume(i)
		}
		if n.Running() {
			_ = c.Kill(i)
		}
	}
	c.Net.Close()
	c.admin.Close()
}
