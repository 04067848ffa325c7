package boltdb

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/statenode/statenode/backends"
)

var _ backends.Backend = (*Backend)(nil)

// Sentinel errors of this package.
var (
	// ErrCorrupt is returned when a stored record cannot be decoded.
	ErrCorrupt = errors.New("boltdb: corrupt record")
)

var (
	dataBucket  = []byte("data")
	fenceBucket = []byte("fences")
)

// Config configures a bbolt store.
type Config struct {
	// Path is the database file; it is created if missing.
	Path string
	// OpenTimeout bounds the wait for the file lock another process holds
	// (default 1 s: long enough for a restarting process to let go, short
	// enough to fail fast when two nodes share a file by mistake).
	OpenTimeout time.Duration
	// NoSync skips fsync after each transaction: faster, loses the last
	// writes on power failure. Default false.
	NoSync bool
}

// DefaultConfig returns a Config for the file at path.
func DefaultConfig(path string) Config {
	return Config{Path: path, OpenTimeout: time.Second}
}

// Backend is a backends.Backend in one bbolt file. Every call, batches
// included, is one transaction, so batches are atomic and durable (unless
// NoSync). Expired keys are skipped by reads and dropped when written.
type Backend struct {
	db  *bolt.DB
	now func() time.Time

	mu     sync.RWMutex // guards closed against Close racing a call
	closed bool
}

// Open opens (creating if needed) the store described by cfg.
func Open(cfg Config) (*Backend, error) {
	if cfg.Path == "" {
		return nil, errors.New("boltdb: empty Path")
	}
	if cfg.OpenTimeout <= 0 {
		cfg.OpenTimeout = time.Second
	}
	db, err := bolt.Open(cfg.Path, 0o600, &bolt.Options{Timeout: cfg.OpenTimeout, NoSync: cfg.NoSync})
	if err != nil {
		return nil, fmt.Errorf("boltdb: open %s: %w", cfg.Path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		if _, err := tx.CreateBucketIfNotExists(dataBucket); err != nil {
			return err
		}
		_, err := tx.CreateBucketIfNotExists(fenceBucket)
		return err
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("boltdb: create buckets: %w", err)
	}
	return &Backend{db: db, now: time.Now}, nil
}

// record: uvarint version | varint expires (unix ns, 0 = never) | value.
func encode(version uint64, expires time.Time, value []byte) []byte {
	buf := make([]byte, 0, len(value)+2*binary.MaxVarintLen64)
	buf = binary.AppendUvarint(buf, version)
	var exp int64
	if !expires.IsZero() {
		exp = expires.UnixNano()
	}
	buf = binary.AppendVarint(buf, exp)
	return append(buf, value...)
}

func decode(rec []byte) (backends.VersionedValue, error) {
	ver, n := binary.Uvarint(rec)
	if n <= 0 || ver == 0 {
		return backends.VersionedValue{}, ErrCorrupt
	}
	exp, m := binary.Varint(rec[n:])
	if m <= 0 {
		return backends.VersionedValue{}, ErrCorrupt
	}
	v := backends.VersionedValue{Value: bytes.Clone(rec[n+m:]), Version: ver}
	if v.Value == nil {
		v.Value = []byte{}
	}
	if exp != 0 {
		v.ExpiresAt = time.Unix(0, exp)
	}
	return v, nil
}

func live(v backends.VersionedValue, now time.Time) bool {
	return v.ExpiresAt.IsZero() || now.Before(v.ExpiresAt)
}

func (b *Backend) begin(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b.mu.RLock()
	if b.closed {
		b.mu.RUnlock()
		return backends.ErrClosed
	}
	return nil
}

func (b *Backend) view(ctx context.Context, fn func(tx *bolt.Tx) error) error {
	if err := b.begin(ctx); err != nil {
		return err
	}
	defer b.mu.RUnlock()
	return b.db.View(fn)
}

func (b *Backend) update(ctx context.Context, fence *backends.Fence, fn func(tx *bolt.Tx) error) error {
	if err := b.begin(ctx); err != nil {
		return err
	}
	defer b.mu.RUnlock()
	return b.db.Update(func(tx *bolt.Tx) error {
		if fence != nil {
			fb := tx.Bucket(fenceBucket)
			var seen uint64
			if raw := fb.Get([]byte(fence.Lock)); len(raw) == 8 {
				seen = binary.BigEndian.Uint64(raw)
			}
			if seen > fence.Token {
				return &backends.FencedError{Lock: fence.Lock, Token: fence.Token, Seen: seen}
			}
			if err := fn(tx); err != nil {
				return err
			}
			if seen < fence.Token {
				return fb.Put([]byte(fence.Lock), binary.BigEndian.AppendUint64(nil, fence.Token))
			}
			return nil
		}
		return fn(tx)
	})
}

// current returns the live value of key, or the zero value.
func current(bk *bolt.Bucket, key string, now time.Time) (backends.VersionedValue, error) {
	rec := bk.Get([]byte(key))
	if rec == nil {
		return backends.VersionedValue{}, nil
	}
	v, err := decode(rec)
	if err != nil {
		return v, fmt.Errorf("%w: key %q", err, key)
	}
	if !live(v, now) {
		return backends.VersionedValue{}, nil
	}
	return v, nil
}

func put(bk *bolt.Bucket, key string, value []byte, ttl time.Duration, now time.Time) (uint64, error) {
	cur, err := current(bk, key, now)
	if err != nil {
		return 0, err
	}
	var exp time.Time
	if ttl > 0 {
		exp = now.Add(ttl)
	}
	ver := cur.Version + 1
	return ver, bk.Put([]byte(key), encode(ver, exp, value))
}

// Get implements backends.Backend.
func (b *Backend) Get(ctx context.Context, key string) (backends.VersionedValue, error) {
	if err := backends.ValidateKey(key); err != nil {
		return backends.VersionedValue{}, err
	}
	var v backends.VersionedValue
	err := b.view(ctx, func(tx *bolt.Tx) error {
		var err error
		v, err = current(tx.Bucket(dataBucket), key, b.now())
		return err
	})
	if err == nil && !v.Found() {
		err = fmt.Errorf("boltdb: get %q: %w", key, backends.ErrNotFound)
	}
	return v, err
}

// Put implements backends.Backend.
func (b *Backend) Put(ctx context.Context, key string, value []byte, opts backends.WriteOptions) (uint64, error) {
	if err := backends.ValidatePut(key, value, opts); err != nil {
		return 0, err
	}
	var ver uint64
	err := b.update(ctx, opts.Fence, func(tx *bolt.Tx) error {
		var err error
		ver, err = put(tx.Bucket(dataBucket), key, value, opts.TTL, b.now())
		return err
	})
	return ver, err
}

// Delete implements backends.Backend.
func (b *Backend) Delete(ctx context.Context, key string, opts backends.WriteOptions) error {
	return b.DeleteMany(ctx, []string{key}, opts)
}

// List implements backends.Backend.
func (b *Backend) List(ctx context.Context, prefix string, opts backends.ListOptions) (backends.ListPage, error) {
	if err := backends.ValidatePrefix(prefix); err != nil {
		return backends.ListPage{}, err
	}
	var page backends.ListPage
	limit := opts.PageLimit()
	err := b.view(ctx, func(tx *bolt.Tx) error {
		now := b.now()
		c := tx.Bucket(dataBucket).Cursor()
		start := prefix
		if opts.After >= start {
			start = opts.After + "\x00"
		}
		for k, rec := c.Seek([]byte(start)); k != nil && strings.HasPrefix(string(k), prefix); k, rec = c.Next() {
			v, err := decode(rec)
			if err != nil {
				return fmt.Errorf("%w: key %q", err, k)
			}
			if !live(v, now) {
				continue
			}
			if len(page.Entries) == limit {
				page.Next = page.Entries[limit-1].Key
				break
			}
			if opts.KeysOnly {
				v.Value = nil
			}
			page.Entries = append(page.Entries, backends.Entry{Key: string(k), VersionedValue: v})
		}
		return nil
	})
	return page, err
}

// CompareAndSwap implements backends.Backend.
func (b *Backend) CompareAndSwap(ctx context.Context, key string, expected uint64, value []byte, opts backends.WriteOptions) (uint64, error) {
	if err := backends.ValidatePut(key, value, opts); err != nil {
		return 0, err
	}
	var ver uint64
	err := b.update(ctx, opts.Fence, func(tx *bolt.Tx) error {
		bk := tx.Bucket(dataBucket)
		now := b.now()
		cur, err := current(bk, key, now)
		if err != nil {
			return err
		}
		if cur.Version != expected {
			return fmt.Errorf("boltdb: cas %q: have version %d, expected %d: %w", key, cur.Version, expected, backends.ErrVersionMismatch)
		}
		ver, err = put(bk, key, value, opts.TTL, now)
		return err
	})
	return ver, err
}

// GetMany implements backends.Backend.
func (b *Backend) GetMany(ctx context.Context, keys []string) ([]backends.VersionedValue, error) {
	if err := backends.ValidateKeys(keys); err != nil {
		return nil, err
	}
	out := make([]backends.VersionedValue, len(keys))
	err := b.view(ctx, func(tx *bolt.Tx) error {
		bk, now := tx.Bucket(dataBucket), b.now()
		for i, k := range keys {
			v, err := current(bk, k, now)
			if err != nil {
				return err
			}
			out[i] = v
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// PutMany implements backends.Backend. The batch is one transaction.
func (b *Backend) PutMany(ctx context.Context, items []backends.Item, opts backends.WriteOptions) ([]uint64, error) {
	if err := backends.ValidateItems(items, opts); err != nil {
		return nil, err
	}
	out := make([]uint64, len(items))
	err := b.update(ctx, opts.Fence, func(tx *bolt.Tx) error {
		bk, now := tx.Bucket(dataBucket), b.now()
		for i, it := range items {
			var err error
			if out[i], err = put(bk, it.Key, it.Value, opts.TTL, now); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// DeleteMany implements backends.Backend. The batch is one transaction.
func (b *Backend) DeleteMany(ctx context.Context, keys []string, opts backends.WriteOptions) error {
	if err := backends.ValidateKeys(keys); err != nil {
		return err
	}
	if err := backends.ValidateOptions(opts); err != nil {
		return err
	}
	return b.update(ctx, opts.Fence, func(tx *bolt.Tx) error {
		bk := tx.Bucket(dataBucket)
		for _, k := range keys {
			if err := bk.Delete([]byte(k)); err != nil {
				return err
			}
		}
		return nil
	})
}

// Stats implements backends.Backend. Keys includes expired keys not yet
// overwritten.
func (b *Backend) Stats(ctx context.Context) (backends.Stats, error) {
	st := backends.Stats{Backend: "boltdb", Extra: map[string]float64{}}
	err := b.view(ctx, func(tx *bolt.Tx) error {
		st.Keys = int64(tx.Bucket(dataBucket).Stats().KeyN)
		st.Extra["file_bytes"] = float64(tx.Size())
		return nil
	})
	return st, err
}

// Close implements backends.Backend.
func (b *Backend) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil
	}
	b.closed = true
	return b.db.Close()
}
