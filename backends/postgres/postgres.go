package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/statenode/statenode/backends"
)

var _ backends.Backend = (*Backend)(nil)

// Sentinel errors of this package.
var (
	// ErrConfig is returned by New for an invalid Config.
	ErrConfig = errors.New("postgres: invalid config")
	// ErrSchema is returned by New when the schema is newer than this
	// build understands.
	ErrSchema = errors.New("postgres: schema too new")
)

// Config configures a PostgreSQL store.
type Config struct {
	// ConnString is a pgx connection string
	// ("postgres://user@host:5432/db?sslmode=disable").
	ConnString string
	// Schema holds the store's tables ("statenode" by default); New
	// creates and migrates it. Give each store, tenant and test its own.
	Schema string
	// MaxConns caps the pool (0: pgxpool default, max(4, CPUs)).
	MaxConns int32
	// CopyThreshold is the PutMany batch size from which rows are loaded
	// with COPY into a temporary table and merged with one INSERT,
	// instead of one statement per row (default 500: below it a pipelined
	// pgx.Batch is as fast and simpler).
	CopyThreshold int

	// Replicas are connection strings of hot standbys streaming from the
	// primary (pg_basebackup -R or equivalent). They serve Get, GetMany
	// and List when ReadMode is not ReadPrimary; never writes.
	Replicas []string
	// ReadMode chooses where reads go (default ReadPrimary:
	// read-your-writes across all clients; see ReadMode and
	// docs/BACKENDS.md for the trade-off).
	ReadMode ReadMode
	// MaxReplicaLag is the most a replica read may be behind the primary
	// (0: DefaultMaxReplicaLag, 5 s). A replica further behind, or not
	// measured within that time, is skipped and the primary serves.
	MaxReplicaLag time.Duration
	// ReplicaCheckInterval is how often a background loop compares the
	// primary's WAL position with each replica's replay position (0:
	// DefaultReplicaCheckInterval, 250 ms, at most MaxReplicaLag/4). It
	// must be shorter than MaxReplicaLag.
	ReplicaCheckInterval time.Duration
}

// DefaultConfig returns a Config for connString with the default schema.
func DefaultConfig(connString string) Config {
	return Config{ConnString: connString, Schema: "statenode", CopyThreshold: 500}
}

// Backend is a backends.Backend on PostgreSQL.
//
// Keys live in <schema>.kv (key text COLLATE "C" so that List orders by
// bytes); fences in <schema>.fences, raised by the <schema>.fence function
// in the same transaction as the write. Every batch is one transaction
// sent in one round trip (pgx.Batch; COPY above CopyThreshold).
type Backend struct {
	cfg    Config
	pool   *pgxpool.Pool
	q      string // quoted schema
	closed atomic.Bool
	once   sync.Once
	router *router // nil: every read goes to the primary
}

// New connects, creates or migrates the schema, and returns the store.
func New(ctx context.Context, cfg Config) (*Backend, error) {
	if cfg.ConnString == "" {
		return nil, fmt.Errorf("%w: empty ConnString", ErrConfig)
	}
	if cfg.Schema == "" {
		cfg.Schema = "statenode"
	}
	if cfg.CopyThreshold <= 0 {
		cfg.CopyThreshold = 500
	}
	pc, err := pgxpool.ParseConfig(cfg.ConnString)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	if cfg.MaxConns > 0 {
		pc.MaxConns = cfg.MaxConns
	}
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w: %v", backends.ErrUnavailable, err)
	}
	b := &Backend{cfg: cfg, pool: pool, q: pgx.Identifier{cfg.Schema}.Sanitize()}
	err = pool.AcquireFunc(ctx, func(c *pgxpool.Conn) error { return migrate(ctx, c.Conn(), cfg.Schema) })
	if err != nil {
		pool.Close()
		return nil, b.errs(ctx, "migrate", err)
	}
	if b.router, err = newRouter(&b.cfg, pool); err != nil {
		pool.Close()
		return nil, err
	}
	if b.router != nil {
		b.router.start()
	}
	return b, nil
}

// Pool returns the pgx pool (for health checks). Do not close it.
func (b *Backend) Pool() *pgxpool.Pool { return b.pool }

const sqlStateFenced = "SN001"

func (b *Backend) errs(ctx context.Context, op string, err error) error {
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return fmt.Errorf("postgres: %s: %w", op, ctx.Err())
	}
	if errors.Is(err, backends.ErrFenced) || errors.Is(err, backends.ErrVersionMismatch) || errors.Is(err, ErrSchema) {
		return err
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case strings.HasPrefix(pe.Code, "08"), pe.Code == "57P01", pe.Code == "57P02", pe.Code == "57P03", pe.Code == "53300", pe.Code == "25006":
			// connection exceptions, shutdown, too many connections,
			// read-only transaction (a standby).
			return fmt.Errorf("postgres: %s: %w: %v", op, backends.ErrUnavailable, err)
		}
		return fmt.Errorf("postgres: %s: %w", op, err)
	}
	if strings.Contains(err.Error(), "closed pool") {
		return fmt.Errorf("postgres: %s: %w", op, backends.ErrClosed)
	}
	return fmt.Errorf("postgres: %s: %w: %v", op, backends.ErrUnavailable, err)
}

// fencedErr turns SQLSTATE SN001 into a *backends.FencedError.
func fencedErr(err error, f *backends.Fence) error {
	var pe *pgconn.PgError
	if f != nil && errors.As(err, &pe) && pe.Code == sqlStateFenced {
		seen, _ := strconv.ParseUint(pe.Message, 10, 64)
		return &backends.FencedError{Lock: f.Lock, Token: f.Token, Seen: seen}
	}
	return err
}

func (b *Backend) check(ctx context.Context) error {
	if b.closed.Load() {
		return backends.ErrClosed
	}
	return ctx.Err()
}

const live = `(expires_at IS NULL OR expires_at > now())`

func ttlMillis(ttl time.Duration) int64 {
	if ttl <= 0 {
		return 0
	}
	return max(ttl.Milliseconds(), 1)
}

func toVV(value []byte, version int64, exp *time.Time) backends.VersionedValue {
	v := backends.VersionedValue{Value: value, Version: uint64(version)}
	if v.Value == nil {
		v.Value = []byte{}
	}
	if exp != nil {
		v.ExpiresAt = *exp
	}
	return v
}

func (b *Backend) upsertSQL() string {
	return `INSERT INTO ` + b.q + `.kv AS kv (key, value, version, expires_at)
		VALUES ($1, $2, 1, CASE WHEN $3::bigint > 0 THEN now() + $3::bigint * interval '1 millisecond' END)
		ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, expires_at = EXCLUDED.expires_at,
			version = CASE WHEN kv.expires_at IS NOT NULL AND kv.expires_at <= now() THEN 1 ELSE kv.version + 1 END
		RETURNING version`
}

func (b *Backend) fenceSQL() string { return `SELECT ` + b.q + `.fence($1, $2::numeric)` }

func fenceToken(f *backends.Fence) string { return strconv.FormatUint(f.Token, 10) }

// Get implements backends.Backend.
func (b *Backend) Get(ctx context.Context, key string) (backends.VersionedValue, error) {
	if err := backends.ValidateKey(key); err != nil {
		return backends.VersionedValue{}, err
	}
	if err := b.check(ctx); err != nil {
		return backends.VersionedValue{}, err
	}
	var value []byte
	var ver int64
	var exp *time.Time
	found := false
	err := b.read(ctx, `SELECT value, version, expires_at FROM `+b.q+`.kv WHERE key = $1 AND `+live, []any{key}, func(rows pgx.Rows) error {
		found = rows.Next()
		if !found {
			return nil
		}
		return rows.Scan(&value, &ver, &exp)
	})
	if err != nil {
		return backends.VersionedValue{}, b.errs(ctx, "get", err)
	}
	if !found {
		return backends.VersionedValue{}, fmt.Errorf("postgres: get %q: %w", key, backends.ErrNotFound)
	}
	return toVV(value, ver, exp), nil
}

// Put implements backends.Backend: one statement, or with a fence one
// implicit transaction of two statements in one round trip.
func (b *Backend) Put(ctx context.Context, key string, value []byte, opts backends.WriteOptions) (uint64, error) {
	if err := backends.ValidatePut(key, value, opts); err != nil {
		return 0, err
	}
	vers, err := b.putBatch(ctx, []backends.Item{{Key: key, Value: value}}, opts)
	if err != nil {
		return 0, err
	}
	return vers[0], nil
}

// putBatch sends [fence,] upsert... as one pgx.Batch: pgx ends a batch with
// a single Sync, so PostgreSQL runs it as one implicit transaction and a
// failing fence aborts every write of the batch.
func (b *Backend) putBatch(ctx context.Context, items []backends.Item, opts backends.WriteOptions) ([]uint64, error) {
	if err := b.check(ctx); err != nil {
		return nil, err
	}
	defer b.noteWrite()
	batch := &pgx.Batch{}
	if opts.Fence != nil {
		batch.Queue(b.fenceSQL(), opts.Fence.Lock, fenceToken(opts.Fence))
	}
	ttl := ttlMillis(opts.TTL)
	for _, it := range items {
		batch.Queue(b.upsertSQL(), it.Key, nonNil(it.Value), ttl)
	}
	br := b.pool.SendBatch(ctx, batch)
	out := make([]uint64, len(items))
	err := func() error {
		if opts.Fence != nil {
			if _, err := br.Exec(); err != nil {
				return fencedErr(err, opts.Fence)
			}
		}
		for i := range items {
			var v int64
			if err := br.QueryRow().Scan(&v); err != nil {
				return err
			}
			out[i] = uint64(v)
		}
		return nil
	}()
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, b.errs(ctx, "put", err)
	}
	return out, nil
}

func nonNil(v []byte) []byte {
	if v == nil {
		return []byte{}
	}
	return v
}

// CompareAndSwap implements backends.Backend with UPDATE ... WHERE version
// = expected (or INSERT ... ON CONFLICT for expected 0). A fenced CAS is an
// explicit transaction so that a version mismatch rolls the fence back.
func (b *Backend) CompareAndSwap(ctx context.Context, key string, expected uint64, value []byte, opts backends.WriteOptions) (uint64, error) {
	if err := backends.ValidatePut(key, value, opts); err != nil {
		return 0, err
	}
	if err := b.check(ctx); err != nil {
		return 0, err
	}
	defer b.noteWrite()
	var sql string
	args := []any{key, nonNil(value), ttlMillis(opts.TTL)}
	if expected == 0 {
		sql = `INSERT INTO ` + b.q + `.kv AS kv (key, value, version, expires_at)
			VALUES ($1, $2, 1, CASE WHEN $3::bigint > 0 THEN now() + $3::bigint * interval '1 millisecond' END)
			ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, expires_at = EXCLUDED.expires_at, version = 1
			WHERE kv.expires_at IS NOT NULL AND kv.expires_at <= now()
			RETURNING version`
	} else {
		sql = `UPDATE ` + b.q + `.kv SET value = $2, version = version + 1,
				expires_at = CASE WHEN $3::bigint > 0 THEN now() + $3::bigint * interval '1 millisecond' END
			WHERE key = $1 AND version = $4 AND ` + live + ` RETURNING version`
		args = append(args, int64(expected))
	}
	var ver int64
	var err error
	if opts.Fence == nil {
		err = b.pool.QueryRow(ctx, sql, args...).Scan(&ver)
	} else {
		err = pgx.BeginFunc(ctx, b.pool, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, b.fenceSQL(), opts.Fence.Lock, fenceToken(opts.Fence)); err != nil {
				return fencedErr(err, opts.Fence)
			}
			return tx.QueryRow(ctx, sql, args...).Scan(&ver)
		})
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, fmt.Errorf("postgres: cas %q: expected version %d: %w", key, expected, backends.ErrVersionMismatch)
	}
	if err != nil {
		return 0, b.errs(ctx, "cas", err)
	}
	return uint64(ver), nil
}

// Delete implements backends.Backend.
func (b *Backend) Delete(ctx context.Context, key string, opts backends.WriteOptions) error {
	return b.DeleteMany(ctx, []string{key}, opts)
}

// DeleteMany implements backends.Backend: one statement (and the fence, in
// the same implicit transaction).
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
	defer b.noteWrite()
	batch := &pgx.Batch{}
	if opts.Fence != nil {
		batch.Queue(b.fenceSQL(), opts.Fence.Lock, fenceToken(opts.Fence))
	}
	batch.Queue(`DELETE FROM `+b.q+`.kv WHERE key = ANY($1)`, keys)
	br := b.pool.SendBatch(ctx, batch)
	var err error
	for range batch.Len() {
		if _, err = br.Exec(); err != nil {
			err = fencedErr(err, opts.Fence)
			break
		}
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	return b.errs(ctx, "delete", err)
}

// GetMany implements backends.Backend: one SELECT ... WHERE key = ANY($1).
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
	var found map[string]backends.VersionedValue
	err := b.read(ctx, `SELECT key, value, version, expires_at FROM `+b.q+`.kv WHERE key = ANY($1) AND `+live, []any{keys}, func(rows pgx.Rows) error {
		found = make(map[string]backends.VersionedValue, len(keys))
		for rows.Next() {
			var k string
			var value []byte
			var ver int64
			var exp *time.Time
			if err := rows.Scan(&k, &value, &ver, &exp); err != nil {
				return err
			}
			found[k] = toVV(value, ver, exp)
		}
		return nil
	})
	if err != nil {
		return nil, b.errs(ctx, "get many", err)
	}
	for i, k := range keys {
		out[i] = found[k]
	}
	return out, nil
}

// PutMany implements backends.Backend. Batches below CopyThreshold are one
// pipelined pgx.Batch; larger ones are COPYed into a temporary table and
// merged with one INSERT ... ON CONFLICT, in one transaction. Either way
// the batch is atomic.
func (b *Backend) PutMany(ctx context.Context, items []backends.Item, opts backends.WriteOptions) ([]uint64, error) {
	if err := backends.ValidateItems(items, opts); err != nil {
		return nil, err
	}
	if len(items) == 0 {
		return []uint64{}, b.check(ctx)
	}
	if len(items) < b.cfg.CopyThreshold {
		return b.putBatch(ctx, items, opts)
	}
	return b.putCopy(ctx, items, opts)
}

func (b *Backend) putCopy(ctx context.Context, items []backends.Item, opts backends.WriteOptions) ([]uint64, error) {
	if err := b.check(ctx); err != nil {
		return nil, err
	}
	defer b.noteWrite()
	// The last write of a key wins, as in the one-by-one path; the
	// merge INSERT may touch each row only once.
	last := make(map[string]int, len(items))
	for i, it := range items {
		last[it.Key] = i
	}
	rows := make([][]any, 0, len(last))
	for i, it := range items {
		if last[it.Key] == i {
			rows = append(rows, []any{it.Key, nonNil(it.Value)})
		}
	}
	versions := make(map[string]uint64, len(rows))
	err := pgx.BeginFunc(ctx, b.pool, func(tx pgx.Tx) error {
		if opts.Fence != nil {
			if _, err := tx.Exec(ctx, b.fenceSQL(), opts.Fence.Lock, fenceToken(opts.Fence)); err != nil {
				return fencedErr(err, opts.Fence)
			}
		}
		if _, err := tx.Exec(ctx, `CREATE TEMP TABLE statenode_load (key text COLLATE "C", value bytea) ON COMMIT DROP`); err != nil {
			return err
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"statenode_load"}, []string{"key", "value"}, pgx.CopyFromRows(rows)); err != nil {
			return err
		}
		res, err := tx.Query(ctx, `INSERT INTO `+b.q+`.kv AS kv (key, value, version, expires_at)
			SELECT key, value, 1, CASE WHEN $1::bigint > 0 THEN now() + $1::bigint * interval '1 millisecond' END FROM statenode_load
			ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, expires_at = EXCLUDED.expires_at,
				version = CASE WHEN kv.expires_at IS NOT NULL AND kv.expires_at <= now() THEN 1 ELSE kv.version + 1 END
			RETURNING key, version`, ttlMillis(opts.TTL))
		if err != nil {
			return err
		}
		for res.Next() {
			var k string
			var v int64
			if err := res.Scan(&k, &v); err != nil {
				res.Close()
				return err
			}
			versions[k] = uint64(v)
		}
		return res.Err()
	})
	if err != nil {
		return nil, b.errs(ctx, "put many (copy)", err)
	}
	out := make([]uint64, len(items))
	for i, it := range items {
		out[i] = versions[it.Key]
	}
	return out, nil
}

// List implements backends.Backend.
func (b *Backend) List(ctx context.Context, prefix string, opts backends.ListOptions) (backends.ListPage, error) {
	if err := backends.ValidatePrefix(prefix); err != nil {
		return backends.ListPage{}, err
	}
	if err := b.check(ctx); err != nil {
		return backends.ListPage{}, err
	}
	limit := opts.PageLimit()
	cols := "value"
	if opts.KeysOnly {
		cols = "NULL::bytea"
	}
	var page backends.ListPage
	err := b.read(ctx, `SELECT key, `+cols+`, version, expires_at FROM `+b.q+`.kv
		WHERE key >= $1 AND key > $2 AND starts_with(key, $1) AND `+live+`
		ORDER BY key LIMIT $3`, []any{prefix, opts.After, limit + 1}, func(rows pgx.Rows) error {
		page = backends.ListPage{}
		for rows.Next() {
			var k string
			var value []byte
			var ver int64
			var exp *time.Time
			if err := rows.Scan(&k, &value, &ver, &exp); err != nil {
				return err
			}
			e := backends.Entry{Key: k, VersionedValue: toVV(value, ver, exp)}
			if opts.KeysOnly {
				e.Value = nil
			}
			page.Entries = append(page.Entries, e)
		}
		return nil
	})
	if err != nil {
		return backends.ListPage{}, b.errs(ctx, "list", err)
	}
	if len(page.Entries) > limit {
		page.Entries = page.Entries[:limit]
		page.Next = page.Entries[limit-1].Key
	}
	return page, nil
}

// Sweep deletes expired rows (reads already skip them) and returns how
// many it removed. Call it periodically; it is not run in the background.
func (b *Backend) Sweep(ctx context.Context) (int64, error) {
	if err := b.check(ctx); err != nil {
		return 0, err
	}
	tag, err := b.pool.Exec(ctx, `DELETE FROM `+b.q+`.kv WHERE expires_at <= now()`)
	if err != nil {
		return 0, b.errs(ctx, "sweep", err)
	}
	return tag.RowsAffected(), nil
}

// Stats implements backends.Backend. Keys is an exact count (a scan of the
// table).
func (b *Backend) Stats(ctx context.Context) (backends.Stats, error) {
	if err := b.check(ctx); err != nil {
		return backends.Stats{}, err
	}
	var n int64
	if err := b.pool.QueryRow(ctx, `SELECT count(*) FROM `+b.q+`.kv WHERE `+live).Scan(&n); err != nil {
		return backends.Stats{}, b.errs(ctx, "stats", err)
	}
	ps := b.pool.Stat()
	st := backends.Stats{
		Backend: "postgres",
		Keys:    n,
		Pool: backends.PoolStats{
			TotalConns: int(ps.TotalConns()),
			IdleConns:  int(ps.IdleConns()),
			InUseConns: int(ps.AcquiredConns()),
			WaitCount:  ps.EmptyAcquireCount(),
			Timeouts:   ps.CanceledAcquireCount(),
		},
		Extra: map[string]float64{"pool_acquire_seconds": ps.AcquireDuration().Seconds()},
	}
	if b.router != nil {
		b.router.extra(st.Extra)
	}
	return st, nil
}

// Ping checks that the store answers (a health check for breaker).
func (b *Backend) Ping(ctx context.Context) error {
	if err := b.check(ctx); err != nil {
		return err
	}
	return b.errs(ctx, "ping", b.pool.Ping(ctx))
}

// Close implements backends.Backend.
func (b *Backend) Close() error {
	b.once.Do(func() {
		b.closed.Store(true)
		b.router.stop()
		b.pool.Close()
	})
	return nil
}
