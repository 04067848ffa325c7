package client_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/statenode/statenode/api"
	"github.com/statenode/statenode/client"
	"github.com/statenode/statenode/node"
	"github.com/statenode/statenode/node/nodetest"
)

func ctxT(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func newClient(t testing.TB, endpoints ...string) *client.Client {
	t.Helper()
	c, err := client.New(client.Config{Endpoints: endpoints, RequestTimeout: 5 * time.Second})
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}

func addrs(c *nodetest.Cluster) []string {
	var out []string
	for _, i := range c.Running() {
		out = append(out, c.Node(i).HTTPAddr())
	}
	return out
}

// deadAddr returns a loopback address nothing listens on.
func deadAddr(t testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestClientKV(t *testing.T) {
	cl := nodetest.MakeCluster(t, 1)
	c := newClient(t, "http://"+cl.Leader(t).HTTPAddr()+"/")
	ctx := ctxT(t, 20*time.Second)

	put, err := c.Put(ctx, "a", []byte("1"))
	require.NoError(t, err)
	assert.Positive(t, put.Revision)
	assert.Nil(t, put.PrevKV)

	kv, err := c.Get(ctx, "a")
	require.NoError(t, err)
	assert.Equal(t, api.KeyValue{Key: []byte("a"), Value: []byte("1"), CreateRevision: put.Revision, ModRevision: put.Revision, Version: 1}, *kv)

	put2, err := c.Put(ctx, "a", []byte("2"))
	require.NoError(t, err)
	kv, err = c.Get(ctx, "a", client.WithStale())
	require.NoError(t, err)
	assert.Equal(t, "2", string(kv.Value))
	assert.EqualValues(t, 2, kv.Version)
	kv, err = c.Get(ctx, "a", client.WithRevision(put.Revision))
	require.NoError(t, err)
	assert.Equal(t, "1", string(kv.Value))
	kv, err = c.Get(ctx, "a", client.WithKeysOnly())
	require.NoError(t, err)
	assert.Empty(t, kv.Value)
	assert.Equal(t, put2.Revision, kv.ModRevision)

	_, err = c.Get(ctx, "missing")
	require.ErrorIs(t, err, client.ErrKeyNotFound)
	var ce *client.Error
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, http.StatusNotFound, ce.Status)
	assert.Equal(t, api.CodeNotFound, ce.Code)

	_, err = c.Get(ctx, "a", client.WithRevision(put2.Revision+100))
	require.ErrorIs(t, err, client.ErrInvalid)

	// Binary values and keys that are awkward in URLs round-trip exactly.
	binary := []byte{0, 0xff, '\n', 0x80, '"', '%'}
	for _, key := range []string{"/etc/x", "a//b", ".", "..", "a/./b", "dir/", "a b+c", "100%", "q?x=1#f", "ünï", "\x00\xff", "x/..", "/"} {
		_, err := c.Put(ctx, key, binary)
		require.NoError(t, err, "%q", key)
		kv, err := c.Get(ctx, key)
		require.NoError(t, err, "%q", key)
		assert.Equal(t, key, string(kv.Key))
		assert.Equal(t, binary, kv.Value, "%q", key)
		got, err := cl.Leader(t).Get(ctx, []byte(key), node.Stale)
		require.NoError(t, err, "%q", key)
		assert.Equal(t, binary, got.Value)
	}
	_, err = c.Put(ctx, "empty", nil)
	require.NoError(t, err)
	kv, err = c.Get(ctx, "empty")
	require.NoError(t, err)
	assert.Equal(t, []byte{}, kv.Value)

	// Invalid requests.
	_, err = c.Put(ctx, "", []byte("x"))
	require.ErrorIs(t, err, client.ErrInvalid)
	_, err = c.Put(ctx, "big", make([]byte, 2<<20))
	require.ErrorIs(t, err, client.ErrTooLarge)
}

func TestClientRangeDelete(t *testing.T) {
	cl := nodetest.MakeCluster(t, 1)
	c := newClient(t, cl.Leader(t).HTTPAddr())
	ctx := ctxT(t, 20*time.Second)
	for i := range 5 {
		_, err := c.Put(ctx, fmt.Sprintf("p/%d", i), []byte{byte(i), 0xff})
		require.NoError(t, err)
	}
	_, err := c.Put(ctx, "q", []byte("x"))
	require.NoError(t, err)

	r, err := c.Range(ctx, "p/")
	require.NoError(t, err)
	require.Len(t, r.KVs, 5)
	assert.Equal(t, "p/3", string(r.KVs[3].Key))
	assert.Equal(t, []byte{3, 0xff}, r.KVs[3].Value)
	assert.EqualValues(t, 5, r.Count)
	assert.False(t, r.More)

	r, err = c.Range(ctx, "p/", client.WithLimit(2), client.WithStale())
	require.NoError(t, err)
	assert.Len(t, r.KVs, 2)
	assert.True(t, r.More)
	r, err = c.Range(ctx, "", client.WithCountOnly())
	require.NoError(t, err)
	assert.Empty(t, r.KVs)
	assert.EqualValues(t, 6, r.Count)
	r, err = c.Range(ctx, "p/", client.WithKeysOnly())
	require.NoError(t, err)
	assert.Empty(t, r.KVs[0].Value)

	d, err := c.Delete(ctx, "q")
	require.NoError(t, err)
	assert.EqualValues(t, 1, d.Deleted)
	d, err = c.Delete(ctx, "q")
	require.NoError(t, err)
	assert.EqualValues(t, 0, d.Deleted)
	d, err = c.DeletePrefix(ctx, "p/")
	require.NoError(t, err)
	assert.EqualValues(t, 5, d.Deleted)
	r, err = c.Range(ctx, "")
	require.NoError(t, err)
	assert.Empty(t, r.KVs)
	assert.Equal(t, d.Revision, r.Revision)
}

func TestClientCompareAndSwap(t *testing.T) {
	cl := nodetest.MakeCluster(t, 1)
	c := newClient(t, cl.Leader(t).HTTPAddr())
	ctx := ctxT(t, 20*time.Second)

	p, err := c.CompareAndSwap(ctx, "lock", []byte("alice"), 0)
	require.NoError(t, err)
	_, err = c.CompareAndSwap(ctx, "lock", []byte("bob"), 0)
	require.ErrorIs(t, err, client.ErrCASFailed)
	var ce *client.Error
	require.ErrorAs(t, err, &ce)
	require.NotNil(t, ce.KV)
	assert.Equal(t, "alice", string(ce.KV.Value))
	assert.Equal(t, p.Revision, ce.KV.ModRevision)

	_, err = c.CompareAndSwap(ctx, "lock", []byte("bob"), p.Revision+1)
	require.ErrorIs(t, err, client.ErrCASFailed)
	p2, err := c.CompareAndSwap(ctx, "lock", []byte("bob"), p.Revision)
	require.NoError(t, err)
	kv, err := c.Get(ctx, "lock")
	require.NoError(t, err)
	assert.Equal(t, "bob", string(kv.Value))
	assert.Equal(t, p2.Revision, kv.ModRevision)
}

func TestClientTxn(t *testing.T) {
	cl := nodetest.MakeCluster(t, 1)
	c := newClient(t, cl.Leader(t).HTTPAddr())
	ctx := ctxT(t, 20*time.Second)
	p, err := c.Put(ctx, "x", []byte("1"))
	require.NoError(t, err)

	req := &api.TxnRequest{
		Compare: []api.Compare{api.CompareModRevision("x", api.ResultEqual, p.Revision), api.CompareValue("x", api.ResultEqual, []byte("1"))},
		Success: []api.Op{api.PutOp("x", []byte{0xff}), api.PutOp("y", []byte("2")), {Type: api.OpGet, Key: []byte(""), Prefix: true}},
		Failure: []api.Op{api.GetOp("x")},
	}
	r, err := c.Txn(ctx, req)
	require.NoError(t, err)
	assert.True(t, r.Succeeded)
	assert.Equal(t, p.Revision+1, r.Revision)
	require.Len(t, r.Results, 3)
	require.Len(t, r.Results[2].KVs, 2)
	assert.Equal(t, []byte{0xff}, r.Results[2].KVs[0].Value)

	r, err = c.Txn(ctx, req)
	require.NoError(t, err)
	assert.False(t, r.Succeeded)
	assert.Equal(t, []byte{0xff}, r.Results[0].KVs[0].Value)

	_, err = c.Txn(ctx, &api.TxnRequest{Compare: []api.Compare{{Key: []byte("x"), Target: "lease", Result: "="}}, Success: []api.Op{api.DeleteOp("x")}})
	require.ErrorIs(t, err, client.ErrInvalid)
	ops := make([]api.Op, 200)
	for i := range ops {
		ops[i] = api.PutOp(fmt.Sprint(i), nil)
	}
	_, err = c.Txn(ctx, &api.TxnRequest{Success: ops})
	require.ErrorIs(t, err, client.ErrTooLarge)
}

func TestClientWatch(t *testing.T) {
	cl := nodetest.MakeCluster(t, 1, nodetest.WithConfig(func(i int, cfg *node.Config) { cfg.HistoryRetention = 10 }))
	c := newClient(t, cl.Leader(t).HTTPAddr())
	ctx := ctxT(t, 20*time.Second)
	p, err := c.Put(ctx, "w/a", []byte("0"))
	require.NoError(t, err)

	wctx, cancel := context.WithCancel(ctx)
	ch, err := c.Watch(wctx, "w/", client.WithPrefix(), client.WithPrevKV())
	require.NoError(t, err)
	first := <-ch
	assert.True(t, first.Created)
	assert.Equal(t, p.Revision, first.Revision)

	_, err = c.Put(ctx, "w/a", []byte{0xff})
	require.NoError(t, err)
	_, err = c.Put(ctx, "other", []byte("x"))
	require.NoError(t, err)
	_, err = c.Delete(ctx, "w/a")
	require.NoError(t, err)
	var evs []api.Event
	for len(evs) < 2 {
		r, ok := <-ch
		require.True(t, ok)
		require.Nil(t, r.Error)
		evs = append(evs, r.Events...)
	}
	assert.Equal(t, api.EventPut, evs[0].Type)
	assert.Equal(t, []byte{0xff}, evs[0].KV.Value)
	require.NotNil(t, evs[0].PrevKV)
	assert.Equal(t, "0", string(evs[0].PrevKV.Value))
	assert.Equal(t, api.EventDelete, evs[1].Type)

	// Canceling the context closes the channel.
	cancel()
	for range ch {
	}

	// From a start revision, one key.
	ch, err = c.Watch(ctx, "w/a", client.WithStartRevision(p.Revision))
	require.NoError(t, err)
	assert.True(t, (<-ch).Created)
	evs = nil
	for len(evs) < 3 {
		evs = append(evs, (<-ch).Events...)
	}
	assert.Equal(t, p.Revision, evs[0].KV.ModRevision)

	// Compacted start revision: at once.
	for i := range 20 {
		_, err := c.Put(ctx, "w/b", []byte(fmt.Sprint(i)))
		require.NoError(t, err)
	}
	_, err = c.Watch(ctx, "w/", client.WithPrefix(), client.WithStartRevision(1))
	require.ErrorIs(t, err, client.ErrCompacted)
	var ce *client.Error
	require.ErrorAs(t, err, &ce)
	assert.Positive(t, ce.CompactRevision)

	// Close ends watches.
	require.NoError(t, c.Close())
	for range ch {
	}
	_, err = c.Put(ctx, "x", nil)
	require.ErrorIs(t, err, client.ErrClosed)
	_, err = c.Watch(ctx, "x")
	require.ErrorIs(t, err, client.ErrClosed)
}

func TestClientWatchServerGone(t *testing.T) {
	cl := nodetest.MakeCluster(t, 1)
	c := newClient(t, cl.Leader(t).HTTPAddr())
	ctx := ctxT(t, 20*time.Second)
	ch, err := c.Watch(ctx, "k")
	require.NoError(t, err)
	require.True(t, (<-ch).Created)
	cl.Kill(t, 0)
	var last api.WatchResponse
	for r := range ch {
		last = r
	}
	require.NotNil(t, last.Error, "a broken stream ends with an error")
	assert.Equal(t, api.CodeUnavailable, last.Error.Code)
}

func TestClientCluster(t *testing.T) {
	cl := nodetest.MakeCluster(t, 3)
	leader := cl.Leader(t)
	followers := cl.Followers(t)
	ctx := ctxT(t, 30*time.Second)

	// A client that knows only a follower finds the leader.
	c := newClient(t, followers[0].HTTPAddr())
	_, err := c.Put(ctx, "k", []byte("v"))
	require.NoError(t, err)
	assert.Equal(t, "http://"+leader.HTTPAddr(), c.LeaderURL())

	st, err := c.Status(ctx)
	require.NoError(t, err)
	assert.Equal(t, followers[0].ID(), st.ID)
	assert.Equal(t, leader.ID(), st.Leader.ID)
	st, err = c.StatusOf(ctx, leader.HTTPAddr())
	require.NoError(t, err)
	assert.Equal(t, "Leader", st.State)
	assert.Equal(t, 3, st.Members)
	_, err = c.StatusOf(ctx, deadAddr(t))
	require.ErrorIs(t, err, client.ErrUnavailable)

	ms, err := c.Members(ctx)
	require.NoError(t, err)
	require.Len(t, ms, 3)

	// Transfer leadership to a named follower.
	require.NoError(t, c.TransferLeadership(ctx, followers[1].ID()))
	require.Eventually(t, func() bool { return cl.Leader(t) == followers[1] }, 10*time.Second, 20*time.Millisecond)
	_, err = c.Put(ctx, "k", []byte("v2"))
	require.NoError(t, err)

	// Remove a member and add it back.
	victim := followers[0]
	if victim == cl.Leader(t) {
		victim = leader
	}
	require.NoError(t, c.RemoveMember(ctx, victim.ID()))
	cl.WaitForMembers(t, 2)
	err = c.RemoveMember(ctx, "nobody")
	require.ErrorIs(t, err, client.ErrUnknownMember)
	require.NoError(t, c.AddMember(ctx, victim.ID(), victim.RaftAddr(), victim.HTTPAddr()))
	cl.WaitForMembers(t, 3)
}

func TestClientDeadEndpoint(t *testing.T) {
	cl := nodetest.MakeCluster(t, 3)
	ctx := ctxT(t, 30*time.Second)
	c := newClient(t, append([]string{deadAddr(t), deadAddr(t)}, addrs(cl)...)...)
	for i := range 10 {
		_, err := c.Put(ctx, fmt.Sprint("k", i), []byte("v"))
		require.NoError(t, err)
		_, err = c.Get(ctx, fmt.Sprint("k", i))
		require.NoError(t, err)
	}
	cl.WaitForReplication(t)
	_, err := c.Get(ctx, "k9", client.WithStale())
	require.NoError(t, err)
	_, err = c.Status(ctx)
	require.NoError(t, err)

	// Nothing reachable: ErrUnavailable when the context ends.
	c2 := newClient(t, deadAddr(t))
	sctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	_, err = c2.Put(sctx, "k", []byte("v"))
	require.ErrorIs(t, err, client.ErrUnavailable)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.NotErrorIs(t, err, client.ErrIndeterminate, "a refused connection never carried the write")
}

func TestClientLeaderFailover(t *testing.T) {
	cl := nodetest.MakeCluster(t, 3)
	ctx := ctxT(t, 60*time.Second)
	c := newClient(t, addrs(cl)...)
	_, err := c.Put(ctx, "k", []byte("before"))
	require.NoError(t, err)
	old := cl.LeaderIndex(t)
	oldURL := "http://" + cl.Node(old).HTTPAddr()
	assert.Equal(t, oldURL, c.LeaderURL())

	cl.Kill(t, old)
	// The killed leader's keep-alive connection may break under a write
	// that was already sent; the client then says so instead of retrying.
	require.Eventually(t, func() bool {
		_, err := c.Put(ctx, "k", []byte("after"))
		if err != nil && !errors.Is(err, client.ErrIndeterminate) {
			t.Logf("put: %v", err)
		}
		return err == nil
	}, 20*time.Second, 10*time.Millisecond)
	// Writes went through the surviving members meanwhile; the client
	// learns the new leader once it looks again.
	newLeader := cl.Leader(t)
	require.Eventually(t, func() bool {
		_, err := c.Put(ctx, "k", []byte("after"))
		return err == nil && c.LeaderURL() == "http://"+newLeader.HTTPAddr()
	}, 20*time.Second, 50*time.Millisecond)
	kv, err := c.Get(ctx, "k")
	require.NoError(t, err)
	assert.Equal(t, "after", string(kv.Value))
}

func TestClientNoLeader(t *testing.T) {
	cl := nodetest.MakeCluster(t, 3, nodetest.WithConfig(func(i int, cfg *node.Config) { cfg.ApplyTimeout = 200 * time.Millisecond }))
	ctx := ctxT(t, 30*time.Second)
	c := newClient(t, addrs(cl)...)
	_, err := c.Put(ctx, "k", []byte("1"))
	require.NoError(t, err)
	cl.WaitForReplication(t)
	before := cl.Node(0).FSM().Revision()

	// Cut every node off from every other: no leader anywhere. Members
	// answer 503 no_leader and the client retries (nothing was proposed)
	// until its context ends.
	cl.Partition(t, []int{0}, []int{1}, []int{2})
	require.Eventually(t, func() bool {
		for _, i := range cl.Running() {
			if cl.Node(i).Ready() {
				return false
			}
		}
		return true
	}, 10*time.Second, 10*time.Millisecond)
	sctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	_, err = c.Put(sctx, "k", []byte("2"))
	require.Error(t, err)
	if !errors.Is(err, client.ErrIndeterminate) {
		// Normally: every attempt was refused before proposing. (A member
		// that still believed in the old leader may have handed it the
		// write just before it stepped down: then the outcome is unknown.)
		require.ErrorIs(t, err, client.ErrUnavailable)
		require.ErrorIs(t, err, client.ErrNoLeader)
	}
	_, err = c.Get(sctx, "k")
	require.ErrorIs(t, err, client.ErrUnavailable)
	kv, err := c.Get(ctx, "k", client.WithStale())
	require.NoError(t, err, "stale reads are served without a leader")
	assert.Equal(t, "1", string(kv.Value))
	for _, i := range cl.Running() {
		n := cl.Node(i)
		assert.Equal(t, before, n.FSM().Revision(), "nothing committed on %s", n.ID())
	}
}

// cutProxy forwards connections to target, but closes the client's
// connection as soon as the target starts answering: the request was
// delivered (and applied), the answer is lost.
type cutProxy struct {
	ln     net.Listener
	target string
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  []net.Conn
	cuts   int
}

func newCutProxy(t testing.TB, target string) *cutProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &cutProxy{ln: ln, target: target}
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(p.close)
	return p
}

func (p *cutProxy) serve() {
	defer p.wg.Done()
	for {
		in, err := p.ln.Accept()
		if err != nil {
			return
		}
		out, err := net.Dial("tcp", p.target)
		if err != nil {
			in.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, in, out)
		p.mu.Unlock()
		p.wg.Add(2)
		go func() {
			defer p.wg.Done()
			_, _ = io.Copy(out, in)
		}()
		go func() {
			defer p.wg.Done()
			var b [1]byte
			_, _ = out.Read(b[:])
			p.mu.Lock()
			p.cuts++
			p.mu.Unlock()
			in.Close()
			out.Close()
		}()
	}
}

func (p *cutProxy) close() {
	p.ln.Close()
	p.mu.Lock()
	for _, c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

func TestClientIndeterminate(t *testing.T) {
	cl := nodetest.MakeCluster(t, 1)
	n := cl.Leader(t)
	ctx := ctxT(t, 20*time.Second)
	p := newCutProxy(t, n.HTTPAddr())
	c := newClient(t, p.ln.Addr().String())

	_, err := c.Put(ctx, "once", []byte("v"))
	require.ErrorIs(t, err, client.ErrIndeterminate)
	kv, err := n.Get(ctx, []byte("once"), node.Linearizable)
	require.NoError(t, err, "the write reached the node")
	assert.EqualValues(t, 1, kv.Version, "and was not repeated")

	_, err = c.Txn(ctx, &api.TxnRequest{Success: []api.Op{api.PutOp("once", []byte("w"))}})
	require.ErrorIs(t, err, client.ErrIndeterminate)
	_, err = c.CompareAndSwap(ctx, "once", []byte("x"), kv.ModRevision)
	require.ErrorIs(t, err, client.ErrIndeterminate)
	_, err = c.Delete(ctx, "once")
	require.ErrorIs(t, err, client.ErrIndeterminate)
	_, err = n.Get(ctx, []byte("once"), node.Linearizable)
	require.ErrorIs(t, err, node.ErrKeyNotFound)

	// Reads are retried instead, and fail only when the context ends.
	sctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	_, err = c.Get(sctx, "once")
	require.ErrorIs(t, err, client.ErrUnavailable)
	p.mu.Lock()
	assert.GreaterOrEqual(t, p.cuts, 3, "the read was retried")
	p.mu.Unlock()
}

func TestClientConfig(t *testing.T) {
	_, err := client.New(client.Config{})
	require.ErrorIs(t, err, client.ErrInvalid)
	_, err = client.New(client.Config{Endpoints: []string{"ftp://x:1"}})
	require.ErrorIs(t, err, client.ErrInvalid)
	_, err = client.New(client.Config{Endpoints: []string{"http://x:1/path"}})
	require.ErrorIs(t, err, client.ErrInvalid)
	c, err := client.New(client.Config{Endpoints: []string{"x:1", "http://y:2/", "https://z:3"}})
	require.NoError(t, err)
	require.NoError(t, c.Close())
	require.NoError(t, c.Close())
}

// TestClientKeyPath checks that every key survives net/http's routing:
// no redirect, and the handler sees exactly the key.
func TestClientKeyPath(t *testing.T) {
	for _, key := range []string{"", "a", "a/b", "/a", "a//b", ".", "..", "./", "a/.", "a/..", "a/../b", "%2F", "a b", "ä", "\x00", "\xff/..", "?#&=+", "~-_."} {
		checkKeyPath(t, key)
	}
}

func FuzzKeyPath(f *testing.F) {
	for _, k := range []string{"a", "/", "//", ".", "..", "a/./b", "%zz", "\x00\xff"} {
		f.Add(k)
	}
	f.Fuzz(func(t *testing.T, key string) { checkKeyPath(t, key) })
}

func checkKeyPath(t *testing.T, key string) {
	t.Helper()
	mux := http.NewServeMux()
	var got *string
	mux.HandleFunc("GET /v1/kv/{key...}", func(w http.ResponseWriter, r *http.Request) {
		k := r.PathValue("key")
		got = &k
	})
	p := client.KeyPath(key)
	req, err := http.NewRequest("GET", "http://x"+p+"?raw", nil)
	require.NoError(t, err, "%q -> %q", key, p)
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, req)
	require.Equal(t, 200, rec.Code, "%q -> %q", key, p)
	require.NotNil(t, got, "%q -> %q", key, p)
	require.Equal(t, key, *got, "%q -> %q", key, p)
}

func BenchmarkClientGet(b *testing.B) {
	cl := nodetest.MakeCluster(b, 1)
	c := newClient(b, cl.Leader(b).HTTPAddr())
	ctx := context.Background()
	value := make([]byte, 100)
	for i := range 1000 {
		_, err := c.Put(ctx, fmt.Sprint("bench/", i), value)
		require.NoError(b, err)
	}
	for _, mode := range []struct {
		name string
		opts []client.ReadOption
	}{{"linearizable", nil}, {"stale", []client.ReadOption{client.WithStale()}}} {
		b.Run(mode.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetParallelism(32)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					i++
					if _, err := c.Get(ctx, fmt.Sprint("bench/", i%1000), mode.opts...); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
		})
	}
}

func BenchmarkClientPut(b *testing.B) {
	cl := nodetest.MakeCluster(b, 1)
	c := newClient(b, cl.Leader(b).HTTPAddr())
	ctx := context.Background()
	value := make([]byte, 100)
	b.ReportAllocs()
	b.SetParallelism(32)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			i++
			if _, err := c.Put(ctx, fmt.Sprint("bench/", i%1000), value); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
}
