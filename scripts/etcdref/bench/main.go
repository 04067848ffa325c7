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
	// Before the clock, as statenode bench does: for the lock modes every
	// worker opens its session (which opens its connection), for the
	// others it sends one untimed request of its mode, so that the timed
	// run starts with its connections open.
	workers := make([]*benchWorker, clients)
	errs := make(chan error, clients)
	var warm sync.WaitGroup
	for w := range clients {
		warm.Add(1)
		go func() {
			defer warm.Done()
			bw, err := newWorker(ctx, cs[w%len(cs)], mode, w, val)
			if err == nil && bw.session == nil {
				err = bw.once(ctx, 0)
			}
			workers[w] = bw
			if err != nil {
				errs <- err
			}
		}()
	}
	warm.Wait()
	for _, bw := range workers {
		if bw != nil && bw.session != nil {
			defer bw.session.Close()
		}
	}
	select {
	case err := <-errs:
		return fmt.Errorf("warm-up: %w", err)
	default:
	}
	var next atomic.Int64
	lat := make([][]time.Duration, clients)
	var wg sync.WaitGroup
	start := time.Now()
	for w := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := workers[w].run(ctx, &next, int64(total), &lat[w]); err != nil {
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

// benchWorker is one worker's client, value and, for the lock modes,
// its session and mutex.
type benchWorker struct {
	c       *clientv3.Client
	mode    string
	val     string
	session *concurrency.Session
	m       *concurrency.Mutex
}

func newWorker(ctx context.Context, c *clientv3.Client, mode string, w int, val string) (*benchWorker, error) {
	bw := &benchWorker{c: c, mode: mode, val: val}
	if strings.HasPrefix(mode, "lock") {
		s, err := concurrency.NewSession(c, concurrency.WithContext(ctx))
		if err != nil {
			return nil, err
		}
		name := "/lock/one"
		if mode == "lockdistinct" {
			name = fmt.Sprintf("/lock/%d", w)
		}
		bw.session, bw.m = s, concurrency.NewMutex(s, name)
	}
	return bw, nil
}

// once sends request i of the worker's mode.
func (bw *benchWorker) once(ctx context.Context, i int64) error {
	var err error
	switch bw.mode {
	case "put":
		_, err = bw.c.Put(ctx, fmt.Sprintf("%08d", i%10000), bw.val)
	case "get-l":
		_, err = bw.c.Get(ctx, "00000001")
	case "get-s":
		_, err = bw.c.Get(ctx, "00000001", clientv3.WithSerializable())
	case "lock", "lockdistinct", "lockcontended":
		if err = bw.m.Lock(ctx); err == nil {
			err = bw.m.Unlock(ctx)
		}
	default:
		return fmt.Errorf("unknown mode %q", bw.mode)
	}
	return err
}

// run sends requests until total are taken, timing each.
func (bw *benchWorker) run(ctx context.Context, next *atomic.Int64, total int64, lat *[]time.Duration) error {
	for {
		i := next.Add(1)
		if i > total {
			return nil
		}
		t := time.Now()
		if err := bw.once(ctx, i); err != nil {
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
