package node_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/statenode/statenode/api"
	"github.com/statenode/statenode/client"
	"github.com/statenode/statenode/fsm"
	"github.com/statenode/statenode/node"
	"github.com/statenode/statenode/node/nodetest"
)

// postSnapshot sends body to POST /v1/snapshot on addr; chunked hides its
// length. It returns the status and the decoded body.
func postSnapshot(t *testing.T, addr string, body []byte, chunked bool) (int, api.Error, api.RestoreResponse) {
	t.Helper()
	var r io.Reader = bytes.NewReader(body)
	if chunked {
		r = io.MultiReader(r) // no Len: sent chunked, without a Content-Length
	}
	resp, err := http.Post("http://"+addr+"/v1/snapshot", "application/octet-stream", r)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var e api.Error
	var rr api.RestoreResponse
	if resp.StatusCode == http.StatusOK {
		require.NoError(t, json.Unmarshal(b, &rr), "%s", b)
	} else {
		require.NoError(t, json.Unmarshal(b, &e), "%s", b)
	}
	return resp.StatusCode, e, rr
}

// everything reads every key of n's local state.
func everything(t *testing.T, n *node.Node) *fsm.RangeResponse {
	t.Helper()
	rr, err := n.Range(ctxT(t, 10*time.Second), fsm.RangeRequest{Prefix: true}, node.Stale)
	require.NoError(t, err)
	return rr
}

// TestSnapshotSaveAndRestore saves a 3-node cluster's state through a
// follower, changes it, refuses damaged, oversized and misdirected
// restores without changing anything, restores the saved state and checks
// that every member holds exactly it (keys, session, lock) with the
// running cluster's members, a revision that moved forward, ended watches,
// and working reads and writes.
func TestSnapshotSaveAndRestore(t *testing.T) {
	const limit = 256 << 10
	c := nodetest.MakeCluster(t, 3, nodetest.WithConfig(func(_ int, cfg *node.Config) { cfg.MaxRestoreSize = limit }))
	leader := c.Leader(t)
	followers := c.Followers(t)
	var eps []string
	for _, i := range c.Running() {
		eps = append(eps, c.Node(i).HTTPAddr())
	}
	cl, err := client.New(client.Config{Endpoints: eps})
	require.NoError(t, err)
	defer cl.Close()
	ctx := ctxT(t, 90*time.Second)

	// The state to save: keys, a binary value, a session holding a lock.
	for i := range 20 {
		_, err := cl.Put(ctx, fmt.Sprintf("saved/%02d", i), []byte(fmt.Sprint("v", i)))
		require.NoError(t, err)
	}
	_, err = cl.Put(ctx, "bin", []byte{0, 0xff, 1})
	require.NoError(t, err)
	sess, err := cl.CreateSession(ctx, api.SessionRequest{TTLMillis: 60_000, Name: "saved"})
	require.NoError(t, err)
	granted, err := cl.Lock(ctx, "L", api.LockRequest{Session: sess.ID, RequestID: 1})
	require.NoError(t, err)
	put, err := cl.Put(ctx, "saved/last", []byte("acknowledged before the save"))
	require.NoError(t, err)

	// Save through a follower: the read barrier makes it include the last
	// acknowledged write.
	resp, err := http.Get("http://" + followers[0].HTTPAddr() + "/v1/snapshot")
	require.NoError(t, err)
	data, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", data)
	assert.Equal(t, "application/octet-stream", resp.Header.Get("Content-Type"))
	info, err := fsm.ValidateSnapshot(bytes.NewReader(data))
	require.NoError(t, err)
	assert.Equal(t, strconv.FormatUint(info.AppliedIndex, 10), resp.Header.Get(api.HeaderSnapshotIndex))
	assert.Equal(t, strconv.FormatInt(info.Revision, 10), resp.Header.Get(api.HeaderSnapshotRevision))
	assert.GreaterOrEqual(t, info.Revision, put.Revision)
	assert.Equal(t, 22, info.Keys)
	assert.Equal(t, 1, info.Sessions)
	assert.Equal(t, 1, info.Locks)
	want := everything(t, leader)
	require.Len(t, want.KVs, 22)
	wantMembers := leader.FSM().Members()
	require.Len(t, wantMembers, 3)

	// The client's save checks the stream and reports the same point.
	var buf bytes.Buffer
	cinfo, err := cl.Snapshot(ctx, &buf)
	require.NoError(t, err)
	assert.Equal(t, info.Revision, cinfo.Revision)
	assert.Equal(t, int64(buf.Len()), cinfo.Size)

	// Change everything after the save.
	_, err = cl.Put(ctx, "saved/00", []byte("changed"))
	require.NoError(t, err)
	_, err = cl.DeletePrefix(ctx, "saved/1")
	require.NoError(t, err)
	_, err = cl.Put(ctx, "unsaved", []byte("x"))
	require.NoError(t, err)
	require.NoError(t, cl.DestroySession(ctx, sess.ID)) // releases L
	later, err := cl.CreateSession(ctx, api.SessionRequest{TTLMillis: 60_000})
	require.NoError(t, err)

	// A watch open on a follower across the restore.
	wcl, err := client.New(client.Config{Endpoints: []string{followers[1].HTTPAddr()}})
	require.NoError(t, err)
	defer wcl.Close()
	wch, err := wcl.Watch(ctx, "", client.WithPrefix())
	require.NoError(t, err)
	require.True(t, (<-wch).Created)

	c.EnsureSame(t)
	before, beforeHash := leader.FSM().Revision(), leader.FSM().Hash()
	unchanged := func(what string) {
		t.Helper()
		assert.Equal(t, before, leader.FSM().Revision(), "%s changed the revision", what)
		assert.Equal(t, beforeHash, leader.FSM().Hash(), "%s changed the state", what)
	}

	// Refused, and nothing changes: a flipped byte, a truncation, too
	// large (declared or not), a follower, a restore on a follower.
	flipped := bytes.Clone(data)
	flipped[len(flipped)/2] ^= 0x01
	status, e, _ := postSnapshot(t, leader.HTTPAddr(), flipped, false)
	assert.Equal(t, http.StatusBadRequest, status)
	assert.Equal(t, api.CodeInvalid, e.Code)
	assert.Contains(t, e.Message, "nothing changed")
	unchanged("a damaged snapshot")
	status, e, _ = postSnapshot(t, leader.HTTPAddr(), data[:len(data)-7], true)
	assert.Equal(t, http.StatusBadRequest, status)
	assert.Equal(t, api.CodeInvalid, e.Code)
	assert.Contains(t, e.Message, "truncated")
	unchanged("a truncated snapshot")
	huge := bytes.Repeat([]byte{7}, limit+1)
	for _, chunked := range []bool{false, true} {
		status, e, _ = postSnapshot(t, leader.HTTPAddr(), huge, chunked)
		assert.Equal(t, http.StatusRequestEntityTooLarge, status, "chunked=%v", chunked)
		assert.Equal(t, api.CodeTooLarge, e.Code)
	}
	unchanged("an oversized snapshot")
	status, e, _ = postSnapshot(t, followers[0].HTTPAddr(), data, false)
	assert.Equal(t, http.StatusServiceUnavailable, status)
	assert.Equal(t, api.CodeNotLeader, e.Code)
	assert.Equal(t, leader.HTTPAddr(), e.Leader)
	unchanged("a restore sent to a follower")
	err = cl.Restore(ctx, bytes.NewReader(flipped))
	require.ErrorIs(t, err, client.ErrInvalid)
	unchanged("a damaged snapshot sent by the client")

	// Restore through the client (it finds the leader).
	require.NoError(t, cl.Restore(ctx, bytes.NewReader(data)))

	// Every member holds exactly the saved state.
	c.EnsureSame(t)
	now := time.Now().UnixNano()
	for _, i := range c.Running() {
		n := c.Node(i)
		got := everything(t, n)
		assert.Equal(t, want.KVs, got.KVs, "%s: keys", n.ID())
		assert.Greater(t, got.Revision, before, "%s: the revision moves forward", n.ID())
		assert.Equal(t, wantMembers, n.FSM().Members(), "%s: the running cluster's members", n.ID())
		s, ok := n.FSM().Session(sess.ID)
		if assert.True(t, ok, "%s: the saved session is back", n.ID()) {
			assert.Greater(t, s.Expires, now+30*int64(time.Second), "%s: with a fresh TTL", n.ID())
		}
		_, ok = n.FSM().Session(later.ID)
		assert.False(t, ok, "%s: the session created after the save is gone", n.ID())
		l := n.FSM().Lock("L")
		assert.Equal(t, sess.ID, l.Holder, "%s: lock holder", n.ID())
		assert.Equal(t, granted.Token, l.Token, "%s: lock token", n.ID())
	}

	// The watch on the follower ended with a compacted error.
	deadline := time.After(30 * time.Second)
	for ended := false; !ended; {
		select {
		case wr, ok := <-wch:
			require.True(t, ok, "the watch closed without an error")
			if wr.Error != nil {
				assert.Equal(t, api.CodeCompacted, wr.Error.Code)
				assert.Contains(t, wr.Error.Message, "restore")
				ended = true
			}
		case <-deadline:
			t.Fatal("the watch did not end after the restore")
		}
	}

	// Linearizable reads on every member and writes work at once.
	for _, i := range c.Running() {
		kv, err := c.Node(i).Get(ctx, []byte("saved/00"), node.Linearizable)
		require.NoError(t, err)
		assert.Equal(t, "v0", string(kv.Value))
	}
	after, err := cl.Put(ctx, "after", []byte("restore"))
	require.NoError(t, err)
	assert.Greater(t, after.Revision, want.Revision)
	require.NoError(t, cl.Unlock(ctx, "L", api.UnlockRequest{Session: sess.ID, RequestID: 2, Token: granted.Token}),
		"the restored session holds L and can release it")
	li, err := cl.LockInfo(ctx, "L")
	require.NoError(t, err)
	assert.Zero(t, li.Holder)
}

// bufSink is a raft.SnapshotSink into a buffer.
type bufSink struct{ *bytes.Buffer }

func (bufSink) ID() string    { return "buf" }
func (bufSink) Close() error  { return nil }
func (bufSink) Cancel() error { return nil }

// snapshotOf applies cmds to a new state machine and returns its snapshot.
func snapshotOf(t *testing.T, cmds ...*fsm.Command) *bytes.Buffer {
	t.Helper()
	src := fsm.New(fsm.DefaultConfig())
	for i, cmd := range cmds {
		res := src.Apply(&raft.Log{Index: uint64(i + 1), Type: raft.LogCommand, Data: fsm.EncodeCommand(cmd)}).(fsm.ApplyResult)
		require.NoError(t, res.Err)
	}
	snap, err := src.Snapshot()
	require.NoError(t, err)
	var data bytes.Buffer
	require.NoError(t, snap.Persist(&bufSink{Buffer: &data}))
	return &data
}

// TestRestoreKeepsRunningMembers restores a snapshot taken from another
// cluster (a different member registry) into a 3-node cluster: the keys
// are the snapshot's, the registry stays the running cluster's, and
// clients keep finding the members.
func TestRestoreKeepsRunningMembers(t *testing.T) {
	data := snapshotOf(t,
		&fsm.Command{Type: fsm.CmdPutMember, Member: &fsm.Member{ID: "elsewhere", RaftAddr: "10.1.1.1:7000", HTTPAddr: "10.1.1.1:7001"}},
		&fsm.Command{Type: fsm.CmdTxn, Txn: &fsm.Request{Success: []fsm.Op{{Type: fsm.OpPut, Key: []byte("from/other"), Value: []byte("cluster")}}}},
	)

	c := nodetest.MakeCluster(t, 3)
	leader := c.Leader(t)
	ctx := ctxT(t, 60*time.Second)
	_, err := leader.Put(ctx, []byte("mine"), []byte("gone after the restore"))
	require.NoError(t, err)
	members := leader.FSM().Members()

	res, err := leader.Restore(ctx, bytes.NewReader(data.Bytes()))
	require.NoError(t, err)
	assert.Equal(t, int64(1), res.From.Revision)
	assert.Equal(t, strconv.FormatUint(res.To.AppliedIndex, 10), leader.Raft().Stats()["last_snapshot_index"],
		"raft restored at the index written into the state")
	c.EnsureSame(t)
	for _, i := range c.Running() {
		n := c.Node(i)
		assert.Equal(t, members, n.FSM().Members(), "%s", n.ID())
		got := everything(t, n)
		require.Len(t, got.KVs, 1, "%s", n.ID())
		assert.Equal(t, "from/other", string(got.KVs[0].Key))
	}
	cl, err := client.New(client.Config{Endpoints: []string{c.Followers(t)[0].HTTPAddr()}})
	require.NoError(t, err)
	defer cl.Close()
	kv, err := cl.Get(ctx, "from/other")
	require.NoError(t, err, "a follower still forwards to the leader by the registry")
	assert.Equal(t, "cluster", string(kv.Value))
}

// TestRestoreUnderWritesNeverTakesRevisionsBack restores a snapshot of a
// few megabytes while eight writers put without pause. Each writer's
// acknowledged revisions must strictly increase and no two acknowledged
// writes may share a revision: a restore whose revision was chosen before
// the writes that landed while it was being prepared would hand out a
// revision that a client has already seen.
func TestRestoreUnderWritesNeverTakesRevisionsBack(t *testing.T) {
	value := bytes.Repeat([]byte("v"), 200)
	// 20,000 keys in 40 transactions: the snapshot's revision (40) is below
	// the cluster's, so the restore takes its revision from the cluster.
	var cmds []*fsm.Command
	for i := range 40 {
		txn := &fsm.Request{}
		for j := range 500 {
			txn.Success = append(txn.Success, fsm.Op{Type: fsm.OpPut, Key: fmt.Appendf(nil, "seed/%05d", i*500+j), Value: value})
		}
		cmds = append(cmds, &fsm.Command{Type: fsm.CmdTxn, Txn: txn})
	}
	data := snapshotOf(t, cmds...)

	c := nodetest.MakeCluster(t, 3)
	leader := c.Leader(t)
	const writers = 8
	var (
		acked [writers]atomic.Int64
		revs  [writers][]int64
		stop  = make(chan struct{})
		wg    sync.WaitGroup
	)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			key := fmt.Appendf(nil, "w/%d", w)
			for {
				select {
				case <-stop:
					return
				default:
				}
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				rev, err := leader.Put(ctx, key, []byte("x"))
				cancel()
				if err == nil {
					revs[w] = append(revs[w], rev)
					acked[w].Add(1)
				}
			}
		}()
	}
	defer func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		wg.Wait()
	}()
	// allAcked waits until every writer has more than n acknowledged puts.
	allAcked := func(n [writers]int64) {
		t.Helper()
		require.Eventually(t, func() bool {
			for w := range writers {
				if acked[w].Load() <= n[w] {
					return false
				}
			}
			return true
		}, 30*time.Second, time.Millisecond, "every writer gets a write acknowledged")
	}
	var warm [writers]int64
	for w := range writers {
		warm[w] = 50 // the cluster's revision passes the snapshot's 40
	}
	allAcked(warm)

	res, err := leader.Restore(ctxT(t, 60*time.Second), bytes.NewReader(data.Bytes()))
	require.NoError(t, err)
	var atRestore [writers]int64
	for w := range writers {
		atRestore[w] = acked[w].Load() + 3
	}
	allAcked(atRestore)
	close(stop)
	wg.Wait()

	seen := make(map[int64]int)
	for w := range writers {
		for i, rev := range revs[w] {
			if i > 0 {
				require.Greater(t, rev, revs[w][i-1], "writer %d: acknowledged revisions go back across the restore (restored at revision %d)", w, res.To.Revision)
			}
			if other, dup := seen[rev]; dup {
				t.Fatalf("revision %d acknowledged to writers %d and %d (restored at revision %d)", rev, other, w, res.To.Revision)
			}
			seen[rev] = w
		}
	}
	c.EnsureSame(t)
	kv, err := leader.Get(ctxT(t, 10*time.Second), []byte("seed/19999"), node.Linearizable)
	require.NoError(t, err)
	assert.Equal(t, value, kv.Value)
}
