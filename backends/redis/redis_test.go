package redis_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/statenode/statenode/backends"
	"github.com/statenode/statenode/backends/backendtest"
	"github.com/statenode/statenode/backends/redis"
)

const sharedAddr = "127.0.0.1:6379"

// go-redis v9.17.3's NewFailoverClusterClient (used for Sentinel replica
// reads) never closes its sentinel subscription: Close leaves these three
// goroutines behind (see docs/BACKENDS.md). Nothing else is ignored.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreTopFunction("github.com/redis/go-redis/v9.(*sentinelFailover).listen"),
		goleak.IgnoreTopFunction("github.com/redis/go-redis/v9.(*channel).initHealthCheck.func1"),
		goleak.IgnoreAnyFunction("github.com/redis/go-redis/v9.(*channel).initMsgChan.func1"),
	)
}

// uniquePrefix returns a key prefix no other run uses, and deletes its keys
// at the end of the test.
func uniquePrefix(t testing.TB) string {
	var buf [6]byte
	_, _ = rand.Read(buf[:])
	p := "statenode-test:" + hex.EncodeToString(buf[:]) + ":"
	t.Cleanup(func() { cleanupPrefix(p) })
	return p
}

func cleanupPrefix(prefix string) {
	cfg := redis.DefaultConfig(sharedAddr)
	b, err := redis.New(cfg)
	if err != nil {
		return
	}
	defer b.Close()
	ctx := context.Background()
	c := b.Client()
	iter := c.Scan(ctx, 0, prefix+"*", 1000).Iterator()
	var keys []string
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	if len(keys) > 0 {
		c.Unlink(ctx, keys...)
	}
}

func newShared(t testing.TB) *redis.Backend {
	cfg := redis.DefaultConfig(sharedAddr)
	cfg.Prefix = uniquePrefix(t)
	b, err := redis.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestConformance(t *testing.T) {
	backendtest.Run(t, func(t *testing.T) backends.Backend { return newShared(t) })
}

// TestDown checks that a store that is not there gives ErrUnavailable.
func TestDown(t *testing.T) {
	cfg := redis.DefaultConfig("127.0.0.1:1") // nothing listens on port 1
	cfg.MaxRetries = -1
	cfg.DialTimeout = 200 * time.Millisecond
	b, err := redis.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx := context.Background()
	if _, err := b.Get(ctx, "k"); !errors.Is(err, backends.ErrUnavailable) {
		t.Fatalf("Get on a down store: %v", err)
	}
	if _, err := b.Put(ctx, "k", []byte("v"), backends.WriteOptions{}); !errors.Is(err, backends.ErrUnavailable) {
		t.Fatalf("Put on a down store: %v", err)
	}
	if err := b.Ping(ctx); !errors.Is(err, backends.ErrUnavailable) {
		t.Fatalf("Ping on a down store: %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	bad := []redis.Config{
		{},
		{Addrs: []string{"a"}, Cluster: true, MasterName: "m"},
		{Addrs: []string{"a"}, ReadMode: redis.ReadReplicaOnly},
		{Addrs: []string{"a"}, Cluster: true, WaitReplicas: 1},
	}
	for i, c := range bad {
		if _, err := redis.New(c); !errors.Is(err, redis.ErrConfig) {
			t.Errorf("config %d: %v", i, err)
		}
	}
}

// TestWaitWithoutReplicas checks that WaitReplicas reports a write no
// replica acknowledged (the shared server has none).
func TestWaitWithoutReplicas(t *testing.T) {
	cfg := redis.DefaultConfig(sharedAddr)
	cfg.Prefix = uniquePrefix(t)
	cfg.WaitReplicas = 1
	cfg.WaitTimeout = 50 * time.Millisecond
	b, err := redis.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	_, err = b.Put(context.Background(), "k", []byte("v"), backends.WriteOptions{})
	if !errors.Is(err, redis.ErrNotAcknowledged) || !errors.Is(err, backends.ErrUnavailable) {
		t.Fatalf("unacknowledged write: %v", err)
	}
}
