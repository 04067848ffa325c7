package redlock

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// Client is one Redis server of the set, as the Redlock uses it: SET NX PX
// and Lua scripts. A *goredis.Client satisfies it. Calls come from several
// goroutines at once (one per server per attempt), each with a context
// whose deadline is Config.ServerTimeout; the client must honour that
// deadline (for go-redis, Options.ContextTimeoutEnabled).
type Client interface {
	SetNX(ctx context.Context, key string, value any, expiration time.Duration) *goredis.BoolCmd
	goredis.Scripter
}

var _ Client = (*goredis.Client)(nil)

// releaseScript deletes the key only if it still holds our token, so a
// client never frees a lock that expired and went to someone else.
var releaseScript = goredis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
`)

// extendScript resets the key's TTL (ARGV[2], ms) only if it still holds
// our token.
var extendScript = goredis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
`)

// tokenBytes is the size of a lock token before hex encoding.
const tokenBytes = 20

// Redlock acquires locks on a set of independent Redis servers. It is safe
// for concurrent use; it holds no state per lock.
type Redlock struct {
	cfg     Config
	clients []Client
	owned   []*goredis.Client // closed by Close (Dial only)

	mu     sync.Mutex
	closed bool
}

// New returns a Redlock over clients, one per independent Redis server
// (not replicas of each other; an odd number, 3 or 5, is usual). The
// caller keeps ownership of the clients. A *goredis.Client must have
// ContextTimeoutEnabled set, or ServerTimeout could not hold.
func New(cfg Config, clients ...Client) (*Redlock, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if len(clients) == 0 {
		return nil, fmt.Errorf("%w: no servers", ErrInvalidConfig)
	}
	for i, c := range clients {
		if c == nil {
			return nil, fmt.Errorf("%w: server %d is nil", ErrInvalidConfig, i)
		}
		if o, ok := c.(interface{ Options() *goredis.Options }); ok && !o.Options().ContextTimeoutEnabled {
			return nil, fmt.Errorf("%w: server %d: go-redis client needs ContextTimeoutEnabled for ServerTimeout to hold", ErrInvalidConfig, i)
		}
	}
	return &Redlock{cfg: cfg, clients: append([]Client(nil), clients...)}, nil
}

// Dial returns a Redlock over new go-redis clients for addrs
// ("host:port"), set up for it: dial, read and write timeouts of
// ServerTimeout, context deadlines honoured, no client-side retries of
// commands or dials (the Redlock retries whole attempts). Close closes them.
func Dial(cfg Config, addrs ...string) (*Redlock, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	clients := make([]Client, len(addrs))
	owned := make([]*goredis.Client, len(addrs))
	for i, a := range addrs {
		owned[i] = goredis.NewClient(&goredis.Options{
			Addr:                  a,
			DialTimeout:           cfg.ServerTimeout,
			ReadTimeout:           cfg.ServerTimeout,
			WriteTimeout:          cfg.ServerTimeout,
			ContextTimeoutEnabled: true,
			MaxRetries:            -1,
			// One dial per request: a dead server should cost a refused
			// connection, not ServerTimeout spent in dial backoff.
			DialerRetries:      1,
			DialerRetryTimeout: time.Microsecond,
		})
		clients[i] = owned[i]
	}
	r, err := New(cfg, clients...)
	if err != nil {
		for _, c := range owned {
			_ = c.Close()
		}
		return nil, err
	}
	r.owned = owned
	return r, nil
}

// Close closes the clients Dial created; later calls fail with ErrClosed.
// Locks still held expire on the servers after their TTL. Safe to call
// twice.
func (r *Redlock) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil
	}
	r.closed = true
	var errs []error
	for _, c := range r.owned {
		errs = append(errs, c.Close())
	}
	return errors.Join(errs...)
}

// Quorum is the number of servers an operation must reach: N/2 + 1.
func (r *Redlock) Quorum() int { return len(r.clients)/2 + 1 }

// Lock acquires the lock name, retrying failed attempts after
// RetryDelay plus random jitter, up to Config.Retries times or until ctx
// ends. It fails with a *QuorumError matching ErrNotAcquired (and ctx.Err()
// if ctx ended). Every failed attempt is released on all servers before
// the next one.
func (r *Redlock) Lock(ctx context.Context, name string) (*Lock, error) {
	return r.lock(ctx, name, r.cfg.Retries)
}

// TryLock makes a single attempt to acquire the lock name.
func (r *Redlock) TryLock(ctx context.Context, name string) (*Lock, error) {
	return r.lock(ctx, name, 0)
}

func (r *Redlock) lock(ctx context.Context, name string, retries int) (*Lock, error) {
	if err := r.check(name); err != nil {
		return nil, err
	}
	for attempt := 1; ; attempt++ {
		l, qerr := r.attempt(ctx, name)
		if l != nil {
			return l, nil
		}
		qerr.Attempts = attempt
		if err := ctx.Err(); err != nil {
			qerr.Errs = append(qerr.Errs, err)
			return nil, qerr
		}
		if retries >= 0 && attempt > retries {
			return nil, qerr
		}
		delay := r.cfg.RetryDelay
		if r.cfg.RetryJitter > 0 {
			delay += rand.N(r.cfg.RetryJitter)
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			qerr.Errs = append(qerr.Errs, ctx.Err())
			return nil, qerr
		case <-t.C:
		}
	}
}

// attempt is one round of the algorithm: SET NX PX on every server in
// parallel, then the lock is held if a quorum answered OK and validity
// remains; otherwise it is released everywhere.
func (r *Redlock) attempt(ctx context.Context, name string) (*Lock, *QuorumError) {
	qerr := &QuorumError{Kind: ErrNotAcquired, Op: "lock", Name: name, Servers: len(r.clients), Quorum: r.Quorum()}
	if ctx.Err() != nil {
		return nil, qerr // the caller adds ctx.Err()
	}
	token, err := newToken()
	if err != nil {
		qerr.Errs = []error{err}
		return nil, qerr
	}
	key := r.cfg.KeyPrefix + name
	start := time.Now()
	n, errs := r.each(ctx, func(ctx context.Context, c Client) (bool, error) {
		return c.SetNX(ctx, key, token, r.cfg.TTL).Result()
	})
	validity := r.cfg.TTL - time.Since(start) - r.cfg.drift()
	if n >= qerr.Quorum && validity > 0 {
		return &Lock{r: r, name: name, key: key, token: token, until: start.Add(r.cfg.TTL - r.cfg.drift())}, nil
	}
	qerr.Reached, qerr.Errs = n, errs
	if n >= qerr.Quorum {
		qerr.Reason = "validity time used up"
	}
	// Release on every server, not only those that said OK: a SET may
	// have succeeded after its reply was lost. Do it even if ctx ended.
	r.release(context.WithoutCancel(ctx), key, token)
	return nil, qerr
}

// release runs the compare-and-delete on every server and returns how many
// deleted the key.
func (r *Redlock) release(ctx context.Context, key, token string) (int, []error) {
	return r.each(ctx, func(ctx context.Context, c Client) (bool, error) {
		n, err := releaseScript.Run(ctx, c, []string{key}, token).Int64()
		return n == 1, err
	})
}

// each runs op on every server in parallel, each call bounded by
// ServerTimeout, and returns how many returned true and the errors.
func (r *Redlock) each(ctx context.Context, op func(context.Context, Client) (bool, error)) (int, []error) {
	oks := make([]bool, len(r.clients))
	errs := make([]error, len(r.clients))
	var wg sync.WaitGroup
	for i, c := range r.clients {
		wg.Go(func() {
			sctx, cancel := context.WithTimeout(ctx, r.cfg.ServerTimeout)
			defer cancel()
			ok, err := op(sctx, c)
			oks[i] = ok && err == nil
			if err != nil {
				errs[i] = fmt.Errorf("server %d: %w", i, err)
			}
		})
	}
	wg.Wait()
	n := 0
	for _, ok := range oks {
		if ok {
			n++
		}
	}
	var out []error
	for _, err := range errs {
		if err != nil {
			out = append(out, err)
		}
	}
	return n, out
}

// check refuses a closed Redlock or an empty name before any I/O.
func (r *Redlock) check(name string) error {
	if name == "" {
		return fmt.Errorf("%w: empty lock name", ErrInvalidConfig)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return ErrClosed
	}
	return nil
}

// newToken returns tokenBytes random bytes from crypto/rand, hex encoded.
func newToken() (string, error) {
	b := make([]byte, tokenBytes)
	if _, err := crand.Read(b); err != nil {
		return "", fmt.Errorf("redlock: token: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// Lock is one acquired lock. Its methods are safe for concurrent use;
// Extend and Unlock are serialised.
type Lock struct {
	r     *Redlock
	name  string
	key   string
	token string

	op sync.Mutex // serialises Extend and Unlock

	mu    sync.Mutex
	until time.Time
}

// Name returns the lock name.
func (l *Lock) Name() string { return l.name }

// Token returns the random value stored on the servers. It identifies this
// holder but is not a fencing token: it does not increase from one holder
// to the next, so storage cannot use it to refuse a stale holder.
func (l *Lock) Token() string { return l.token }

// Until returns the instant the lock's validity ends (by this process's
// monotonic clock); the zero time once it was released or lost.
func (l *Lock) Until() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.until
}

// Validity returns how long the lock remains valid; 0 once it ended, was
// released or lost. Work under the lock must finish within it.
func (l *Lock) Validity() time.Duration {
	u := l.Until()
	if u.IsZero() {
		return 0
	}
	return max(time.Until(u), 0)
}

func (l *Lock) setUntil(t time.Time) {
	l.mu.Lock()
	l.until = t
	l.mu.Unlock()
}

// Extend resets the lock's TTL on every server that still holds this token
// and returns the new validity. It needs a quorum within the validity time
// it computes, like an acquisition, and must be called while the lock is
// still valid. If it fails for any reason but ctx, the lock is given up
// (released everywhere it can be) and the error matches ErrLockLost. If
// ctx ends first, the error matches ctx.Err() and the lock keeps its old
// validity.
func (l *Lock) Extend(ctx context.Context) (time.Duration, error) {
	l.op.Lock()
	defer l.op.Unlock()
	r := l.r
	if err := r.check(l.name); err != nil {
		return 0, err
	}
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("redlock: extend %q: %w", l.name, err)
	}
	qerr := &QuorumError{Kind: ErrLockLost, Op: "extend", Name: l.name, Servers: len(r.clients), Quorum: r.Quorum(), Attempts: 1}
	if l.Validity() == 0 {
		qerr.Reason = "validity had ended"
		l.lose()
		return 0, qerr
	}
	start := time.Now()
	n, errs := r.each(ctx, func(ctx context.Context, c Client) (bool, error) {
		res, err := extendScript.Run(ctx, c, []string{l.key}, l.token, r.cfg.TTL.Milliseconds()).Int64()
		return res == 1, err
	})
	validity := r.cfg.TTL - time.Since(start) - r.cfg.drift()
	if n >= qerr.Quorum && validity > 0 {
		l.setUntil(start.Add(r.cfg.TTL - r.cfg.drift()))
		return validity, nil
	}
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("redlock: extend %q: %w", l.name, err)
	}
	qerr.Reached, qerr.Errs = n, errs
	if n >= qerr.Quorum {
		qerr.Reason = "validity time used up"
	}
	l.lose()
	return 0, qerr
}

// lose marks the lock lost and releases whatever servers still hold it.
func (l *Lock) lose() {
	l.setUntil(time.Time{})
	l.r.release(context.Background(), l.key, l.token)
}

// Unlock releases the lock on every server with a compare-and-delete, so it
// never frees another client's lock. It returns nil if a quorum deleted the
// key while the lock was still valid. Otherwise the error matches
// ErrLockLost (the lock had expired, possibly into another client's hands,
// or too few servers answered; keys left behind expire after the TTL), and
// ctx.Err() if ctx ended. The Lock is unusable afterwards either way.
func (l *Lock) Unlock(ctx context.Context) error {
	l.op.Lock()
	defer l.op.Unlock()
	r := l.r
	if err := r.check(l.name); err != nil {
		return err
	}
	valid := l.Validity() > 0
	l.setUntil(time.Time{})
	n, errs := r.release(ctx, l.key, l.token)
	if n >= r.Quorum() && valid {
		return nil
	}
	qerr := &QuorumError{Kind: ErrLockLost, Op: "unlock", Name: l.name, Reached: n, Servers: len(r.clients), Quorum: r.Quorum(), Attempts: 1, Errs: errs}
	if !valid {
		qerr.Reason = "not valid at unlock (expired, lost or already released)"
	}
	if err := ctx.Err(); err != nil {
		qerr.Errs = append(qerr.Errs, err)
	}
	return qerr
}
