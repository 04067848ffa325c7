package node_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/statenode/statenode/api"
	"github.com/statenode/statenode/client"
	"github.com/statenode/statenode/fsm"
	"github.com/statenode/statenode/node"
	"github.com/statenode/statenode/node/nodetest"
	"github.com/statenode/statenode/raftlog"
)

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func TestSingleNodeKV(t *testing.T) {
	c := nodetest.MakeCluster(t, 1)
	n := c.Leader(t)
	ctx := ctxT(t, 10*time.Second)

	rev1, err := n.Put(ctx, []byte("a"), []byte("1"))
	require.NoError(t, err)
	rev2, err := n.Put(ctx, []byte("a"), []byte("2"))
	require.NoError(t, err)
	require.Equal(t, rev1+1, rev2, "one revision per write")

	kv, err := n.Get(ctx, []byte("a"), node.Linearizable)
	require.NoError(t, err)
	assert.Equal(t, "2", string(kv.Value))
	assert.Equal(t, rev1, kv.CreateRevision)
	assert.Equal(t, rev2, kv.ModRevision)
	assert.Equal(t, int64(2), kv.Version)

	_, err = n.Get(ctx, []byte("missing"), node.Stale)
	require.ErrorIs(t, err, node.ErrKeyNotFound)

	for i := 0; i < 5; i++ {
		_, err := n.Put(ctx, []byte(fmt.Sprintf("p/%d", i)), []byte("x"))
		require.NoError(t, err)
	}
	r, err := n.Range(ctx, fsm.RangeRequest{Key: []byte("p/"), Prefix: true, Limit: 3}, node.Linearizable)
	require.NoError(t, err)
	require.Len(t, r.KVs, 3)
	assert.True(t, r.More)
	assert.Equal(t, int64(5), r.Count)

	// A historical read sees the old value.
	old, err := n.Range(ctx, fsm.RangeRequest{Key: []byte("a"), Revision: rev1}, node.Linearizable)
	require.NoError(t, err)
	require.Len(t, old.KVs, 1)
	assert.Equal(t, "1", string(old.KVs[0].Value))

	// CAS on mod revision: the stale one fails, the current one wins.
	cas := func(mod int64, v string) *fsm.Response {
		resp, err := n.Txn(ctx, &fsm.Request{
			Compare: []fsm.Compare{{Key: []byte("a"), Target: fsm.CompareModRevision, Result: fsm.CompareEqual, Number: mod}},
			Success: []fsm.Op{{Type: fsm.OpPut, Key: []byte("a"), Value: []byte(v)}},
			Failure: []fsm.Op{{Type: fsm.OpRange, Key: []byte("a")}},
		})
		require.NoError(t, err)
		return resp
	}
	assert.False(t, cas(rev1, "stale").Succeeded)
	assert.True(t, cas(rev2, "3").Succeeded)

	deleted, _, err := n.Delete(ctx, []byte("a"))
	require.NoError(t, err)
	assert.Equal(t, int64(1), deleted)
	_, err = n.Get(ctx, []byte("a"), node.Linearizable)
	require.ErrorIs(t, err, node.ErrKeyNotFound)
}

func TestBadInputChangesNothing(t *testing.T) {
	c := nodetest.MakeCluster(t, 3)
	ctx := ctxT(t, 20*time.Second)
	for _, n := range []*node.Node{c.Leader(t), c.Followers(t)[0]} {
		before := n.Status().Revision
		lim := n.Limits()
		big := make([]byte, lim.MaxValueSize+1)
		manyOps := make([]fsm.Op, lim.MaxTxnOps+1)
		for i := range manyOps {
			manyOps[i] = fsm.Op{Type: fsm.OpPut, Key: []byte(strconv.Itoa(i))}
		}
		cases := []struct {
			name string
			req  *fsm.Request
			want error
		}{
			{"nil", nil, fsm.ErrInvalid},
			{"no ops", &fsm.Request{}, fsm.ErrInvalid},
			{"empty key", &fsm.Request{Success: []fsm.Op{{Type: fsm.OpPut}}}, fsm.ErrInvalid},
			{"key too large", &fsm.Request{Success: []fsm.Op{{Type: fsm.OpPut, Key: make([]byte, lim.MaxKeySize+1)}}}, fsm.ErrTooLarge},
			{"value too large", &fsm.Request{Success: []fsm.Op{{Type: fsm.OpPut, Key: []byte("k"), Value: big}}}, fsm.ErrTooLarge},
			{"too many ops", &fsm.Request{Success: manyOps}, fsm.ErrInvalid},
			{"unknown op", &fsm.Request{Success: []fsm.Op{{Type: 99, Key: []byte("k")}}}, fsm.ErrInvalid},
			{"duplicate key", &fsm.Request{Success: []fsm.Op{{Type: fsm.OpPut, Key: []byte("k")}, {Type: fsm.OpPut, Key: []byte("k")}}}, fsm.ErrInvalid},
		}
		for _, tc := range cases {
			_, err := n.Txn(ctx, tc.req)
			require.Error(t, err, tc.name)
			if tc.name == "too many ops" {
				require.True(t, errors.Is(err, fsm.ErrInvalid) || errors.Is(err, fsm.ErrTooLarge), "%s: %v", tc.name, err)
			} else {
				require.ErrorIs(t, err, tc.want, tc.name)
			}
		}
		_, err := n.Range(ctx, fsm.RangeRequest{}, node.Linearizable)
		require.ErrorIs(t, err, fsm.ErrInvalid)
		_, err = n.Range(ctx, fsm.RangeRequest{Key: []byte("k"), Revision: 1 << 40}, node.Linearizable)
		require.ErrorIs(t, err, fsm.ErrFutureRevision)
		c.WaitForReplication(t)
		require.Equal(t, before, n.Status().Revision, "bad input must not write")
	}
}

func TestClusterReplicatesAndForwards(t *testing.T) {
	for _, size := range []int{3, 5} {
		t.Run(strconv.Itoa(size), func(t *testing.T) {
			c := nodetest.MakeCluster(t, size)
			ctx := ctxT(t, 30*time.Second)
			// Every node, leader or not, accepts writes.
			for i, n := range c.Nodes {
				_, err := n.Put(ctx, []byte(fmt.Sprintf("k%d", i)), []byte(n.ID()))
				require.NoError(t, err, "put through %s", n.ID())
			}
			// Every node reads every write linearizably, right away.
			for _, n := range c.Nodes {
				for i := range c.Nodes {
					kv, err := n.Get(ctx, []byte(fmt.Sprintf("k%d", i)), node.Linearizable)
					require.NoError(t, err)
					require.Equal(t, c.Nodes[i].ID(), string(kv.Value))
				}
			}
			c.EnsureSame(t)
			ms, err := c.Nodes[0].Members(ctx)
			require.NoError(t, err)
			require.Len(t, ms, size)
		})
	}
}

func TestConcurrentWritesShareCommits(t *testing.T) {
	c := nodetest.MakeCluster(t, 3)
	ctx := ctxT(t, 60*time.Second)
	const workers, each = 64, 25
	revs := make(chan int64, workers*each)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := c.Nodes[w%len(c.Nodes)]
			for i := 0; i < each; i++ {
				// A leader change (a busy machine) may leave a write's
				// outcome unknown: retrying the same put is harmless here.
				for {
					rev, err := n.Put(ctx, []byte(fmt.Sprintf("w%d/%d", w, i)), []byte("v"))
					if err == nil {
						revs <- rev
						break
					}
					if !errors.Is(err, node.ErrTimeout) && !errors.Is(err, node.ErrNoLeader) {
						t.Errorf("put: %v", err)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(revs)
	seen := map[int64]bool{}
	for r := range revs {
		require.False(t, seen[r], "revision %d handed out twice", r)
		seen[r] = true
	}
	require.GreaterOrEqual(t, len(seen), workers*each)
	r, err := c.Leader(t).Range(ctx, fsm.RangeRequest{Key: []byte("w"), Prefix: true, CountOnly: true}, node.Linearizable)
	require.NoError(t, err)
	require.Equal(t, int64(workers*each), r.Count)
	c.EnsureSame(t)
}

func TestLeaderKillLosesNoAcknowledgedWrite(t *testing.T) {
	c := nodetest.MakeCluster(t, 3)
	ctx := ctxT(t, 60*time.Second)
	var (
		mu    sync.Mutex
		acked []string
		stop  atomic.Bool
		wg    sync.WaitGroup
	)
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !stop.Load(); i++ {
				key := fmt.Sprintf("acked/%d/%d", w, i)
				// Write through whichever node is up; errors are fine
				// (unknown outcome), only acknowledgements count.
				idx := (w + i) % 3
				n := c.Node(idx)
				if n == nil {
					continue
				}
				wctx, cancel := context.WithTimeout(ctx, 2*time.Second)
				_, err := n.Put(wctx, []byte(key), []byte("v"))
				cancel()
				if err == nil {
					mu.Lock()
					acked = append(acked, key)
					mu.Unlock()
				}
			}
		}()
	}
	waitFor(t, 30*time.Second, func() bool { mu.Lock(); defer mu.Unlock(); return len(acked) > 50 })
	old := c.LeaderIndex(t)
	c.Kill(t, old)
	newLeader := c.LeaderIndex(t)
	require.NotEqual(t, old, newLeader)
	before := countAcked(&mu, &acked)
	waitFor(t, 30*time.Second, func() bool { return countAcked(&mu, &acked) > before+50 })
	stop.Store(true)
	wg.Wait()
	c.Restart(t, old)
	for _, i := range c.Running() {
		n := c.Node(i)
		for _, k := range acked {
			_, err := n.Get(ctx, []byte(k), node.Linearizable)
			require.NoError(t, err, "acknowledged write %s lost on %s", k, n.ID())
		}
	}
	c.EnsureSame(t)
}

func countAcked(mu *sync.Mutex, acked *[]string) int {
	mu.Lock()
	defer mu.Unlock()
	return len(*acked)
}

func waitFor(t *testing.T, d time.Duration, f func() bool) {
	t.Helper()
	require.Eventually(t, f, d, 5*time.Millisecond)
}

// engines runs a test once per Raft log engine.
func engines(t *testing.T, f func(t *testing.T, engine nodetest.Option)) {
	for _, e := range []string{raftlog.EngineBolt, raftlog.EngineWAL} {
		t.Run(e, func(t *testing.T) {
			f(t, nodetest.WithConfig(func(_ int, c *node.Config) {
				c.LogEngine = e
				c.WALSegmentSize = 16 << 10 // small segments, so that compaction frees some
			}))
		})
	}
}

func TestRestartFromDataDir(t *testing.T) { engines(t, testRestartFromDataDir) }

func testRestartFromDataDir(t *testing.T, engine nodetest.Option) {
	c := nodetest.MakeCluster(t, 3, engine)
	ctx := ctxT(t, 60*time.Second)
	for i := 0; i < 20; i++ {
		_, err := c.Leader(t).Put(ctx, []byte(fmt.Sprintf("r/%d", i)), []byte(strconv.Itoa(i)))
		require.NoError(t, err)
	}
	rev := c.Leader(t).Status().Revision
	c.WaitForReplication(t)
	for i := range c.Nodes {
		c.Kill(t, i)
	}
	for i := range c.Nodes {
		c.Restart(t, i)
	}
	l := c.Leader(t)
	for _, i := range c.Running() {
		assert.Equal(t, path.Base(t.Name()), c.Node(i).Status().LogEngine, "a restarted member keeps its log engine")
	}
	r, err := l.Range(ctx, fsm.RangeRequest{Key: []byte("r/"), Prefix: true}, node.Linearizable)
	require.NoError(t, err)
	require.Len(t, r.KVs, 20)
	require.GreaterOrEqual(t, r.Revision, rev)
	_, err = l.Put(ctx, []byte("after"), []byte("restart"))
	require.NoError(t, err)
	c.EnsureSame(t)
}

func TestSnapshotCompactionAndCatchUp(t *testing.T) { engines(t, testSnapshotCompactionAndCatchUp) }

func testSnapshotCompactionAndCatchUp(t *testing.T, engine nodetest.Option) {
	c := nodetest.MakeCluster(t, 3, engine, nodetest.WithConfig(func(i int, cfg *node.Config) {
		cfg.SnapshotThreshold = 50
		cfg.TrailingLogs = 10
		cfg.SnapshotInterval = time.Hour // snapshots are taken explicitly below
	}))
	ctx := ctxT(t, 60*time.Second)
	lagger := (c.LeaderIndex(t) + 1) % 3
	_, err := c.Leader(t).Put(ctx, []byte("before"), []byte("x"))
	require.NoError(t, err)
	c.WaitForReplication(t)
	c.Kill(t, lagger)
	for i := 0; i < 300; i++ {
		_, err := c.Leader(t).Put(ctx, []byte(fmt.Sprintf("s/%03d", i)), []byte(strconv.Itoa(i)))
		require.NoError(t, err)
	}
	for _, i := range c.Running() {
		require.NoError(t, c.Node(i).Raft().Snapshot().Error())
	}
	// The log the lagger would need is gone from the leader: it can only
	// catch up from a snapshot.
	first, err := c.Leader(t).Raft().Stats()["last_snapshot_index"], error(nil)
	require.NoError(t, err)
	require.NotEqual(t, "0", first)
	c.Restart(t, lagger)
	c.EnsureSame(t)
	n := c.Node(lagger)
	r, err := n.Range(ctx, fsm.RangeRequest{Key: []byte("s/"), Prefix: true, CountOnly: true}, node.Stale)
	require.NoError(t, err)
	require.Equal(t, int64(300), r.Count)
	// raft records the installed snapshot just after the FSM has restored
	// it, so the state above can be visible a moment before the stat.
	require.Eventually(t, func() bool {
		return n.Raft().Stats()["last_snapshot_index"] != "0"
	}, 10*time.Second, 5*time.Millisecond, "the lagger caught up through a snapshot")
	// And restarting from that snapshot works too.
	c.Kill(t, lagger)
	c.Restart(t, lagger)
	c.EnsureSame(t)
}

func TestWatchWithoutGapsAcrossLeaderChange(t *testing.T) {
	c := nodetest.MakeCluster(t, 3)
	ctx := ctxT(t, 60*time.Second)
	watcher := c.Followers(t)[0]
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ch, err := watcher.Watch(wctx, fsm.WatchRequest{Key: []byte("w/"), Prefix: true, StartRevision: 1})
	require.NoError(t, err)

	const total = 200
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < total; i++ {
			for {
				wctx, wcancel := context.WithTimeout(ctx, 3*time.Second)
				_, err := watcher.Put(wctx, []byte(fmt.Sprintf("w/%03d", i)), []byte("v"))
				wcancel()
				if err == nil {
					break
				}
				if ctx.Err() != nil {
					return
				}
			}
			if i == total/2 {
				_ = c.Leader(t).TransferLeadership(ctx, "")
			}
		}
	}()
	seen := map[string]bool{}
	var lastRev int64
	for len(seen) < total {
		select {
		case resp, ok := <-ch:
			require.True(t, ok, "watch closed early")
			require.NoError(t, resp.Err)
			for _, ev := range resp.Events {
				require.Greater(t, ev.KV.ModRevision, lastRev, "events out of order")
				lastRev = ev.KV.ModRevision
				seen[string(ev.KV.Key)] = true
			}
		case <-ctx.Done():
			t.Fatalf("saw %d of %d events", len(seen), total)
		}
	}
	<-done
	// Every revision of the prefix arrived: check against the history.
	r, err := watcher.Range(ctx, fsm.RangeRequest{Key: []byte("w/"), Prefix: true, CountOnly: true}, node.Linearizable)
	require.NoError(t, err)
	// Retries after an unknown outcome may rewrite a key; the count of
	// distinct keys is what must match.
	require.Equal(t, int64(total), r.Count)
}

func TestPartitionedLeaderRefusesLinearizableRead(t *testing.T) {
	c := nodetest.MakeCluster(t, 3)
	ctx := ctxT(t, 60*time.Second)
	_, err := c.Leader(t).Put(ctx, []byte("reg"), []byte("old"))
	require.NoError(t, err)
	c.WaitForReplication(t)
	oldIdx := c.LeaderIndex(t)
	old := c.Node(oldIdx)
	c.Isolate(t, oldIdx)
	// The majority elects a new leader and moves on.
	var newLeader *node.Node
	waitFor(t, 10*time.Second, func() bool {
		for _, i := range c.Running() {
			if i != oldIdx && c.Node(i).Status().State == "Leader" && c.Node(i).Ready() {
				newLeader = c.Node(i)
				return true
			}
		}
		return false
	})
	_, err = newLeader.Put(ctx, []byte("reg"), []byte("new"))
	require.NoError(t, err)

	rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	kv, err := old.Get(rctx, []byte("reg"), node.Linearizable)
	cancel()
	require.Error(t, err, "a partitioned old leader must not serve a linearizable read (got %v)", kv)
	// A stale read is allowed to be stale, and is.
	kv, err = old.Get(ctx, []byte("reg"), node.Stale)
	require.NoError(t, err)
	require.Equal(t, "old", string(kv.Value))

	c.Heal(t)
	waitFor(t, 15*time.Second, func() bool {
		rctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		kv, err := old.Get(rctx, []byte("reg"), node.Linearizable)
		return err == nil && string(kv.Value) == "new"
	})
	c.EnsureSame(t)
}

// TestReadsNeverGoBackInTime: a read that starts after a write completed
// sees that write (or a later one), on every node.
func TestReadsNeverGoBackInTime(t *testing.T) {
	c := nodetest.MakeCluster(t, 3)
	ctx := ctxT(t, 60*time.Second)
	var completed atomic.Int64   // highest value whose write completed
	var unsettledAt atomic.Int64 // the write whose outcome was unknown, if one was
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for v := int64(1); ; v++ {
			select {
			case <-stop:
				return
			default:
			}
			_, err := c.Nodes[int(v)%3].Put(ctx, []byte("counter"), []byte(strconv.FormatInt(v, 10)))
			if unsettled(err) {
				// A leader change on a slow machine: v may still apply,
				// even after a later write, which would make any later
				// floor unsound. Stop writing; the reads go on against
				// the writes that completed.
				unsettledAt.Store(v)
				return
			}
			if err != nil {
				t.Errorf("put: %v", err)
				return
			}
			completed.Store(v)
		}
	}()
	var reads atomic.Int64
	for r := 0; r < 3; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := c.Nodes[r]
			for {
				select {
				case <-stop:
					return
				default:
				}
				floor := completed.Load()
				kv, err := n.Get(ctx, []byte("counter"), node.Linearizable)
				if errors.Is(err, node.ErrKeyNotFound) && floor == 0 || unsettled(err) {
					continue
				}
				if !assert.NoError(t, err) {
					return
				}
				got, _ := strconv.ParseInt(string(kv.Value), 10, 64)
				if got < floor {
					t.Errorf("%s read %d after write %d completed", n.ID(), got, floor)
					return
				}
				reads.Add(1)
			}
		}()
	}
	waitFor(t, 30*time.Second, func() bool { return reads.Load() > 600 })
	close(stop)
	wg.Wait()
	require.GreaterOrEqual(t, completed.Load(), int64(20),
		"writes completed while the reads ran (a write with an unknown outcome at %d stops them)", unsettledAt.Load())
}

// unsettled reports an error a request may meet while leadership moves:
// no leader, or an outcome not known in time.
func unsettled(err error) bool {
	return errors.Is(err, node.ErrNoLeader) || errors.Is(err, node.ErrTimeout)
}

func TestJoinRemoveAndLeave(t *testing.T) {
	c := nodetest.MakeJoinedCluster(t, 3)
	ctx := ctxT(t, 60*time.Second)
	_, err := c.Nodes[2].Put(ctx, []byte("joined"), []byte("yes"))
	require.NoError(t, err)
	c.EnsureSame(t)

	// Remove a dead member.
	dead := (c.LeaderIndex(t) + 1) % 3
	deadID := c.Node(dead).ID()
	c.Kill(t, dead)
	require.NoError(t, c.Leader(t).Remove(ctx, deadID))
	ms, err := c.Leader(t).Members(ctx)
	require.NoError(t, err)
	require.Len(t, ms, 2)
	require.ErrorIs(t, c.Leader(t).Remove(ctx, "nobody"), node.ErrUnknownMember)

	// The leader leaves gracefully: leadership moves first.
	l := c.LeaderIndex(t)
	require.NoError(t, c.Node(l).Leave(ctx))
	c.Kill(t, l)
	other := 3 - l - dead
	waitFor(t, 10*time.Second, func() bool { return c.Node(other).Ready() })
	_, err = c.Node(other).Put(ctx, []byte("alone"), []byte("yes"))
	require.NoError(t, err)
}

func TestShutdownTwiceAndStoppedErrors(t *testing.T) {
	c := nodetest.MakeCluster(t, 1)
	n := c.Leader(t)
	ctx := ctxT(t, 10*time.Second)
	require.NoError(t, n.Shutdown(ctx))
	require.NoError(t, n.Shutdown(ctx))
	_, err := n.Put(ctx, []byte("k"), []byte("v"))
	require.ErrorIs(t, err, node.ErrStopped)
	_, err = n.Get(ctx, []byte("k"), node.Stale)
	require.ErrorIs(t, err, node.ErrStopped)
}

func TestConfigValidate(t *testing.T) {
	good := node.DefaultLocalConfig()
	good.ID, good.DataDir = "n1", t.TempDir()
	require.NoError(t, good.Validate())
	cases := map[string]func(*node.Config){
		"no id":         func(c *node.Config) { c.ID = "" },
		"bad id":        func(c *node.Config) { c.ID = "a b" },
		"no dir":        func(c *node.Config) { c.DataDir = "" },
		"bad raft addr": func(c *node.Config) { c.RaftAddr = "nope" },
		"both modes": func(c *node.Config) {
			c.Bootstrap = true
			c.InitialCluster = []node.Peer{{ID: "n1", RaftAddr: "127.0.0.1:1"}}
		},
		"self missing": func(c *node.Config) { c.InitialCluster = []node.Peer{{ID: "n2", RaftAddr: "127.0.0.1:1"}} },
		"timeouts":     func(c *node.Config) { c.ElectionTimeout = c.HeartbeatTimeout / 2 },
	}
	for name, mut := range cases {
		c := good
		mut(&c)
		require.Error(t, c.Validate(), name)
		_, err := node.New(c)
		require.Error(t, err, name)
	}
}

func TestTransferLeadership(t *testing.T) {
	c := nodetest.MakeCluster(t, 3)
	ctx := ctxT(t, 30*time.Second)
	old := c.LeaderIndex(t)
	// Through a follower, to "any" voter.
	require.NoError(t, c.Followers(t)[0].TransferLeadership(ctx, ""))
	waitFor(t, 10*time.Second, func() bool { i := c.LeaderIndex(t); return i != old })
	// To a named voter, through the leader.
	cur := c.LeaderIndex(t)
	target := (cur + 1) % 3
	require.NoError(t, c.Node(cur).TransferLeadership(ctx, c.Node(target).ID()))
	waitFor(t, 10*time.Second, func() bool { return c.LeaderIndex(t) == target })
	require.ErrorIs(t, c.Node(target).TransferLeadership(ctx, "nobody"), node.ErrUnknownMember)
	_, err := c.Node(target).Put(ctx, []byte("k"), []byte("v"))
	require.NoError(t, err)
}

// TestLinearizableReadRightAfterLeaderChange: a new leader's first entries
// (raft's no-op) never reach the state machine; reads must not wait for a
// later write to complete.
func TestLinearizableReadRightAfterLeaderChange(t *testing.T) {
	c := nodetest.MakeCluster(t, 3)
	ctx := ctxT(t, 30*time.Second)
	_, err := c.Leader(t).Put(ctx, []byte("k"), []byte("v"))
	require.NoError(t, err)
	c.Kill(t, c.LeaderIndex(t))
	c.Leader(t)
	for _, i := range c.Running() {
		rctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		kv, err := c.Node(i).Get(rctx, []byte("k"), node.Linearizable)
		cancel()
		require.NoError(t, err, "read on %s right after the leader change", c.Node(i).ID())
		require.Equal(t, "v", string(kv.Value))
	}
}

// A node started with NonVoter and Join joins as a non-voter: it
// replicates (serves the data with stale reads) but is not a voter; and
// AddNonvoter validates like AddVoter before anything reaches the log.
func TestJoinAsNonVoter(t *testing.T) {
	c := nodetest.MakeJoinedCluster(t, 3, nodetest.WithConfig(func(i int, cfg *node.Config) {
		cfg.NonVoter = i == 2
	}))
	ctx := ctxT(t, 60*time.Second)
	ms, err := c.Leader(t).Members(ctx)
	require.NoError(t, err)
	voters := map[string]bool{}
	for _, m := range ms {
		voters[m.ID] = m.Voter
	}
	require.Equal(t, map[string]bool{c.Node(0).ID(): true, c.Node(1).ID(): true, c.Node(2).ID(): false}, voters)
	_, err = c.Leader(t).Put(ctx, []byte("nv"), []byte("replicated"))
	require.NoError(t, err)
	c.EnsureSame(t)
	kv, err := c.Node(2).Get(ctx, []byte("nv"), node.Stale)
	require.NoError(t, err)
	require.Equal(t, "replicated", string(kv.Value))

	rev := c.Leader(t).Status().Revision
	require.ErrorIs(t, c.Node(2).AddNonvoter(ctx, "bad id", "127.0.0.1:1", ""), fsm.ErrInvalid)
	require.ErrorIs(t, c.Node(2).AddNonvoter(ctx, "n9", "nowhere", ""), fsm.ErrInvalid)
	require.Equal(t, rev, c.Leader(t).Status().Revision, "refused adds change nothing")
}

// TestCutOffMemberAnswersNoLeader: a client's write sent to a member cut
// off from the majority is answered no_leader within a bound (two
// election timeouts), not held until the client's deadline, so the Go
// client moves on to a member that can take it.
func TestCutOffMemberAnswersNoLeader(t *testing.T) {
	c := nodetest.MakeCluster(t, 3)
	ctx := ctxT(t, 60*time.Second)
	cut := c.Followers(t)[0]
	cutIdx := slices.Index(c.Nodes, cut)
	c.Isolate(t, cutIdx)
	waitFor(t, 10*time.Second, func() bool { return cut.Status().Leader.ID == "" })

	// Raw HTTP, with a deadline of 30 s granted by the client.
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, "http://"+cut.HTTPAddr()+"/v1/kv/k?raw", strings.NewReader("v"))
	require.NoError(t, err)
	req.Header.Set(api.HeaderTimeout, "30000")
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	elapsed := time.Since(start)
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, "%s", body)
	var e api.Error
	require.NoError(t, json.Unmarshal(body, &e))
	require.Equal(t, api.CodeNoLeader, e.Code)
	require.Less(t, elapsed, 15*time.Second, "answered within the leaderless bound, not at the client's deadline")

	// The Go client, with the cut-off member first, writes through the
	// majority well within its deadline.
	var eps []string
	eps = append(eps, cut.HTTPAddr())
	for _, n := range c.Nodes {
		if n != cut {
			eps = append(eps, n.HTTPAddr())
		}
	}
	cl, err := client.New(client.Config{Endpoints: eps})
	require.NoError(t, err)
	defer cl.Close()
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	_, err = cl.Put(pctx, "k", []byte("through the majority"))
	require.NoError(t, err)
	require.NoError(t, pctx.Err(), "written before the client's deadline")
	kv, err := c.Leader(t).Get(ctx, []byte("k"), node.Linearizable)
	require.NoError(t, err)
	require.Equal(t, "through the majority", string(kv.Value))
	_, err = cut.Get(ctx, []byte("k"), node.Stale)
	require.ErrorIs(t, err, node.ErrKeyNotFound, "the cut-off member never applied it")
	c.Heal(t)
}
