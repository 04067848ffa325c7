package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/statenode/statenode/fsm"
	"github.com/statenode/statenode/raftlog"
	"github.com/statenode/statenode/transport"
)

// Node is one statenode member: a Raft replica of the state machine, its
// client API, and the plumbing that forwards writes and reads to the leader.
// All methods are safe for concurrent use.
type Node struct {
	cfg    Config
	log    *slog.Logger
	limits fsm.Limits

	fsm   *fsm.FSM
	store *raftlog.Store
	// logEngine is store.Engine(), kept for Status after Shutdown drops store.
	logEngine string
	stream    *transport.StreamLayer
	trans     *transport.RaftTransport
	raft      *raft.Raft
	httpSrv   *transport.HTTPServer
	peers     *http.Client // forwarding to other members' internal API
	metrics   *metrics
	gsp       atomic.Pointer[gossipState] // nil unless Config.GossipAddr is set; stored after the HTTP server starts (gossip.go)

	proposeCh chan *proposal
	pauseCh   chan *proposerPause // pauseWrites (propose.go)
	// proposerDone is closed when runProposer returns; inflight counts
	// the log entries it handed to Raft whose outcome is not known yet.
	proposerDone    chan struct{}
	proposerStarted atomic.Bool
	inflight        atomic.Int64
	restoring       atomic.Bool // a Restore is running (snapshot_http.go): one at a time
	readCh          chan *readWaiter

	// leaderReady is the term in which this node, as leader, committed a
	// barrier: from then on its commit index covers every entry committed
	// by earlier leaders, so it may serve read-index requests.
	leaderReadyTerm atomic.Uint64

	// leaderChange is closed and replaced whenever the known leader changes.
	leaderMu     sync.Mutex
	leaderChange chan struct{}

	ctx      context.Context // ends at Shutdown
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	started  atomic.Bool
	stopOnce sync.Once
	stopErr  error
}

// New validates cfg and prepares a node; Start brings it up.
func New(cfg Config) (*Node, error) {
	def := DefaultConfig()
	if cfg.HeartbeatTimeout == 0 {
		cfg.HeartbeatTimeout = def.HeartbeatTimeout
	}
	if cfg.ElectionTimeout == 0 {
		cfg.ElectionTimeout = def.ElectionTimeout
	}
	if cfg.LeaderLeaseTimeout == 0 {
		cfg.LeaderLeaseTimeout = def.LeaderLeaseTimeout
	}
	if cfg.CommitTimeout == 0 {
		cfg.CommitTimeout = def.CommitTimeout
	}
	if cfg.SnapshotInterval == 0 {
		cfg.SnapshotInterval = def.SnapshotInterval
	}
	if cfg.SnapshotThreshold == 0 {
		cfg.SnapshotThreshold = def.SnapshotThreshold
	}
	if cfg.TrailingLogs == 0 {
		cfg.TrailingLogs = def.TrailingLogs
	}
	if cfg.SnapshotRetain == 0 {
		cfg.SnapshotRetain = def.SnapshotRetain
	}
	if cfg.HistoryRetention == 0 {
		cfg.HistoryRetention = def.HistoryRetention
	}
	if cfg.ApplyTimeout == 0 {
		cfg.ApplyTimeout = def.ApplyTimeout
	}
	if cfg.MaxBatch == 0 {
		cfg.MaxBatch = def.MaxBatch
	}
	if cfg.Version == "" {
		cfg.Version = def.Version
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Registry == nil {
		cfg.Registry = prometheus.NewRegistry()
	}
	limits := cfg.Limits
	dl := fsm.DefaultLimits()
	if limits.MaxKeySize <= 0 {
		limits.MaxKeySize = dl.MaxKeySize
	}
	if limits.MaxValueSize <= 0 {
		limits.MaxValueSize = dl.MaxValueSize
	}
	if limits.MaxTxnOps <= 0 {
		limits.MaxTxnOps = dl.MaxTxnOps
	}
	if limits.MaxRequestSize <= 0 {
		limits.MaxRequestSize = dl.MaxRequestSize
	}
	cfg.Limits = limits
	ctx, cancel := context.WithCancel(context.Background())
	n := &Node{
		cfg:          cfg,
		log:          cfg.Logger.With("node", cfg.ID),
		limits:       limits,
		fsm:          fsm.New(fsm.Config{HistoryRetention: cfg.HistoryRetention}),
		proposeCh:    make(chan *proposal, 4096),
		pauseCh:      make(chan *proposerPause),
		proposerDone: make(chan struct{}),
		readCh:       make(chan *readWaiter, 4096),
		leaderChange: make(chan struct{}),
		ctx:          ctx,
		cancel:       cancel,
	}
	n.peers = &http.Client{Transport: &http.Transport{
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     time.Minute,
		TLSClientConfig:     cfg.TLS,
		DialContext:         (&net.Dialer{Timeout: 2 * time.Second}).DialContext,
	}}
	return n, nil
}

// Start opens the data directory, starts Raft and the client API, and
// bootstraps or joins as configured. It returns once the node serves
// requests; a leader may not be elected yet (see Ready).
func (n *Node) Start(ctx context.Context) (err error) {
	if !n.started.CompareAndSwap(false, true) {
		return errors.New("node: already started")
	}
	defer func() {
		if err != nil {
			n.closeResources()
		}
	}()
	n.store, err = raftlog.Open(raftlog.Config{
		Dir:            n.cfg.DataDir,
		NodeID:         n.cfg.ID,
		Engine:         n.cfg.LogEngine,
		WALSegmentSize: n.cfg.WALSegmentSize,
		SnapshotRetain: n.cfg.SnapshotRetain,
		Logger:         transport.HCLogger(n.log, "snapshot"),
	})
	if err != nil {
		return err
	}
	n.logEngine = n.store.Engine()
	n.stream, err = transport.Listen(n.cfg.RaftAddr, n.cfg.RaftAdvertise, n.cfg.TLS)
	if err != nil {
		return err
	}
	provider := n.cfg.ServerAddressProvider
	if provider == nil && len(n.cfg.PeerRaftAddrs) > 0 {
		provider = &staticProvider{n: n, addrs: n.cfg.PeerRaftAddrs}
	}
	n.trans = transport.NewRaftTransport(n.stream, transport.RaftConfig{
		ServerAddressProvider: provider,
		Logger:                n.log,
	})

	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(n.cfg.ID)
	rc.HeartbeatTimeout = n.cfg.HeartbeatTimeout
	rc.ElectionTimeout = n.cfg.ElectionTimeout
	rc.LeaderLeaseTimeout = n.cfg.LeaderLeaseTimeout
	rc.CommitTimeout = n.cfg.CommitTimeout
	rc.SnapshotInterval = n.cfg.SnapshotInterval
	rc.SnapshotThreshold = n.cfg.SnapshotThreshold
	rc.TrailingLogs = n.cfg.TrailingLogs
	rc.MaxAppendEntries = 512
	rc.BatchApplyCh = true
	rc.Logger = transport.HCLogger(n.log, "raft")

	hasState, err := n.store.HasState()
	if err != nil {
		return fmt.Errorf("node: %w", err)
	}
	n.raft, err = raft.NewRaft(rc, n.fsm, n.store.Log, n.store.Stable, n.store.Snapshots, n.trans)
	if err != nil {
		return fmt.Errorf("node: start raft: %w", err)
	}
	n.metrics = newMetrics(n.cfg.Registry, n)

	if n.cfg.HTTPAddr != "" {
		mux := http.NewServeMux()
		n.registerInternal(mux)
		n.registerAPI(mux, n.cfg.Registry)
		if n.cfg.EnablePprof {
			mux.HandleFunc("/debug/pprof/", pprof.Index)
			mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
			mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
		}
		n.httpSrv, err = transport.ListenHTTP(n.cfg.HTTPAddr, mux, n.cfg.TLS)
		if err != nil {
			return err
		}
	}

	// Gossip starts once the Raft and HTTP listeners are bound, so that
	// its metadata can publish their addresses.
	if err := n.startGossip(ctx, hasState); err != nil {
		return err
	}

	n.goFunc(n.observeLeader)
	n.proposerStarted.Store(true)
	n.goFunc(n.runProposer)
	n.goFunc(n.runReadIndex)
	n.goFunc(n.runLeaderDuties)
	n.goFunc(n.runMemberRegistration)
	n.goFunc(n.runSessionReaper)

	switch {
	case hasState:
		n.log.Info("restarting from existing state", "dir", n.cfg.DataDir)
	case n.cfg.Bootstrap || len(n.cfg.InitialCluster) > 0:
		servers := []raft.Server{{ID: rc.LocalID, Address: n.trans.LocalAddr(), Suffrage: raft.Voter}}
		if len(n.cfg.InitialCluster) > 0 {
			servers = servers[:0]
			for _, p := range n.cfg.InitialCluster {
				addr := raft.ServerAddress(p.RaftAddr)
				if p.ID == n.cfg.ID {
					addr = n.trans.LocalAddr()
				}
				servers = append(servers, raft.Server{ID: raft.ServerID(p.ID), Address: addr, Suffrage: raft.Voter})
			}
		}
		if err := n.raft.BootstrapCluster(raft.Configuration{Servers: servers}).Error(); err != nil {
			return fmt.Errorf("node: bootstrap: %w", err)
		}
		n.log.Info("bootstrapped a new cluster", "members", len(servers))
	case len(n.cfg.Join) > 0:
		if err := n.join(ctx); err != nil {
			return err
		}
	default:
		n.log.Info("no state, no bootstrap and nothing to join: waiting to be added by a member")
	}
	return nil
}

// Shutdown stops the node: the client API first (its streams end), then
// pending proposals and reads fail with ErrStopped, then Raft, the
// transport and the data directory. It does not leave the cluster (see
// Leave). Safe to call more than once; later calls return the first result.
func (n *Node) Shutdown(ctx context.Context) error {
	n.stopOnce.Do(func() {
		n.cancel()
		var errs []error
		if n.httpSrv != nil {
			if err := n.httpSrv.Shutdown(ctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
				errs = append(errs, err)
			}
		}
		// Gossip leaves after the API stops serving CRDTs and before Raft
		// stops, so that peers record this node as left (not dead: no
		// automatic removal) while it is still a working member.
		if err := n.stopGossip(ctx); err != nil {
			errs = append(errs, err)
		}
		if n.raft != nil {
			n.drainInflight(ctx)
			if err := n.shutdownRaft(ctx); err != nil {
				errs = append(errs, err)
			}
		}
		waited := make(chan struct{})
		go func() { n.wg.Wait(); close(waited) }()
		select {
		case <-waited:
			if err := n.closeResources(); err != nil {
				errs = append(errs, err)
			}
		case <-ctx.Done():
			// Something is still running: leave the data directory open
			// rather than pull it from under a live goroutine.
			errs = append(errs, fmt.Errorf("node: shutdown did not finish: %w", ctx.Err()))
		}
		n.stopErr = errors.Join(errs...)
	})
	return n.stopErr
}

// drainInflight gives the entries already handed to Raft a moment to
// resolve before Raft stops: Raft never resolves a future whose entry is
// still queued inside it when it shuts down, and the goroutine waiting on
// it would wait forever. With a quorum they resolve within a commit;
// without one they wait at most two seconds.
func (n *Node) drainInflight(ctx context.Context) {
	if !n.proposerStarted.Load() {
		return
	}
	deadline := time.NewTimer(2 * time.Second)
	defer deadline.Stop()
	select { // the proposer hands Raft nothing new once it returned
	case <-n.proposerDone:
	case <-deadline.C:
		return
	case <-ctx.Done():
		return
	}
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for n.inflight.Load() > 0 {
		select {
		case <-tick.C:
		case <-deadline.C:
			return
		case <-ctx.Done():
			return
		}
	}
}

// shutdownRaft stops Raft. Raft waits for its replication goroutines, and
// one of them can sit in an RPC to a peer whose Raft already stopped while
// its transport still accepts (a whole cluster shutting down at once): if
// Raft has not stopped after a moment, closing our transport ends those
// RPCs and lets it finish.
func (n *Node) shutdownRaft(ctx context.Context) error {
	done := make(chan error, 1)
	go func() { done <- n.raft.Shutdown().Error() }()
	select {
	case err := <-done:
		return err
	case <-time.After(time.Second):
		n.log.Warn("raft is slow to stop; closing its transport")
		if n.trans != nil {
			_ = n.trans.Close()
		}
	}
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("node: raft did not stop: %w", ctx.Err())
	}
}

// closeResources releases what Start opened; safe on a partial start.
func (n *Node) closeResources() error {
	var errs []error
	if n.gsp.Load() != nil { // a failed Start; after Shutdown this is a no-op
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := n.stopGossip(ctx); err != nil {
			errs = append(errs, err)
		}
		cancel()
	}
	if n.trans != nil {
		if err := n.trans.Close(); err != nil {
			errs = append(errs, err)
		}
		n.trans = nil
	} else if n.stream != nil {
		n.stream.Close()
	}
	if n.store != nil {
		if err := n.store.Close(); err != nil {
			errs = append(errs, err)
		}
		n.store = nil
	}
	n.peers.CloseIdleConnections()
	if n.metrics != nil {
		n.metrics.unregister()
	}
	return errors.Join(errs...)
}

// goFunc runs f on a goroutine that Shutdown waits for.
func (n *Node) goFunc(f func()) {
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		f()
	}()
}

// stopped reports whether Shutdown has begun.
func (n *Node) stopped() bool { return n.ctx.Err() != nil }

// FSM exposes the local state machine (read-only use: Hash, Revision,
// stale reads). For tests and embedding.
func (n *Node) FSM() *fsm.FSM { return n.fsm }

// ID is this node's ID.
func (n *Node) ID() string { return n.cfg.ID }

// Config returns the effective configuration.
func (n *Node) Config() Config { return n.cfg }

// HTTPAddr is the bound client API address ("" before Start or if disabled).
func (n *Node) HTTPAddr() string {
	if n.httpSrv == nil {
		return ""
	}
	return n.httpSrv.Addr().String()
}

// httpAdvertise is the client API address told to others.
func (n *Node) httpAdvertise() string {
	if n.cfg.HTTPAdvertise != "" {
		return n.cfg.HTTPAdvertise
	}
	return n.HTTPAddr()
}

// RaftAddr is the advertised Raft address ("" before Start).
func (n *Node) RaftAddr() string {
	if n.stream == nil {
		return ""
	}
	return n.stream.Addr().String()
}

// Limits are the effective request limits.
func (n *Node) Limits() fsm.Limits { return n.limits }

// Raft exposes the underlying raft instance for tests and diagnostics.
// Do not apply commands through it: they bypass validation.
func (n *Node) Raft() *raft.Raft { return n.raft }

// staticProvider dials peers at fixed addresses by ID. Members without an
// override (this node itself, a member added later) resolve to the address
// in the replicated member table, so raft never falls back noisily.
type staticProvider struct {
	n     *Node
	addrs map[string]string
}

func (p *staticProvider) ServerAddr(id raft.ServerID) (raft.ServerAddress, error) {
	if a, ok := p.addrs[string(id)]; ok {
		return raft.ServerAddress(a), nil
	}
	if string(id) == p.n.cfg.ID {
		return raft.ServerAddress(p.n.RaftAddr()), nil
	}
	if m, ok := p.n.fsm.Member(string(id)); ok && m.RaftAddr != "" {
		return raft.ServerAddress(m.RaftAddr), nil
	}
	return "", fmt.Errorf("node: no address known for %q", id)
}

// forwardAddr is the client API address used to reach member l.
func (n *Node) forwardAddr(l LeaderInfo) string {
	if a, ok := n.cfg.PeerHTTPAddrs[l.ID]; ok {
		return a
	}
	return l.HTTPAddr
}
