// Command bench is the etcd side of docs/PERFORMANCE.md: the workloads of
// scripts/bench-cluster.sh run against an etcd cluster with etcd's own Go
// client (clientv3, concurrency.Mutex with one session per worker, as
// etcd's benchmark tool does). It finds the leader among --endpoints and
// sends everything to it, as bench-cluster.sh does with statenode.
//
//	bench --endpoints A,B,C --mode put --clients 100 --conns 10 --total 100000
//
// Modes: put, get-l (linearizable get), get-s (serializable get), lock
// (one holder), lockdistinct (one lock per worker), lockcontended (one
// lock for all workers).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

func main() {
	eps := flag.String("endpoints", "127.0.0.1:2379", "comma-separated client endpoints")
	clients := flag.Int("clients", 1, "concurrent workers")
	conns := flag.Int("conns", 1, "client connections the workers share")
	total := flag.Int("total", 1000, "operations (lock modes: lock+unlock cycles)")
	mode := flag.String("mode", "put", "put | get-l | get-s | lock | lockdistinct | lockcontended")
	flag.Parse()
	if err := run(strings.Split(*eps, ","), *mode, *clients, *conns, *total); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(endpoints []string, mode string, clients, conns, total int) error {
	ctx := context.Background()
	leader, err := findLeader(ctx, endpoints)
	if err != nil {
		return err
	}
	cs := make([]*clientv3.Client, conns)
	for i := range cs {
		c, err := clientv3.New(clientv3.Config{Endpoints: []string{leader}, DialTimeout: 5 * time.Second})
		if err != nil {
			return err
		}
		defer c.Close()
		cs[i] = c
	}
	val := strings.Repeat("x", 256)
	if _, err := cs[0].Put(ctx, "00000001", val); err != nil {
		return err
	}
	// Every worker sends one untimed request first, as statenode bench
	// does: the timed run starts with its connections open.
	var warm sync.WaitGroup
	for w := range clients {
		warm.Add(1)
		go func() {
			defer warm.Done()
			_, _ = cs[w%len(cs)].Get(ctx, "00000001", clientv3.WithSerializable())
		}()
	}
	warm.Wait()
	var next atomic.Int64
	lat := make([][]time.Duration, clients)
	errs := make(chan error, clients)
	var wg sync.WaitGroup
	start := time.Now()
	for w := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := worker(ctx, cs[w%len(cs)], mode, w, val, &next, int64(total), &lat[w]); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	p := func(q float64) time.Duration { return all[int(q*float64(len(all)-1))].Round(time.Microsecond) }
	// The layout of `statenode bench`'s summary lines, for scripts that
	// read both (bench-compare.sh).
	fmt.Printf("etcd %s clients=%d conns=%d total=%d leader=%s\n  Requests/sec:\t%.4f\n", mode, clients, conns, len(all), leader, float64(len(all))/elapsed.Seconds())
	for _, q := range []struct {
		name string
		q    float64
	}{{"50", .5}, {"90", .9}, {"99", .99}, {"99.9", .999}} {
		fmt.Printf("  %s%% in %.4f secs.\n", q.name, p(q.q).Seconds())
	}
	return nil
}

func worker(ctx context.Context, c *clientv3.Client, mode string, w int, val string, next *atomic.Int64, total int64, lat *[]time.Duration) error {
	var m *concurrency.Mutex
	if strings.HasPrefix(mode, "lock") {
		s, err := concurrency.NewSession(c)
		if err != nil {
			return err
		}
		defer s.Close()
		name := "/lock/one"
		if mode == "lockdistinct" {
			name = fmt.Sprintf("/lock/%d", w)
		}
		m = concurrency.NewMutex(s, name)
	}
	for {
		i := next.Add(1)
		if i > total {
			return nil
		}
		t := time.Now()
		var err error
		switch mode {
		case "put":
			_, err = c.Put(ctx, fmt.Sprintf("%08d", i%10000), val)
		case "get-l":
			_, err = c.Get(ctx, "00000001")
		case "get-s":
			_, err = c.Get(ctx, "00000001", clientv3.WithSerializable())
		case "lock", "lockdistinct", "lockcontended":
			if err = m.Lock(ctx); err == nil {
				err = m.Unlock(ctx)
			}
		default:
			return fmt.Errorf("unknown mode %q", mode)
		}
		if err != nil {
			return err
		}
		*lat = append(*lat, time.Since(t))
	}
}

// findLeader returns the endpoint whose member leads.
func findLeader(ctx context.Context, endpoints []string) (string, error) {
	c, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 5 * time.Second})
	if err != nil {
		return "", err
	}
	defer c.Close()
	for range 100 {
		for _, ep := range endpoints {
			sctx, cancel := context.WithTimeout(ctx, time.Second)
			st, err := c.Status(sctx, ep)
			cancel()
			if err == nil && st.Leader != 0 && st.Leader == st.Header.MemberId {
				return ep, nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return "", fmt.Errorf("no leader among %v", endpoints)
}
