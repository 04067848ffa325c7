package memory

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/google/btree"

	"github.com/statenode/statenode/backends"
)

var _ backends.Backend = (*Backend)(nil)

type item struct {
	key     string
	value   []byte
	version uint64
	expires time.Time // zero: never
}

func (it *item) live(now time.Time) bool { return it.expires.IsZero() || now.Before(it.expires) }

// Backend is an in-process store: a btree of keys under one mutex. Every
// batch is atomic. Expired keys are dropped lazily when touched.
type Backend struct {
	now func() time.Time

	mu     sync.Mutex
	tree   *btree.BTreeG[*item]
	fences map[string]uint64
	closed bool
}

// New returns an empty store.
func New() *Backend {
	return &Backend{
		now:    time.Now,
		tree:   btree.NewG(16, func(a, b *item) bool { return a.key < b.key }),
		fences: make(map[string]uint64),
	}
}

func (b *Backend) lock(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return backends.ErrClosed
	}
	return nil
}

// getLocked returns the live item for key, dropping it if it expired.
func (b *Backend) getLocked(key string, now time.Time) *item {
	it, ok := b.tree.Get(&item{key: key})
	if !ok {
		return nil
	}
	if !it.live(now) {
		b.tree.Delete(it)
		return nil
	}
	return it
}

func (b *Backend) checkFenceLocked(f *backends.Fence) error {
	if f == nil {
		return nil
	}
	if seen := b.fences[f.Lock]; seen > f.Token {
		return &backends.FencedError{Lock: f.Lock, Token: f.Token, Seen: seen}
	}
	return nil
}

func (b *Backend) raiseFenceLocked(f *backends.Fence) {
	if f != nil && b.fences[f.Lock] < f.Token {
		b.fences[f.Lock] = f.Token
	}
}

func (b *Backend) putLocked(key string, value []byte, ttl time.Duration, now time.Time) uint64 {
	var version uint64 = 1
	if old := b.getLocked(key, now); old != nil {
		version = old.version + 1
	}
	it := &item{key: key, value: bytes.Clone(value), version: version}
	if it.value == nil {
		it.value = []byte{}
	}
	if ttl > 0 {
		it.expires = now.Add(ttl)
	}
	b.tree.ReplaceOrInsert(it)
	return version
}

func vv(it *item) backends.VersionedValue {
	return backends.VersionedValue{Value: bytes.Clone(it.value), Version: it.version, ExpiresAt: it.expires}
}

// Get implements backends.Backend.
func (b *Backend) Get(ctx context.Context, key string) (backends.VersionedValue, error) {
	if err := backends.ValidateKey(key); err != nil {
		return backends.VersionedValue{}, err
	}
	if err := b.lock(ctx); err != nil {
		return backends.VersionedValue{}, err
	}
	defer b.mu.Unlock()
	it := b.getLocked(key, b.now())
	if it == nil {
		return backends.VersionedValue{}, fmt.Errorf("memory: get %q: %w", key, backends.ErrNotFound)
	}
	return vv(it), nil
}

// Put implements backends.Backend.
func (b *Backend) Put(ctx context.Context, key string, value []byte, opts backends.WriteOptions) (uint64, error) {
	if err := backends.ValidatePut(key, value, opts); err != nil {
		return 0, err
	}
	if err := b.lock(ctx); err != nil {
		return 0, err
	}
	defer b.mu.Unlock()
	if err := b.checkFenceLocked(opts.Fence); err != nil {
		return 0, err
	}
	b.raiseFenceLocked(opts.Fence)
	return b.putLocked(key, value, opts.TTL, b.now()), nil
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
	if err := b.lock(ctx); err != nil {
		return backends.ListPage{}, err
	}
	defer b.mu.Unlock()
	now := b.now()
	limit := opts.PageLimit()
	start := prefix
	if opts.After >= start {
		start = opts.After + "\x00"
	}
	var page backends.ListPage
	var expired []*item
	b.tree.AscendGreaterOrEqual(&item{key: start}, func(it *item) bool {
		if !strings.HasPrefix(it.key, prefix) {
			return false
		}
		if !it.live(now) {
			expired = append(expired, it)
			return true
		}
		if len(page.Entries) == limit {
			page.Next = page.Entries[limit-1].Key
			return false
		}
		e := backends.Entry{Key: it.key, VersionedValue: vv(it)}
		if opts.KeysOnly {
			e.Value = nil
		}
		page.Entries = append(page.Entries, e)
		return true
	})
	for _, it := range expired {
		b.tree.Delete(it)
	}
	return page, nil
}

// CompareAndSwap implements backends.Backend.
func (b *Backend) CompareAndSwap(ctx context.Context, key string, expected uint64, value []byte, opts backends.WriteOptions) (uint64, error) {
	if err := backends.ValidatePut(key, value, opts); err != nil {
		return 0, err
	}
	if err := b.lock(ctx); err != nil {
		return 0, err
	}
	defer b.mu.Unlock()
	if err := b.checkFenceLocked(opts.Fence); err != nil {
		return 0, err
	}
	now := b.now()
	var cur uint64
	if it := b.getLocked(key, now); it != nil {
		cur = it.version
	}
	if cur != expected {
		return 0, fmt.Errorf("memory: cas %q: have version %d, expected %d: %w", key, cur, expected, backends.ErrVersionMismatch)
	}
	b.raiseFenceLocked(opts.Fence)
	return b.putLocked(key, value, opts.TTL, now), nil
}

// GetMany implements backends.Backend.
func (b *Backend) GetMany(ctx context.Context, keys []string) ([]backends.VersionedValue, error) {
	if err := backends.ValidateKeys(keys); err != nil {
		return nil, err
	}
	if err := b.lock(ctx); err != nil {
		return nil, err
	}
	defer b.mu.Unlock()
	now := b.now()
	out := make([]backends.VersionedValue, len(keys))
	for i, k := range keys {
		if it := b.getLocked(k, now); it != nil {
			out[i] = vv(it)
		}
	}
	return out, nil
}

// PutMany implements backends.Backend. The batch is atomic.
func (b *Backend) PutMany(ctx context.Context, items []backends.Item, opts backends.WriteOptions) ([]uint64, error) {
	if err := backends.ValidateItems(items, opts); err != nil {
		return nil, err
	}
	if err := b.lock(ctx); err != nil {
		return nil, err
	}
	defer b.mu.Unlock()
	if err := b.checkFenceLocked(opts.Fence); err != nil {
		return nil, err
	}
	b.raiseFenceLocked(opts.Fence)
	now := b.now()
	out := make([]uint64, len(items))
	for i, it := range items {
		out[i] = b.putLocked(it.Key, it.Value, opts.TTL, now)
	}
	return out, nil
}

// DeleteMany implements backends.Backend. The batch is atomic.
func (b *Backend) DeleteMany(ctx context.Context, keys []string, opts backends.WriteOptions) error {
	if err := backends.ValidateKeys(keys); err != nil {
		return err
	}
	if err := backends.ValidateOptions(opts); err != nil {
		return err
	}
	if err := b.lock(ctx); err != nil {
		return err
	}
	defer b.mu.Unlock()
	if err := b.checkFenceLocked(opts.Fence); err != nil {
		return err
	}
	b.raiseFenceLocked(opts.Fence)
	for _, k := range keys {
		b.tree.Delete(&item{key: k})
	}
	return nil
}

// Stats implements backends.Backend. Keys counts expired keys not yet
// dropped.
func (b *Backend) Stats(ctx context.Context) (backends.Stats, error) {
	if err := b.lock(ctx); err != nil {
		return backends.Stats{}, err
	}
	defer b.mu.Unlock()
	return backends.Stats{Backend: "memory", Keys: int64(b.tree.Len())}, nil
}

// Close implements backends.Backend.
func (b *Backend) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	b.tree = btree.NewG(2, func(a, b *item) bool { return a.key < b.key })
	return nil
}
