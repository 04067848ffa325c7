package cached_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/goleak"

	"github.com/statenode/statenode/backends"
	"github.com/statenode/statenode/backends/backendtest"
	"github.com/statenode/statenode/backends/breaker"
	"github.com/statenode/statenode/backends/cached"
	"github.com/statenode/statenode/backends/compressed"
	"github.com/statenode/statenode/backends/fenced"
	"github.com/statenode/statenode/backends/memory"
	"github.com/statenode/statenode/backends/metrics"
	"github.com/statenode/statenode/backends/postgres"
	"github.com/statenode/statenode/backends/redis"

	"github.com/prometheus/client_golang/prometheus"
)

const (
	redisAddr = "127.0.0.1:6379"
	pgConn    = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func unique() string {
	var buf [6]byte
	_, _ = rand.Read(buf[:])
	return hex.EncodeToString(buf[:])
}

// newRedis returns a redis store under a unique prefix, removed at cleanup.
func newRedis(t testing.TB) *redis.Backend {
	cfg := redis.DefaultConfig(redisAddr)
	cfg.Prefix = "statenode-test:" + unique() + ":"
	b, err := redis.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c, err := redis.New(redis.DefaultConfig(redisAddr))
		if err != nil {
			return
		}
		defer c.Close()
		ctx := context.Background()
		it := c.Client().Scan(ctx, 0, cfg.Prefix+"*", 1000).Iterator()
		var keys []string
		for it.Next(ctx) {
			keys = append(keys, it.Val())
		}
		if len(keys) > 0 {
			c.Client().Unlink(ctx, keys...)
		}
	})
	return b
}

// newPostgres returns a postgres store in a unique schema, dropped at cleanup.
func newPostgres(t testing.TB, schema string) *postgres.Backend {
	if schema == "" {
		schema = "sn_test_" + unique()
	}
	cfg := postgres.DefaultConfig(pgConn)
	cfg.Schema = schema
	cfg.MaxConns = 8
	b, err := postgres.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx := context.Background()
		conn, err := pgx.Connect(ctx, pgConn)
		if err != nil {
			return
		}
		defer conn.Close(ctx)
		_, _ = conn.Exec(ctx, `DROP SCHEMA IF EXISTS `+pgx.Identifier{schema}.Sanitize()+` CASCADE`)
	})
	return b
}

func mustCached(t testing.TB, cfg cached.Config) *cached.Backend {
	b, err := cached.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestConformanceLocal(t *testing.T) {
	backendtest.Run(t, func(t *testing.T) backends.Backend {
		return mustCached(t, cached.Config{Store: memory.New()})
	})
}

// TestConformanceThreeTier runs the suite on LRU → Redis → PostgreSQL.
func TestConformanceThreeTier(t *testing.T) {
	backendtest.Run(t, func(t *testing.T) backends.Backend {
		remote := newRedis(t)
		return mustCached(t, cached.Config{
			Store:       newPostgres(t, ""),
			Remote:      remote,
			Invalidator: redis.NewInvalidator(remote.Client(), "statenode-test:"+unique()),
		})
	})
}

// TestConformanceStack runs the suite on every wrapper stacked over the
// real stores: metrics(breaker(fenced(compressed(cached(LRU → Redis →
// Postgres))))).
func TestConformanceStack(t *testing.T) {
	reg := prometheus.NewRegistry()
	backendtest.Run(t, func(t *testing.T) backends.Backend {
		remote := newRedis(t)
		c := mustCached(t, cached.Config{Store: newPostgres(t, ""), Remote: remote})
		z, err := compressed.New(c, compressed.Config{Threshold: 16})
		if err != nil {
			t.Fatal(err)
		}
		f := fenced.New(z, fenced.Static(backends.Fence{Lock: "stack", Token: 1}))
		return metrics.New(breaker.New(f, breaker.DefaultConfig("stack")), "stack", reg)
	})
}

// TestConformanceRedisStack runs compressed and breaker over Redis alone.
func TestConformanceRedisStack(t *testing.T) {
	backendtest.Run(t, func(t *testing.T) backends.Backend {
		z, err := compressed.New(newRedis(t), compressed.Config{Algorithm: compressed.Snappy, Threshold: 16})
		if err != nil {
			t.Fatal(err)
		}
		return breaker.New(z, breaker.DefaultConfig("redis"))
	})
}

// TestCrossNodeInvalidation has two nodes cache one PostgreSQL store with
// an hour-long LocalTTL: node B must see node A's write through the pub/sub
// invalidation, not by expiry.
func TestCrossNodeInvalidation(t *testing.T) {
	ctx := context.Background()
	schema := "sn_test_" + unique()
	channel := "statenode-test:" + unique()
	shared := newRedis(t) // every node must share the remote tier
	defer shared.Close()
	node := func() *cached.Backend {
		remote := sharedPrefix(t, shared)
		return mustCached(t, cached.Config{
			Store:       newPostgres(t, schema),
			Remote:      remote,
			LocalTTL:    time.Hour,
			Invalidator: redis.NewInvalidator(remote.Client(), channel),
		})
	}
	a, b := node(), node()
	defer a.Close()
	defer b.Close()
	if _, err := a.Put(ctx, "k", []byte("v1"), backends.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	if v, err := b.Get(ctx, "k"); err != nil || string(v.Value) != "v1" {
		t.Fatalf("b: %+v %v", v, err)
	}
	if v, err := b.Get(ctx, "k"); err != nil || string(v.Value) != "v1" {
		t.Fatalf("b: %+v %v", v, err)
	}
	st, _ := b.Stats(ctx)
	if st.Extra["cache_local_hits"] != 1 {
		t.Fatalf("second read was not a local hit: %v", st.Extra)
	}
	if _, err := a.Put(ctx, "k", []byte("v2"), backends.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		v, err := b.Get(ctx, "k")
		if err != nil {
			t.Fatal(err)
		}
		if string(v.Value) == "v2" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("node b never saw node a's write")
		}
		time.Sleep(5 * time.Millisecond)
	}
	// A delete invalidates too.
	if err := a.Delete(ctx, "k", backends.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	for {
		_, err := b.Get(ctx, "k")
		if err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("node b never saw node a's delete")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestRemoteTier checks that a node with a cold LRU is served by Redis,
// not PostgreSQL.
func TestRemoteTier(t *testing.T) {
	ctx := context.Background()
	schema := "sn_test_" + unique()
	remote := newRedis(t)
	a := mustCached(t, cached.Config{Store: newPostgres(t, schema), Remote: remote})
	defer a.Close()
	for i := range 10 {
		if _, err := a.Put(ctx, fmt.Sprint("k", i), []byte("v"), backends.WriteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// Node a's writes went through to its LRU only; a cold node's reads
	// fill Redis.
	c := mustCached(t, cached.Config{Store: newPostgres(t, schema), Remote: sharedPrefix(t, remote)})
	defer c.Close()
	if _, err := c.GetMany(ctx, []string{"k0", "k1", "k2"}); err != nil {
		t.Fatal(err)
	}
	b := mustCached(t, cached.Config{Store: newPostgres(t, schema), Remote: sharedPrefix(t, remote)})
	defer b.Close()
	vs, err := b.GetMany(ctx, []string{"k0", "k1", "k2", "k3"})
	if err != nil || !vs[3].Found() {
		t.Fatal(err)
	}
	bs, _ := b.Stats(ctx)
	if bs.Extra["cache_remote_hits"] != 3 || bs.Extra["cache_misses"] != 1 {
		t.Fatalf("tiers: %v", bs.Extra)
	}
}

// sharedPrefix opens a second redis store on the same prefix as r.
func sharedPrefix(t testing.TB, r *redis.Backend) *redis.Backend {
	cfg := redis.DefaultConfig(redisAddr)
	cfg.Prefix = r.Prefix()
	b, err := redis.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
