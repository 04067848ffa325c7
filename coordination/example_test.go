package coordination_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"os"
	"time"

	"github.com/statenode/statenode/client"
	"github.com/statenode/statenode/coordination"
	"github.com/statenode/statenode/node"
)

// Both the embedded node and the remote client are backends.
var (
	_ coordination.Backend         = (*node.Node)(nil)
	_ coordination.Backend         = (*client.Client)(nil)
	_ coordination.ElectionBackend = (*node.Node)(nil)
	_ coordination.ElectionBackend = (*client.Client)(nil)

	_ coordination.SemaphoreBackend = (*node.Node)(nil)
	_ coordination.SemaphoreBackend = (*client.Client)(nil)
	_ coordination.BarrierBackend   = (*node.Node)(nil)
	_ coordination.BarrierBackend   = (*client.Client)(nil)
	_ coordination.LatchBackend     = (*node.Node)(nil)
	_ coordination.LatchBackend     = (*client.Client)(nil)
)

// startExampleNode runs a single-node cluster for the examples.
func startExampleNode() (*node.Node, func()) {
	dir, err := os.MkdirTemp("", "statenode-coord-example")
	if err != nil {
		log.Fatal(err)
	}
	cfg := node.DefaultLocalConfig()
	cfg.ID, cfg.DataDir, cfg.Bootstrap = "n1", dir, true
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	n, err := node.New(cfg)
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.Start(ctx); err != nil {
		log.Fatal(err)
	}
	for !n.Ready() {
		if ctx.Err() != nil {
			log.Fatal("no leader")
		}
		time.Sleep(5 * time.Millisecond)
	}
	return n, func() {
		_ = n.Shutdown(context.Background())
		os.RemoveAll(dir)
	}
}

func ExampleNewMutex() {
	n, stop := startExampleNode()
	defer stop()
	ctx := context.Background()

	s, err := coordination.NewSession(n, coordination.WithTTL(5*time.Second))
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()

	m := coordination.NewMutex(s, "jobs/compactor")
	if err := m.Lock(ctx); err != nil {
		log.Fatal(err)
	}
	fmt.Println("holding the lock, token > 0:", m.Token() > 0)
	if err := m.Unlock(ctx); err != nil {
		log.Fatal(err)
	}
	// Output:
	// holding the lock, token > 0: true
}

// A holder pauses past its TTL; its session expires and the lock moves to
// the next waiter. When the old holder wakes up and writes with its
// fencing token, the cluster refuses the write.
func ExampleMutex_PutFenced() {
	n, stop := startExampleNode()
	defer stop()
	ctx := context.Background()

	c, err := client.New(client.Config{Endpoints: []string{n.HTTPAddr()}})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	slow, err := coordination.NewSession(c, coordination.WithTTL(2*time.Second))
	if err != nil {
		log.Fatal(err)
	}
	old := coordination.NewMutex(slow, "reports")
	if err := old.Lock(ctx); err != nil {
		log.Fatal(err)
	}
	if _, err := old.PutFenced(ctx, "reports/latest", []byte("from the first holder")); err != nil {
		log.Fatal(err)
	}

	// The first holder stalls (a GC pause, a stopped VM): no keepalives.
	slow.Orphan()

	fast, err := coordination.NewSession(c)
	if err != nil {
		log.Fatal(err)
	}
	defer fast.Close()
	next := coordination.NewMutex(fast, "reports")
	if err := next.Lock(ctx); err != nil { // granted once the old session expires
		log.Fatal(err)
	}
	fmt.Println("newer token:", next.Token() > old.Token())

	// The first holder wakes up and writes with its old token.
	_, err = old.PutFenced(ctx, "reports/latest", []byte("stale write"))
	fmt.Println("stale write refused:", errors.Is(err, coordination.ErrFenced))

	if _, err := next.PutFenced(ctx, "reports/latest", []byte("from the new holder")); err != nil {
		log.Fatal(err)
	}
	kv, err := c.Get(ctx, "reports/latest")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(kv.Value))
	// Output:
	// newer token: true
	// stale write refused: true
	// from the new holder
}

func ExampleNewSession() {
	n, stop := startExampleNode()
	defer stop()

	s, err := coordination.NewSession(n, coordination.WithTTL(2*time.Second), coordination.WithName("worker-1"))
	if err != nil {
		log.Fatal(err)
	}
	select {
	case <-s.Done():
		fmt.Println("unexpected end:", s.Err())
	default:
		fmt.Println("session is alive")
	}
	if err := s.Close(); err != nil {
		log.Fatal(err)
	}
	<-s.Done()
	fmt.Println(errors.Is(s.Err(), coordination.ErrClosed))
	// Output:
	// session is alive
	// true
}

func ExampleNewElection() {
	n, stop := startExampleNode()
	defer stop()
	ctx := context.Background()

	s, err := coordination.NewSession(n)
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	e, err := coordination.NewElection(s, "scheduler")
	if err != nil {
		log.Fatal(err)
	}
	if _, err := e.Campaign(ctx, "10.0.0.7:8080"); err != nil {
		log.Fatal(err)
	}
	leader, err := e.Leader(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(leader.Value, leader.Term == e.Term())
	if err := e.Resign(ctx); err != nil {
		log.Fatal(err)
	}
	// Output:
	// 10.0.0.7:8080 true
}

func ExampleNewSemaphore() {
	n, stop := startExampleNode()
	defer stop()
	ctx := context.Background()

	s, err := coordination.NewSession(n)
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	// Three permits for the whole cluster, e.g. concurrent backups.
	sem, err := coordination.NewSemaphore(s, "backups", 3)
	if err != nil {
		log.Fatal(err)
	}
	if err := sem.Acquire(ctx, 2); err != nil {
		log.Fatal(err)
	}
	err = sem.TryAcquire(ctx, 2)
	fmt.Println("two more refused:", errors.Is(err, coordination.ErrNoPermits))
	info, err := sem.Info(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%d of %d permits used\n", info.Used, info.Permits)
	if err := sem.Release(ctx, 0); err != nil {
		log.Fatal(err)
	}
	// Output:
	// two more refused: true
	// 2 of 3 permits used
}

func ExampleNewBarrier() {
	n, stop := startExampleNode()
	defer stop()
	ctx := context.Background()

	gens := make(chan coordination.Generation, 2)
	for range 2 {
		s, err := coordination.NewSession(n)
		if err != nil {
			log.Fatal(err)
		}
		defer s.Close()
		b, err := coordination.NewBarrier(s, "phase", 2)
		if err != nil {
			log.Fatal(err)
		}
		go func() {
			g, err := b.Await(ctx) // returns once both parties arrived
			if err != nil {
				log.Fatal(err)
			}
			gens <- g
		}()
	}
	a, b := <-gens, <-gens
	fmt.Println("same generation:", a.Generation == b.Generation)
	fmt.Println("arrivals:", a.Arrival+b.Arrival == 1)
	// Output:
	// same generation: true
	// arrivals: true
}

func ExampleNewDoubleBarrier() {
	n, stop := startExampleNode()
	defer stop()
	ctx := context.Background()

	done := make(chan error, 2)
	for range 2 {
		s, err := coordination.NewSession(n)
		if err != nil {
			log.Fatal(err)
		}
		defer s.Close()
		d, err := coordination.NewDoubleBarrier(s, "job", 2)
		if err != nil {
			log.Fatal(err)
		}
		go func() {
			if err := d.Enter(ctx); err != nil { // both start together
				done <- err
				return
			}
			// ... the computation ...
			done <- d.Leave(ctx) // and finish together
		}()
	}
	fmt.Println(<-done, <-done)
	// Output:
	// <nil> <nil>
}

func ExampleNewLatch() {
	n, stop := startExampleNode()
	defer stop()
	ctx := context.Background()

	s, err := coordination.NewSession(n)
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	latch, err := coordination.NewLatch(ctx, s, "shards-loaded", 2)
	if err != nil {
		log.Fatal(err)
	}
	opened := make(chan error, 1)
	go func() { opened <- latch.Await(ctx) }()
	for range 2 {
		left, err := latch.CountDown(ctx)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println("left:", left)
	}
	fmt.Println("await:", <-opened)
	if err := latch.Delete(ctx); err != nil {
		log.Fatal(err)
	}
	// Output:
	// left: 1
	// left: 0
	// await: <nil>
}

func ExampleLatch_CountDownID() {
	n, stop := startExampleNode()
	defer stop()
	ctx := context.Background()

	s, err := coordination.NewSession(n)
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	latch, err := coordination.NewLatch(ctx, s, "migrations", 3)
	if err != nil {
		log.Fatal(err)
	}
	// Migration 42 is done. Its count-down may be sent again (its answer
	// was lost, say): with the same ID it counts once.
	for range 2 {
		left, err := latch.CountDownID(ctx, 42)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println("left:", left)
	}
	// Output:
	// left: 2
	// left: 2
}

func ExampleSemaphore_Token() {
	n, stop := startExampleNode()
	defer stop()
	ctx := context.Background()

	s, err := coordination.NewSession(n)
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	sem, err := coordination.NewSemaphore(s, "exports", 2)
	if err != nil {
		log.Fatal(err)
	}
	if err := sem.Acquire(ctx, 1); err != nil {
		log.Fatal(err)
	}
	first := sem.Token()
	if err := sem.Release(ctx, 0); err != nil {
		log.Fatal(err)
	}
	fmt.Println("released:", sem.Token())
	if err := sem.Acquire(ctx, 1); err != nil {
		log.Fatal(err)
	}
	fmt.Println("later grant, larger token:", sem.Token() > first)
	// Output:
	// released: 0
	// later grant, larger token: true
}
