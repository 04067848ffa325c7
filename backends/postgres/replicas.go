package postgres

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/statenode/statenode/backends"
)

// ReadMode says where Get, GetMany and List are served. Writes, CAS and
// fenced writes always go to the primary, whatever the mode.
type ReadMode int

const (
	// ReadPrimary serves every read from the primary: linearizable with
	// the writes of every client. The default; Config.Replicas is ignored.
	ReadPrimary ReadMode = iota

	// ReadReplicaPreferred serves reads from a replica known to be at
	// most Config.MaxReplicaLag behind the primary, and from the primary
	// when none is. A read may miss writes of the last MaxReplicaLag,
	// including this Backend's own.
	ReadReplicaPreferred

	// ReadReplicaSession is ReadReplicaPreferred plus read-your-writes
	// for this Backend value: a replica serves a read only once it is
	// known to have replayed every write this Backend completed before
	// the read began; until then (about one ReplicaCheckInterval after a
	// write) reads go to the primary. Writes by other Backends may still
	// be up to MaxReplicaLag stale.
	ReadReplicaSession
)

func (m ReadMode) String() string {
	switch m {
	case ReadPrimary:
		return "primary"
	case ReadReplicaPreferred:
		return "replica-preferred"
	case ReadReplicaSession:
		return "replica-session"
	}
	return fmt.Sprintf("ReadMode(%d)", int(m))
}

// Defaults of the replica settings, used when the Config field is zero.
const (
	// DefaultMaxReplicaLag bounds replica staleness (5 s): long enough
	// to ride out a checkpoint or vacuum burst on a healthy standby,
	// short enough for caches and dashboards.
	DefaultMaxReplicaLag = 5 * time.Second
	// DefaultReplicaCheckInterval is how often replicas are measured
	// (250 ms): after a write, ReadReplicaSession reads the primary for
	// about this long; each check costs one tiny query per server.
	DefaultReplicaCheckInterval = 250 * time.Millisecond
)

// ReplicaStatus describes one configured replica as last measured.
type ReplicaStatus struct {
	// Addr is the replica's host:port.
	Addr string
	// Healthy is false when the last check or read failed, or when the
	// server is not a standby in recovery.
	Healthy bool
	// Usable reports whether a read issued now may be routed there
	// (ReadReplicaSession adds its own condition on top).
	Usable bool
	// Lag is an upper bound, now, on how stale a read from the replica
	// is: the time since the newest primary WAL position it had replayed
	// at its last check was sampled. -1 when unknown: down, or behind
	// every primary sample kept (those span MaxReplicaLag plus two
	// check intervals, so the lag is at least that).
	Lag time.Duration
	// ReplayLSN is pg_last_wal_replay_lsn() at the last check, in bytes.
	ReplayLSN uint64
	// Reads is how many reads the replica has served.
	Reads int64
	// Err is the last check or read error while not Healthy.
	Err error
}

// lsnSample is the primary's WAL insert position at a moment.
type lsnSample struct {
	at  int64  // nanoseconds since router.epoch, taken before the query was sent
	lsn uint64 // bytes
}

type replica struct {
	addr string
	pool *pgxpool.Pool

	// coveredAt is the send time (ns since epoch) of the newest primary
	// sample whose WAL position the replica had replayed at its last
	// check; 0 while unhealthy or behind every sample kept.
	coveredAt atomic.Int64
	replayLSN atomic.Uint64
	reads     atomic.Int64

	mu      sync.Mutex
	healthy bool
	err     error
}

func (r *replica) setDown(err error) {
	r.coveredAt.Store(0)
	r.mu.Lock()
	r.healthy, r.err = false, err
	r.mu.Unlock()
}

// router routes reads to replicas. The lag loop is its only writer of
// samples; reads only load atomics.
type router struct {
	mode     ReadMode
	maxLag   time.Duration
	interval time.Duration
	timeout  time.Duration
	primary  *pgxpool.Pool
	replicas []*replica
	epoch    time.Time

	lastWrite    atomic.Int64 // ns since epoch at which the newest write of this Backend returned
	next         atomic.Uint64
	primaryReads atomic.Int64
	fallbacks    atomic.Int64

	samples []lsnSample // owned by the loop goroutine

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func (r *router) now() int64 { return int64(time.Since(r.epoch)) + 1 }

// newRouter validates the replica settings of cfg (filling defaults) and
// opens one lazy pool per replica; it returns nil for ReadPrimary or no
// replicas. It does not contact the replicas.
func newRouter(cfg *Config, primary *pgxpool.Pool) (*router, error) {
	switch cfg.ReadMode {
	case ReadPrimary:
		return nil, nil
	case ReadReplicaPreferred, ReadReplicaSession:
	default:
		return nil, fmt.Errorf("%w: unknown ReadMode %d", ErrConfig, int(cfg.ReadMode))
	}
	if cfg.MaxReplicaLag < 0 || cfg.ReplicaCheckInterval < 0 {
		return nil, fmt.Errorf("%w: negative MaxReplicaLag or ReplicaCheckInterval", ErrConfig)
	}
	if cfg.MaxReplicaLag == 0 {
		cfg.MaxReplicaLag = DefaultMaxReplicaLag
	}
	if cfg.ReplicaCheckInterval == 0 {
		cfg.ReplicaCheckInterval = min(DefaultReplicaCheckInterval, cfg.MaxReplicaLag/4)
	}
	if cfg.ReplicaCheckInterval >= cfg.MaxReplicaLag {
		return nil, fmt.Errorf("%w: ReplicaCheckInterval %v must be shorter than MaxReplicaLag %v (a replica is only usable for MaxReplicaLag after a check)",
			ErrConfig, cfg.ReplicaCheckInterval, cfg.MaxReplicaLag)
	}
	if len(cfg.Replicas) == 0 {
		return nil, nil
	}
	r := &router{
		mode:     cfg.ReadMode,
		maxLag:   cfg.MaxReplicaLag,
		interval: cfg.ReplicaCheckInterval,
		timeout:  max(cfg.ReplicaCheckInterval, time.Second),
		primary:  primary,
		epoch:    time.Now(),
	}
	for i, cs := range cfg.Replicas {
		pc, err := pgxpool.ParseConfig(cs)
		if err != nil {
			r.closePools()
			return nil, fmt.Errorf("%w: Replicas[%d]: %v", ErrConfig, i, err)
		}
		if cfg.MaxConns > 0 {
			pc.MaxConns = cfg.MaxConns
		}
		if pc.ConnConfig.ConnectTimeout == 0 {
			pc.ConnConfig.ConnectTimeout = r.timeout
		}
		// Belt and braces: a replica pool never writes, even if the
		// server is promoted.
		pc.ConnConfig.RuntimeParams["default_transaction_read_only"] = "on"
		pool, err := pgxpool.NewWithConfig(context.Background(), pc)
		if err != nil {
			r.closePools()
			return nil, fmt.Errorf("%w: Replicas[%d]: %v", ErrConfig, i, err)
		}
		rep := &replica{addr: fmt.Sprintf("%s:%d", pc.ConnConfig.Host, pc.ConnConfig.Port), pool: pool}
		rep.err = errors.New("postgres: replica not checked yet")
		r.replicas = append(r.replicas, rep)
	}
	r.lastWrite.Store(r.now()) // New's migration is a write
	return r, nil
}

// start runs the lag loop until stop.
func (r *router) start() {
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		t := time.NewTicker(r.interval)
		defer t.Stop()
		for {
			r.check(ctx)
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
}

// stop ends the loop, waits for it, and closes the replica pools. Safe on
// a nil router.
func (r *router) stop() {
	if r == nil {
		return
	}
	if r.cancel != nil {
		r.cancel()
	}
	r.wg.Wait()
	r.closePools()
}

func (r *router) closePools() {
	for _, rep := range r.replicas {
		rep.pool.Close()
	}
}

// check samples the primary's WAL position, then every replica's replay
// position, and updates what each replica covers.
func (r *router) check(ctx context.Context) {
	at := r.now()
	cctx, cancel := context.WithTimeout(ctx, r.timeout)
	var insert int64
	var blck int64
	err := r.primary.QueryRow(cctx, `SELECT (pg_current_wal_insert_lsn() - '0/0')::bigint, current_setting('wal_block_size')::bigint`).Scan(&insert, &blck)
	cancel()
	if err == nil {
		r.addSample(lsnSample{at: at, lsn: walEnd(uint64(insert), uint64(blck))})
	}
	var wg sync.WaitGroup
	for _, rep := range r.replicas {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.checkReplica(ctx, rep)
		}()
	}
	wg.Wait()
}

// walEnd is the end of the WAL the primary has inserted.
// pg_current_wal_insert_lsn() reports a position just past the page
// header when the last record ended on a page boundary; replay ends at
// the boundary, so an idle primary would otherwise look ahead forever.
func walEnd(insert, blockSize uint64) uint64 {
	const shortHeader, longHeader = 24, 40 // SizeOfXLogShortPHD, SizeOfXLogLongPHD
	if blockSize == 0 {
		return insert
	}
	if off := insert % blockSize; off == shortHeader || off == longHeader {
		return insert - off
	}
	return insert
}

func (r *router) addSample(s lsnSample) {
	r.samples = append(r.samples, s)
	// Keep what can still make a replica usable, plus one older sample.
	horizon := s.at - int64(r.maxLag+2*r.interval)
	drop := 0
	for drop < len(r.samples)-1 && r.samples[drop+1].at < horizon {
		drop++
	}
	if drop > 0 {
		r.samples = append(r.samples[:0], r.samples[drop:]...)
	}
}

func (r *router) checkReplica(ctx context.Context, rep *replica) {
	cctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	var inRecovery bool
	var replay *int64
	err := rep.pool.QueryRow(cctx, `SELECT pg_is_in_recovery(), (pg_last_wal_replay_lsn() - '0/0')::bigint`).Scan(&inRecovery, &replay)
	if ctx.Err() != nil {
		return // closing
	}
	if err != nil {
		rep.setDown(fmt.Errorf("postgres: replica %s: %w: %v", rep.addr, backends.ErrUnavailable, err))
		return
	}
	if !inRecovery || replay == nil {
		rep.setDown(fmt.Errorf("postgres: replica %s is not a standby in recovery", rep.addr))
		return
	}
	lsn := uint64(*replay)
	rep.replayLSN.Store(lsn)
	covered := r.covering(lsn)
	rep.mu.Lock()
	rep.healthy, rep.err = true, nil
	rep.coveredAt.Store(covered)
	rep.mu.Unlock()
}

// covering returns the send time of the newest sample at or below the
// replay position lsn: the replica holds every commit acknowledged before
// then. 0 when it is behind every sample kept.
func (r *router) covering(lsn uint64) int64 {
	for i := len(r.samples) - 1; i >= 0; i-- {
		if r.samples[i].lsn <= lsn {
			return r.samples[i].at
		}
	}
	return 0
}

func (r *router) usable(rep *replica, now int64) bool {
	c := rep.coveredAt.Load()
	return c != 0 && time.Duration(now-c) <= r.maxLag
}

// pick returns a replica that may serve a read starting now, round robin
// among the usable ones, or nil.
func (r *router) pick() *replica {
	now := r.now()
	lw := r.lastWrite.Load()
	n := uint64(len(r.replicas))
	start := r.next.Add(1)
	for i := range n {
		rep := r.replicas[(start+i)%n]
		if !r.usable(rep, now) {
			continue
		}
		if r.mode == ReadReplicaSession && rep.coveredAt.Load() <= lw {
			continue
		}
		return rep
	}
	return nil
}

// wrote records that a write of this Backend returned.
func (r *router) wrote() {
	now := r.now()
	for {
		old := r.lastWrite.Load()
		if old >= now || r.lastWrite.CompareAndSwap(old, now) {
			return
		}
	}
}

func (r *router) status() []ReplicaStatus {
	now := r.now()
	out := make([]ReplicaStatus, len(r.replicas))
	for i, rep := range r.replicas {
		rep.mu.Lock()
		s := ReplicaStatus{Addr: rep.addr, Healthy: rep.healthy, Err: rep.err, Lag: -1}
		rep.mu.Unlock()
		if c := rep.coveredAt.Load(); c != 0 {
			s.Lag = time.Duration(now - c)
		}
		s.Usable = r.usable(rep, now)
		s.ReplayLSN = rep.replayLSN.Load()
		s.Reads = rep.reads.Load()
		out[i] = s
	}
	return out
}

func (r *router) extra(m map[string]float64) {
	var reads, usable float64
	now := r.now()
	for _, rep := range r.replicas {
		reads += float64(rep.reads.Load())
		if r.usable(rep, now) {
			usable++
		}
	}
	m["replica_reads"] = reads
	m["primary_reads"] = float64(r.primaryReads.Load())
	m["replica_fallbacks"] = float64(r.fallbacks.Load())
	m["replicas_usable"] = usable
}

// read runs a read-only query on a usable replica, or on the primary when
// there is none or the replica fails (the replica is then marked down if
// it is unreachable). scan consumes the rows and must reset its results,
// as it may run twice. Errors are raw (not yet mapped by errs).
func (b *Backend) read(ctx context.Context, sql string, args []any, scan func(pgx.Rows) error) error {
	if r := b.router; r != nil {
		if rep := r.pick(); rep != nil {
			err := queryRows(ctx, rep.pool, sql, args, scan)
			if err == nil {
				rep.reads.Add(1)
				return nil
			}
			if ctx.Err() != nil {
				return err
			}
			// Any failure of a replica (down, schema not replayed yet,
			// query cancelled by a recovery conflict) is retried on the
			// primary.
			r.fallbacks.Add(1)
			if mapped := b.errs(ctx, "replica read", err); errors.Is(mapped, backends.ErrUnavailable) || errors.Is(mapped, backends.ErrClosed) {
				rep.setDown(fmt.Errorf("postgres: replica %s: %w", rep.addr, mapped))
			}
		}
		r.primaryReads.Add(1)
	}
	return queryRows(ctx, b.pool, sql, args, scan)
}

func queryRows(ctx context.Context, pool *pgxpool.Pool, sql string, args []any, scan func(pgx.Rows) error) error {
	rows, err := pool.Query(ctx, sql, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	if err := scan(rows); err != nil {
		return err
	}
	rows.Close()
	return rows.Err()
}

// noteWrite is deferred by every write path.
func (b *Backend) noteWrite() {
	if b.router != nil {
		b.router.wrote()
	}
}

// Replicas reports the configured replicas as last measured (nil without
// replica routing).
func (b *Backend) Replicas() []ReplicaStatus {
	if b.router == nil {
		return nil
	}
	return b.router.status()
}
