package node

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/statenode/statenode/fsm"
	"github.com/statenode/statenode/raftlog"
)

// Peer is one member of a fixed initial cluster.
type Peer struct {
	ID       string
	RaftAddr string
}

// Config configures a Node. Start from DefaultConfig (or DefaultLocalConfig
// in tests) and change what you need; Validate checks how fields relate.
type Config struct {
	// ID names this node in the Raft configuration; unique and stable across
	// restarts (it is stored with the data directory).
	ID string

	// DataDir holds the Raft log, stable store and snapshots. Required.
	DataDir string
	// LogEngine stores the Raft log: raftlog.EngineWAL ("wal") or
	// raftlog.EngineBolt ("bolt"). A data directory keeps the engine it
	// was created with (docs/OPERATIONS.md); empty uses that one, and wal
	// for a new directory.
	LogEngine string
	// WALSegmentSize is the segment file size of the "wal" engine (0 =
	// 64 MiB). Log compaction frees whole segments only; entries before a
	// snapshot in the newest segment stay on disk (harmless: they are
	// committed entries) until it fills.
	WALSegmentSize int

	// RaftAddr is the TCP address the Raft transport listens on
	// ("127.0.0.1:0" picks a free port).
	RaftAddr string
	// RaftAdvertise is the Raft address other members dial; defaults to the
	// bound RaftAddr (which must then not be a wildcard).
	RaftAdvertise string

	// HTTPAddr is the TCP address of the client HTTP API ("" disables it).
	HTTPAddr string
	// HTTPAdvertise is the client API address other members and clients are
	// told about; defaults to the bound HTTPAddr.
	HTTPAdvertise string

	// Bootstrap makes this node form a new single-member cluster if its data
	// directory holds no state yet. Other nodes then Join it.
	Bootstrap bool
	// InitialCluster, if set, bootstraps a fixed-size cluster: every listed
	// node starts with the same list (including itself) and they elect a
	// leader among themselves. Ignored when the data directory holds state.
	InitialCluster []Peer
	// Join lists client API addresses (host:port) of existing members; a node
	// with no state asks them, in turn, to add it as a voter.
	Join []string

	// HeartbeatTimeout, ElectionTimeout and LeaderLeaseTimeout tune Raft
	// (see raft.Config). Defaults are hashicorp/raft's LAN values: 1s, 1s,
	// 500ms; DefaultLocalConfig lowers them for tests on loopback.
	HeartbeatTimeout   time.Duration
	ElectionTimeout    time.Duration
	LeaderLeaseTimeout time.Duration
	// CommitTimeout bounds how long a follower waits before the leader sends
	// a heartbeat carrying the commit index; lower means lower follower apply
	// lag. Default 5ms.
	CommitTimeout time.Duration

	// SnapshotInterval is how often Raft checks whether to snapshot;
	// SnapshotThreshold is how many new log entries trigger a snapshot;
	// TrailingLogs is how many entries are kept after a snapshot so slightly
	// lagging followers catch up from the log instead of a snapshot.
	// Defaults: 30s, 8192, 10240.
	SnapshotInterval  time.Duration
	SnapshotThreshold uint64
	TrailingLogs      uint64
	// SnapshotRetain is how many snapshots are kept on disk. Default 2.
	SnapshotRetain int

	// HistoryRetention is how many revisions of history are kept for watches
	// and reads at a past revision. Must be equal on every member. Default
	// 100000.
	HistoryRetention int64

	// Limits bound keys, values and transactions; enforced before anything
	// reaches the log. Zero fields take fsm.DefaultLimits.
	Limits fsm.Limits

	// ApplyTimeout bounds how long a write waits to be committed when the
	// caller's context has no earlier deadline. Default 10s.
	ApplyTimeout time.Duration

	// MaxBatch is the most write commands packed into one Raft log entry by
	// the proposer; concurrent writes share a commit. Default 256.
	MaxBatch int

	// MaxRestoreSize bounds a snapshot given to Restore (POST /v1/snapshot),
	// in bytes; it is spooled to DataDir before anything changes. Default
	// (0) DefaultMaxRestoreSize, 4 GiB: above any state a member holds in
	// memory on common hosts, small enough that a runaway upload cannot
	// quietly fill the data directory's disk.
	MaxRestoreSize int64

	// TLS, if set, secures the Raft stream layer and the HTTP API (the seam
	// for a later TLS issue; nil = plain TCP).
	TLS *tls.Config

	// ServerAddressProvider, if set, decides the address used to dial a Raft
	// peer by ID (the Jepsen harness routes links through proxies this way).
	ServerAddressProvider raft.ServerAddressProvider

	// PeerRaftAddrs overrides, by member ID, the address this node dials
	// for that member's Raft traffic (ignored if ServerAddressProvider is
	// set). PeerHTTPAddrs likewise overrides the client API address used to
	// forward requests to that member. Both let an operator or a test
	// harness route member-to-member links through proxies without
	// changing what the cluster records.
	PeerRaftAddrs map[string]string
	PeerHTTPAddrs map[string]string

	// EnablePprof serves Go's profiler on the client API port under
	// /debug/pprof/ (off by default: it exposes internals).
	EnablePprof bool

	// Logger receives the node's logs; nil = slog.Default().
	Logger *slog.Logger

	// Registry receives the node's metrics and is served on /metrics; nil =
	// a fresh registry per node (so several nodes can run in one process).
	Registry *prometheus.Registry

	// Version is reported in Status and /v1/status.
	Version string

	// Gossip membership and CRDTs (docs/CRDT.md); all off unless
	// GossipAddr is set. See gossip.go for how they interact.
	GossipConfig
}

// memberIDForbidden are the characters a member ID must not contain (they
// separate IDs and addresses in flags such as --initial-cluster).
const memberIDForbidden = " ,=/"

// DefaultConfig returns the production defaults. ID, DataDir and addresses
// must still be set.
func DefaultConfig() Config {
	return Config{
		RaftAddr:           "127.0.0.1:7000",
		HTTPAddr:           "127.0.0.1:7001",
		HeartbeatTimeout:   1000 * time.Millisecond,
		ElectionTimeout:    1000 * time.Millisecond,
		LeaderLeaseTimeout: 500 * time.Millisecond,
		CommitTimeout:      5 * time.Millisecond,
		SnapshotInterval:   30 * time.Second,
		SnapshotThreshold:  8192,
		TrailingLogs:       10240,
		SnapshotRetain:     2,
		HistoryRetention:   100000,
		Limits:             fsm.DefaultLimits(),
		ApplyTimeout:       10 * time.Second,
		MaxBatch:           256,
		MaxRestoreSize:     DefaultMaxRestoreSize,
		Version:            "dev",
		GossipConfig:       defaultGossipConfig(),
	}
}

// DefaultLocalConfig returns DefaultConfig tuned for clusters on one host
// (tests, the dev node): short timeouts on free loopback ports.
func DefaultLocalConfig() Config {
	c := DefaultConfig()
	c.RaftAddr = "127.0.0.1:0"
	c.HTTPAddr = "127.0.0.1:0"
	// Short enough that failover tests finish quickly, long enough that a
	// busy 2-core machine running the race detector keeps its leader.
	c.HeartbeatTimeout = 500 * time.Millisecond
	c.ElectionTimeout = 500 * time.Millisecond
	c.LeaderLeaseTimeout = 250 * time.Millisecond
	c.CommitTimeout = 2 * time.Millisecond
	c.SnapshotInterval = 2 * time.Second
	c.GossipProfile = gossipProfileLocal
	return c
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	var errs []error
	if c.ID == "" {
		errs = append(errs, errors.New("ID is required"))
	}
	if strings.ContainsAny(c.ID, memberIDForbidden) {
		errs = append(errs, fmt.Errorf("ID %q must not contain spaces, ',', '=' or '/'", c.ID))
	}
	if c.DataDir == "" {
		errs = append(errs, errors.New("DataDir is required"))
	}
	if _, _, err := net.SplitHostPort(c.RaftAddr); err != nil {
		errs = append(errs, fmt.Errorf("RaftAddr: %w", err))
	}
	if c.HTTPAddr != "" {
		if _, _, err := net.SplitHostPort(c.HTTPAddr); err != nil {
			errs = append(errs, fmt.Errorf("HTTPAddr: %w", err))
		}
	}
	if c.Bootstrap && len(c.InitialCluster) > 0 {
		errs = append(errs, errors.New("Bootstrap and InitialCluster are exclusive"))
	}
	if len(c.InitialCluster) > 0 {
		self := false
		seen := map[string]bool{}
		for _, p := range c.InitialCluster {
			if p.ID == "" || p.RaftAddr == "" {
				errs = append(errs, fmt.Errorf("InitialCluster: peer %q needs an ID and an address", p.ID))
			}
			if seen[p.ID] {
				errs = append(errs, fmt.Errorf("InitialCluster: duplicate ID %q", p.ID))
			}
			seen[p.ID] = true
			self = self || p.ID == c.ID
		}
		if !self {
			errs = append(errs, fmt.Errorf("InitialCluster must include this node (%q)", c.ID))
		}
	}
	if c.ElectionTimeout < c.HeartbeatTimeout {
		errs = append(errs, errors.New("ElectionTimeout must be >= HeartbeatTimeout"))
	}
	if c.LeaderLeaseTimeout > c.HeartbeatTimeout {
		errs = append(errs, errors.New("LeaderLeaseTimeout must be <= HeartbeatTimeout"))
	}
	switch c.LogEngine {
	case "", raftlog.EngineBolt, raftlog.EngineWAL:
	default:
		errs = append(errs, fmt.Errorf("LogEngine %q: want %q or %q", c.LogEngine, raftlog.EngineBolt, raftlog.EngineWAL))
	}
	if c.HistoryRetention < 0 || c.MaxBatch < 0 || c.SnapshotRetain < 0 {
		errs = append(errs, errors.New("HistoryRetention, MaxBatch and SnapshotRetain must not be negative"))
	}
	errs = append(errs, c.validateGossip()...)
	if len(errs) > 0 {
		return fmt.Errorf("node: invalid config: %w", errors.Join(errs...))
	}
	return nil
}
