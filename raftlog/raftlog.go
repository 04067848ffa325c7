package raftlog

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	wal "github.com/hashicorp/raft-wal"
	"github.com/hashicorp/raft-wal/metadb"
	"go.etcd.io/bbolt"
	"golang.org/x/sys/unix"
)

// Log engines: where the Raft log and stable store live.
const (
	// EngineBolt keeps the log in one bbolt file (raft/raft.db) through
	// raft-boltdb/v2: two fsyncs per append.
	EngineBolt = "bolt"
	// EngineWAL keeps the log in append-only segment files (raft/wal/)
	// through hashicorp/raft-wal: one fsync per append instead of bbolt's
	// two, and old entries are dropped by deleting whole segments. The
	// default for new data directories.
	EngineWAL = "wal"
)

// Errors returned by Open.
var (
	// ErrIdentityMismatch: the data directory belongs to another node ID.
	ErrIdentityMismatch = errors.New("raftlog: data directory belongs to another node")
	// ErrLocked: another process holds the data directory open.
	ErrLocked = errors.New("raftlog: data directory is in use by another process")
	// ErrEngineMismatch: the data directory was created with another log
	// engine. Engines do not convert: remove the member, empty its data
	// directory and add it back with the new engine.
	ErrEngineMismatch = errors.New("raftlog: data directory uses another log engine")
)

// Config configures Open.
type Config struct {
	// Dir is the data directory; created if missing.
	Dir string
	// NodeID is recorded on first use and checked on every later Open, so a
	// directory cannot silently be reused by a different member.
	NodeID string
	// Engine is EngineBolt or EngineWAL. It is recorded on first use like
	// NodeID; opening with another engine fails with ErrEngineMismatch.
	// Empty: the engine the directory already uses, EngineWAL for a new
	// one (as Consul does since 1.20).
	Engine string
	// WALSegmentSize is the size at which EngineWAL starts a new segment
	// file; compaction frees whole segments. Default (0) raft-wal's 64 MiB.
	WALSegmentSize int
	// CacheSize is how many recent log entries are kept in memory in front
	// of bbolt; followers and the leader's replication read them from there.
	// Default 1024.
	CacheSize int
	// SnapshotRetain is how many snapshots are kept. Default 2.
	SnapshotRetain int
	// NoSync skips fsync on log writes (EngineBolt only). Unsafe: an
	// acknowledged write can be lost on power failure. For benchmarks of
	// the rest of the stack only.
	NoSync bool
	// LogOutput receives the snapshot store's log lines; nil = io.Discard.
	LogOutput io.Writer
	// Logger, if set, is used by the snapshot store instead of LogOutput.
	Logger hclog.Logger
}

// Store is an opened data directory.
type Store struct {
	// Log is the Raft log store (the engine behind a log cache).
	Log raft.LogStore
	// Stable is the Raft stable store (the engine's).
	Stable raft.StableStore
	// Snapshots is the file snapshot store.
	Snapshots raft.SnapshotStore

	engine io.Closer // *raftboltdb.BoltStore or *wal.WAL
	lock   *os.File  // holds the flock on raft/LOCK
	stable *closableStable
	dir    string
	kind   string
}

type identity struct {
	ID string `json:"id"`
	// Engine is empty in directories created before engines were
	// selectable: those are EngineBolt.
	Engine string `json:"engine,omitempty"`
}

// Open opens (or creates) the data directory.
func Open(cfg Config) (_ *Store, err error) {
	if cfg.Dir == "" {
		return nil, errors.New("raftlog: Dir is required")
	}
	switch cfg.Engine {
	case "", EngineBolt, EngineWAL:
	default:
		return nil, fmt.Errorf("raftlog: unknown log engine %q (want %q or %q)", cfg.Engine, EngineBolt, EngineWAL)
	}
	if cfg.CacheSize <= 0 {
		cfg.CacheSize = 1024
	}
	if cfg.SnapshotRetain <= 0 {
		cfg.SnapshotRetain = 2
	}
	raftDir := filepath.Join(cfg.Dir, "raft")
	if err := os.MkdirAll(raftDir, 0o750); err != nil {
		return nil, fmt.Errorf("raftlog: %w", err)
	}
	lock, err := lockDir(raftDir)
	if err != nil {
		return nil, err
	}
	st := &Store{lock: lock, dir: cfg.Dir}
	defer func() {
		if err != nil {
			if st.engine != nil {
				st.engine.Close()
			}
			lock.Close()
		}
	}()
	if cfg.Engine, err = checkIdentity(cfg.Dir, cfg.NodeID, cfg.Engine); err != nil {
		return nil, err
	}
	st.kind = cfg.Engine
	var log raft.LogStore
	switch cfg.Engine {
	case EngineWAL:
		walDir := filepath.Join(raftDir, "wal")
		if err := os.MkdirAll(walDir, 0o750); err != nil {
			return nil, fmt.Errorf("raftlog: %w", err)
		}
		// raft-wal's Close leaves its metadata database open (and locked):
		// own it, and close it after the WAL.
		meta := &metadb.BoltMetaDB{}
		segSize := cfg.WALSegmentSize
		if segSize <= 0 {
			segSize = wal.DefaultSegmentSize
		}
		w, err := wal.Open(walDir, wal.WithLogger(hclogOr(cfg)), wal.WithMetaStore(meta), wal.WithSegmentSize(segSize))
		if err != nil {
			meta.Close()
			return nil, fmt.Errorf("raftlog: open log: %w", err)
		}
		// WAL.Close closes meta too.
		st.engine, log, st.stable = w, w, &closableStable{inner: w}
	default:
		bolt, err := raftboltdb.New(raftboltdb.Options{
			Path:        filepath.Join(raftDir, "raft.db"),
			BoltOptions: &bbolt.Options{Timeout: time.Second, NoFreelistSync: true},
			NoSync:      cfg.NoSync,
		})
		if err != nil {
			if errors.Is(err, bbolt.ErrTimeout) {
				return nil, fmt.Errorf("%w: %s", ErrLocked, cfg.Dir)
			}
			return nil, fmt.Errorf("raftlog: open log: %w", err)
		}
		st.engine, log, st.stable = bolt, bolt, &closableStable{inner: bolt}
	}
	st.Stable = st.stable
	if st.Log, err = raft.NewLogCache(cfg.CacheSize, log); err != nil {
		return nil, fmt.Errorf("raftlog: %w", err)
	}
	if cfg.Logger != nil {
		st.Snapshots, err = raft.NewFileSnapshotStoreWithLogger(raftDir, cfg.SnapshotRetain, cfg.Logger)
	} else {
		out := cfg.LogOutput
		if out == nil {
			out = io.Discard
		}
		st.Snapshots, err = raft.NewFileSnapshotStore(raftDir, cfg.SnapshotRetain, out)
	}
	if err != nil {
		return nil, fmt.Errorf("raftlog: snapshot store: %w", err)
	}
	return st, nil
}

// hclogOr is the logger for the log engine: cfg.Logger, or one writing to
// cfg.LogOutput (discarded when nil).
func hclogOr(cfg Config) hclog.Logger {
	if cfg.Logger != nil {
		return cfg.Logger
	}
	if cfg.LogOutput == nil {
		return hclog.NewNullLogger()
	}
	return hclog.New(&hclog.LoggerOptions{Name: "raft-wal", Output: cfg.LogOutput})
}

// lockDir takes an exclusive, non-blocking flock on dir/LOCK, held until
// Close: a second process (or a second Open in this one) gets ErrLocked
// instead of two writers corrupting the log.
func lockDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, "LOCK"), os.O_CREATE|os.O_RDWR, 0o640)
	if err != nil {
		return nil, fmt.Errorf("raftlog: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s", ErrLocked, filepath.Dir(dir))
		}
		return nil, fmt.Errorf("raftlog: lock %s: %w", dir, err)
	}
	return f, nil
}

// checkIdentity checks dir's node.json against id and engine, or writes
// it for a new directory, and returns the engine to use: engine, or if it
// is empty the one dir uses (bolt if it was created before engines were
// recorded), EngineWAL for a new directory.
func checkIdentity(dir, id, engine string) (string, error) {
	path := filepath.Join(dir, "node.json")
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		var got identity
		if err := json.Unmarshal(b, &got); err != nil {
			return "", fmt.Errorf("raftlog: %s: %w", path, err)
		}
		if id != "" && got.ID != id {
			return "", fmt.Errorf("%w: %s holds node %q, not %q", ErrIdentityMismatch, dir, got.ID, id)
		}
		switch got.Engine {
		case "":
			got.Engine = EngineBolt
		case EngineBolt, EngineWAL:
		default:
			return "", fmt.Errorf("raftlog: %s: unknown log engine %q", path, got.Engine)
		}
		if engine != "" && got.Engine != engine {
			return "", fmt.Errorf("%w: %s holds a %q log, not %q", ErrEngineMismatch, dir, got.Engine, engine)
		}
		return got.Engine, nil
	case errors.Is(err, os.ErrNotExist):
		// No node.json: a new directory, or a log written before node.json
		// recorded the engine. The files on disk tell which.
		onDisk, err := engineOnDisk(dir)
		if err != nil {
			return "", err
		}
		switch {
		case engine == "" && onDisk == "":
			engine = EngineWAL
		case engine == "":
			engine = onDisk
		case onDisk != "" && onDisk != engine:
			return "", fmt.Errorf("%w: %s holds a %q log, not %q", ErrEngineMismatch, dir, onDisk, engine)
		}
		b, _ := json.Marshal(identity{ID: id, Engine: engine})
		tmp := path + ".tmp"
		if err := os.WriteFile(tmp, b, 0o640); err != nil {
			return "", fmt.Errorf("raftlog: %w", err)
		}
		if err := os.Rename(tmp, path); err != nil {
			return "", fmt.Errorf("raftlog: %w", err)
		}
		return engine, nil
	default:
		return "", fmt.Errorf("raftlog: %w", err)
	}
}

// engineOnDisk names the engine whose files are in dir's raft folder, or
// "" if there are none.
func engineOnDisk(dir string) (string, error) {
	for _, c := range []struct{ file, engine string }{
		{filepath.Join(dir, "raft", "raft.db"), EngineBolt},
		{filepath.Join(dir, "raft", "wal"), EngineWAL},
	} {
		_, err := os.Stat(c.file)
		switch {
		case err == nil:
			return c.engine, nil
		case !errors.Is(err, os.ErrNotExist):
			return "", fmt.Errorf("raftlog: %w", err)
		}
	}
	return "", nil
}

// HasState reports whether the directory already holds Raft state (a
// bootstrapped or joined node), in which case bootstrap must be skipped.
func (s *Store) HasState() (bool, error) {
	return raft.HasExistingState(s.Log, s.Stable, s.Snapshots)
}

// Dir is the data directory.
func (s *Store) Dir() string { return s.dir }

// Engine is the log engine in use (EngineBolt or EngineWAL).
func (s *Store) Engine() string { return s.kind }

// Close closes the log engine and releases the directory. Call it after
// raft has shut down.
func (s *Store) Close() error {
	s.stable.close()
	err := s.engine.Close()
	s.lock.Close()
	return err
}

// closableStable guards the stable store against raft's heartbeat fast
// path: a heartbeat already being handled when the node shuts down may try
// to record a term after the database is closed, and raft panics on any
// stable-store write error. After close, writes are dropped (the node is
// gone and its transport no longer answers, so nobody learns of them);
// reads fail.
type closableStable struct {
	mu     sync.RWMutex
	inner  raft.StableStore
	closed bool
}

var errClosed = errors.New("raftlog: store closed")

func (c *closableStable) close() {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
}

func (c *closableStable) Set(key, val []byte) error {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.closed {
		return nil
	}
	return c.inner.Set(key, val)
}

func (c *closableStable) Get(key []byte) ([]byte, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.closed {
		return nil, errClosed
	}
	return c.inner.Get(key)
}

func (c *closableStable) SetUint64(key []byte, val uint64) error {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.closed {
		return nil
	}
	return c.inner.SetUint64(key, val)
}

func (c *closableStable) GetUint64(key []byte) (uint64, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.closed {
		return 0, errClosed
	}
	return c.inner.GetUint64(key)
}
