package coordination_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
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

func newClient(t *testing.T, c *nodetest.Cluster) *client.Client {
	t.Helper()
	var eps []string
	for _, i := range c.Running() {
		eps = append(eps, c.Node(i).HTTPAddr())
	}
	cl, err := client.New(client.Config{Endpoints: eps})
	require.NoError(t, err)
	t.Cleanup(func() { cl.Close() })
	return cl
}

// eventually polls cond until it holds or d passes.
func eventually(t *testing.T, d time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	var err error
	for time.Now().Before(deadline) {
		if err = cond(); err == nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("condition not met within %v: %v", d, err)
}

// The leader is killed while a lock is held and three waiters queue: the
// holder keeps its lock, the waiters are granted in FIFO order with
// increasing tokens, and there is never a second holder.
func TestLockSurvivesLeaderKill(t *testing.T) {
	c := nodetest.MakeCluster(t, 3)
	cl := newClient(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	var holders atomic.Int32
	var order []int
	var tokens []uint64
	var mu sync.Mutex
	critical := func(i int, m *coordination.Mutex) {
		if h := holders.Add(1); h != 1 {
			t.Errorf("%d holders at once", h)
		}
		mu.Lock()
		order = append(order, i)
		tokens = append(tokens, m.Token())
		mu.Unlock()
		holders.Add(-1)
	}

	sessions := make([]*coordination.Session, 4)
	mutexes := make([]*coordination.Mutex, 4)
	for i := range sessions {
		s, err := coordination.NewSession(cl, coordination.WithTTL(5*time.Second))
		require.NoError(t, err)
		t.Cleanup(func() { s.Close() })
		sessions[i] = s
		mutexes[i] = coordination.NewMutex(s, "kill/lock")
	}
	require.NoError(t, mutexes[0].Lock(ctx))
	holderToken := mutexes[0].Token()

	var wg sync.WaitGroup
	errs := make(chan error, 3)
	for i := 1; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := mutexes[i].Lock(ctx); err != nil {
				errs <- fmt.Errorf("waiter %d: %w", i, err)
				return
			}
			critical(i, mutexes[i])
			if err := mutexes[i].Unlock(ctx); err != nil {
				errs <- fmt.Errorf("waiter %d unlock: %w", i, err)
			}
		}()
		// Queue them one after the other so that FIFO order is defined.
		eventually(t, 10*time.Second, func() error {
			info, err := mutexes[0].Info(ctx)
			if err != nil {
				return err
			}
			if len(info.Waiters) != i {
				return fmt.Errorf("%d waiters, want %d", len(info.Waiters), i)
			}
			return nil
		})
	}

	c.Kill(t, c.LeaderIndex(t))
	c.Leader(t)
	info, err := mutexes[0].Info(ctx)
	require.NoError(t, err)
	require.Equal(t, sessions[0].ID(), info.Holder, "the holder keeps its lock across the leader change")
	require.Equal(t, holderToken, info.Token)
	require.Equal(t, []uint64{sessions[1].ID(), sessions[2].ID(), sessions[3].ID()}, info.Waiters)
	select {
	case <-sessions[0].Done():
		t.Fatalf("holder's session ended: %v", sessions[0].Err())
	default:
	}

	critical(0, mutexes[0])
	require.NoError(t, mutexes[0].Unlock(ctx))
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	assert.Equal(t, []int{0, 1, 2, 3}, order, "grants in FIFO order")
	assert.True(t, slices.IsSorted(tokens) && len(slices.Compact(slices.Clone(tokens))) == 4, "tokens strictly increase: %v", tokens)
	c.EnsureSame(t)
}

// The holder's session expires: the next waiter is granted within the TTL
// plus an election's worth of slack, and the old holder's fenced write is
// refused.
func TestExpiredHolderHandsOff(t *testing.T) {
	c := nodetest.MakeCluster(t, 3)
	cl := newClient(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const ttl = time.Second

	a, err := coordination.NewSession(cl, coordination.WithTTL(ttl))
	require.NoError(t, err)
	b, err := coordination.NewSession(c.Followers(t)[0], coordination.WithTTL(5*time.Second))
	require.NoError(t, err)
	defer b.Close()
	ma, mb := coordination.NewMutex(a, "expire/lock"), coordination.NewMutex(b, "expire/lock")
	require.NoError(t, ma.Lock(ctx))

	granted := make(chan error, 1)
	go func() { granted <- mb.Lock(ctx) }()
	eventually(t, 5*time.Second, func() error {
		info, err := ma.Info(ctx)
		if err == nil && len(info.Waiters) != 1 {
			err = errors.New("waiter not queued yet")
		}
		return err
	})
	start := time.Now()
	a.Orphan()
	require.NoError(t, <-granted)
	elapsed := time.Since(start)
	assert.Less(t, elapsed, ttl+3*time.Second, "granted within TTL + an election's slack")
	assert.Greater(t, mb.Token(), ma.Token())

	_, err = ma.PutFenced(ctx, "expire/data", []byte("stale"))
	require.ErrorIs(t, err, coordination.ErrFenced)
	_, err = mb.PutFenced(ctx, "expire/data", []byte("fresh"))
	require.NoError(t, err)
	require.NoError(t, mb.Unlock(ctx))
}

// Retried acquire and release (the same request IDs, as a client resends
// after a broken connection) are applied once: the retried release does
// not release the next holder's grant (etcd #22082).
func TestRetriesAppliedOnce(t *testing.T) {
	c := nodetest.MakeCluster(t, 3)
	cl := newClient(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sa, err := cl.CreateSession(ctx, api.SessionRequest{TTLMillis: 10000})
	require.NoError(t, err)
	sb, err := cl.CreateSession(ctx, api.SessionRequest{TTLMillis: 10000})
	require.NoError(t, err)

	acq := api.LockRequest{Session: sa.ID, RequestID: 1}
	g1, err := cl.Lock(ctx, "retry/lock", acq)
	require.NoError(t, err)
	g2, err := cl.Lock(ctx, "retry/lock", acq) // retry
	require.NoError(t, err)
	require.Equal(t, g1.Token, g2.Token)
	require.Equal(t, int64(1), g2.Count, "the retry did not take the lock twice")

	rel := api.UnlockRequest{Session: sa.ID, RequestID: 2}
	require.NoError(t, cl.Unlock(ctx, "retry/lock", rel))
	gb, err := cl.Lock(ctx, "retry/lock", api.LockRequest{Session: sb.ID, RequestID: 1})
	require.NoError(t, err)
	require.NoError(t, cl.Unlock(ctx, "retry/lock", rel)) // retried release: answered from memory
	info, err := cl.LockInfo(ctx, "retry/lock")
	require.NoError(t, err)
	require.Equal(t, sb.ID, info.Holder, "the retried release left the new holder alone")
	require.Equal(t, gb.Token, info.Token)

	// A new release by the non-owner is refused.
	err = cl.Unlock(ctx, "retry/lock", api.UnlockRequest{Session: sa.ID, RequestID: 3})
	require.ErrorIs(t, err, client.ErrNotOwner)
	c.EnsureSame(t)
}

func TestDeadlockAcrossSessions(t *testing.T) {
	c := nodetest.MakeCluster(t, 3)
	cl := newClient(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s1, err := coordination.NewSession(cl)
	require.NoError(t, err)
	defer s1.Close()
	s2, err := coordination.NewSession(cl)
	require.NoError(t, err)
	defer s2.Close()
	a1, b1 := coordination.NewMutex(s1, "dl/a"), coordination.NewMutex(s1, "dl/b")
	a2, b2 := coordination.NewMutex(s2, "dl/a"), coordination.NewMutex(s2, "dl/b")
	require.NoError(t, a1.Lock(ctx))
	require.NoError(t, b2.Lock(ctx))
	wctx, wcancel := context.WithCancel(ctx)
	waited := make(chan error, 1)
	go func() { waited <- b1.Lock(wctx) }()
	eventually(t, 5*time.Second, func() error {
		info, err := b2.Info(ctx)
		if err == nil && len(info.Waiters) != 1 {
			err = errors.New("not queued")
		}
		return err
	})
	err = a2.Lock(ctx)
	require.ErrorIs(t, err, coordination.ErrDeadlock)
	assert.Contains(t, err.Error(), `"dl/a"`)
	assert.Contains(t, err.Error(), `"dl/b"`)
	wcancel()
	require.ErrorIs(t, <-waited, coordination.ErrWaitTimeout)
	eventually(t, 5*time.Second, func() error { // the canceled wait is withdrawn
		info, err := b2.Info(ctx)
		if err == nil && len(info.Waiters) != 0 {
			err = fmt.Errorf("waiters %v", info.Waiters)
		}
		return err
	})
}

// Three campaigners through a leader kill and restart, then a partition
// that cuts off the member their client talks to: at most one session
// leads at any term, terms increase, and each leader is observed. Through
// the partition the client fails over to the majority, so its sessions
// (the leader's included) survive, and a campaigner on the cut-off member
// never leads.
func TestElectionSingleLeader(t *testing.T) {
	c := nodetest.MakeCluster(t, 3)
	cl, log := newLoggedClient(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	// Well above a failover on a loaded 2-core machine: this test is about
	// single leadership, not about expiry.
	const ttl = 12 * time.Second

	var leading atomic.Int32
	var terms []uint64
	var mu sync.Mutex
	var wg sync.WaitGroup
	rounds := make(chan struct{})
	sessions := make([]*coordination.Session, 3)
	for i := range sessions {
		s, err := coordination.NewSession(cl, coordination.WithTTL(ttl))
		require.NoError(t, err)
		defer s.Close()
		sessions[i] = s
		e, err := coordination.NewElection(s, "single")
		require.NoError(t, err)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				term, err := e.Campaign(ctx, fmt.Sprint("c", i))
				if err != nil {
					if ctx.Err() == nil {
						t.Errorf("campaign %d: %v", i, err)
					}
					return
				}
				if n := leading.Add(1); n != 1 {
					t.Errorf("%d leaders at once", n)
				}
				mu.Lock()
				terms = append(terms, term)
				mu.Unlock()
				select {
				case <-rounds:
				case <-ctx.Done():
				}
				leading.Add(-1)
				if err := e.Resign(context.Background()); err != nil && ctx.Err() == nil {
					t.Errorf("resign %d: %v", i, err)
					return
				}
				if ctx.Err() != nil {
					return
				}
			}
		}()
	}
	// Every leader the cluster reports, in order.
	octx, ocancel := context.WithCancel(ctx)
	defer ocancel()
	oe, err := coordination.NewElection(sessions[0], "single")
	require.NoError(t, err)
	observed, err := oe.Observe(octx)
	require.NoError(t, err)
	var seen []api.Election
	observing := make(chan struct{})
	go func() {
		defer close(observing)
		for e := range observed {
			seen = append(seen, e)
		}
	}()

	step := func() { // hand leadership on, wait for the next leader
		mu.Lock()
		n := len(terms)
		mu.Unlock()
		rounds <- struct{}{}
		eventually(t, 20*time.Second, func() error {
			mu.Lock()
			defer mu.Unlock()
			if len(terms) <= n {
				return errors.New("no new leader yet")
			}
			return nil
		})
	}
	eventually(t, 10*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		if len(terms) == 0 {
			return errors.New("no leader")
		}
		return nil
	})
	step()
	t.Log("killing the leader")
	killed := c.LeaderIndex(t)
	c.Kill(t, killed)
	step()
	c.Restart(t, killed)
	step()

	// Partition: cut off the member the client talks to, right after it
	// answered a keepalive. Writes sent to it (a resign, keepalives) are
	// answered no_leader within two election timeouts, and the client
	// moves on to the majority. A campaigner embedded in the cut-off
	// member, whose session was created before the cut, campaigns from
	// behind it.
	const behindTTL = 2 * time.Second
	log.waitKeepAlives(t, time.Now(), 1, ttl)
	cut := log.talksTo(t, c)
	behind, err := coordination.NewSession(c.Node(cut), coordination.WithTTL(behindTTL))
	require.NoError(t, err)
	defer behind.Close()
	be, err := coordination.NewElection(behind, "single")
	require.NoError(t, err)
	t.Logf("isolating node %d (%s)", cut, c.Node(cut).Status().State)
	c.Isolate(t, cut)
	majorityLeader(t, c, cut)
	eventually(t, 10*time.Second, func() error { // the cut-off member knows it is alone
		if st := c.Node(cut).Status(); st.State == "Leader" || st.Leader.ID != "" {
			return fmt.Errorf("node %d: %s, leader %q", cut, st.State, st.Leader.ID)
		}
		return nil
	})
	behindDone := make(chan error, 1)
	go func() {
		term, err := be.Campaign(ctx, "behind")
		if err == nil {
			leading.Add(1) // counted, so that the assertions below catch it
			err = fmt.Errorf("leads with term %d from behind the partition", term)
		}
		behindDone <- err
	}()
	step() // the majority hands leadership on
	partitioned := time.Now()
	select {
	case err := <-behindDone:
		require.ErrorIs(t, err, coordination.ErrSessionExpired, "the campaigner behind the partition loses its session, not a leadership")
	case <-time.After(behindTTL + 10*time.Second):
		t.Fatalf("the campaign behind the partition neither led nor failed")
	}
	// The client's sessions, the leader's among them, live through a TTL
	// of partition: their keepalives reach the majority.
	<-time.After(time.Until(partitioned.Add(ttl)))
	for _, s := range sessions {
		require.NoError(t, s.Err(), "session %d lives through the partition", s.ID())
	}
	step()
	c.Heal(t)
	step()

	cancel()
	close(rounds)
	wg.Wait()
	ocancel()
	<-observing
	mu.Lock()
	defer mu.Unlock()
	require.GreaterOrEqual(t, len(terms), 7)
	assert.True(t, slices.IsSorted(terms), "terms increase: %v", terms)
	assert.Equal(t, len(terms), len(slices.Compact(slices.Clone(terms))), "terms unique: %v", terms)
	ids := []uint64{sessions[0].ID(), sessions[1].ID(), sessions[2].ID()}
	var last uint64
	for _, e := range seen {
		assert.GreaterOrEqual(t, e.Term, last, "observed terms never go back: %v", seen)
		last = e.Term
		if e.Leader != 0 {
			assert.Contains(t, ids, e.Leader, "only the client's campaigners ever lead (observed %v)", seen)
		}
	}
}
