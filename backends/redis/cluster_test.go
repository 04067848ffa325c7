package redis_test

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/statenode/statenode/backends"
	"github.com/statenode/statenode/backends/backendtest"
	"github.com/statenode/statenode/backends/redis"
)

// startCluster runs 6 cluster-enabled redis-servers and joins them with
// redis-cli --cluster create (3 masters, 1 replica each).
func startCluster(t *testing.T) []string {
	var addrs []string
	for range 6 {
		s := startServer(t, false, "cluster-enabled yes", "cluster-config-file nodes.conf", "cluster-node-timeout 2000")
		addrs = append(addrs, s.addr())
	}
	args := append([]string{"--cluster", "create"}, addrs...)
	args = append(args, "--cluster-replicas", "1", "--cluster-yes")
	if out, err := exec.Command("redis-cli", args...).CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	waitFor(t, 30*time.Second, "cluster_state:ok on every node", func() bool {
		for _, a := range addrs {
			c := goredis.NewClient(&goredis.Options{Addr: a})
			info, err := c.ClusterInfo(context.Background()).Result()
			c.Close()
			if err != nil || !strings.Contains(info, "cluster_state:ok") {
				return false
			}
		}
		return true
	})
	return addrs
}

func newClusterBackend(t testing.TB, addrs []string, prefix string) *redis.Backend {
	cfg := redis.DefaultConfig("")
	cfg.Addrs, cfg.Cluster, cfg.Prefix = addrs, true, prefix
	b, err := redis.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

// TestCluster runs the conformance suite on a 6-node cluster, checks
// batches that span slots, and migrates a slot under load.
func TestCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts 6 redis-server processes")
	}
	if _, err := exec.LookPath("redis-cli"); err != nil {
		t.Skip("redis-cli not installed")
	}
	addrs := startCluster(t)
	ctx := context.Background()

	t.Run("Conformance", func(t *testing.T) {
		n := 0
		backendtest.Run(t, func(t *testing.T) backends.Backend {
			n++ // a hash tag: one slot per store, atomic batches, global fences
			return newClusterBackend(t, addrs, fmt.Sprintf("{conf%d}:", n))
		})
	})

	t.Run("CrossSlotBatches", func(t *testing.T) {
		b := newClusterBackend(t, addrs, "spread:")
		items := make([]backends.Item, 200)
		keys := make([]string, len(items))
		for i := range items {
			keys[i] = fmt.Sprintf("key-%d", i)
			items[i] = backends.Item{Key: keys[i], Value: []byte(keys[i])}
		}
		if _, err := b.PutMany(ctx, items, backends.WriteOptions{}); err != nil {
			t.Fatal(err)
		}
		vs, err := b.GetMany(ctx, keys)
		if err != nil {
			t.Fatal(err)
		}
		for i, v := range vs {
			if string(v.Value) != keys[i] {
				t.Fatalf("%s = %q", keys[i], v.Value)
			}
		}
		page, err := b.List(ctx, "key-1", backends.ListOptions{})
		if err != nil || len(page.Entries) != 111 { // key-1, key-10..19, key-100..199
			t.Fatalf("List across masters: %d entries, %v", len(page.Entries), err)
		}
		if err := b.DeleteMany(ctx, keys, backends.WriteOptions{}); err != nil {
			t.Fatal(err)
		}
		// Per-key fences without a hash tag.
		f := func(tok uint64) backends.WriteOptions {
			return backends.WriteOptions{Fence: &backends.Fence{Lock: "l", Token: tok}}
		}
		if _, err := b.PutMany(ctx, items[:20], f(2)); err != nil {
			t.Fatal(err)
		}
		if _, err := b.Put(ctx, keys[3], []byte("stale"), f(1)); err == nil {
			t.Fatal("stale fenced write accepted")
		}
	})

	t.Run("SlotMigrationUnderLoad", func(t *testing.T) {
		b := newClusterBackend(t, addrs, "mig:")
		admin := goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: addrs})
		defer admin.Close()
		key := func(i int) string { return fmt.Sprintf("{m}/%05d", i) }
		slot := int(admin.ClusterKeySlot(ctx, "mig:d:"+key(0)).Val())

		// Preload so the migration takes a while.
		items := make([]backends.Item, 300)
		for i := range items {
			items[i] = backends.Item{Key: key(i), Value: []byte("v0")}
		}
		if _, err := b.PutMany(ctx, items, backends.WriteOptions{}); err != nil {
			t.Fatal(err)
		}

		// Find the slot's owner and another master.
		var src, dst goredis.ClusterNode
		slots, err := admin.ClusterSlots(ctx).Result()
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range slots {
			if slot >= s.Start && slot <= s.End {
				src = s.Nodes[0]
			}
		}
		for _, s := range slots {
			if s.Nodes[0].Addr != src.Addr {
				dst = s.Nodes[0]
				break
			}
		}
		node := func(addr string) *goredis.Client { return goredis.NewClient(&goredis.Options{Addr: addr}) }
		srcC, dstC := node(src.Addr), node(dst.Addr)
		defer srcC.Close()
		defer dstC.Close()

		// Load: overwrite the preloaded keys with increasing values and
		// read them back, remembering what was acknowledged.
		var mu sync.Mutex
		acked := map[string]string{}
		var errs []error
		stop := make(chan struct{})
		var wg sync.WaitGroup
		var during int
		migrating := false
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				k, v := key(i%len(items)), fmt.Sprintf("v%d", i+1)
				_, err := b.Put(ctx, k, []byte(v), backends.WriteOptions{})
				if err == nil {
					var got backends.VersionedValue
					got, err = b.Get(ctx, k)
					if err == nil && string(got.Value) != v {
						err = fmt.Errorf("read %s = %q right after writing %q", k, got.Value, v)
					}
				}
				mu.Lock()
				if err != nil {
					errs = append(errs, err)
				} else {
					acked[k] = v
					if migrating {
						during++
					}
				}
				mu.Unlock()
			}
		})

		mu.Lock()
		migrating = true
		mu.Unlock()
		if err := dstC.Do(ctx, "CLUSTER", "SETSLOT", slot, "IMPORTING", src.ID).Err(); err != nil {
			t.Fatal(err)
		}
		if err := srcC.Do(ctx, "CLUSTER", "SETSLOT", slot, "MIGRATING", dst.ID).Err(); err != nil {
			t.Fatal(err)
		}
		host, port, _ := strings.Cut(dst.Addr, ":")
		for {
			keys, err := srcC.ClusterGetKeysInSlot(ctx, slot, 1).Result()
			if err != nil {
				t.Fatal(err)
			}
			if len(keys) == 0 {
				break
			}
			// One key per MIGRATE keeps the slot half-moved (ASK) for a while.
			if err := srcC.Migrate(ctx, host, port, keys[0], 0, 5*time.Second).Err(); err != nil && !strings.Contains(err.Error(), "NOKEY") {
				t.Fatal(err)
			}
		}
		for _, a := range []string{src.Addr, dst.Addr} {
			c := node(a)
			err := c.Do(ctx, "CLUSTER", "SETSLOT", slot, "NODE", dst.ID).Err()
			c.Close()
			if err != nil {
				t.Fatal(err)
			}
		}
		mu.Lock()
		migrating = false
		n := len(acked)
		mu.Unlock()
		// Keep going until writes have run against the new owner (MOVED).
		waitFor(t, 20*time.Second, "writes after the migration", func() bool {
			mu.Lock()
			defer mu.Unlock()
			return len(acked) > n+100 || len(errs) > 0
		})
		close(stop)
		wg.Wait()
		if len(errs) > 0 {
			t.Fatalf("%d failed operations during migration, first: %v", len(errs), errs[0])
		}
		t.Logf("slot %d moved %s → %s; %d operations succeeded during the migration", slot, src.Addr, dst.Addr, during)
		if during == 0 {
			t.Fatal("no load ran during the migration")
		}
		if got := dstC.ClusterCountKeysInSlot(ctx, slot).Val(); got != int64(len(items)) {
			t.Fatalf("destination holds %d keys of slot %d, want %d", got, slot, len(items))
		}
		for k, v := range acked {
			got, err := b.Get(ctx, k)
			if err != nil || string(got.Value) != v {
				t.Fatalf("%s = %q (%v), acknowledged %q", k, got.Value, err, v)
			}
		}
	})
}
