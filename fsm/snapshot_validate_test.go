package fsm

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// coordWorkload gives f keys, a history, members, two sessions (one
// holding lock "L", one waiting for it), an election and an ephemeral key.
func coordWorkload(t *testing.T) (tf *testFSM, holder, waiter uint64) {
	tf = newTestFSM(t, Config{HistoryRetention: 1000})
	for i := range 30 {
		tf.put(fmt.Sprintf("k/%02d", i%10), fmt.Sprint(i))
	}
	tf.del("k/09", false)
	tf.apply(&Command{Type: CmdPutMember, Member: &Member{ID: "old1", RaftAddr: "10.9.9.1:7000", HTTPAddr: "10.9.9.1:7001"}})
	holder = tf.newSession(1_000, 5_000)
	waiter = tf.newSession(1_000, 7_000)
	require.Equal(t, CoordOK, tf.acquire(1_000, holder, "L", 1).Code)
	require.Equal(t, CoordQueued, tf.acquire(1_000, waiter, "L", 1).Code)
	require.Equal(t, CoordOK, tf.coord(1_000, CoordRequest{Op: OpElectCampaign, Session: holder, RequestID: 2, Name: "E", Value: []byte("v")}).Code)
	tf.txn(&Request{Success: []Op{{Type: OpPut, Key: []byte("eph"), Value: []byte("x"), Session: holder}}})
	return tf, holder, waiter
}

func TestValidateSnapshot(t *testing.T) {
	tf, _, _ := coordWorkload(t)
	data := persist(t, tf.FSM).Bytes()

	info, err := ValidateSnapshot(bytes.NewReader(data))
	require.NoError(t, err)
	assert.Equal(t, SnapshotInfo{
		Version: int(snapshotVersion), AppliedIndex: tf.AppliedIndex(), Revision: tf.Revision(),
		CompactRevision: tf.CompactRevision(), LastTime: tf.LastTime(),
		Keys: 10, Events: int(tf.Revision()), Members: 1,
		Sessions: 2, Locks: 1, Elections: 1, EphemeralKeys: 1, Size: int64(len(data)),
	}, info)
	size, err := VerifySnapshotChecksum(bytes.NewReader(data))
	require.NoError(t, err)
	assert.Equal(t, int64(len(data)), size)

	// What Snapshot describes without writing agrees on what it knows.
	snap, err := tf.Snapshot()
	require.NoError(t, err)
	d, ok := DescribeSnapshot(snap)
	require.True(t, ok)
	assert.Equal(t, SnapshotInfo{Version: info.Version, AppliedIndex: info.AppliedIndex, Revision: info.Revision,
		CompactRevision: info.CompactRevision, LastTime: info.LastTime, Keys: info.Keys, Events: info.Events, Members: info.Members}, d)

	// Every flipped byte and every truncation is refused by both checks.
	for i := range data {
		bad := bytes.Clone(data)
		bad[i] ^= 0x40
		_, err := ValidateSnapshot(bytes.NewReader(bad))
		require.Error(t, err, "flipped byte %d", i)
		_, err = VerifySnapshotChecksum(bytes.NewReader(bad))
		require.ErrorIs(t, err, ErrCorrupt, "flipped byte %d", i)
	}
	for n := range len(data) {
		_, err := ValidateSnapshot(bytes.NewReader(data[:n]))
		require.ErrorIs(t, err, ErrCorrupt, "truncated to %d bytes", n)
		_, err = VerifySnapshotChecksum(bytes.NewReader(data[:n]))
		require.ErrorIs(t, err, ErrCorrupt, "truncated to %d bytes", n)
	}
	_, err = ValidateSnapshot(bytes.NewReader(append(bytes.Clone(data), 0)))
	require.ErrorIs(t, err, ErrCorrupt, "trailing byte")
}

func TestWriteForRestore(t *testing.T) {
	tf, holder, waiter := coordWorkload(t)
	src := persist(t, tf.FSM).Bytes()
	loaded, err := LoadSnapshot(bytes.NewReader(src))
	require.NoError(t, err)
	from := loaded.Info()
	require.Equal(t, tf.AppliedIndex(), from.AppliedIndex)

	running := []Member{{ID: "n1", RaftAddr: "127.0.0.1:1", HTTPAddr: "127.0.0.1:2"}, {ID: "n2", RaftAddr: "127.0.0.1:3"}}
	const now = int64(1_000_000)
	// The running cluster is behind the snapshot: index and revision move
	// above the snapshot's (and above its coordination indexes).
	var out bytes.Buffer
	to, err := loaded.WriteForRestore(&out, RestoreParams{AfterIndex: 3, AfterRevision: 2, Members: running, Time: now})
	require.NoError(t, err)
	assert.Equal(t, tf.AppliedIndex()+1, to.AppliedIndex)
	assert.Equal(t, tf.Revision()+1, to.Revision)
	assert.Equal(t, to.Revision, to.CompactRevision, "no history before the restored revision")
	assert.Equal(t, 0, to.Events)
	assert.Equal(t, from.Keys, to.Keys)
	assert.Equal(t, int64(out.Len()), to.Size)

	got := New(Config{HistoryRetention: 1000})
	require.NoError(t, got.Restore(io.NopCloser(bytes.NewReader(out.Bytes()))))
	assert.Equal(t, running, got.Members(), "the registry is the running cluster's")
	assert.Equal(t, to.AppliedIndex, got.AppliedIndex())
	assert.Equal(t, to.Revision, got.Revision())
	assert.Equal(t, now, got.LastTime())
	want, err := tf.Range(RangeRequest{Prefix: true})
	require.NoError(t, err)
	have, err := got.Range(RangeRequest{Prefix: true})
	require.NoError(t, err)
	assert.Equal(t, want.KVs, have.KVs, "keys keep values, revisions and versions")
	_, err = got.Range(RangeRequest{Prefix: true, Revision: to.Revision - 1})
	require.ErrorIs(t, err, ErrCompacted, "history before the restore is gone")
	for id, ttl := range map[uint64]int64{holder: 5_000, waiter: 7_000} {
		s, ok := got.Session(id)
		require.True(t, ok)
		assert.Equal(t, now+ttl, s.Expires, "session %d has a fresh TTL", id)
	}
	l := got.Lock("L")
	assert.Equal(t, holder, l.Holder)
	assert.Equal(t, []uint64{waiter}, l.Waiters)

	// The running cluster is ahead: index and revision move above it, so
	// tokens issued after the restore exceed every one issued before.
	out.Reset()
	to, err = loaded.WriteForRestore(&out, RestoreParams{AfterIndex: 5_000, AfterRevision: 900, Members: running, Time: now + 1})
	require.NoError(t, err)
	assert.Equal(t, uint64(5_001), to.AppliedIndex)
	assert.Equal(t, int64(901), to.Revision)
	got2 := newTestFSM(t, Config{})
	require.NoError(t, got2.Restore(io.NopCloser(bytes.NewReader(out.Bytes()))))
	got2.index = to.AppliedIndex
	s := got2.newSession(now+2, 1_000)
	assert.Greater(t, s, CoordIndex(5_001, 0), "a session created after the restore has a newer index")
	res := got2.coord(now+3, CoordRequest{Op: OpLockRelease, Session: holder, RequestID: 9, Name: "L"})
	require.NoError(t, res.Err())
	assert.Greater(t, got2.Lock("L").Token, l.Token, "the next grant's token exceeds the restored one")

	// The result is what Restore accepts, and only a valid input is loaded.
	_, err = ValidateSnapshot(bytes.NewReader(out.Bytes()))
	require.NoError(t, err)
	_, err = LoadSnapshot(bytes.NewReader(src[:len(src)-1]))
	require.ErrorIs(t, err, ErrCorrupt)
	_, err = loaded.WriteForRestore(io.Discard, RestoreParams{AfterIndex: maxRestoreIndex})
	require.ErrorIs(t, err, ErrInvalid)
	_, err = loaded.WriteForRestore(io.Discard, RestoreParams{Members: []Member{{}}})
	require.ErrorIs(t, err, ErrInvalid)
}

// A restore that does not continue a watcher's history ends the watch with
// a RestoredError; one that does (a follower catching up) keeps it.
func TestRestoreEndsWatchesOfAnotherHistory(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()

	older := newTestFSM(t, Config{})
	older.put("k", "old")
	snap := persist(t, older.FSM)

	f := newTestFSM(t, Config{})
	for i := range 5 {
		f.put("k", fmt.Sprint(i))
	}
	ch, err := f.Watch(ctx, WatchRequest{Key: []byte("k")})
	require.NoError(t, err)
	require.NoError(t, f.Restore(snap.reader())) // revision 5 -> 1
	wr := recv(t, ch)
	var re *RestoredError
	require.ErrorAs(t, wr.Err, &re)
	assert.ErrorIs(t, wr.Err, ErrCompacted)
	assert.Equal(t, int64(1), re.Revision)
	drainClosed(t, ch)

	// The same revision is not ahead either: the watch ends.
	g := newTestFSM(t, Config{})
	g.put("k", "other")
	ch, err = g.Watch(ctx, WatchRequest{Key: []byte("k")})
	require.NoError(t, err)
	require.NoError(t, g.Restore(snap.reader()))
	require.ErrorAs(t, recv(t, ch).Err, &re)
	drainClosed(t, ch)

	// A user restore (compacted at its revision) ends even a watch whose
	// next revision lies beyond the old state.
	h := newTestFSM(t, Config{})
	h.put("k", "h")
	ch, err = h.Watch(ctx, WatchRequest{Key: []byte("k")})
	require.NoError(t, err)
	loaded, err := LoadSnapshot(bytes.NewReader(persist(t, older.FSM).Bytes()))
	require.NoError(t, err)
	var out bytes.Buffer
	_, err = loaded.WriteForRestore(&out, RestoreParams{AfterIndex: 10, AfterRevision: h.Revision()})
	require.NoError(t, err)
	require.NoError(t, h.Restore(io.NopCloser(&out)))
	require.ErrorAs(t, recv(t, ch).Err, &re)
	drainClosed(t, ch)

	// A continuation keeps the watch and delivers what it had not seen.
	leader := newTestFSM(t, Config{})
	follower := newTestFSM(t, Config{})
	leader.put("k", "1")
	follower.put("k", "1")
	ch, err = follower.Watch(ctx, WatchRequest{Key: []byte("k")})
	require.NoError(t, err)
	leader.put("k", "2")
	require.NoError(t, follower.Restore(persist(t, leader.FSM).reader()))
	wr = recv(t, ch)
	require.NoError(t, wr.Err)
	require.Len(t, wr.Events, 1)
	assert.Equal(t, "2", string(wr.Events[0].KV.Value))
	cancel()
	drainClosed(t, ch)
}
