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
	"go.etcd.io/bbolt"
)

// Errors returned by Open.
var (
	// ErrIdentityMismatch: the data directory belongs to another node ID.
	ErrIdentityMismatch = errors.New("raftlog: data directory belongs to another node")
	// ErrLocked: another process holds the data directory open.
	ErrLocked = errors.New("raftlog: data directory is in use by another process")
)

// Config configures Open.
type Config struct {
	// Dir is the data directory; created if missing.
	Dir string
	// NodeID is recorded on first use and checked on every later Open, so a
	// directory cannot silently be reused by a different member.
	NodeID string
	// CacheSize is how many recent log entries are kept in memory in front
	// of bbolt; followers and the leader's replication read them from there.
	// Default 1024.
	CacheSize int
	// SnapshotRetain is how many snapshots are kept. Default 2.
	SnapshotRetain int
	// NoSync skips fsync on log writes. Unsafe: an acknowledged write can be
	// lost on power failure. For benchmarks of the rest of the stack only.
	NoSync bool
	// LogOutput receives the snapshot store's log lines; nil = io.Discard.
	LogOutput io.Writer
	// Logger, if set, is used by the snapshot store instead of LogOutput.
	Logger hclog.Logger
}

// Store is an opened data directory.
type Store struct {
	// Log is the Raft log store (cached bbolt).
	Log raft.LogStore
	// Stable is the Raft stable store (bbolt).
	Stable raft.StableStore
	// Snapshots is the file snapshot store.
	Snapshots raft.SnapshotStore

	bolt   *raftboltdb.BoltStore
	stable *closableStable
	dir    string
}

type identity struct {
	ID string `json:"id"`
}

// Open opens (or creates) the data directory.
func Open(cfg Config) (*Store, error) {
	if cfg.Dir == "" {
		return nil, errors.New("raftlog: Dir is required")
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
	if err := checkIdentity(cfg.Dir, cfg.NodeID); err != nil {
		return nil, err
	}
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
	cache, err := raft.NewLogCache(cfg.CacheSize, bolt)
	if err != nil {
		bolt.Close()
		return nil, fmt.Errorf("raftlog: %w", err)
	}
	var snaps raft.SnapshotStore
	if cfg.Logger != nil {
		snaps, err = raft.NewFileSnapshotStoreWithLogger(raftDir, cfg.SnapshotRetain, cfg.Logger)
	} else {
		out := cfg.LogOutput
		if out == nil {
			out = io.Discard
		}
		snaps, err = raft.NewFileSnapshotStore(raftDir, cfg.SnapshotRetain, out)
	}
	if err != nil {
		bolt.Close()
		return nil, fmt.Errorf("raftlog: snapshot store: %w", err)
	}
	st := &Store{Log: cache, Snapshots: snaps, bolt: bolt, dir: cfg.Dir}
	st.stable = &closableStable{inner: bolt}
	st.Stable = st.stable
	return st, nil
}

func checkIdentity(dir, id string) error {
	path := filepath.Join(dir, "node.json")
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		var got identity
		if err := json.Unmarshal(b, &got); err != nil {
			return fmt.Errorf("raftlog: %s: %w", path, err)
		}
		if id != "" && got.ID != id {
			return fmt.Errorf("%w: %s holds node %q, not %q", ErrIdentityMismatch, dir, got.ID, id)
		}
		return nil
	case errors.Is(err, os.ErrNotExist):
		b, _ := json.Marshal(identity{ID: id})
		tmp := path + ".tmp"
		if err := os.WriteFile(tmp, b, 0o640); err != nil {
			return fmt.Errorf("raftlog: %w", err)
		}
		if err := os.Rename(tmp, path); err != nil {
			return fmt.Errorf("raftlog: %w", err)
		}
		return nil
	default:
		return fmt.Errorf("raftlog: %w", err)
	}
}

// HasState reports whether the directory already holds Raft state (a
// bootstrapped or joined node), in which case bootstrap must be skipped.
func (s *Store) HasState() (bool, error) {
	return raft.HasExistingState(s.Log, s.Stable, s.Snapshots)
}

// Dir is the data directory.
func (s *Store) Dir() string { return s.dir }

// Close closes the bbolt database. Call it after raft has shut down.
func (s *Store) Close() error {
	s.stable.close()
	return s.bolt.Close()
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
