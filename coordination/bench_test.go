package coordination_test

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/statenode/statenode/client"
	"github.com/statenode/statenode/coordination"
	"github.com/statenode/statenode/node/nodetest"
)

// Benchmarks on a 3-node loopback cluster, through the HTTP client (one
// session per worker), reporting lock+unlock cycles per second.

func benchClient(b *testing.B) (*nodetest.Cluster, *client.Client) {
	c := nodetest.MakeCluster(b, 3)
	var eps []string
	for _, i := range c.Running() {
		eps = append(eps, c.Node(i).HTTPAddr())
	}
	cl, err := client.New(client.Config{Endpoints: eps})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cl.Close() })
	return c, cl
}

func benchLocks(b *testing.B, workers int, distinct bool) {
	_, cl := benchClient(b)
	ctx := context.Background()
	mutexes := make([]*coordination.Mutex, workers)
	for i := range mutexes {
		s, err := coordination.NewSession(cl)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { s.Close() })
		name := "bench/lock"
		if distinct {
			name = fmt.Sprintf("bench/lock/%d", i)
		}
		mutexes[i] = coordination.NewMutex(s, name)
	}
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	per := (b.N + workers - 1) / workers
	for _, m := range mutexes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range per {
				if err := m.Lock(ctx); err != nil {
					b.Error(err)
					return
				}
				if err := m.Unlock(ctx); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.ReportMetric(float64(per*workers)/time.Since(start).Seconds(), "cycles/s")
}

func BenchmarkLockOneHolder(b *testing.B)        { benchLocks(b, 1, true) }
func BenchmarkLock100DistinctLocks(b *testing.B) { benchLocks(b, 100, true) }
func BenchmarkLock10Contended(b *testing.B)      { benchLocks(b, 10, false) }

// BenchmarkElectionHandoff measures resign -> the next campaigner leads
// (as the campaigner observes it), and reports the p50 and p99.
func BenchmarkElectionHandoff(b *testing.B) {
	_, cl := benchClient(b)
	ctx := context.Background()
	var es [2]*coordination.Election
	for i := range es {
		s, err := coordination.NewSession(cl)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { s.Close() })
		if es[i], err = coordination.NewElection(s, "bench/election"); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := es[0].Campaign(ctx, "0"); err != nil {
		b.Fatal(err)
	}
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		cur, next := es[i%2], es[(i+1)%2]
		led := make(chan error, 1)
		go func() { _, err := next.Campaign(ctx, "x"); led <- err }()
		// If the resign commits before the candidacy, the candidate leads
		// at once: the latency is still resign -> next leader.
		start := time.Now()
		if err := cur.Resign(ctx); err != nil {
			b.Fatal(err)
		}
		if err := <-led; err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}
