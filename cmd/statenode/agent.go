package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/statenode/statenode/node"
)

// defaultVars feeds node.DefaultConfig into the flags' default tags, so that
// the help text shows the library's defaults and there is one source of
// truth for them.
func defaultVars() map[string]string {
	d := node.DefaultConfig()
	return map[string]string{
		"version":              version,
		"raft_addr":            d.RaftAddr,
		"http_addr":            d.HTTPAddr,
		"history_retention":    strconv.FormatInt(d.HistoryRetention, 10),
		"snapshot_threshold":   strconv.FormatUint(d.SnapshotThreshold, 10),
		"snapshot_interval":    d.SnapshotInterval.String(),
		"trailing_logs":        strconv.FormatUint(d.TrailingLogs, 10),
		"max_key_size":         strconv.Itoa(d.Limits.MaxKeySize),
		"max_value_size":       strconv.Itoa(d.Limits.MaxValueSize),
		"max_txn_ops":          strconv.Itoa(d.Limits.MaxTxnOps),
		"max_restore_size":     strconv.FormatInt(d.MaxRestoreSize, 10),
		"heartbeat_timeout":    d.HeartbeatTimeout.String(),
		"election_timeout":     d.ElectionTimeout.String(),
		"leader_lease_timeout": d.LeaderLeaseTimeout.String(),
		"apply_timeout":        d.ApplyTimeout.String(),
	}
}

// agentCmd runs one cluster member.
type agentCmd struct {
	ID             string   `name:"id" required:"" help:"Unique, stable name of this member (no spaces, ',', '=' or '/')."`
	DataDir        string   `name:"data-dir" required:"" type:"path" placeholder:"DIR" help:"Directory for the Raft log, snapshots and metadata."`
	LogEngine      string   `name:"log-engine" enum:"auto,bolt,wal" default:"auto" help:"Raft log storage: wal (append-only segments, one fsync per append) or bolt (one bbolt file, two fsyncs per append). Fixed when the data directory is created; auto keeps a directory's engine and creates new ones with wal."`
	RaftAddr       string   `name:"raft-addr" default:"${raft_addr}" placeholder:"HOST:PORT" help:"Address the Raft transport listens on."`
	HTTPAddr       string   `name:"http-addr" default:"${http_addr}" placeholder:"HOST:PORT" help:"Address the client API (and /metrics) listens on."`
	RaftAdvertise  string   `name:"raft-advertise" placeholder:"HOST:PORT" help:"Raft address other members dial (default: --raft-addr)."`
	HTTPAdvertise  string   `name:"http-advertise" placeholder:"HOST:PORT" help:"Client API address given to clients and members (default: --http-addr)."`
	Bootstrap      bool     `name:"bootstrap" help:"Form a new single-member cluster if the data directory is empty; other members --join it."`
	InitialCluster []string `name:"initial-cluster" sep:"," placeholder:"ID=HOST:PORT" help:"Bootstrap a fixed cluster: every member's ID and Raft address, including this one."`
	PeerRaftAddr   []string `name:"peer-raft-addr" sep:"," placeholder:"ID=HOST:PORT" help:"Dial this member's Raft traffic at this address instead of the recorded one (e.g. through a proxy)."`
	PeerHTTPAddr   []string `name:"peer-http-addr" sep:"," placeholder:"ID=HOST:PORT" help:"Forward requests to this member at this client API address instead of the recorded one."`
	Join           []string `name:"join" sep:"," placeholder:"HOST:PORT" help:"Client API addresses of existing members to ask for admission when the data directory is empty."`

	HistoryRetention  int64         `name:"history-retention" default:"${history_retention}" help:"Revisions of history kept for watches and historical reads; equal on every member."`
	SnapshotThreshold uint64        `name:"snapshot-threshold" default:"${snapshot_threshold}" help:"New Raft log entries that trigger a snapshot."`
	SnapshotInterval  time.Duration `name:"snapshot-interval" default:"${snapshot_interval}" help:"How often to check whether to snapshot."`
	TrailingLogs      uint64        `name:"trailing-logs" default:"${trailing_logs}" help:"Log entries kept after a snapshot so lagging followers catch up from the log."`
	MaxKeySize        int           `name:"max-key-size" default:"${max_key_size}" help:"Largest key accepted, in bytes."`
	MaxValueSize      int           `name:"max-value-size" default:"${max_value_size}" help:"Largest value accepted, in bytes."`
	MaxTxnOps         int           `name:"max-txn-ops" default:"${max_txn_ops}" help:"Most compares plus operations in one transaction."`
	MaxRestoreSize    int64         `name:"max-restore-size" default:"${max_restore_size}" help:"Largest snapshot accepted by a restore (POST /v1/snapshot), in bytes."`

	HeartbeatTimeout   time.Duration `name:"heartbeat-timeout" default:"${heartbeat_timeout}" help:"Raft heartbeat timeout (a follower without contact this long starts an election)."`
	ElectionTimeout    time.Duration `name:"election-timeout" default:"${election_timeout}" help:"Raft election timeout (a candidate without a quorum this long retries); >= --heartbeat-timeout."`
	LeaderLeaseTimeout time.Duration `name:"leader-lease-timeout" default:"${leader_lease_timeout}" help:"How long a leader stays leader without a quorum's contact; <= --heartbeat-timeout."`
	ApplyTimeout       time.Duration `name:"apply-timeout" default:"${apply_timeout}" help:"How long a write waits to commit when the client set no deadline."`
	ShutdownTimeout    time.Duration `name:"shutdown-timeout" default:"30s" help:"How long a graceful shutdown may take after SIGINT/SIGTERM."`

	Gossip gossipFlags `embed:""`

	LogLevel    string `name:"log-level" enum:"debug,info,warn,error" default:"info" help:"Least severe level logged: debug, info, warn or error."`
	LogFormat   string `name:"log-format" enum:"text,json" default:"text" help:"Log format on stderr: text or json."`
	EnablePprof bool   `name:"enable-pprof" help:"Serve Go's profiler under /debug/pprof/ on the client API port."`
}

// Run reads top to bottom: logging, configuration, metrics, signals, start,
// wait, shutdown.
func (a *agentCmd) Run(rc *runContext) error {
	// 1. Logging first, so that every later step can report what it does.
	logger := newLogger(rc.stderr, a.LogLevel, a.LogFormat)

	// 2. Configuration: library defaults, overridden by flags (which kong
	// already merged with the environment and the config file).
	cfg, err := a.config()
	if err != nil {
		return err
	}
	cfg.Logger = logger
	cfg.Version = version

	// 3. Metrics: the binary owns the registry; the node registers its own
	// collectors and serves everything on the client API's /metrics.
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	cfg.Registry = reg

	// 4. Signals become a context: SIGINT or SIGTERM ends ctx.
	ctx, stop := signal.NotifyContext(rc.ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	// 5. Create and start the node. Start returns once the node serves; a
	// signal during Start (a long join, say) cancels it.
	n, err := node.New(cfg)
	if err != nil {
		return err
	}
	if err := n.Start(ctx); err != nil {
		return fmt.Errorf("start: %w", err)
	}
	logger.Info("statenode agent started", "id", cfg.ID, "version", version,
		"http_addr", n.HTTPAddr(), "raft_addr", n.RaftAddr(), "data_dir", cfg.DataDir)

	// 6. Serve until a signal arrives.
	<-ctx.Done()
	// From here on a second SIGINT/SIGTERM kills the process at once, the
	// way out of a shutdown that hangs.
	stop()
	logger.Info("signal received, shutting down", "timeout", a.ShutdownTimeout)

	// 7. Shutdown, bounded by --shutdown-timeout. The order is fixed inside
	// node.Shutdown: the client API stops first (no new requests; watches
	// end), pending proposals and reads fail, then Raft stops, then the
	// transport and the data directory close. Nothing else in this process
	// holds resources, so nothing else needs closing after it.
	if err := shutdown(n, a.ShutdownTimeout); err != nil {
		return err
	}
	logger.Info("statenode agent stopped")
	return nil
}

// shutdown stops n and returns within timeout even if n.Shutdown does not:
// the process is about to exit, and an exit that never comes is worse than
// one that skips the rest of a stuck shutdown.
func shutdown(n *node.Node, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- n.Shutdown(ctx) }()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("shutdown: %w", err)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("shutdown did not finish within %s; exiting anyway", timeout)
	}
}

// config builds the node configuration from node.DefaultConfig and the flags.
func (a *agentCmd) config() (node.Config, error) {
	cfg := node.DefaultConfig()
	cfg.ID = a.ID
	cfg.DataDir = a.DataDir
	if a.LogEngine != "auto" {
		cfg.LogEngine = a.LogEngine
	}
	cfg.RaftAddr = a.RaftAddr
	cfg.HTTPAddr = a.HTTPAddr
	cfg.RaftAdvertise = a.RaftAdvertise
	cfg.HTTPAdvertise = a.HTTPAdvertise
	cfg.Bootstrap = a.Bootstrap
	cfg.EnablePprof = a.EnablePprof
	peers, err := parseInitialCluster(a.InitialCluster)
	if err != nil {
		return cfg, err
	}
	cfg.InitialCluster = peers
	if cfg.PeerRaftAddrs, err = parseAddrMap("--peer-raft-addr", a.PeerRaftAddr); err != nil {
		return cfg, err
	}
	if cfg.PeerHTTPAddrs, err = parseAddrMap("--peer-http-addr", a.PeerHTTPAddr); err != nil {
		return cfg, err
	}
	cfg.Join = a.Join
	cfg.HistoryRetention = a.HistoryRetention
	cfg.SnapshotThreshold = a.SnapshotThreshold
	cfg.SnapshotInterval = a.SnapshotInterval
	cfg.TrailingLogs = a.TrailingLogs
	cfg.Limits.MaxKeySize = a.MaxKeySize
	cfg.Limits.MaxValueSize = a.MaxValueSize
	cfg.Limits.MaxTxnOps = a.MaxTxnOps
	cfg.MaxRestoreSize = a.MaxRestoreSize
	cfg.HeartbeatTimeout = a.HeartbeatTimeout
	cfg.ElectionTimeout = a.ElectionTimeout
	cfg.LeaderLeaseTimeout = a.LeaderLeaseTimeout
	cfg.ApplyTimeout = a.ApplyTimeout
	a.Gossip.apply(&cfg)
	if a.ShutdownTimeout <= 0 {
		return cfg, fmt.Errorf("%w: --shutdown-timeout must be positive", errUsage)
	}
	if err := cfg.Validate(); err != nil {
		return cfg, err
	}
	return cfg, nil
}

// parseInitialCluster parses "id1=host:port,id2=host:port".
func parseInitialCluster(entries []string) ([]node.Peer, error) {
	var peers []node.Peer
	for _, e := range entries {
		if e = strings.TrimSpace(e); e == "" {
			continue
		}
		id, addr, ok := strings.Cut(e, "=")
		if !ok || id == "" || addr == "" {
			return nil, fmt.Errorf("%w: --initial-cluster: %q is not ID=HOST:PORT", errUsage, e)
		}
		peers = append(peers, node.Peer{ID: id, RaftAddr: addr})
	}
	return peers, nil
}

// newLogger returns a slog logger writing to w at the given level and format
// (both already validated by kong's enum).
func newLogger(w io.Writer, level, format string) *slog.Logger {
	var lv slog.Level
	_ = lv.UnmarshalText([]byte(level))
	opts := &slog.HandlerOptions{Level: lv}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// devCmd runs a single-node cluster with short timeouts for development.
type devCmd struct {
	ID       string `name:"id" default:"dev" help:"Member ID of the dev node."`
	HTTPAddr string `name:"http-addr" default:"127.0.0.1:7001" placeholder:"HOST:PORT" help:"Client API address."`
	RaftAddr string `name:"raft-addr" default:"127.0.0.1:7000" placeholder:"HOST:PORT" help:"Raft address."`
	DataDir  string `name:"data-dir" type:"path" placeholder:"DIR" help:"Keep data here (default: a temporary directory removed on exit)."`
	LogLevel string `name:"log-level" enum:"debug,info,warn,error" default:"warn" help:"Least severe level logged to stderr."`
}

// Run starts the node, prints where it is, and serves until a signal.
func (d *devCmd) Run(rc *runContext) error {
	logger := newLogger(rc.stderr, d.LogLevel, "text")

	// Data directory: a temporary one is removed after the node has shut
	// down (see the deferred RemoveAll, which runs after Shutdown).
	dataDir := d.DataDir
	if dataDir == "" {
		tmp, err := os.MkdirTemp("", "statenode-dev-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		dataDir = tmp
	}

	cfg := node.DefaultLocalConfig()
	cfg.ID = d.ID
	cfg.DataDir = dataDir
	cfg.HTTPAddr = d.HTTPAddr
	cfg.RaftAddr = d.RaftAddr
	cfg.Bootstrap = true
	cfg.Logger = logger
	cfg.Version = version

	ctx, stop := signal.NotifyContext(rc.ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	n, err := node.New(cfg)
	if err != nil {
		return err
	}
	// Shutdown runs before the data directory is removed (defers run in
	// reverse order).
	defer func() {
		if err := shutdown(n, 10*time.Second); err != nil {
			logger.Error("dev node", "err", err)
		}
	}()
	if err := n.Start(ctx); err != nil {
		return fmt.Errorf("start: %w", err)
	}
	if err := waitReady(ctx, n, 10*time.Second); err != nil {
		return err
	}

	addr := n.HTTPAddr()
	fmt.Fprintf(rc.stdout, "statenode dev node ready at http://%s (data in %s)\n", addr, dataDir)
	hint := "statenode"
	if addr != "127.0.0.1:7001" {
		hint += " --addr " + addr
	}
	fmt.Fprintf(rc.stdout, "try: %s kv put hello world && %s kv get hello   (Ctrl-C stops)\n", hint, hint)

	<-ctx.Done()
	stop()
	return nil
}

// waitReady polls n.Ready until it holds, ctx ends or timeout passes.
func waitReady(ctx context.Context, n *node.Node, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for !n.Ready() {
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return fmt.Errorf("node not ready after %s", timeout)
			}
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}

// parseAddrMap parses "id1=host:port,id2=host:port" into a map.
func parseAddrMap(flag string, entries []string) (map[string]string, error) {
	if len(entries) == 0 {
		return nil, nil
	}
	peers, err := parseInitialCluster(entries)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", flag, err)
	}
	m := make(map[string]string, len(peers))
	for _, p := range peers {
		m[p.ID] = p.RaftAddr
	}
	return m, nil
}
