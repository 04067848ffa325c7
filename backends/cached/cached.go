package cached

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/statenode/statenode/backends"
)

var _ backends.Backend = (*Backend)(nil)

// Sentinel errors of this package.
var (
	// ErrConfig is returned by New for an invalid Config.
	ErrConfig = errors.New("cached: invalid config")
)

// Invalidator carries invalidations between nodes that cache the same
// store (the redis package has one on Redis pub/sub).
type Invalidator interface {
	// Publish tells the other nodes that keys changed. It may block for
	// one round trip.
	Publish(ctx context.Context, keys []string) error
	// Subscribe calls fn, from one goroutine of the Invalidator, with the
	// keys of each invalidation published by another node, and with nil
	// when invalidations may have been lost (reconnect): drop everything.
	// fn must not block. The returned stop function ends the
	// subscription and waits for fn to return.
	Subscribe(fn func(keys []string)) (stop func())
}

// Config configures the cache tiers.
type Config struct {
	// Store is the source of truth (for example postgres). Required.
	Store backends.Backend
	// Remote is an optional shared cache tier (for example a redis
	// Backend with its own Prefix). Entries are stored there with their
	// Store version and expire after RemoteTTL.
	Remote backends.Backend
	// LocalSize is the in-process LRU capacity in entries (default
	// 10000).
	LocalSize int
	// LocalTTL bounds how long an entry is served from process memory
	// (default 30 s): the staleness bound if an invalidation is lost.
	LocalTTL time.Duration
	// RemoteTTL bounds how long an entry lives in Remote (default 5 min).
	RemoteTTL time.Duration
	// Invalidator, when set, propagates writes to other nodes' LRUs.
	Invalidator Invalidator
	// Name labels metrics (default "cached").
	Name string
	// Registerer, when set, receives statenode_backend_cache_requests_total
	// {backend, tier=local|remote|store}.
	Registerer prometheus.Registerer
}

// Backend is a 3-tier read cache: an in-process LRU with TTL, then an
// optional shared Remote tier, then the Store.
//
// Reads go down the tiers and fill the upper ones. Writes go to the Store;
// on success they are written through to the LRU (with the Store's new
// version), deleted from Remote, and published to the other nodes, whose
// LRUs drop the keys. CompareAndSwap and versions are always the Store's.
// Within one node, reads after a write see it; across nodes, a read sees a
// write once its invalidation arrives (bounded by LocalTTL and RemoteTTL if
// one is lost). List is not cached.
type Backend struct {
	cfg    Config
	local  *lru
	now    func() time.Time
	origin string

	hits      [3]atomic.Int64 // local, remote, store
	requests  *prometheus.CounterVec
	stopSub   func()
	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error
}

const (
	tierLocal = iota
	tierRemote
	tierStore
)

var tierNames = [3]string{"local", "remote", "store"}

// New builds the cache. Close closes Store and Remote.
func New(cfg Config) (*Backend, error) {
	if cfg.Store == nil {
		return nil, fmt.Errorf("%w: no Store", ErrConfig)
	}
	if cfg.LocalSize <= 0 {
		cfg.LocalSize = 10000
	}
	if cfg.LocalTTL <= 0 {
		cfg.LocalTTL = 30 * time.Second
	}
	if cfg.RemoteTTL <= 0 {
		cfg.RemoteTTL = 5 * time.Minute
	}
	if cfg.Name == "" {
		cfg.Name = "cached"
	}
	b := &Backend{cfg: cfg, local: newLRU(cfg.LocalSize), now: time.Now}
	if cfg.Registerer != nil {
		cv := prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "statenode", Subsystem: "backend", Name: "cache_requests_total",
			Help: "Cached reads by the tier that answered them (local, remote, store).",
		}, []string{"backend", "tier"})
		if err := cfg.Registerer.Register(cv); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				return nil, fmt.Errorf("cached: %w", err)
			}
			cv = are.ExistingCollector.(*prometheus.CounterVec)
		}
		b.requests = cv
	}
	if cfg.Invalidator != nil {
		b.stopSub = cfg.Invalidator.Subscribe(func(keys []string) {
			if keys == nil {
				b.local.clear()
				return
			}
			b.local.remove(keys...)
		})
	}
	return b, nil
}

func (b *Backend) count(tier int, n int) {
	b.hits[tier].Add(int64(n))
	if b.requests != nil && n > 0 {
		b.requests.WithLabelValues(b.cfg.Name, tierNames[tier]).Add(float64(n))
	}
}

func (b *Backend) check(ctx context.Context) error {
	if b.closed.Load() {
		return backends.ErrClosed
	}
	return ctx.Err()
}

// localExpiry is when a cached copy of v must be dropped.
func (b *Backend) localExpiry(v backends.VersionedValue, now time.Time) time.Time {
	exp := now.Add(b.cfg.LocalTTL)
	if !v.ExpiresAt.IsZero() && v.ExpiresAt.Before(exp) {
		return v.ExpiresAt
	}
	return exp
}

// Remote entries: uvarint version | varint expires (unix ns, 0 never) | value.
func encodeRemote(v backends.VersionedValue) []byte {
	buf := binary.AppendUvarint(make([]byte, 0, len(v.Value)+20), v.Version)
	var exp int64
	if !v.ExpiresAt.IsZero() {
		exp = v.ExpiresAt.UnixNano()
	}
	buf = binary.AppendVarint(buf, exp)
	return append(buf, v.Value...)
}

func decodeRemote(raw []byte) (backends.VersionedValue, bool) {
	ver, n := binary.Uvarint(raw)
	if n <= 0 || ver == 0 {
		return backends.VersionedValue{}, false
	}
	exp, m := binary.Varint(raw[n:])
	if m <= 0 {
		return backends.VersionedValue{}, false
	}
	v := backends.VersionedValue{Value: append([]byte{}, raw[n+m:]...), Version: ver}
	if exp != 0 {
		v.ExpiresAt = time.Unix(0, exp)
	}
	return v, true
}

func clone(v backends.VersionedValue) backends.VersionedValue {
	v.Value = append([]byte{}, v.Value...)
	return v
}

// fillRemote caches vs in Remote; failures only cost a later miss.
func (b *Backend) fillRemote(ctx context.Context, keys []string, vs []backends.VersionedValue) {
	if b.cfg.Remote == nil || len(keys) == 0 {
		return
	}
	now := b.now()
	for i, k := range keys {
		ttl := b.cfg.RemoteTTL
		if !vs[i].ExpiresAt.IsZero() {
			ttl = min(ttl, vs[i].ExpiresAt.Sub(now))
		}
		if ttl <= 0 {
			continue
		}
		_, _ = b.cfg.Remote.Put(ctx, k, encodeRemote(vs[i]), backends.WriteOptions{TTL: ttl})
	}
}

// Get implements backends.Backend.
func (b *Backend) Get(ctx context.Context, key string) (backends.VersionedValue, error) {
	if err := backends.ValidateKey(key); err != nil {
		return backends.VersionedValue{}, err
	}
	vs, err := b.GetMany(ctx, []string{key})
	if err != nil {
		return backends.VersionedValue{}, err
	}
	if !vs[0].Found() {
		return backends.VersionedValue{}, fmt.Errorf("cached: get %q: %w", key, backends.ErrNotFound)
	}
	return vs[0], nil
}

// GetMany implements backends.Backend: local hits, then one GetMany on
// Remote for the misses, then one on Store for what is left.
func (b *Backend) GetMany(ctx context.Context, keys []string) ([]backends.VersionedValue, error) {
	if err := backends.ValidateKeys(keys); err != nil {
		return nil, err
	}
	if err := b.check(ctx); err != nil {
		return nil, err
	}
	out := make([]backends.VersionedValue, len(keys))
	now := b.now()
	var miss []int
	for i, k := range keys {
		if v, ok := b.local.get(k, now); ok {
			out[i] = clone(v)
		} else {
			miss = append(miss, i)
		}
	}
	b.count(tierLocal, len(keys)-len(miss))
	if len(miss) > 0 && b.cfg.Remote != nil {
		mk := make([]string, len(miss))
		for j, i := range miss {
			mk[j] = keys[i]
		}
		if rv, err := b.cfg.Remote.GetMany(ctx, mk); err == nil {
			var still []int
			for j, i := range miss {
				v, ok := decodeRemote(rv[j].Value)
				if rv[j].Found() && ok && (v.ExpiresAt.IsZero() || now.Before(v.ExpiresAt)) {
					out[i] = v
					b.local.set(keys[i], clone(v), b.localExpiry(v, now), false)
				} else {
					still = append(still, i)
				}
			}
			b.count(tierRemote, len(miss)-len(still))
			miss = still
		} else if ctx.Err() != nil {
			return nil, fmt.Errorf("cached: %w", ctx.Err())
		}
	}
	if len(miss) == 0 {
		return out, nil
	}
	mk := make([]string, len(miss))
	for j, i := range miss {
		mk[j] = keys[i]
	}
	sv, err := b.cfg.Store.GetMany(ctx, mk)
	if err != nil {
		return nil, err
	}
	b.count(tierStore, len(miss))
	var fk []string
	var fv []backends.VersionedValue
	for j, i := range miss {
		if !sv[j].Found() {
			continue
		}
		out[i] = sv[j]
		b.local.set(keys[i], clone(sv[j]), b.localExpiry(sv[j], now), false)
		fk, fv = append(fk, keys[i]), append(fv, sv[j])
	}
	b.fillRemote(ctx, fk, fv)
	return out, nil
}

// written records successful writes: through to the LRU, out of Remote,
// and out of the other nodes' LRUs.
func (b *Backend) written(ctx context.Context, keys []string, values [][]byte, versions []uint64, ttl time.Duration) {
	now := b.now()
	for i, k := range keys {
		if values == nil {
			b.local.remove(k)
			continue
		}
		v := backends.VersionedValue{Value: append([]byte{}, values[i]...), Version: versions[i]}
		if ttl > 0 {
			v.ExpiresAt = now.Add(ttl)
		}
		b.local.set(k, v, b.localExpiry(v, now), true)
	}
	b.invalidateShared(ctx, keys)
}

func (b *Backend) invalidateShared(ctx context.Context, keys []string) {
	// Not ctx: a write the store applied must invalidate even if the
	// caller gave up; bounded so a dead Remote does not hang writes.
	ictx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	if b.cfg.Remote != nil {
		_ = b.cfg.Remote.DeleteMany(ictx, keys, backends.WriteOptions{})
	}
	if b.cfg.Invalidator != nil {
		_ = b.cfg.Invalidator.Publish(ictx, keys)
	}
}

// failed drops keys whose cached copy may be wrong (a CAS lost on version).
func (b *Backend) failed(ctx context.Context, err error, keys ...string) {
	if errors.Is(err, backends.ErrVersionMismatch) || errors.Is(err, backends.ErrUnavailable) {
		b.local.remove(keys...)
		if b.cfg.Remote != nil {
			ictx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
			defer cancel()
			_ = b.cfg.Remote.DeleteMany(ictx, keys, backends.WriteOptions{})
		}
	}
}

// Put implements backends.Backend.
func (b *Backend) Put(ctx context.Context, key string, value []byte, opts backends.WriteOptions) (uint64, error) {
	if err := b.check(ctx); err != nil {
		return 0, err
	}
	v, err := b.cfg.Store.Put(ctx, key, value, opts)
	if err != nil {
		b.failed(ctx, err, key)
		return 0, err
	}
	b.written(ctx, []string{key}, [][]byte{value}, []uint64{v}, opts.TTL)
	return v, nil
}

// CompareAndSwap implements backends.Backend.
func (b *Backend) CompareAndSwap(ctx context.Context, key string, expected uint64, value []byte, opts backends.WriteOptions) (uint64, error) {
	if err := b.check(ctx); err != nil {
		return 0, err
	}
	v, err := b.cfg.Store.CompareAndSwap(ctx, key, expected, value, opts)
	if err != nil {
		b.failed(ctx, err, key)
		return 0, err
	}
	b.written(ctx, []string{key}, [][]byte{value}, []uint64{v}, opts.TTL)
	return v, nil
}

// PutMany implements backends.Backend.
func (b *Backend) PutMany(ctx context.Context, items []backends.Item, opts backends.WriteOptions) ([]uint64, error) {
	if err := b.check(ctx); err != nil {
		return nil, err
	}
	vers, err := b.cfg.Store.PutMany(ctx, items, opts)
	keys := make([]string, len(items))
	values := make([][]byte, len(items))
	for i, it := range items {
		keys[i], values[i] = it.Key, it.Value
	}
	if err != nil {
		b.failed(ctx, err, keys...)
		return nil, err
	}
	b.written(ctx, keys, values, vers, opts.TTL)
	return vers, nil
}

// Delete implements backends.Backend.
func (b *Backend) Delete(ctx context.Context, key string, opts backends.WriteOptions) error {
	return b.DeleteMany(ctx, []string{key}, opts)
}

// DeleteMany implements backends.Backend.
func (b *Backend) DeleteMany(ctx context.Context, keys []string, opts backends.WriteOptions) error {
	if err := b.check(ctx); err != nil {
		return err
	}
	if err := b.cfg.Store.DeleteMany(ctx, keys, opts); err != nil {
		b.failed(ctx, err, keys...)
		return err
	}
	if len(keys) > 0 {
		b.written(ctx, keys, nil, nil, 0)
	}
	return nil
}

// List implements backends.Backend; it reads the Store.
func (b *Backend) List(ctx context.Context, prefix string, opts backends.ListOptions) (backends.ListPage, error) {
	if err := b.check(ctx); err != nil {
		return backends.ListPage{}, err
	}
	return b.cfg.Store.List(ctx, prefix, opts)
}

// HitRate returns the fraction of reads answered by the local and remote
// tiers since New.
func (b *Backend) HitRate() float64 {
	l, r, s := b.hits[0].Load(), b.hits[1].Load(), b.hits[2].Load()
	if l+r+s == 0 {
		return 0
	}
	return float64(l+r) / float64(l+r+s)
}

// Stats implements backends.Backend: the Store's stats plus cache_local_hits,
// cache_remote_hits, cache_misses and cache_local_entries.
func (b *Backend) Stats(ctx context.Context) (backends.Stats, error) {
	if err := b.check(ctx); err != nil {
		return backends.Stats{}, err
	}
	st, err := b.cfg.Store.Stats(ctx)
	st.Backend = "cached(" + st.Backend + ")"
	if st.Extra == nil {
		st.Extra = map[string]float64{}
	}
	st.Extra["cache_local_hits"] = float64(b.hits[0].Load())
	st.Extra["cache_remote_hits"] = float64(b.hits[1].Load())
	st.Extra["cache_misses"] = float64(b.hits[2].Load())
	st.Extra["cache_local_entries"] = float64(b.local.len())
	return st, err
}

// Close implements backends.Backend: it stops the subscription and closes
// Store and Remote.
func (b *Backend) Close() error {
	b.closeOnce.Do(func() {
		b.closed.Store(true)
		if b.stopSub != nil {
			b.stopSub()
		}
		b.local.clear()
		b.closeErr = b.cfg.Store.Close()
		if b.cfg.Remote != nil {
			if err := b.cfg.Remote.Close(); b.closeErr == nil {
				b.closeErr = err
			}
		}
	})
	return b.closeErr
}
