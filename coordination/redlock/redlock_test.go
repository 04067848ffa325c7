package redlock_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/statenode/statenode/coordination/redlock"
)

// testConfig has timeouts loose enough for a loaded machine under -race.
func testConfig(ttl time.Duration) redlock.Config {
	cfg := redlock.DefaultConfig()
	cfg.TTL = ttl
	cfg.ServerTimeout = min(200*time.Millisecond, ttl/4)
	cfg.Retries = 0
	cfg.RetryDelay = 5 * time.Millisecond
	cfg.RetryJitter = 10 * time.Millisecond
	return cfg
}

func ctxTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func mustLock(t *testing.T, ctx context.Context, rl *redlock.Redlock, name string) *redlock.Lock {
	t.Helper()
	l, err := rl.Lock(ctx, name)
	if err != nil {
		t.Fatalf("Lock(%q): %v", name, err)
	}
	if l.Validity() <= 0 || l.Until().IsZero() {
		t.Fatalf("fresh lock has validity %v, until %v", l.Validity(), l.Until())
	}
	return l
}

func quorumError(t *testing.T, err error, kind error) *redlock.QuorumError {
	t.Helper()
	if !errors.Is(err, kind) {
		t.Fatalf("err = %v, want %v", err, kind)
	}
	var qe *redlock.QuorumError
	if !errors.As(err, &qe) {
		t.Fatalf("err %v is not a *QuorumError", err)
	}
	return qe
}

func TestMutualExclusion(t *testing.T) {
	servers := startCluster(t, 5)
	const workers, rounds = 8, 10
	cfg := testConfig(10 * time.Second)
	cfg.Retries = -1 // until ctx ends
	ctx := ctxTimeout(t, 2*time.Minute)

	var inside, maxInside, acquired atomic.Int64
	var wg sync.WaitGroup
	for w := range workers {
		rl := dial(t, cfg, servers) // one client per worker
		wg.Go(func() {
			for r := range rounds {
				l, err := rl.Lock(ctx, "mx")
				if err != nil {
					t.Errorf("worker %d round %d: %v", w, r, err)
					return
				}
				n := inside.Add(1)
				for m := maxInside.Load(); n > m && !maxInside.CompareAndSwap(m, n); m = maxInside.Load() {
				}
				time.Sleep(time.Millisecond) // work, widening any overlap
				if l.Validity() <= 0 {
					t.Errorf("worker %d: critical section outlived the validity", w)
				}
				inside.Add(-1)
				acquired.Add(1)
				if err := l.Unlock(ctx); err != nil {
					t.Errorf("worker %d: unlock: %v", w, err)
				}
			}
		})
	}
	wg.Wait()
	if got := maxInside.Load(); got != 1 {
		t.Errorf("%d holders were inside the critical section at once", got)
	}
	if got := acquired.Load(); got != workers*rounds {
		t.Errorf("acquired %d times, want %d", got, workers*rounds)
	}
	for _, s := range servers {
		if n := dbsize(t, s); n != 0 {
			t.Errorf("%s holds %d keys after every unlock", s.addr, n)
		}
	}
}

func TestSecondClientRefusedWhileHeld(t *testing.T) {
	servers := startCluster(t, 5)
	cfg := testConfig(10 * time.Second)
	a, b := dial(t, cfg, servers), dial(t, cfg, servers)
	ctx := ctxTimeout(t, time.Minute)

	l := mustLock(t, ctx, a, "job")
	for _, s := range servers {
		if got := get(t, s, cfg.KeyPrefix+"job"); got != l.Token() {
			t.Errorf("%s holds %q, want the token %q", s.addr, got, l.Token())
		}
	}
	if len(l.Token()) < 40 {
		t.Errorf("token %q has fewer than 20 random bytes", l.Token())
	}
	_, err := b.TryLock(ctx, "job")
	if qe := quorumError(t, err, redlock.ErrNotAcquired); qe.Reached != 0 || qe.Quorum != 3 || qe.Servers != 5 {
		t.Errorf("refusal reports %+v, want 0 of 5 reached, quorum 3", qe)
	}
	other := mustLock(t, ctx, b, "other-job") // names are independent
	if other.Token() == l.Token() {
		t.Error("two locks share a token")
	}
	if err := l.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
	l2 := mustLock(t, ctx, b, "job")
	if err := l2.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
	if err := other.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
}

// waitTakeover has b retry the lock until it gets it, after a's TTL.
func waitTakeover(t *testing.T, b *redlock.Redlock, name string) *redlock.Lock {
	t.Helper()
	l, err := b.Lock(ctxTimeout(t, 30*time.Second), name)
	if err != nil {
		t.Fatalf("second client never acquired %q after the first one's TTL: %v", name, err)
	}
	return l
}

func TestTTLExpiryHandsOver(t *testing.T) {
	servers := startCluster(t, 5)
	cfg := testConfig(800 * time.Millisecond)
	a := dial(t, cfg, servers)
	bcfg := cfg
	bcfg.Retries = -1
	b := dial(t, bcfg, servers)
	ctx := ctxTimeout(t, time.Minute)

	start := time.Now()
	la := mustLock(t, ctx, a, "ttl")
	if v := la.Validity(); v > cfg.TTL-cfg.TTL/100-2*time.Millisecond {
		t.Errorf("validity %v does not discount drift from TTL %v", v, cfg.TTL)
	}
	// a never unlocks: b gets the lock once the keys expire, and not
	// before a's validity ended.
	lb := waitTakeover(t, b, "ttl")
	if now := time.Now(); now.Before(la.Until()) {
		t.Errorf("b acquired at %v, before a's validity ended at %v", now.Sub(start), la.Until().Sub(start))
	}
	if la.Validity() != 0 {
		t.Errorf("a's validity %v after b took over", la.Validity())
	}
	// b holds a quorum; servers where a's key outlived the others may
	// still hold a's token.
	held := 0
	for _, s := range servers {
		if get(t, s, cfg.KeyPrefix+"ttl") == lb.Token() {
			held++
		}
	}
	if held < 3 {
		t.Fatalf("b holds the lock on %d servers", held)
	}
	if _, err := la.Extend(ctx); !errors.Is(err, redlock.ErrLockLost) {
		t.Errorf("a.Extend after expiry = %v, want ErrLockLost", err)
	}
	for _, s := range servers {
		switch get(t, s, cfg.KeyPrefix+"ttl") {
		case lb.Token():
			held--
		case la.Token():
			t.Errorf("%s still holds a's key after a gave the lock up", s.addr)
		}
	}
	if held != 0 {
		t.Errorf("a's failed Extend removed b's key from %d servers", held)
	}
	if err := lb.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestReleaseByNonOwnerDoesNothing(t *testing.T) {
	servers := startCluster(t, 5)
	cfg := testConfig(500 * time.Millisecond)
	a := dial(t, cfg, servers)
	bcfg := testConfig(30 * time.Second)
	bcfg.Retries = -1
	b := dial(t, bcfg, servers)
	ctx := ctxTimeout(t, time.Minute)

	la := mustLock(t, ctx, a, "owned")
	// Wait until a's keys have expired everywhere, so that b holds the
	// lock on every server.
	deadline := time.Now().Add(30 * time.Second)
	for _, s := range servers {
		for get(t, s, cfg.KeyPrefix+"owned") != "" {
			if time.Now().After(deadline) {
				t.Fatalf("a's key never expired on %s", s.addr)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	lb := mustLock(t, ctx, b, "owned")
	// a's lock expired; its release must not free b's.
	err := la.Unlock(ctx)
	if qe := quorumError(t, err, redlock.ErrLockLost); qe.Reached != 0 {
		t.Errorf("a's stale unlock deleted the key on %d servers", qe.Reached)
	}
	for _, s := range servers {
		if got := get(t, s, cfg.KeyPrefix+"owned"); got != lb.Token() {
			t.Errorf("%s holds %q after a non-owner release, want b's token", s.addr, got)
		}
	}
	if _, err := a.TryLock(ctx, "owned"); !errors.Is(err, redlock.ErrNotAcquired) {
		t.Errorf("a re-acquired b's lock: %v", err)
	}
	if err := lb.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
	if err := lb.Unlock(ctx); !errors.Is(err, redlock.ErrLockLost) {
		t.Errorf("second Unlock = %v, want ErrLockLost", err)
	}
}

func TestOneServerKilled(t *testing.T) {
	servers := startCluster(t, 5)
	cfg := testConfig(10 * time.Second)
	rl, other := dial(t, cfg, servers), dial(t, cfg, servers)
	ctx := ctxTimeout(t, time.Minute)

	held := mustLock(t, ctx, rl, "k1")
	servers[2].kill() // kill -9 while the lock is held
	if _, err := held.Extend(ctx); err != nil {
		t.Fatalf("Extend with 4 of 5 servers: %v", err)
	}
	if _, err := other.TryLock(ctx, "k1"); !errors.Is(err, redlock.ErrNotAcquired) {
		t.Fatalf("a second client acquired a held lock with one server down: %v", err)
	}
	if err := held.Unlock(ctx); err != nil {
		t.Fatalf("Unlock with 4 of 5 servers: %v", err)
	}
	live := []*server{servers[0], servers[1], servers[3], servers[4]}
	for i := range 5 {
		name := fmt.Sprintf("after-kill-%d", i)
		l := mustLock(t, ctx, rl, name)
		for _, s := range live {
			if got := get(t, s, cfg.KeyPrefix+name); got != l.Token() {
				t.Errorf("%s holds %q, want the token", s.addr, got)
			}
		}
		if err := l.Unlock(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range live {
		if n := dbsize(t, s); n != 0 {
			t.Errorf("%s holds %d keys after unlocks", s.addr, n)
		}
	}
}

func TestThreeServersKilled(t *testing.T) {
	servers := startCluster(t, 5)
	cfg := testConfig(30 * time.Second) // leftovers would outlive the test
	cfg.Retries = 2
	rl := dial(t, cfg, servers)
	ctx := ctxTimeout(t, time.Minute)

	held := mustLock(t, ctx, rl, "held")
	for _, i := range []int{0, 2, 4} {
		servers[i].kill()
	}
	live := []*server{servers[1], servers[3]}

	_, err := rl.Lock(ctx, "new")
	qe := quorumError(t, err, redlock.ErrNotAcquired)
	if qe.Reached != 2 || qe.Attempts != 3 || qe.Quorum != 3 || len(qe.Errs) != 3 {
		t.Errorf("error reports %d reached, %d attempts, quorum %d, %d server errors; want 2, 3, 3, 3: %v",
			qe.Reached, qe.Attempts, qe.Quorum, len(qe.Errs), err)
	}
	for _, s := range live {
		if got := get(t, s, cfg.KeyPrefix+"new"); got != "" {
			t.Errorf("%s kept a partial acquisition %q", s.addr, got)
		}
	}

	// The lock held before the kills cannot be extended, and is given up.
	_, err = held.Extend(ctx)
	if qe := quorumError(t, err, redlock.ErrLockLost); qe.Reached != 2 {
		t.Errorf("extend reached %d servers, want 2: %v", qe.Reached, err)
	}
	if held.Validity() != 0 {
		t.Errorf("validity %v after a failed Extend", held.Validity())
	}
	for _, s := range live {
		if n := dbsize(t, s); n != 0 {
			t.Errorf("%s holds %d keys, want none", s.addr, n)
		}
	}
}

func TestExtend(t *testing.T) {
	servers := startCluster(t, 5)
	cfg := testConfig(2 * time.Second)
	rl, other := dial(t, cfg, servers), dial(t, cfg, servers)
	ctx := ctxTimeout(t, time.Minute)

	l := mustLock(t, ctx, rl, "ext")
	first := l.Until()
	for l.Until().Before(first.Add(cfg.TTL)) { // keep it well past its first TTL
		time.Sleep(cfg.TTL / 4)
		before := l.Until()
		v, err := l.Extend(ctx)
		if err != nil {
			t.Fatalf("Extend: %v", err)
		}
		if v <= 0 || v > cfg.TTL || !l.Until().After(before) {
			t.Fatalf("Extend returned validity %v, until moved %v", v, l.Until().Sub(before))
		}
	}
	if time.Now().Before(first) {
		t.Fatal("the loop ended before the first validity did")
	}
	if _, err := other.TryLock(ctx, "ext"); !errors.Is(err, redlock.ErrNotAcquired) {
		t.Fatalf("another client acquired an extended lock: %v", err)
	}

	// Lose it: the key vanishes from three servers.
	for _, s := range servers[:3] {
		if err := inspect(t, s).Del(ctx, cfg.KeyPrefix+"ext").Err(); err != nil {
			t.Fatal(err)
		}
	}
	_, err := l.Extend(ctx)
	if qe := quorumError(t, err, redlock.ErrLockLost); qe.Reached != 2 {
		t.Errorf("extend reached %d servers, want 2", qe.Reached)
	}
	if l.Validity() != 0 || !l.Until().IsZero() {
		t.Errorf("lost lock reports validity %v, until %v", l.Validity(), l.Until())
	}
	for _, s := range servers {
		if n := dbsize(t, s); n != 0 {
			t.Errorf("%s kept the lost lock's key", s.addr)
		}
	}
	if _, err := l.Extend(ctx); !errors.Is(err, redlock.ErrLockLost) {
		t.Errorf("Extend of a lost lock = %v", err)
	}
	l2 := mustLock(t, ctx, other, "ext")
	if err := l2.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestContextCancellation(t *testing.T) {
	servers := startCluster(t, 5)
	cfg := testConfig(30 * time.Second)
	cfg.Retries = -1
	a, b := dial(t, cfg, servers), dial(t, cfg, servers)

	// An ended context: nothing reaches the servers.
	done, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := a.Lock(done, "c"); !errors.Is(err, context.Canceled) || !errors.Is(err, redlock.ErrNotAcquired) {
		t.Fatalf("Lock with a canceled context = %v", err)
	}
	for _, s := range servers {
		if n := dbsize(t, s); n != 0 {
			t.Fatalf("%s holds %d keys after a canceled Lock", s.addr, n)
		}
	}

	ctx := ctxTimeout(t, time.Minute)
	la := mustLock(t, ctx, a, "c")

	// Retrying forever stops when the context does.
	short, cancelShort := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancelShort()
	start := time.Now()
	_, err := b.Lock(short, "c")
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, redlock.ErrNotAcquired) {
		t.Fatalf("Lock past its deadline = %v", err)
	}
	if el := time.Since(start); el > 300*time.Millisecond+2*cfg.ServerTimeout+time.Second {
		t.Errorf("Lock returned %v after start, long past its 300ms deadline", el)
	}
	for _, s := range servers {
		if got := get(t, s, cfg.KeyPrefix+"c"); got != la.Token() {
			t.Errorf("%s holds %q, want the holder's token", s.addr, got)
		}
	}

	// Extend with an ended context fails without losing the lock.
	until := la.Until()
	if _, err := la.Extend(done); !errors.Is(err, context.Canceled) || errors.Is(err, redlock.ErrLockLost) {
		t.Errorf("Extend with a canceled context = %v", err)
	}
	if la.Until() != until || la.Validity() <= 0 {
		t.Error("a canceled Extend changed the lock")
	}
	if err := la.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestHungServerCostsOneTimeout(t *testing.T) {
	servers := startCluster(t, 5)
	cfg := testConfig(10 * time.Second)
	rl := dial(t, cfg, servers)
	ctx := ctxTimeout(t, time.Minute)

	if err := servers[4].signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = servers[4].signal(syscall.SIGCONT) })
	start := time.Now()
	l := mustLock(t, ctx, rl, "hung")
	if el := time.Since(start); el < cfg.ServerTimeout || el > cfg.ServerTimeout+2*time.Second {
		t.Errorf("acquisition took %v; want about ServerTimeout %v (the hung server's wait, bounded)", el, cfg.ServerTimeout)
	}
	if max := cfg.TTL - time.Since(start) - cfg.TTL/100; l.Validity() > max {
		t.Errorf("validity %v does not discount the %v the attempt took", l.Validity(), time.Since(start))
	}
	if err := l.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestInvalidConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*redlock.Config)
	}{
		{"zero TTL", func(c *redlock.Config) { c.TTL = 0 }},
		{"zero server timeout", func(c *redlock.Config) { c.ServerTimeout = 0 }},
		{"server timeout near TTL", func(c *redlock.Config) { c.ServerTimeout = c.TTL / 2 }},
		{"negative drift", func(c *redlock.Config) { c.DriftFactor = -0.1 }},
		{"drift factor 1", func(c *redlock.Config) { c.DriftFactor = 1 }},
		{"NaN drift", func(c *redlock.Config) { c.DriftFactor = math.NaN() }},
		{"drift eats TTL", func(c *redlock.Config) { c.TTL, c.ServerTimeout = 2*time.Millisecond, 500*time.Microsecond }},
		{"negative delay", func(c *redlock.Config) { c.RetryDelay = -1 }},
		{"negative jitter", func(c *redlock.Config) { c.RetryJitter = -1 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := redlock.DefaultConfig()
			tc.edit(&cfg)
			if err := cfg.Validate(); !errors.Is(err, redlock.ErrInvalidConfig) {
				t.Errorf("Validate = %v", err)
			}
			if _, err := redlock.Dial(cfg, "127.0.0.1:1"); !errors.Is(err, redlock.ErrInvalidConfig) {
				t.Errorf("Dial = %v", err)
			}
		})
	}
	if err := redlock.DefaultConfig().Validate(); err != nil {
		t.Errorf("DefaultConfig: %v", err)
	}
	if _, err := redlock.New(redlock.DefaultConfig()); !errors.Is(err, redlock.ErrInvalidConfig) {
		t.Errorf("New without servers = %v", err)
	}
	plain := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:1"})
	defer plain.Close()
	if _, err := redlock.New(redlock.DefaultConfig(), plain); !errors.Is(err, redlock.ErrInvalidConfig) {
		t.Errorf("New with a client ignoring context deadlines = %v", err)
	}
}

func TestBadCallsChangeNothing(t *testing.T) {
	servers := startCluster(t, 1) // a single server is a quorum of one
	rl, err := redlock.Dial(testConfig(10*time.Second), servers[0].addr)
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxTimeout(t, time.Minute)
	if _, err := rl.Lock(ctx, ""); !errors.Is(err, redlock.ErrInvalidConfig) {
		t.Errorf("Lock with an empty name = %v", err)
	}
	l := mustLock(t, ctx, rl, "one")
	if rl.Quorum() != 1 {
		t.Errorf("quorum of one server = %d", rl.Quorum())
	}
	if err := rl.Close(); err != nil {
		t.Fatal(err)
	}
	if err := rl.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
	if _, err := rl.Lock(ctx, "two"); !errors.Is(err, redlock.ErrClosed) {
		t.Errorf("Lock after Close = %v", err)
	}
	if err := l.Unlock(ctx); !errors.Is(err, redlock.ErrClosed) {
		t.Errorf("Unlock after Close = %v", err)
	}
	if n := dbsize(t, servers[0]); n != 1 {
		t.Errorf("server holds %d keys, want only the lock taken before Close", n)
	}
}
