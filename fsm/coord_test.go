package fsm

import (
	"errors"
	"testing"

	"github.com/hashicorp/raft"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const sec = int64(1_000_000_000)

// coord applies a coordination command at leader time now.
func (tf *testFSM) coord(now int64, r CoordRequest) *CoordResult {
	tf.t.Helper()
	resp := tf.apply(&Command{Type: CmdCoord, Time: now, Coord: &r})
	require.NotNil(tf.t, resp.Coord)
	return resp.Coord
}

func (tf *testFSM) newSession(now, ttl int64) uint64 {
	tf.t.Helper()
	r := tf.coord(now, CoordRequest{Op: OpSessionCreate, N: ttl, Name: "test"})
	require.NoError(tf.t, r.Err())
	return r.Session
}

func (tf *testFSM) acquire(now int64, s uint64, name string, reqID uint64) *CoordResult {
	tf.t.Helper()
	return tf.coord(now, CoordRequest{Op: OpLockAcquire, Session: s, Name: name, RequestID: reqID})
}

func TestCoordIndexOrdersCommands(t *testing.T) {
	assert.Less(t, CoordIndex(7, 65535), CoordIndex(8, 0))
	assert.Less(t, CoordIndex(8, 0), CoordIndex(8, 1))
	assert.Equal(t, uint64(5)<<16, CoordIndex(5, 0))
}

func TestLockFIFOAndTokens(t *testing.T) {
	tf := newTestFSM(t, Config{})
	s1, s2, s3 := tf.newSession(1, 10*sec), tf.newSession(1, 10*sec), tf.newSession(1, 10*sec)

	g1 := tf.acquire(2, s1, "L", 1)
	require.Equal(t, CoordOK, g1.Code)
	require.Equal(t, CoordIndex(tf.index, 0), g1.Token, "token is the grant's log position")

	q2 := tf.acquire(2, s2, "L", 1)
	q3 := tf.acquire(2, s3, "L", 1)
	require.Equal(t, CoordQueued, q2.Code)
	require.Equal(t, CoordQueued, q3.Code)
	assert.Equal(t, []uint64{s2, s3}, tf.Lock("L").Waiters)

	// Release by a non-owner is rejected and changes nothing.
	bad := tf.coord(3, CoordRequest{Op: OpLockRelease, Session: s3, Name: "L", RequestID: 2})
	require.ErrorIs(t, bad.Err(), ErrNotOwner)
	assert.Equal(t, s1, tf.Lock("L").Holder)

	rel := tf.coord(3, CoordRequest{Op: OpLockRelease, Session: s1, Name: "L", Token: g1.Token, RequestID: 2})
	require.NoError(t, rel.Err())
	info := tf.Lock("L")
	require.Equal(t, s2, info.Holder, "first waiter gets the lock in the apply that frees it")
	require.Equal(t, rel.Index, info.Token, "the handed-off grant's token is the release's position")
	require.Greater(t, info.Token, g1.Token)
	assert.Equal(t, []uint64{s3}, info.Waiters)

	// The retried acquire of s2 reports the grant (exactly once).
	again := tf.acquire(4, s2, "L", 1)
	require.Equal(t, CoordOK, again.Code)
	require.Equal(t, info.Token, again.Token)
	assert.Equal(t, int64(1), tf.Lock("L").Count)

	// A retried release of s1 is answered from memory: s2 keeps the lock.
	retry := tf.coord(5, CoordRequest{Op: OpLockRelease, Session: s1, Name: "L", Token: g1.Token, RequestID: 2})
	require.NoError(t, retry.Err())
	assert.Equal(t, s2, tf.Lock("L").Holder)

	tf.coord(6, CoordRequest{Op: OpLockRelease, Session: s2, Name: "L", RequestID: 3})
	info3 := tf.Lock("L")
	require.Equal(t, s3, info3.Holder)
	require.Greater(t, info3.Token, info.Token)
}

func TestTryLockAndReentrancy(t *testing.T) {
	tf := newTestFSM(t, Config{})
	s1, s2 := tf.newSession(1, 10*sec), tf.newSession(1, 10*sec)
	g := tf.coord(1, CoordRequest{Op: OpLockAcquire, Session: s1, Name: "L", N: 2, RequestID: 1})
	require.NoError(t, g.Err())
	try := tf.coord(1, CoordRequest{Op: OpLockAcquire, Session: s2, Name: "L", K: 1, RequestID: 1})
	require.ErrorIs(t, try.Err(), ErrLocked)
	assert.Empty(t, tf.Lock("L").Waiters, "a try never queues")

	g2 := tf.coord(1, CoordRequest{Op: OpLockAcquire, Session: s1, Name: "L", N: 2, RequestID: 2})
	require.NoError(t, g2.Err())
	assert.Equal(t, g.Token, g2.Token)
	assert.Equal(t, int64(2), g2.Count)
	g3 := tf.coord(1, CoordRequest{Op: OpLockAcquire, Session: s1, Name: "L", N: 2, RequestID: 3})
	require.ErrorIs(t, g3.Err(), ErrReentrancyLimit)

	tf.coord(1, CoordRequest{Op: OpLockRelease, Session: s1, Name: "L", RequestID: 4})
	assert.Equal(t, s1, tf.Lock("L").Holder, "one release of two holds keeps the lock")
	tf.coord(1, CoordRequest{Op: OpLockRelease, Session: s1, Name: "L", RequestID: 5})
	assert.Equal(t, uint64(0), tf.Lock("L").Holder)
}

func TestSessionExpiryReleasesInSameCommand(t *testing.T) {
	tf := newTestFSM(t, Config{})
	s1, s2 := tf.newSession(0, 2*sec), tf.newSession(0, 10*sec)
	tf.acquire(0, s1, "L", 1)
	tf.acquire(0, s2, "L", 1)

	// A keepalive pushes the deadline; expiring too early does nothing.
	ka := tf.coord(1*sec, CoordRequest{Op: OpSessionKeepAlive, IDs: []uint64{s1, 999}})
	assert.Equal(t, []uint64{999}, ka.IDs)
	assert.Empty(t, tf.ExpiredSessions(2*sec, 10))
	tf.coord(2*sec, CoordRequest{Op: OpSessionExpire, IDs: []uint64{s1}})
	_, alive := tf.Session(s1)
	require.True(t, alive, "deadline is 3s after the keepalive")

	require.Equal(t, []uint64{s1}, tf.ExpiredSessions(3*sec, 10))
	changed := tf.SessionChanged(s1)
	lockChanged := tf.LockChanged("L")
	exp := tf.coord(3*sec, CoordRequest{Op: OpSessionExpire, IDs: []uint64{s1}})
	assert.Equal(t, int64(1), exp.Count)
	_, alive = tf.Session(s1)
	require.False(t, alive)
	info := tf.Lock("L")
	require.Equal(t, s2, info.Holder, "the waiter is granted by the expiry command itself")
	require.Equal(t, exp.Index, info.Token)
	for _, ch := range []<-chan struct{}{changed, lockChanged} {
		select {
		case <-ch:
		default:
			t.Fatal("change notification not delivered")
		}
	}
	// Requests of a dead session fail.
	r := tf.acquire(4*sec, s1, "L", 9)
	require.ErrorIs(t, r.Err(), ErrSessionNotFound)
}

func TestRenewAllGivesFreshTTL(t *testing.T) {
	tf := newTestFSM(t, Config{})
	s := tf.newSession(0, 2*sec)
	tf.coord(100*sec, CoordRequest{Op: OpSessionRenewAll})
	assert.Empty(t, tf.ExpiredSessions(101*sec, 10))
	assert.Equal(t, []uint64{s}, tf.ExpiredSessions(102*sec, 10))
}

func TestFencedTxn(t *testing.T) {
	tf := newTestFSM(t, Config{})
	s1, s2 := tf.newSession(0, sec), tf.newSession(0, 10*sec)
	old := tf.acquire(0, s1, "L", 1).Token
	tf.acquire(0, s2, "L", 1)
	fenced := func(token uint64) *Response {
		return tf.apply(&Command{Type: CmdFencedTxn, Fence: &Fence{Lock: "L", Token: token},
			Txn: &Request{Success: []Op{putOp("data", "x")}}})
	}
	ok := fenced(old)
	require.True(t, ok.Succeeded)
	require.Nil(t, ok.Coord)

	// s1 pauses past its TTL; its session expires and s2 is granted.
	tf.coord(5*sec, CoordRequest{Op: OpSessionExpire, IDs: []uint64{s1}})
	newer := tf.Lock("L").Token
	require.Greater(t, newer, old)

	rev := tf.Revision()
	stale := fenced(old)
	require.False(t, stale.Succeeded)
	require.ErrorIs(t, stale.Coord.Err(), ErrFenced)
	assert.Equal(t, rev, tf.Revision(), "a refused write changes nothing")
	assert.Equal(t, newer, stale.Coord.Token)

	never := fenced(newer + 1)
	require.ErrorIs(t, never.Coord.Err(), ErrFenced)
	require.True(t, fenced(newer).Succeeded)

	// Validation rejects a fence without a token before it is proposed.
	err := (&Command{Type: CmdFencedTxn, Fence: &Fence{Lock: "L"}, Txn: &Request{Success: []Op{putOp("a", "b")}}}).Validate(Limits{})
	require.ErrorIs(t, err, ErrInvalid)
}

func TestDeadlockDetected(t *testing.T) {
	tf := newTestFSM(t, Config{})
	a, b, c := tf.newSession(0, 10*sec), tf.newSession(0, 10*sec), tf.newSession(0, 10*sec)
	tf.acquire(0, a, "x", 1)
	tf.acquire(0, b, "y", 1)
	tf.acquire(0, c, "z", 1)
	require.Equal(t, CoordQueued, tf.acquire(0, a, "y", 2).Code)
	require.Equal(t, CoordQueued, tf.acquire(0, b, "z", 2).Code)
	r := tf.acquire(0, c, "x", 2)
	require.ErrorIs(t, r.Err(), ErrDeadlock)
	assert.Contains(t, r.Detail, `lock "x" held by session`)
	assert.Contains(t, r.Detail, `lock "y"`)
	assert.Contains(t, r.Detail, `lock "z"`)
	assert.NotContains(t, tf.Lock("x").Waiters, c, "a refused acquire does not queue")
}

func TestCancelWithdrawsAndForgets(t *testing.T) {
	tf := newTestFSM(t, Config{})
	s1, s2 := tf.newSession(0, 10*sec), tf.newSession(0, 10*sec)
	tf.acquire(0, s1, "L", 1)
	require.Equal(t, CoordQueued, tf.acquire(0, s2, "L", 7).Code)
	require.NoError(t, tf.coord(0, CoordRequest{Op: OpLockCancel, Session: s2, Name: "L", Token: 7}).Err())
	assert.Empty(t, tf.Lock("L").Waiters)
	// The acquire's request ID was forgotten: a retry queues again.
	require.Equal(t, CoordQueued, tf.acquire(0, s2, "L", 7).Code)
	// Cancel after the grant releases it.
	tf.coord(0, CoordRequest{Op: OpLockRelease, Session: s1, Name: "L", RequestID: 2})
	require.Equal(t, s2, tf.Lock("L").Holder)
	require.NoError(t, tf.coord(0, CoordRequest{Op: OpLockCancel, Session: s2, Name: "L", Token: 7}).Err())
	assert.Equal(t, uint64(0), tf.Lock("L").Holder)
}

func TestElection(t *testing.T) {
	tf := newTestFSM(t, Config{})
	a, b := tf.newSession(0, 10*sec), tf.newSession(0, 2*sec)
	ra := tf.coord(0, CoordRequest{Op: OpElectCampaign, Session: a, Name: "E", Value: []byte("a"), RequestID: 1})
	require.Equal(t, CoordOK, ra.Code)
	rb := tf.coord(0, CoordRequest{Op: OpElectCampaign, Session: b, Name: "E", Value: []byte("b"), RequestID: 1})
	require.Equal(t, CoordQueued, rb.Code)

	require.ErrorIs(t, tf.coord(0, CoordRequest{Op: OpElectProclaim, Session: b, Name: "E", Value: []byte("x")}).Err(), ErrNotOwner)
	require.NoError(t, tf.coord(0, CoordRequest{Op: OpElectProclaim, Session: a, Name: "E", Token: ra.Token, Value: []byte("a2")}).Err())
	assert.Equal(t, "a2", string(tf.Election("E").Value))

	res := tf.coord(0, CoordRequest{Op: OpElectResign, Session: a, Name: "E", Token: ra.Token, RequestID: 2})
	require.NoError(t, res.Err())
	e := tf.Election("E")
	require.Equal(t, b, e.Leader)
	require.Greater(t, e.Term, ra.Token)
	assert.Equal(t, "b", string(e.Value))

	// The leader's session expires: nobody leads, the term stays.
	tf.coord(3*sec, CoordRequest{Op: OpSessionExpire, IDs: []uint64{b}})
	e2 := tf.Election("E")
	assert.Equal(t, uint64(0), e2.Leader)
	assert.Equal(t, e.Term, e2.Term)
}

func TestCoordSnapshotRoundTrip(t *testing.T) {
	tf := newTestFSM(t, Config{})
	tf.put("k", "v")
	s1, s2 := tf.newSession(0, 10*sec), tf.newSession(0, 10*sec)
	tf.acquire(0, s1, "L", 1)
	tf.acquire(0, s2, "L", 1)
	tf.coord(0, CoordRequest{Op: OpElectCampaign, Session: s2, Name: "E", Value: []byte("v")})
	tf.coord(0, CoordRequest{Op: OpElectCampaign, Session: s1, Name: "E", Value: []byte("w")})
	sink := persist(t, tf.FSM)

	g := New(Config{})
	require.NoError(t, g.Restore(sink.reader()))
	require.Equal(t, tf.Hash(), g.Hash())
	assert.Equal(t, tf.Sessions(), g.Sessions())
	assert.Equal(t, tf.Lock("L"), g.Lock("L"))
	assert.Equal(t, tf.Election("E"), g.Election("E"))

	// The restored replica behaves the same: a retried acquire is still
	// remembered, and ending s1 hands the lock to s2.
	rg := &testFSM{FSM: g, t: t, index: tf.index}
	require.Equal(t, tf.acquire(1, s1, "L", 1).Token, rg.acquire(1, s1, "L", 1).Token)
	tf.coord(1, CoordRequest{Op: OpSessionDestroy, Session: s1})
	rg.coord(1, CoordRequest{Op: OpSessionDestroy, Session: s1})
	assert.Equal(t, s2, g.Lock("L").Holder)
	assert.Equal(t, tf.Hash(), g.Hash())
}

func TestCoordCodecRoundTrip(t *testing.T) {
	cmds := []*Command{
		{Type: CmdCoord, Time: 5, Coord: &CoordRequest{Op: OpLockAcquire, Session: 1 << 40, RequestID: 9, Name: "n", N: 3, K: 1}},
		{Type: CmdCoord, Coord: &CoordRequest{Op: OpSessionKeepAlive, IDs: []uint64{1, 2, 1 << 60}}},
		{Type: CmdCoord, Coord: &CoordRequest{Op: OpElectProclaim, Session: 2, Name: "e", Value: []byte{0, 1}, Token: 77}},
		{Type: CmdFencedTxn, Fence: &Fence{Lock: "L", Token: 1 << 20}, Txn: &Request{Success: []Op{putOp("a", "b")}}},
	}
	for _, c := range cmds {
		b := EncodeCommand(c)
		require.Len(t, b, commandSize(c))
		got, err := DecodeCommand(b)
		require.NoError(t, err)
		require.Equal(t, c, got)
		require.NoError(t, c.Validate(Limits{}))
	}
	resp := &Response{Succeeded: true, Revision: 3, Coord: &CoordResult{Code: CoordDeadlock, Session: 4, Token: 5, Count: -1, Index: 6, Detail: "cycle", IDs: []uint64{7}}}
	got, err := DecodeResponse(AppendResponse(nil, resp))
	require.NoError(t, err)
	require.Equal(t, resp, got)
	bad := AppendResponse(nil, &Response{Coord: &CoordResult{}})
	bad[len(bad)-7] = 200 // the code byte, out of range
	_, err = DecodeResponse(bad)
	require.ErrorIs(t, err, ErrCorrupt)
}

func TestCoordApplyRejectsMalformed(t *testing.T) {
	f := New(Config{})
	for _, r := range []CoordRequest{
		{Op: 0}, {Op: 99}, {Op: OpSessionCreate, N: 0}, {Op: OpLockAcquire, Session: 1},
		{Op: OpSessionKeepAlive},
	} {
		res := f.Apply(&raft.Log{Index: 1, Type: raft.LogCommand, Data: EncodeCommand(&Command{Type: CmdCoord, Coord: &r})}).(ApplyResult)
		require.NoError(t, res.Err)
		err := res.Response.Coord.Err()
		require.True(t, errors.Is(err, ErrInvalid) || errors.Is(err, ErrSessionNotFound), "%v: %v", r, err)
	}
}

func FuzzCoordCommands(f *testing.F) {
	f.Add(EncodeCommand(&Command{Type: CmdCoord, Coord: &CoordRequest{Op: OpSessionCreate, N: 5}}))
	f.Add(EncodeCommand(&Command{Type: CmdCoord, Coord: &CoordRequest{Op: OpLockAcquire, Session: 1 << 16, Name: "L"}}))
	f.Add(EncodeCommand(&Command{Type: CmdFencedTxn, Fence: &Fence{Lock: "L", Token: 1}, Txn: &Request{Success: []Op{putOp("a", "b")}}}))
	for _, r := range []CoordRequest{
		{Op: OpSemAcquire, Session: 1 << 16, RequestID: 1, Name: "S", N: 2, K: 1},
		{Op: OpSemRelease, Session: 1 << 16, RequestID: 2, Name: "S"},
		{Op: OpBarrierAwait, Session: 1 << 16, RequestID: 1, Name: "B", N: 1},
		{Op: OpBarrierAwait, Session: 1 << 16, RequestID: 1, Name: "B", N: 2},
		{Op: OpBarrierEnter, Session: 1 << 16, RequestID: 1, Name: "D", N: 2},
		{Op: OpLatchCreate, Session: 1 << 16, RequestID: 1, Name: "L", N: 3},
		{Op: OpSessionDestroy, Session: 1 << 16},
	} {
		f.Add(EncodeCommand(&Command{Type: CmdCoord, Coord: &r}))
	}
	f.Add(EncodeCommand(&Command{Type: CmdTxn, Txn: &Request{Success: []Op{{Type: OpPut, Key: []byte("e"), Session: 1 << 16}}}}))
	f.Fuzz(func(t *testing.T, b []byte) {
		// A session exists at position 1<<16; garbage commands against it
		// must never panic, and state must survive a snapshot round trip.
		g := New(Config{})
		g.Apply(&raft.Log{Index: 1, Type: raft.LogCommand, Data: EncodeCommand(&Command{Type: CmdCoord, Coord: &CoordRequest{Op: OpSessionCreate, N: 5}})})
		g.Apply(&raft.Log{Index: 2, Type: raft.LogCommand, Data: b})
		sink := persist(t, g)
		h := New(Config{})
		require.NoError(t, h.Restore(sink.reader()))
		require.Equal(t, g.Hash(), h.Hash())
	})
}
