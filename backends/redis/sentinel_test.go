package redis_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/statenode/statenode/backends"
	"github.com/statenode/statenode/backends/backendtest"
	"github.com/statenode/statenode/backends/redis"
)

// sentinelSetup is 1 master + 2 replicas + 3 sentinels on free ports.
type sentinelSetup struct {
	master    *server
	replicas  []*server
	sentinels []string
}

func startSentinel(t *testing.T) *sentinelSetup {
	s := &sentinelSetup{master: startServer(t, false)}
	for range 2 {
		s.replicas = append(s.replicas, startServer(t, false, "replicaof 127.0.0.1 "+strconv.Itoa(s.master.port)))
	}
	for range 3 {
		sen := startServer(t, true,
			fmt.Sprintf("sentinel monitor sn 127.0.0.1 %d 2", s.master.port),
			"sentinel down-after-milliseconds sn 1000",
			"sentinel failover-timeout sn 10000",
			"sentinel parallel-syncs sn 2")
		s.sentinels = append(s.sentinels, sen.addr())
	}
	waitFor(t, 20*time.Second, "2 replicas in sync", func() bool {
		return infoField(s.master.addr(), "replication", "connected_slaves") == "2"
	})
	ctx := context.Background()
	waitFor(t, 20*time.Second, "sentinels to discover each other and the replicas", func() bool {
		for _, a := range s.sentinels {
			c := goredis.NewSentinelClient(&goredis.Options{Addr: a})
			reps, err1 := c.Replicas(ctx, "sn").Result()
			sens, err2 := c.Sentinels(ctx, "sn").Result()
			c.Close()
			if err1 != nil || err2 != nil || len(reps) != 2 || len(sens) != 2 {
				return false
			}
		}
		return true
	})
	return s
}

func newSentinelBackend(t testing.TB, s *sentinelSetup, mutate func(*redis.Config)) *redis.Backend {
	cfg := redis.DefaultConfig("")
	cfg.Addrs = s.sentinels
	cfg.MasterName = "sn"
	cfg.Prefix = "ha:"
	cfg.DialTimeout = 500 * time.Millisecond
	cfg.ReadTimeout = time.Second
	cfg.WriteTimeout = time.Second
	if mutate != nil {
		mutate(&cfg)
	}
	b, err := redis.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

func cmdCalls(addr, cmd string) int {
	v := infoField(addr, "commandstats", "cmdstat_"+cmd)
	_, rest, _ := strings.Cut(v, "calls=")
	n, _ := strconv.Atoi(strings.Split(rest, ",")[0])
	return n
}

// TestSentinel runs the conformance suite through Sentinel, checks replica
// read routing, then kills the master under a write load with
// WaitReplicas: 1 and checks that the backend follows the new master and
// that no acknowledged write was lost.
func TestSentinel(t *testing.T) {
	if testing.Short() {
		t.Skip("starts 6 redis-server processes")
	}
	s := startSentinel(t)
	ctx := context.Background()

	t.Run("Conformance", func(t *testing.T) {
		n := 0
		backendtest.Run(t, func(t *testing.T) backends.Backend {
			n++
			return newSentinelBackend(t, s, func(c *redis.Config) { c.Prefix = fmt.Sprintf("conf%d:", n) })
		})
	})

	t.Run("ReplicaReads", func(t *testing.T) {
		w := newSentinelBackend(t, s, nil)
		if _, err := w.Put(ctx, "routed", []byte("x"), backends.WriteOptions{}); err != nil {
			t.Fatal(err)
		}
		for _, mode := range []redis.ReadMode{redis.ReadReplicaOnly, redis.ReadRoundRobin, redis.ReadLowestLatency} {
			r := newSentinelBackend(t, s, func(c *redis.Config) { c.ReadMode = mode })
			waitFor(t, 10*time.Second, "the write to reach a replica", func() bool {
				v, err := r.Get(ctx, "routed")
				return err == nil && string(v.Value) == "x"
			})
			before := cmdCalls(s.master.addr(), "hmget")
			var repBefore int
			for _, rep := range s.replicas {
				repBefore += cmdCalls(rep.addr(), "hmget")
			}
			for range 40 {
				if _, err := r.Get(ctx, "routed"); err != nil {
					t.Fatal(err)
				}
			}
			onMaster := cmdCalls(s.master.addr(), "hmget") - before
			var onReplicas int
			for _, rep := range s.replicas {
				onReplicas += cmdCalls(rep.addr(), "hmget")
			}
			onReplicas -= repBefore
			t.Logf("mode %d: %d reads on the master, %d on replicas", mode, onMaster, onReplicas)
			if mode == redis.ReadReplicaOnly && (onMaster != 0 || onReplicas < 40) {
				t.Fatalf("ReplicaOnly: %d reads on the master, %d on replicas", onMaster, onReplicas)
			}
			if onMaster+onReplicas < 40 {
				t.Fatalf("mode %d: only %d of 40 reads seen", mode, onMaster+onReplicas)
			}
		}
	})

	t.Run("Failover", func(t *testing.T) {
		b := newSentinelBackend(t, s, func(c *redis.Config) {
			c.Prefix = "failover:"
			c.WaitReplicas = 1
			c.WaitTimeout = 500 * time.Millisecond
		})
		var (
			mu        sync.Mutex
			acked     = map[string]string{}
			killedAt  time.Time
			recovered time.Time
			failures  int
		)
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				key, val := fmt.Sprintf("k%06d", i), fmt.Sprintf("v%d", i)
				wctx, cancel := context.WithTimeout(ctx, 2*time.Second)
				_, err := b.Put(wctx, key, []byte(val), backends.WriteOptions{})
				cancel()
				mu.Lock()
				if err == nil {
					acked[key] = val
					if !killedAt.IsZero() && recovered.IsZero() {
						recovered = time.Now()
					}
				} else {
					failures++
					if !errors.Is(err, backends.ErrUnavailable) && !errors.Is(err, context.DeadlineExceeded) {
						t.Errorf("write during failover: %v", err)
					}
					time.Sleep(20 * time.Millisecond) // do not spin on a dead master
				}
				mu.Unlock()
			}
		})
		count := func() int { mu.Lock(); defer mu.Unlock(); return len(acked) }
		waitFor(t, 20*time.Second, "200 acknowledged writes", func() bool { return count() >= 200 })
		mu.Lock()
		killedAt = time.Now()
		mu.Unlock()
		old := s.master.addr()
		s.master.kill()
		waitFor(t, 60*time.Second, "writes to succeed on a new master", func() bool {
			mu.Lock()
			defer mu.Unlock()
			return !recovered.IsZero()
		})
		n := count()
		waitFor(t, 20*time.Second, "100 more writes", func() bool { return count() >= n+100 })
		close(stop)
		wg.Wait()
		t.Logf("failover: first acknowledged write %v after the master was killed; %d writes failed meanwhile; %d acknowledged in all",
			recovered.Sub(killedAt).Round(time.Millisecond), failures, len(acked))

		addr, err := b.Client().(*goredis.Client).Do(ctx, "ROLE").Slice()
		if err != nil || addr[0] != "master" {
			t.Fatalf("ROLE via the backend: %v %v", addr, err)
		}
		sc := goredis.NewSentinelClient(&goredis.Options{Addr: s.sentinels[0]})
		defer sc.Close()
		m, err := sc.GetMasterAddrByName(ctx, "sn").Result()
		if err != nil || fmt.Sprintf("%s:%s", m[0], m[1]) == old {
			t.Fatalf("sentinel still reports the old master %v (%v)", m, err)
		}
		keys := make([]string, 0, len(acked))
		for k := range acked {
			keys = append(keys, k)
		}
		vs, err := b.GetMany(ctx, keys)
		if err != nil {
			t.Fatal(err)
		}
		lost := 0
		for i, k := range keys {
			if string(vs[i].Value) != acked[k] {
				lost++
				if lost < 5 {
					t.Errorf("acknowledged write %s=%s lost (have %q)", k, acked[k], vs[i].Value)
				}
			}
		}
		if lost > 0 {
			t.Fatalf("%d of %d acknowledged writes lost", lost, len(acked))
		}
	})
}
