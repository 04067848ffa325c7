package redis

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/statenode/statenode/backends"
)

var _ backends.Backend = (*Backend)(nil)

// Sentinel errors of this package.
var (
	// ErrConfig is returned by New for an inconsistent Config.
	ErrConfig = errors.New("redis: invalid config")

	// ErrNotAcknowledged is returned by a write when fewer than
	// Config.WaitReplicas replicas acknowledged it within WaitTimeout.
	// The write was applied on the master and may still be lost if the
	// master fails now. It wraps backends.ErrUnavailable.
	ErrNotAcknowledged = fmt.Errorf("redis: write not acknowledged by enough replicas: %w", backends.ErrUnavailable)
)

// ReadMode selects where reads (Get, GetMany, List values) go.
type ReadMode int

const (
	// ReadPrimary sends every read to the master: read-your-writes.
	ReadPrimary ReadMode = iota
	// ReadReplicaOnly sends reads to replicas only (stale by the
	// replication lag; Sentinel and Cluster modes).
	ReadReplicaOnly
	// ReadRoundRobin spreads reads over the master and its replicas.
	ReadRoundRobin
	// ReadLowestLatency sends reads to the node with the lowest measured
	// latency.
	ReadLowestLatency
)

// Config configures a Redis store. Exactly one mode applies: Cluster when
// Cluster is true, Sentinel when MasterName is set, standalone otherwise.
type Config struct {
	// Addrs are the server addresses: the one server (standalone), the
	// sentinels (Sentinel), or seed nodes (Cluster).
	Addrs []string
	// MasterName is the Sentinel master group name; set for Sentinel mode.
	MasterName string
	// Cluster selects Redis Cluster mode.
	Cluster bool
	// Prefix namespaces every key this store writes ("statenode:" by
	// default); give each store, tenant and test its own. In Cluster mode
	// a hash tag in the prefix ("{app}:") puts all keys in one slot, which
	// makes batches atomic and fences global; without one, batches are
	// atomic per key and fences per key (see docs/BACKENDS.md).
	Prefix string
	// DB is the database number (standalone and Sentinel only).
	DB int
	// ReadMode routes reads (default ReadPrimary). Modes other than
	// ReadPrimary need Sentinel or Cluster.
	ReadMode ReadMode
	// WaitReplicas, when > 0, makes every write wait (Redis WAIT) until
	// that many replicas acknowledged it, so that an acknowledged write
	// survives a failover to one of them. Standalone/Sentinel only.
	WaitReplicas int
	// WaitTimeout bounds that wait (default 1 s); on timeout the write
	// returns ErrNotAcknowledged.
	WaitTimeout time.Duration
	// PoolSize is the connection pool size per node (0: go-redis
	// default, 10 per CPU).
	PoolSize int
	// DialTimeout, ReadTimeout and WriteTimeout bound network calls
	// (0: go-redis defaults, 5 s / 3 s / 3 s). Context deadlines apply too.
	DialTimeout, ReadTimeout, WriteTimeout time.Duration
	// MaxRetries is how often go-redis retries a failed command (0: its
	// default 3; -1 disables). Retries help a Sentinel failover.
	MaxRetries int
}

// DefaultConfig returns a standalone Config for addr.
func DefaultConfig(addr string) Config {
	return Config{Addrs: []string{addr}, Prefix: "statenode:", WaitTimeout: time.Second}
}

// Validate checks how the fields relate.
func (c Config) Validate() error {
	switch {
	case len(c.Addrs) == 0:
		return fmt.Errorf("%w: no Addrs", ErrConfig)
	case c.Cluster && c.MasterName != "":
		return fmt.Errorf("%w: Cluster and MasterName are exclusive", ErrConfig)
	case c.Cluster && c.WaitReplicas > 0:
		return fmt.Errorf("%w: WaitReplicas is not supported in Cluster mode", ErrConfig)
	case !c.Cluster && c.MasterName == "" && c.ReadMode != ReadPrimary:
		return fmt.Errorf("%w: replica reads need Sentinel or Cluster mode", ErrConfig)
	case c.Cluster && c.DB != 0:
		return fmt.Errorf("%w: Cluster mode has only DB 0", ErrConfig)
	case c.WaitReplicas < 0 || c.WaitTimeout < 0:
		return fmt.Errorf("%w: negative WaitReplicas or WaitTimeout", ErrConfig)
	}
	return nil
}

// Backend is a backends.Backend on Redis.
//
// Each key is a hash {v: value, ver: version, exp: expiry ms} at
// Prefix+"d:"+key with a native Redis expiry; each fence is a string at
// Prefix+"f:"+lock. Writes run Lua scripts, so version checks and fence
// checks are atomic with the write; batches are one script (standalone and
// Sentinel) or one pipeline (Cluster).
type Backend struct {
	cfg     Config
	client  goredis.UniversalClient
	cluster bool
	prefix  string
	owned   bool // Close closes client

	closed    atomic.Bool
	closeOnce sync.Once
}

// New connects to Redis as cfg describes. It does not wait for the server;
// the first call reports ErrUnavailable if it is down.
func New(cfg Config) (*Backend, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Prefix == "" {
		cfg.Prefix = "statenode:"
	}
	if cfg.WaitTimeout == 0 {
		cfg.WaitTimeout = time.Second
	}
	var client goredis.UniversalClient
	switch {
	case cfg.Cluster:
		client = goredis.NewClusterClient(&goredis.ClusterOptions{
			Addrs:          cfg.Addrs,
			ReadOnly:       cfg.ReadMode != ReadPrimary,
			RouteRandomly:  cfg.ReadMode == ReadRoundRobin,
			RouteByLatency: cfg.ReadMode == ReadLowestLatency,
			PoolSize:       cfg.PoolSize,
			DialTimeout:    cfg.DialTimeout,
			ReadTimeout:    cfg.ReadTimeout,
			WriteTimeout:   cfg.WriteTimeout,
			MaxRetries:     cfg.MaxRetries,
		})
	case cfg.MasterName != "":
		opt := &goredis.FailoverOptions{
			MasterName:     cfg.MasterName,
			SentinelAddrs:  cfg.Addrs,
			DB:             cfg.DB,
			ReplicaOnly:    cfg.ReadMode == ReadReplicaOnly,
			RouteRandomly:  cfg.ReadMode == ReadRoundRobin,
			RouteByLatency: cfg.ReadMode == ReadLowestLatency,
			PoolSize:       cfg.PoolSize,
			DialTimeout:    cfg.DialTimeout,
			ReadTimeout:    cfg.ReadTimeout,
			WriteTimeout:   cfg.WriteTimeout,
			MaxRetries:     cfg.MaxRetries,
		}
		if cfg.ReadMode == ReadPrimary {
			client = goredis.NewFailoverClient(opt)
		} else {
			client = goredis.NewFailoverClusterClient(opt)
		}
	default:
		client = goredis.NewClient(&goredis.Options{
			Addr:         cfg.Addrs[0],
			DB:           cfg.DB,
			PoolSize:     cfg.PoolSize,
			DialTimeout:  cfg.DialTimeout,
			ReadTimeout:  cfg.ReadTimeout,
			WriteTimeout: cfg.WriteTimeout,
			MaxRetries:   cfg.MaxRetries,
		})
	}
	return &Backend{cfg: cfg, client: client, cluster: cfg.Cluster, prefix: cfg.Prefix, owned: true}, nil
}

// Client returns the underlying go-redis client (for health checks and
// pub/sub; see NewInvalidator). Do not close it.
func (b *Backend) Client() goredis.UniversalClient { return b.client }

func (b *Backend) dataKey(key string) string { return b.prefix + "d:" + key }

// fenceKey is global in standalone and Sentinel mode. In Cluster mode a
// script may only touch keys of one slot, so unless the prefix has a hash
// tag the fence is kept per data key, in the data key's slot.
func (b *Backend) fenceKey(lock, dataKey string) string {
	if b.cfg.Cluster && !hasHashTag(b.prefix) {
		return b.prefix + "f:{" + dataKey + "}:" + lock
	}
	return b.prefix + "f:" + lock
}

func hasHashTag(s string) bool {
	i := strings.IndexByte(s, '{')
	return i >= 0 && strings.IndexByte(s[i+1:], '}') > 0
}

// errs maps a go-redis error onto the backends sentinels.
func (b *Backend) errs(ctx context.Context, op string, err error) error {
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil:
		return fmt.Errorf("redis: %s: %w", op, ctx.Err())
	case errors.Is(err, goredis.ErrClosed):
		return fmt.Errorf("redis: %s: %w", op, backends.ErrClosed)
	case errors.Is(err, backends.ErrFenced), errors.Is(err, backends.ErrVersionMismatch), errors.Is(err, backends.ErrNotFound), errors.Is(err, backends.ErrUnavailable):
		return err
	}
	var rerr goredis.Error
	if errors.As(err, &rerr) {
		msg := rerr.Error()
		for _, p := range []string{"READONLY", "LOADING", "MASTERDOWN", "CLUSTERDOWN", "TRYAGAIN", "NOREPLICAS", "UNBLOCKED"} {
			if strings.HasPrefix(msg, p) {
				return fmt.Errorf("redis: %s: %w: %v", op, backends.ErrUnavailable, err)
			}
		}
		if strings.Contains(msg, "CROSSSLOT") {
			return fmt.Errorf("redis: %s: keys span hash slots (use a hash tag in Prefix): %w: %v", op, backends.ErrInvalidKey, err)
		}
		return fmt.Errorf("redis: %s: %w", op, err)
	}
	// Anything that is not a server reply is a connection problem.
	return fmt.Errorf("redis: %s: %w: %v", op, backends.ErrUnavailable, err)
}

func (b *Backend) check(ctx context.Context) error {
	if b.closed.Load() {
		return backends.ErrClosed
	}
	return ctx.Err()
}

func ttlMillis(ttl time.Duration) int64 {
	if ttl <= 0 {
		return 0
	}
	ms := ttl.Milliseconds()
	if ms == 0 {
		ms = 1
	}
	return ms
}

// runScript runs s in a pipeline followed, if WaitReplicas > 0, by WAIT on
// the same connection. It falls back to EVAL when the server lacks the
// script (a fresh master after failover).
func (b *Backend) runScript(ctx context.Context, s *goredis.Script, keys []string, args ...any) ([]any, error) {
	res, err := b.pipeScript(ctx, s, keys, args, true)
	if err != nil && goredis.HasErrorPrefix(err, "NOSCRIPT") {
		res, err = b.pipeScript(ctx, s, keys, args, false)
	}
	return res, err
}

func (b *Backend) pipeScript(ctx context.Context, s *goredis.Script, keys []string, args []any, sha bool) ([]any, error) {
	var cmd *goredis.Cmd
	var wait *goredis.Cmd
	_, err := b.client.Pipelined(ctx, func(p goredis.Pipeliner) error {
		if sha {
			cmd = s.EvalSha(ctx, p, keys, args...)
		} else {
			cmd = s.Eval(ctx, p, keys, args...)
		}
		if b.cfg.WaitReplicas > 0 {
			wait = p.Do(ctx, "WAIT", b.cfg.WaitReplicas, b.cfg.WaitTimeout.Milliseconds())
		}
		return nil
	})
	if cmd.Err() != nil {
		return nil, cmd.Err()
	}
	if err != nil {
		return nil, err
	}
	res, err := cmd.Slice()
	if err != nil {
		return nil, err
	}
	if wait != nil {
		if n, _ := wait.Int64(); n < int64(b.cfg.WaitReplicas) {
			return res, fmt.Errorf("%w: %d of %d within %v", ErrNotAcknowledged, n, b.cfg.WaitReplicas, b.cfg.WaitTimeout)
		}
	}
	return res, nil
}

// scriptResult interprets {status, n...} of the scripts.
func scriptResult(res []any, fence *backends.Fence, key string, expected uint64) ([]uint64, error) {
	if len(res) == 0 {
		return nil, fmt.Errorf("redis: empty script reply")
	}
	status, _ := res[0].(int64)
	num := func(i int) uint64 {
		switch v := res[i].(type) {
		case int64:
			return uint64(v)
		case string:
			n, _ := strconv.ParseUint(v, 10, 64)
			return n
		}
		return 0
	}
	switch status {
	case 0:
		out := make([]uint64, len(res)-1)
		for i := range out {
			out[i] = num(i + 1)
		}
		return out, nil
	case 1:
		return nil, &backends.FencedError{Lock: fence.Lock, Token: fence.Token, Seen: num(1)}
	case 2:
		return nil, fmt.Errorf("redis: cas %q: have version %d, expected %d: %w", key, num(1), expected, backends.ErrVersionMismatch)
	}
	return nil, fmt.Errorf("redis: unexpected script reply %v", res)
}

func fenceArgs(f *backends.Fence) string {
	if f == nil {
		return ""
	}
	return strconv.FormatUint(f.Token, 10)
}

func (b *Backend) write(ctx context.Context, op, key string, value []byte, expected string, opts backends.WriteOptions) (uint64, error) {
	if err := backends.ValidatePut(key, value, opts); err != nil {
		return 0, err
	}
	if err := b.check(ctx); err != nil {
		return 0, err
	}
	dk := b.dataKey(key)
	keys := []string{dk}
	if opts.Fence != nil {
		keys = append(keys, b.fenceKey(opts.Fence.Lock, dk))
	}
	res, err := b.runScript(ctx, putScript, keys, value, ttlMillis(opts.TTL), fenceArgs(opts.Fence), expected)
	if res == nil {
		return 0, b.errs(ctx, op, err)
	}
	exp, _ := strconv.ParseUint(expected, 10, 64)
	vers, serr := scriptResult(res, opts.Fence, key, exp)
	if serr != nil {
		return 0, serr
	}
	return vers[0], b.errs(ctx, op, err)
}

// Put implements backends.Backend.
func (b *Backend) Put(ctx context.Context, key string, value []byte, opts backends.WriteOptions) (uint64, error) {
	return b.write(ctx, "put", key, value, "", opts)
}

// CompareAndSwap implements backends.Backend.
func (b *Backend) CompareAndSwap(ctx context.Context, key string, expected uint64, value []byte, opts backends.WriteOptions) (uint64, error) {
	return b.write(ctx, "cas", key, value, strconv.FormatUint(expected, 10), opts)
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
		return backends.VersionedValue{}, fmt.Errorf("redis: get %q: %w", key, backends.ErrNotFound)
	}
	return vs[0], nil
}

func parseHash(vals []any) backends.VersionedValue {
	if len(vals) != 3 || vals[1] == nil {
		return backends.VersionedValue{}
	}
	var v backends.VersionedValue
	if s, ok := vals[0].(string); ok {
		v.Value = []byte(s)
	} else {
		v.Value = []byte{}
	}
	s, _ := vals[1].(string)
	v.Version, _ = strconv.ParseUint(s, 10, 64)
	if s, ok := vals[2].(string); ok {
		if ms, _ := strconv.ParseInt(s, 10, 64); ms > 0 {
			v.ExpiresAt = time.UnixMilli(ms)
		}
	}
	return v
}

// GetMany implements backends.Backend: one pipeline of HMGETs.
func (b *Backend) GetMany(ctx context.Context, keys []string) ([]backends.VersionedValue, error) {
	if err := backends.ValidateKeys(keys); err != nil {
		return nil, err
	}
	if err := b.check(ctx); err != nil {
		return nil, err
	}
	out := make([]backends.VersionedValue, len(keys))
	if len(keys) == 0 {
		return out, nil
	}
	cmds := make([]*goredis.SliceCmd, len(keys))
	_, err := b.client.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for i, k := range keys {
			cmds[i] = p.HMGet(ctx, b.dataKey(k), "v", "ver", "exp")
		}
		return nil
	})
	if err != nil {
		return nil, b.errs(ctx, "get", err)
	}
	for i, c := range cmds {
		out[i] = parseHash(c.Val())
	}
	return out, nil
}

// PutMany implements backends.Backend: one script (atomic) in standalone and
// Sentinel mode, or in Cluster mode when Prefix has a hash tag; otherwise
// one pipeline of per-key scripts (each atomic, the batch not).
func (b *Backend) PutMany(ctx context.Context, items []backends.Item, opts backends.WriteOptions) ([]uint64, error) {
	if err := backends.ValidateItems(items, opts); err != nil {
		return nil, err
	}
	if err := b.check(ctx); err != nil {
		return nil, err
	}
	if len(items) == 0 {
		return []uint64{}, nil
	}
	if b.cluster && !hasHashTag(b.prefix) {
		return b.putManyCluster(ctx, items, opts)
	}
	keys := make([]string, 0, len(items)+1)
	args := make([]any, 0, len(items)+3)
	args = append(args, len(items), ttlMillis(opts.TTL), fenceArgs(opts.Fence))
	for _, it := range items {
		keys = append(keys, b.dataKey(it.Key))
		args = append(args, it.Value)
	}
	if opts.Fence != nil {
		keys = append(keys, b.fenceKey(opts.Fence.Lock, ""))
	}
	res, err := b.runScript(ctx, putManyScript, keys, args...)
	if res == nil {
		return nil, b.errs(ctx, "put many", err)
	}
	vers, serr := scriptResult(res, opts.Fence, "", 0)
	if serr != nil {
		return nil, serr
	}
	return vers, b.errs(ctx, "put many", err)
}

func (b *Backend) putManyCluster(ctx context.Context, items []backends.Item, opts backends.WriteOptions) ([]uint64, error) {
	cmds := make([]*goredis.Cmd, len(items))
	_, err := b.client.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for i, it := range items {
			dk := b.dataKey(it.Key)
			keys := []string{dk}
			if opts.Fence != nil {
				keys = append(keys, b.fenceKey(opts.Fence.Lock, dk))
			}
			cmds[i] = putScript.Eval(ctx, p, keys, it.Value, ttlMillis(opts.TTL), fenceArgs(opts.Fence), "")
		}
		return nil
	})
	if err != nil {
		return nil, b.errs(ctx, "put many", err)
	}
	out := make([]uint64, len(items))
	for i, c := range cmds {
		res, err := c.Slice()
		if err != nil {
			return nil, b.errs(ctx, "put many", err)
		}
		vers, err := scriptResult(res, opts.Fence, items[i].Key, 0)
		if err != nil {
			return nil, err
		}
		out[i] = vers[0]
	}
	return out, nil
}

// Delete implements backends.Backend.
func (b *Backend) Delete(ctx context.Context, key string, opts backends.WriteOptions) error {
	return b.DeleteMany(ctx, []string{key}, opts)
}

// DeleteMany implements backends.Backend.
func (b *Backend) DeleteMany(ctx context.Context, keys []string, opts backends.WriteOptions) error {
	if err := backends.ValidateKeys(keys); err != nil {
		return err
	}
	if err := backends.ValidateOptions(opts); err != nil {
		return err
	}
	if err := b.check(ctx); err != nil {
		return err
	}
	if len(keys) == 0 {
		return nil
	}
	if b.cluster && !hasHashTag(b.prefix) {
		_, err := b.client.Pipelined(ctx, func(p goredis.Pipeliner) error {
			for _, k := range keys {
				dk := b.dataKey(k)
				if opts.Fence != nil {
					deleteScript.Eval(ctx, p, []string{dk, b.fenceKey(opts.Fence.Lock, dk)}, 1, fenceArgs(opts.Fence))
				} else {
					p.Unlink(ctx, dk)
				}
			}
			return nil
		})
		return b.errs(ctx, "delete", err)
	}
	dks := make([]string, len(keys))
	for i, k := range keys {
		dks[i] = b.dataKey(k)
	}
	if opts.Fence == nil {
		if b.cfg.WaitReplicas == 0 {
			return b.errs(ctx, "delete", b.client.Unlink(ctx, dks...).Err())
		}
	}
	var fk string
	if opts.Fence != nil {
		fk = b.fenceKey(opts.Fence.Lock, "")
	} else {
		fk = b.prefix + "f:" // unfenced delete with WAIT: token 0 always passes
	}
	res, err := b.runScript(ctx, deleteScript, append(dks, fk), len(keys), fenceArgs(opts.Fence)+zeroIfEmpty(opts.Fence))
	if res == nil {
		return b.errs(ctx, "delete", err)
	}
	if _, serr := scriptResult(res, opts.Fence, "", 0); serr != nil {
		return serr
	}
	return b.errs(ctx, "delete", err)
}

func zeroIfEmpty(f *backends.Fence) string {
	if f == nil {
		return "0"
	}
	return ""
}

// List implements backends.Backend. Redis has no ordered key index, so List
// SCANs every key under the prefix (on every master in Cluster mode), sorts
// them, and reads one page: O(keys under prefix) per page.
func (b *Backend) List(ctx context.Context, prefix string, opts backends.ListOptions) (backends.ListPage, error) {
	if err := backends.ValidatePrefix(prefix); err != nil {
		return backends.ListPage{}, err
	}
	if err := b.check(ctx); err != nil {
		return backends.ListPage{}, err
	}
	pattern := globEscape(b.dataKey(prefix)) + "*"
	var mu sync.Mutex
	var keys []string
	strip := len(b.dataKey(""))
	scan := func(ctx context.Context, c goredis.Cmdable) error {
		it := c.Scan(ctx, 0, pattern, 1000).Iterator()
		var local []string
		for it.Next(ctx) {
			k := it.Val()[strip:]
			if k > opts.After && strings.HasPrefix(k, prefix) {
				local = append(local, k)
			}
		}
		mu.Lock()
		keys = append(keys, local...)
		mu.Unlock()
		return it.Err()
	}
	var err error
	if cc, ok := b.client.(*goredis.ClusterClient); ok {
		err = cc.ForEachMaster(ctx, func(ctx context.Context, c *goredis.Client) error { return scan(ctx, c) })
	} else {
		err = scan(ctx, b.client)
	}
	if err != nil {
		return backends.ListPage{}, b.errs(ctx, "list", err)
	}
	slices.Sort(keys)
	keys = slices.Compact(keys)
	limit := opts.PageLimit()
	var page backends.ListPage
	pos := 0 // keys[:pos] have been read
	for pos < len(keys) && len(page.Entries) < limit {
		// Keys may expire between SCAN and the read; read a little more.
		n := min(len(keys)-pos, limit-len(page.Entries)+8)
		vals, err := b.GetMany(ctx, keys[pos:pos+n])
		if err != nil {
			return backends.ListPage{}, err
		}
		for i, v := range vals {
			if len(page.Entries) == limit {
				n = i
				break
			}
			if !v.Found() {
				continue
			}
			if opts.KeysOnly {
				v.Value = nil
			}
			page.Entries = append(page.Entries, backends.Entry{Key: keys[pos+i], VersionedValue: v})
		}
		pos += n
	}
	if len(page.Entries) == limit && pos < len(keys) {
		page.Next = page.Entries[limit-1].Key
	}
	return page, nil
}

// globEscape escapes the glob metacharacters of SCAN MATCH.
func globEscape(s string) string {
	var sb strings.Builder
	for _, r := range s {
		switch r {
		case '*', '?', '[', ']', '\\', '^', '-':
			sb.WriteByte('\\')
		}
		sb.WriteRune(r)
	}
	return sb.String()
}

// Stats implements backends.Backend. Keys is -1: counting a prefix would
// need a full SCAN.
func (b *Backend) Stats(ctx context.Context) (backends.Stats, error) {
	if err := b.check(ctx); err != nil {
		return backends.Stats{}, err
	}
	ps := b.client.PoolStats()
	st := backends.Stats{
		Backend: "redis",
		Keys:    -1,
		Pool: backends.PoolStats{
			TotalConns: int(ps.TotalConns),
			IdleConns:  int(ps.IdleConns),
			InUseConns: int(ps.TotalConns) - int(ps.IdleConns),
			WaitCount:  int64(ps.WaitCount),
			Timeouts:   int64(ps.Timeouts),
		},
		Extra: map[string]float64{"pool_hits": float64(ps.Hits), "pool_misses": float64(ps.Misses)},
	}
	return st, nil
}

// Ping checks that the store answers (a health check for breaker).
func (b *Backend) Ping(ctx context.Context) error {
	if err := b.check(ctx); err != nil {
		return err
	}
	if cc, ok := b.client.(*goredis.ClusterClient); ok {
		return b.errs(ctx, "ping", cc.ForEachShard(ctx, func(ctx context.Context, c *goredis.Client) error { return c.Ping(ctx).Err() }))
	}
	return b.errs(ctx, "ping", b.client.Ping(ctx).Err())
}

// Close implements backends.Backend.
func (b *Backend) Close() error {
	var err error
	b.closeOnce.Do(func() {
		b.closed.Store(true)
		if b.owned {
			err = b.client.Close()
		}
	})
	return err
}

// Prefix returns the key prefix in use.
func (b *Backend) Prefix() string { return b.prefix }
