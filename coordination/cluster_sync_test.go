package coordination_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/statenode/statenode/api"
	"github.com/statenode/statenode/client"
	"github.com/statenode/statenode/coordination"
	"github.com/statenode/statenode/node/nodetest"
)

// perNodeClients returns one client per running node, each talking only
// to its node (followers forward to the leader).
func perNodeClients(t *testing.T, c *nodetest.Cluster) []*client.Client {
	t.Helper()
	var out []*client.Client
	for _, i := range c.Running() {
		cl, err := client.New(client.Config{Endpoints: []string{c.Node(i).HTTPAddr()}})
		require.NoError(t, err)
		t.Cleanup(func() { cl.Close() })
		out = append(out, cl)
	}
	return out
}

// 50 clients, spread over the three members, take 1 or 2 of 3 permits in
// turn: the permits held at once never exceed 3, checked by the holders
// themselves and by the state machine's own account.
func TestSemaphoreNeverOverGranted(t *testing.T) {
	c := nodetest.MakeCluster(t, 3)
	cls := perNodeClients(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	const workers, rounds, permits = 50, 3, 3

	var inside, maxInside atomic.Int64
	var grants atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		s, err := coordination.NewSession(cls[w%len(cls)], coordination.WithTTL(30*time.Second))
		require.NoError(t, err)
		t.Cleanup(func() { s.Close() })
		sem, err := coordination.NewSemaphore(s, "sem/n3", permits)
		require.NoError(t, err)
		k := int64(1 + w%2)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range rounds {
				if err := sem.Acquire(ctx, int(k)); err != nil {
					errs <- fmt.Errorf("worker %d round %d: %w", w, r, err)
					return
				}
				now := inside.Add(k)
				for m := maxInside.Load(); now > m && !maxInside.CompareAndSwap(m, now); m = maxInside.Load() {
				}
				if now > permits {
					errs <- fmt.Errorf("worker %d: %d permits held at once", w, now)
				}
				if r == 0 { // the state machine agrees, from inside the critical section
					info, err := sem.Info(ctx)
					switch {
					case err != nil:
						errs <- err
					case info.Used > permits || info.Permits != permits:
						errs <- fmt.Errorf("state machine: %d of %d used", info.Used, info.Permits)
					case !slices.ContainsFunc(info.Holders, func(h api.SemaphoreHold) bool { return h.Session == s.ID() && h.Permits >= k }):
						errs <- fmt.Errorf("worker %d holds permits the state machine does not show: %+v", w, info.Holders)
					}
					var sum int64
					for _, h := range info.Holders {
						sum += h.Permits
					}
					if sum != info.Used {
						errs <- fmt.Errorf("holders sum to %d, used %d", sum, info.Used)
					}
				}
				grants.Add(1)
				inside.Add(-k)
				if err := sem.Release(ctx, 0); err != nil {
					errs <- fmt.Errorf("worker %d release: %w", w, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	assert.Equal(t, int64(workers*rounds), grants.Load())
	assert.LessOrEqual(t, maxInside.Load(), int64(permits))
	assert.Greater(t, maxInside.Load(), int64(1), "the permits were actually shared")
	info, err := cls[0].SemaphoreInfo(ctx, "sem/n3")
	require.NoError(t, err)
	assert.Equal(t, int64(0), info.Used)
	c.EnsureSame(t)
}

// A party's session expires while it waits at a barrier: the others get
// ErrBroken naming it, later awaits fail too, and a reset repairs it.
func TestBarrierBrokenByDeadParty(t *testing.T) {
	c := nodetest.MakeCluster(t, 3)
	cls := perNodeClients(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	// The dead party: a raw session nobody keeps alive, waiting at the
	// barrier through a follower.
	dead, err := cls[1].CreateSession(ctx, api.SessionRequest{TTLMillis: 4000, Name: "doomed"})
	require.NoError(t, err)
	deadDone := make(chan error, 1)
	go func() {
		_, err := cls[1].Barrier(ctx, "bar/broken", api.BarrierRequest{Session: dead.ID, RequestID: 1, Parties: 3})
		deadDone <- err
	}()

	a, err := coordination.NewSession(cls[0])
	require.NoError(t, err)
	defer a.Close()
	ba, err := coordination.NewBarrier(a, "bar/broken", 3)
	require.NoError(t, err)
	aDone := make(chan error, 1)
	go func() { _, err := ba.Await(ctx); aDone <- err }()

	eventually(t, 10*time.Second, func() error {
		info, err := ba.Info(ctx)
		if err == nil && len(info.Arrived) != 2 {
			err = fmt.Errorf("arrived %v", info.Arrived)
		}
		return err
	})
	// The dead party's session expires (four seconds): the barrier breaks.
	var aErr error
	select {
	case aErr = <-aDone:
	case <-time.After(20 * time.Second):
		t.Fatal("the waiting party was not released")
	}
	require.ErrorIs(t, aErr, coordination.ErrBroken)
	assert.Contains(t, aErr.Error(), "session "+strconv.FormatUint(dead.ID, 10), "the error names the culprit")
	require.ErrorIs(t, <-deadDone, client.ErrSessionNotFound)

	b, err := coordination.NewSession(cls[2])
	require.NoError(t, err)
	defer b.Close()
	bb, err := coordination.NewBarrier(b, "bar/broken", 3)
	require.NoError(t, err)
	_, err = bb.Await(ctx)
	require.ErrorIs(t, err, coordination.ErrBroken, "a broken barrier stays broken")
	info, err := bb.Info(ctx)
	require.NoError(t, err)
	assert.Equal(t, dead.ID, info.Broken)

	require.NoError(t, bb.Reset(ctx))
	info, err = bb.Info(ctx)
	require.NoError(t, err)
	assert.Equal(t, uint64(0), info.Broken)
	c.EnsureSame(t)
}

// A double barrier: a party destroyed inside it breaks it for the one
// waiting to leave.
func TestDoubleBarrierBrokenByDestroyedParty(t *testing.T) {
	c := nodetest.MakeCluster(t, 3)
	cls := perNodeClients(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var ds []*coordination.DoubleBarrier
	var ss []*coordination.Session
	for i := range 2 {
		s, err := coordination.NewSession(cls[i])
		require.NoError(t, err)
		defer s.Close()
		d, err := coordination.NewDoubleBarrier(s, "dbar", 2)
		require.NoError(t, err)
		ds, ss = append(ds, d), append(ss, s)
	}
	entered := make(chan error, 1)
	go func() { entered <- ds[0].Enter(ctx) }()
	require.NoError(t, ds[1].Enter(ctx))
	require.NoError(t, <-entered)
	left := make(chan error, 1)
	go func() { left <- ds[0].Leave(ctx) }()
	eventually(t, 10*time.Second, func() error {
		info, err := ds[0].Info(ctx)
		if err == nil && len(info.Left) != 1 {
			err = fmt.Errorf("left %v", info.Left)
		}
		return err
	})
	require.NoError(t, cls[2].DestroySession(ctx, ss[1].ID()))
	err := <-left
	require.ErrorIs(t, err, coordination.ErrBroken)
	assert.Contains(t, err.Error(), strconv.FormatUint(ss[1].ID(), 10))
}

// Three parties on three members pass a cyclic barrier three times: each
// generation releases all three together, with arrival indexes 0..2 and
// strictly increasing generations.
func TestCyclicBarrierThreeGenerations(t *testing.T) {
	c := nodetest.MakeCluster(t, 3)
	cls := perNodeClients(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const parties, generations = 3, 3
	results := make([][]coordination.Generation, parties)
	var arrived [generations]atomic.Int32
	var wg sync.WaitGroup
	for p := range parties {
		s, err := coordination.NewSession(cls[p])
		require.NoError(t, err)
		defer s.Close()
		b, err := coordination.NewBarrier(s, "cyc", parties)
		require.NoError(t, err)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for g := range generations {
				arrived[g].Add(1)
				gen, err := b.Await(ctx)
				if err != nil {
					t.Errorf("party %d generation %d: %v", p, g, err)
					return
				}
				if n := arrived[g].Load(); n != parties {
					t.Errorf("party %d released from generation %d when only %d parties had arrived", p, g, n)
				}
				results[p] = append(results[p], gen)
			}
		}()
	}
	wg.Wait()
	require.False(t, t.Failed())
	for g := range generations {
		var arrivals []int
		for p := range parties {
			require.Len(t, results[p], generations)
			assert.Equal(t, results[0][g].Generation, results[p][g].Generation, "one generation for all parties")
			arrivals = append(arrivals, results[p][g].Arrival)
		}
		slices.Sort(arrivals)
		assert.Equal(t, []int{0, 1, 2}, arrivals)
		if g > 0 {
			assert.Greater(t, results[0][g].Generation, results[0][g-1].Generation)
		}
	}
}

// Count-downs retried with the same request IDs, through different
// members, apply once each: the latch opens exactly at the third distinct
// count-down.
func TestLatchRetriedCountDowns(t *testing.T) {
	c := nodetest.MakeCluster(t, 3)
	cls := perNodeClients(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := cls[0].CreateSession(ctx, api.SessionRequest{TTLMillis: 30000})
	require.NoError(t, err)
	created, err := cls[0].CreateLatch(ctx, "latch/3", api.LatchRequest{Session: s.ID, RequestID: 1, Count: 3})
	require.NoError(t, err)
	assert.Equal(t, int64(3), created.Count)
	_, err = cls[1].CreateLatch(ctx, "latch/3", api.LatchRequest{Session: s.ID, RequestID: 2, Count: 4})
	require.ErrorIs(t, err, client.ErrMismatch)

	opened := make(chan error, 1)
	go func() { _, err := cls[2].AwaitLatch(ctx, "latch/3"); opened <- err }()

	countDown := func(cl *client.Client, reqID uint64) int64 {
		res, err := cl.CountDownLatch(ctx, "latch/3", api.LatchRequest{Session: s.ID, RequestID: reqID})
		require.NoError(t, err)
		return res.Count
	}
	for _, cl := range cls { // one count-down, sent three times
		assert.Equal(t, int64(2), countDown(cl, 10))
	}
	for _, cl := range cls {
		assert.Equal(t, int64(1), countDown(cl, 11))
	}
	select {
	case err := <-opened:
		t.Fatalf("the latch opened early: %v", err)
	default:
	}
	short, scancel := context.WithTimeout(ctx, 300*time.Millisecond)
	_, err = cls[1].AwaitLatch(short, "latch/3")
	scancel()
	require.Error(t, err, "still closed at 1")
	info, err := cls[1].LatchInfo(ctx, "latch/3")
	require.NoError(t, err)
	assert.Equal(t, int64(1), info.Count)

	assert.Equal(t, int64(0), countDown(cls[1], 12))
	require.NoError(t, <-opened)
	assert.Equal(t, int64(0), countDown(cls[2], 12), "a retry of the last one changes nothing")
	require.NoError(t, cls[0].DeleteLatch(ctx, "latch/3", api.LatchRequest{Session: s.ID, RequestID: 13}))
	_, err = cls[0].LatchInfo(ctx, "latch/3")
	require.ErrorIs(t, err, client.ErrObjectNotFound)
	c.EnsureSame(t)
}

// A session holding a lock waits for semaphore permits held by a session
// that then asks for the lock: the second wait fails at once with
// ErrDeadlock naming both objects.
func TestDeadlockOverSemaphoreAndLock(t *testing.T) {
	c := nodetest.MakeCluster(t, 3)
	cls := perNodeClients(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s1, err := coordination.NewSession(cls[0])
	require.NoError(t, err)
	defer s1.Close()
	s2, err := coordination.NewSession(cls[1])
	require.NoError(t, err)
	defer s2.Close()

	l1, l2 := coordination.NewMutex(s1, "dl/lock"), coordination.NewMutex(s2, "dl/lock")
	sem1, err := coordination.NewSemaphore(s1, "dl/sem", 2)
	require.NoError(t, err)
	sem2, err := coordination.NewSemaphore(s2, "dl/sem", 2)
	require.NoError(t, err)
	require.NoError(t, l1.Lock(ctx))
	require.NoError(t, sem2.Acquire(ctx, 2))

	wctx, wcancel := context.WithCancel(ctx)
	waited := make(chan error, 1)
	go func() { waited <- sem1.Acquire(wctx, 1) }()
	eventually(t, 10*time.Second, func() error {
		info, err := sem1.Info(ctx)
		if err == nil && len(info.Waiters) != 1 {
			err = errors.New("not queued")
		}
		return err
	})
	err = l2.Lock(ctx)
	require.ErrorIs(t, err, coordination.ErrDeadlock)
	assert.Contains(t, err.Error(), `lock "dl/lock"`)
	assert.Contains(t, err.Error(), `semaphore "dl/sem"`)
	info, err := l1.Info(ctx)
	require.NoError(t, err)
	assert.Empty(t, info.Waiters, "the refused acquire did not queue")

	wcancel()
	require.ErrorIs(t, <-waited, coordination.ErrWaitTimeout)
	eventually(t, 10*time.Second, func() error {
		info, err := sem1.Info(ctx)
		if err == nil && len(info.Waiters) != 0 {
			err = fmt.Errorf("waiters %v", info.Waiters)
		}
		return err
	})
	// Without the cycle, s2 may now wait for the lock.
	require.NoError(t, sem2.Release(ctx, 0))
}

// An ephemeral key written through a follower disappears when its
// session expires, with a DELETE event on a watch.
func TestEphemeralKeyExpires(t *testing.T) {
	c := nodetest.MakeCluster(t, 3)
	cls := perNodeClients(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	_, err := cls[1].PutEphemeral(ctx, "eph/nobody", []byte("x"), 12345<<16)
	require.ErrorIs(t, err, client.ErrSessionNotFound)
	_, err = cls[0].Get(ctx, "eph/nobody")
	require.ErrorIs(t, err, client.ErrKeyNotFound, "a refused ephemeral put writes nothing")

	s, err := cls[0].CreateSession(ctx, api.SessionRequest{TTLMillis: 3000})
	require.NoError(t, err)
	put, err := cls[1].PutEphemeral(ctx, "eph/worker", []byte("alive"), s.ID)
	require.NoError(t, err)
	_, err = cls[0].Put(ctx, "eph/durable", []byte("stays"))
	require.NoError(t, err)

	wctx, wcancel := context.WithCancel(ctx)
	defer wcancel()
	events, err := cls[2].Watch(wctx, "eph/", client.WithPrefix(), client.WithStartRevision(put.Revision+1))
	require.NoError(t, err)
	var del *api.Event
	timeout := time.After(20 * time.Second)
	for del == nil {
		select {
		case wr, ok := <-events:
			require.True(t, ok, "watch ended")
			for i := range wr.Events {
				if wr.Events[i].Type == api.EventDelete {
					del = &wr.Events[i]
				}
			}
		case <-timeout:
			t.Fatal("no DELETE event for the ephemeral key")
		}
	}
	assert.Equal(t, "eph/worker", string(del.KV.Key))
	_, err = cls[0].Get(ctx, "eph/worker")
	require.ErrorIs(t, err, client.ErrKeyNotFound)
	kv, err := cls[0].Get(ctx, "eph/durable")
	require.NoError(t, err)
	assert.Equal(t, "stays", string(kv.Value))
	sessions, err := cls[0].Sessions(ctx)
	require.NoError(t, err)
	assert.False(t, slices.ContainsFunc(sessions, func(x api.Session) bool { return x.ID == s.ID }), "deleted with its session")
	c.EnsureSame(t)
}
