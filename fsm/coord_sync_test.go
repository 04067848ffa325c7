package fsm

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"io"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func (tf *testFSM) semAcquire(s uint64, name string, n, k int64, reqID uint64) *CoordResult {
	tf.t.Helper()
	return tf.coord(0, CoordRequest{Op: OpSemAcquire, Session: s, Name: name, N: n, K: k, RequestID: reqID})
}

func (tf *testFSM) semRelease(s uint64, name string, k int64, reqID uint64) *CoordResult {
	tf.t.Helper()
	return tf.coord(0, CoordRequest{Op: OpSemRelease, Session: s, Name: name, K: k, RequestID: reqID})
}

func holders(info SemaphoreInfo) map[uint64]int64 {
	out := map[uint64]int64{}
	for _, h := range info.Holders {
		out[h.Session] = h.Permits
	}
	return out
}

func TestSemaphoreFIFONoBarging(t *testing.T) {
	tf := newTestFSM(t, Config{})
	a, b, c, d := tf.newSession(0, 10*sec), tf.newSession(0, 10*sec), tf.newSession(0, 10*sec), tf.newSession(0, 10*sec)

	require.Equal(t, CoordOK, tf.semAcquire(a, "S", 3, 2, 1).Code)
	// b wants 2 of the 1 free: it queues; c wants 1, which is free, but
	// must not overtake b.
	require.Equal(t, CoordQueued, tf.semAcquire(b, "S", 3, 2, 1).Code)
	require.Equal(t, CoordQueued, tf.semAcquire(c, "S", 3, 1, 1).Code)
	try := tf.coord(0, CoordRequest{Op: OpSemAcquire, Session: d, Name: "S", N: 3, K: 1, Token: 1})
	require.ErrorIs(t, try.Err(), ErrNoPermits, "a try does not barge past waiters either")
	info := tf.Semaphore("S")
	assert.Equal(t, int64(2), info.Used)
	assert.Equal(t, []SemaphoreHold{{b, 2}, {c, 1}}, info.Waiters)

	// a returns 1: free = 2, b (head) takes both; c still waits.
	rel := tf.semRelease(a, "S", 1, 2)
	require.NoError(t, rel.Err())
	assert.Equal(t, int64(1), rel.Count, "a still holds one")
	info = tf.Semaphore("S")
	assert.Equal(t, map[uint64]int64{a: 1, b: 2}, holders(info))
	assert.Equal(t, int64(3), info.Used)
	assert.Equal(t, []SemaphoreHold{{c, 1}}, info.Waiters)
	got, ok := tf.Result(b, 1)
	require.True(t, ok)
	assert.Equal(t, CoordOK, got.Code, "the waiter's remembered result is its grant")
	assert.Equal(t, rel.Index, got.Token)

	// The retried acquire of b is applied once.
	again := tf.semAcquire(b, "S", 3, 2, 1)
	require.Equal(t, CoordOK, again.Code)
	assert.Equal(t, int64(3), tf.Semaphore("S").Used, "never more than N held")

	// Releasing more than held is refused and changes nothing.
	require.ErrorIs(t, tf.semRelease(a, "S", 2, 3).Err(), ErrNotOwner)
	require.ErrorIs(t, tf.semRelease(d, "S", 1, 1).Err(), ErrNotOwner)
	assert.Equal(t, int64(3), tf.Semaphore("S").Used)

	// Release all (K=0) of b: c is granted; a retried release is answered
	// from memory and does not release c's permit.
	require.NoError(t, tf.semRelease(b, "S", 0, 2).Err())
	assert.Equal(t, map[uint64]int64{a: 1, c: 1}, holders(tf.Semaphore("S")))
	require.NoError(t, tf.semRelease(b, "S", 0, 2).Err())
	assert.Equal(t, map[uint64]int64{a: 1, c: 1}, holders(tf.Semaphore("S")))

	// Everyone leaves: the idle semaphore is forgotten.
	tf.semRelease(a, "S", 0, 4)
	tf.semRelease(c, "S", 0, 2)
	assert.Equal(t, SemaphoreInfo{Name: "S"}, tf.Semaphore("S"))
}

func TestSemaphoreMismatchAndValidation(t *testing.T) {
	tf := newTestFSM(t, Config{})
	a, b := tf.newSession(0, 10*sec), tf.newSession(0, 10*sec)
	require.NoError(t, tf.semAcquire(a, "S", 3, 1, 1).Err())
	r := tf.semAcquire(b, "S", 4, 1, 1)
	require.ErrorIs(t, r.Err(), ErrMismatch)
	assert.Contains(t, r.Detail, "3 permits")
	assert.Equal(t, int64(3), tf.Semaphore("S").Permits)
	assert.Empty(t, tf.Semaphore("S").Waiters)
	for _, bad := range []CoordRequest{
		{Op: OpSemAcquire, Session: a, Name: "S", N: 3, K: 4, RequestID: 9},
		{Op: OpSemAcquire, Session: a, Name: "S", N: 0, K: 0, RequestID: 9},
		{Op: OpSemAcquire, Session: a, Name: "S", N: 3, K: 1},           // blocking without a request ID
		{Op: OpSemAcquire, Session: a, Name: "S", N: 3, K: 1, Token: 2}, // unknown mode
		{Op: OpSemRelease, Session: a, Name: "S", K: -1},
		{Op: OpBarrierAwait, Session: a, Name: "B", N: 0, RequestID: 1},
		{Op: OpBarrierAwait, Session: a, Name: "B", N: 2},
		{Op: OpLatchCreate, Session: a, Name: "L", N: -1},
	} {
		require.ErrorIs(t, bad.Validate(Limits{}), ErrInvalid, "%+v", bad)
		require.ErrorIs(t, tf.coord(0, bad).Err(), ErrInvalid, "%+v", bad)
	}
	assert.Equal(t, map[uint64]int64{a: 1}, holders(tf.Semaphore("S")))
}

func TestSemaphoreSessionEndReturnsPermits(t *testing.T) {
	tf := newTestFSM(t, Config{})
	a, b, c := tf.newSession(0, 2*sec), tf.newSession(0, 10*sec), tf.newSession(0, 10*sec)
	require.NoError(t, tf.semAcquire(a, "S", 2, 2, 1).Err())
	require.Equal(t, CoordQueued, tf.semAcquire(b, "S", 2, 1, 1).Code)
	require.Equal(t, CoordQueued, tf.semAcquire(c, "S", 2, 1, 1).Code)
	res := tf.coord(3*sec, CoordRequest{Op: OpSessionExpire, IDs: []uint64{a}})
	require.Equal(t, int64(1), res.Count)
	info := tf.Semaphore("S")
	assert.Equal(t, map[uint64]int64{b: 1, c: 1}, holders(info), "both waiters granted by the expiry command")
	assert.Empty(t, info.Waiters)
	for _, s := range []uint64{b, c} {
		r, ok := tf.Result(s, 1)
		require.True(t, ok)
		assert.Equal(t, CoordOK, r.Code)
		assert.Equal(t, res.Index, r.Token)
	}
	// A dead waiter at the head unblocks those behind it.
	d := tf.newSession(0, 10*sec)
	require.Equal(t, CoordQueued, tf.semAcquire(d, "S", 2, 2, 1).Code)
	e := tf.newSession(0, 10*sec)
	require.Equal(t, CoordQueued, tf.semAcquire(e, "S", 2, 1, 1).Code)
	tf.semRelease(b, "S", 0, 2)
	require.Equal(t, []SemaphoreHold{{d, 2}, {e, 1}}, tf.Semaphore("S").Waiters, "1 free, the head wants 2")
	tf.coord(0, CoordRequest{Op: OpSessionDestroy, Session: d})
	assert.Equal(t, map[uint64]int64{c: 1, e: 1}, holders(tf.Semaphore("S")))
}

func TestSemaphoreCancel(t *testing.T) {
	tf := newTestFSM(t, Config{})
	a, b, c := tf.newSession(0, 10*sec), tf.newSession(0, 10*sec), tf.newSession(0, 10*sec)
	tf.semAcquire(a, "S", 2, 1, 1)
	require.Equal(t, CoordQueued, tf.semAcquire(b, "S", 2, 2, 7).Code)
	require.Equal(t, CoordQueued, tf.semAcquire(c, "S", 2, 1, 1).Code)
	// Withdrawing the head lets c in at once.
	require.NoError(t, tf.coord(0, CoordRequest{Op: OpSemCancel, Session: b, Name: "S", Token: 7}).Err())
	assert.Equal(t, map[uint64]int64{a: 1, c: 1}, holders(tf.Semaphore("S")))
	// The request ID was forgotten: a retry queues afresh.
	require.Equal(t, CoordQueued, tf.semAcquire(b, "S", 2, 2, 7).Code)
	tf.semRelease(a, "S", 0, 2)
	tf.semRelease(c, "S", 0, 2)
	require.Equal(t, map[uint64]int64{b: 2}, holders(tf.Semaphore("S")))
	// A cancel that lost the race with the grant returns the permits.
	require.NoError(t, tf.coord(0, CoordRequest{Op: OpSemCancel, Session: b, Name: "S", Token: 7}).Err())
	assert.Equal(t, SemaphoreInfo{Name: "S"}, tf.Semaphore("S"))
	require.ErrorIs(t, tf.coord(0, CoordRequest{Op: OpSemCancel, Session: b, Name: "S", Token: 7}).Err(), ErrNotWaiting)
}

func TestSemaphoreDeadlock(t *testing.T) {
	tf := newTestFSM(t, Config{})
	a, b := tf.newSession(0, 10*sec), tf.newSession(0, 10*sec)
	// a holds lock L; b holds 2 of 3 permits; a waits for 2 permits (it
	// needs b's); b then asks for L: a real cycle.
	require.NoError(t, tf.acquire(0, a, "L", 1).Err())
	require.NoError(t, tf.semAcquire(b, "S", 3, 2, 1).Err())
	require.Equal(t, CoordQueued, tf.semAcquire(a, "S", 3, 2, 2).Code)
	r := tf.acquire(0, b, "L", 2)
	require.ErrorIs(t, r.Err(), ErrDeadlock)
	assert.Contains(t, r.Detail, `lock "L" held by session`)
	assert.Contains(t, r.Detail, `permits of semaphore "S" held by session`)
	assert.Empty(t, tf.Lock("L").Waiters)

	// The other way round: the semaphore wait closes the cycle.
	c, d := tf.newSession(0, 10*sec), tf.newSession(0, 10*sec)
	require.NoError(t, tf.acquire(0, c, "M", 1).Err())
	require.NoError(t, tf.semAcquire(d, "T", 1, 1, 1).Err())
	require.Equal(t, CoordQueued, tf.acquire(0, d, "M", 2).Code)
	r = tf.semAcquire(c, "T", 1, 1, 2)
	require.ErrorIs(t, r.Err(), ErrDeadlock)
	assert.Empty(t, tf.Semaphore("T").Waiters)
}

func TestSemaphoreNoFalseDeadlock(t *testing.T) {
	tf := newTestFSM(t, Config{})
	a, b, c := tf.newSession(0, 10*sec), tf.newSession(0, 10*sec), tf.newSession(0, 10*sec)
	// N=3: b and c hold one permit each, a waits for 2. a can be served if
	// either b or c releases, so a does not definitely wait for b: b
	// waiting for a's lock is no deadlock (c may release).
	require.NoError(t, tf.acquire(0, a, "L", 1).Err())
	require.NoError(t, tf.semAcquire(b, "S", 3, 1, 1).Err())
	require.NoError(t, tf.semAcquire(c, "S", 3, 1, 1).Err())
	require.NoError(t, tf.semAcquire(a, "S", 3, 1, 2).Err())
	require.Equal(t, CoordQueued, tf.semAcquire(a, "S", 3, 1, 3).Code)
	require.Equal(t, CoordQueued, tf.acquire(0, b, "L", 2).Code)
	// c releasing resolves it: a gets its permit.
	tf.semRelease(c, "S", 0, 2)
	assert.Equal(t, map[uint64]int64{a: 2, b: 1}, holders(tf.Semaphore("S")))
}

func TestCyclicBarrierGenerations(t *testing.T) {
	tf := newTestFSM(t, Config{})
	s := []uint64{tf.newSession(0, 10*sec), tf.newSession(0, 10*sec), tf.newSession(0, 10*sec)}
	var last uint64
	for gen := range 3 {
		id := uint64(gen + 1)
		var trip *CoordResult
		for i, sid := range s {
			r := tf.coord(0, CoordRequest{Op: OpBarrierAwait, Session: sid, Name: "B", N: 3, RequestID: id})
			if i < 2 {
				require.Equal(t, CoordQueued, r.Code)
				assert.Equal(t, int64(i), r.Count)
				assert.Equal(t, []uint64(s[:i+1]), tf.Barrier("B").Arrived)
			} else {
				require.Equal(t, CoordOK, r.Code)
				trip = r
			}
		}
		require.Greater(t, trip.Token, last, "generations increase")
		last = trip.Token
		for i, sid := range s {
			r, ok := tf.Result(sid, id)
			require.True(t, ok)
			assert.Equal(t, CoordOK, r.Code)
			assert.Equal(t, trip.Token, r.Token, "every party learns the generation")
			assert.Equal(t, int64(i), r.Count, "and its arrival index")
		}
		assert.Equal(t, BarrierInfo{Name: "B"}, tf.Barrier("B"), "a tripped barrier is idle")
	}
	// A retried await of a past generation is answered from memory.
	r := tf.coord(0, CoordRequest{Op: OpBarrierAwait, Session: s[0], Name: "B", N: 3, RequestID: 3})
	assert.Equal(t, last, r.Token)
	assert.Empty(t, tf.Barrier("B").Arrived)
}

func TestBarrierBrokenByDeadParty(t *testing.T) {
	tf := newTestFSM(t, Config{})
	a, b, c := tf.newSession(0, 10*sec), tf.newSession(0, 2*sec), tf.newSession(0, 10*sec)
	tf.coord(0, CoordRequest{Op: OpBarrierAwait, Session: a, Name: "B", N: 3, RequestID: 1})
	tf.coord(0, CoordRequest{Op: OpBarrierAwait, Session: b, Name: "B", N: 3, RequestID: 1})
	require.ErrorIs(t, tf.coord(0, CoordRequest{Op: OpBarrierAwait, Session: c, Name: "B", N: 4, RequestID: 1}).Err(), ErrMismatch)
	tf.coord(3*sec, CoordRequest{Op: OpSessionExpire, IDs: []uint64{b}})

	r, ok := tf.Result(a, 1)
	require.True(t, ok)
	require.ErrorIs(t, r.Err(), ErrBroken)
	assert.Equal(t, b, r.Session, "the error names the culprit")
	info := tf.Barrier("B")
	assert.Equal(t, b, info.Broken)
	assert.Empty(t, info.Arrived)

	// Later awaits fail until a reset.
	late := tf.coord(0, CoordRequest{Op: OpBarrierAwait, Session: c, Name: "B", N: 3, RequestID: 2})
	require.ErrorIs(t, late.Err(), ErrBroken)
	assert.Contains(t, late.Detail, "session")
	require.NoError(t, tf.coord(0, CoordRequest{Op: OpBarrierReset, Session: c, Name: "B", RequestID: 3}).Err())
	assert.Equal(t, BarrierInfo{Name: "B"}, tf.Barrier("B"))
	require.Equal(t, CoordQueued, tf.coord(0, CoordRequest{Op: OpBarrierAwait, Session: c, Name: "B", N: 3, RequestID: 4}).Code)

	// A reset of a barrier with waiters breaks that generation.
	require.NoError(t, tf.coord(0, CoordRequest{Op: OpBarrierReset, Session: a, Name: "B", RequestID: 5}).Err())
	r, _ = tf.Result(c, 4)
	require.ErrorIs(t, r.Err(), ErrBroken)
	assert.Equal(t, a, r.Session)
	_, stillAlive := tf.Session(c)
	assert.True(t, stillAlive)

	// A cancel withdraws a pending await without breaking the barrier.
	tf.coord(0, CoordRequest{Op: OpBarrierAwait, Session: c, Name: "C", N: 2, RequestID: 6})
	require.NoError(t, tf.coord(0, CoordRequest{Op: OpBarrierCancel, Session: c, Name: "C", Token: 6}).Err())
	assert.Equal(t, BarrierInfo{Name: "C"}, tf.Barrier("C"))
}

func TestDoubleBarrier(t *testing.T) {
	tf := newTestFSM(t, Config{})
	a, b, c := tf.newSession(0, 10*sec), tf.newSession(0, 10*sec), tf.newSession(0, 2*sec)
	enter := func(s, id uint64) *CoordResult {
		return tf.coord(0, CoordRequest{Op: OpBarrierEnter, Session: s, Name: "D", N: 2, RequestID: id})
	}
	leave := func(s, id uint64) *CoordResult {
		return tf.coord(0, CoordRequest{Op: OpBarrierLeave, Session: s, Name: "D", RequestID: id})
	}
	require.ErrorIs(t, leave(a, 1).Err(), ErrNotWaiting, "leaving before entering")
	require.Equal(t, CoordQueued, enter(a, 2).Code)
	require.ErrorIs(t, tf.coord(0, CoordRequest{Op: OpBarrierAwait, Session: b, Name: "D", N: 2, RequestID: 1}).Err(), ErrMismatch,
		"a double barrier is not a cyclic one")
	full := enter(b, 2)
	require.Equal(t, CoordOK, full.Code)
	r, _ := tf.Result(a, 2)
	require.Equal(t, CoordOK, r.Code, "the N-th entry releases every party")
	assert.True(t, tf.Barrier("D").Leaving)
	require.ErrorIs(t, enter(c, 1).Err(), ErrInvalid, "no entry while the parties leave")

	require.Equal(t, CoordQueued, leave(a, 3).Code, "leave waits for every party to leave")
	assert.Equal(t, []uint64{a}, tf.Barrier("D").Left)
	require.Equal(t, CoordOK, leave(b, 3).Code)
	r, _ = tf.Result(a, 3)
	require.Equal(t, CoordOK, r.Code)
	assert.Equal(t, BarrierInfo{Name: "D"}, tf.Barrier("D"), "a finished round leaves it idle")

	// A party that dies inside breaks it; the one waiting to leave learns
	// who broke it.
	require.Equal(t, CoordQueued, enter(a, 4).Code)
	require.Equal(t, CoordOK, enter(c, 7).Code)
	require.Equal(t, CoordQueued, leave(a, 5).Code)
	tf.coord(3*sec, CoordRequest{Op: OpSessionExpire, IDs: []uint64{c}})
	r, _ = tf.Result(a, 5)
	require.ErrorIs(t, r.Err(), ErrBroken)
	assert.Equal(t, c, r.Session)
	require.ErrorIs(t, enter(b, 6).Err(), ErrBroken)
}

func TestLatch(t *testing.T) {
	tf := newTestFSM(t, Config{})
	a, b := tf.newSession(0, 10*sec), tf.newSession(0, 2*sec)
	require.ErrorIs(t, tf.coord(0, CoordRequest{Op: OpLatchCountDown, Session: a, Name: "L", RequestID: 1}).Err(), ErrNotFound)
	require.NoError(t, tf.coord(0, CoordRequest{Op: OpLatchCreate, Session: a, Name: "L", N: 2, RequestID: 2}).Err())
	again := tf.coord(0, CoordRequest{Op: OpLatchCreate, Session: b, Name: "L", N: 2, RequestID: 1})
	require.NoError(t, again.Err(), "creation is idempotent with the same count")
	require.ErrorIs(t, tf.coord(0, CoordRequest{Op: OpLatchCreate, Session: b, Name: "L", N: 3, RequestID: 2}).Err(), ErrMismatch)

	cd := func(s, id uint64) int64 {
		r := tf.coord(0, CoordRequest{Op: OpLatchCountDown, Session: s, Name: "L", RequestID: id})
		require.NoError(t, r.Err())
		return r.Count
	}
	assert.Equal(t, int64(1), cd(b, 3))
	assert.Equal(t, int64(1), cd(b, 3), "a retried count-down is applied once")
	assert.Equal(t, LatchInfo{Name: "L", Exists: true, Initial: 2, Count: 1}, tf.Latch("L"))
	// The latch is not tied to a session: b's end changes nothing.
	tf.coord(3*sec, CoordRequest{Op: OpSessionExpire, IDs: []uint64{b}})
	assert.Equal(t, int64(1), tf.Latch("L").Count)
	assert.Equal(t, int64(0), cd(a, 4))
	assert.Equal(t, int64(0), cd(a, 5), "counting down an open latch keeps it at zero")
	require.NoError(t, tf.coord(0, CoordRequest{Op: OpLatchDelete, Session: a, Name: "L", RequestID: 6}).Err())
	assert.Equal(t, LatchInfo{Name: "L"}, tf.Latch("L"))
}

func TestEphemeralKeys(t *testing.T) {
	tf := newTestFSM(t, Config{})
	a, b := tf.newSession(0, 2*sec), tf.newSession(0, 10*sec)
	ephemeral := func(key string, s uint64) *Response {
		return tf.txn(&Request{Success: []Op{{Type: OpPut, Key: []byte(key), Value: []byte("v"), Session: s}}})
	}
	ephemeral("e/1", a)
	ephemeral("e/2", a)
	ephemeral("e/3", b)
	tf.put("e/4", "durable")
	ephemeral("e/5", a)
	tf.put("e/5", "detached") // a put without a session detaches
	ephemeral("e/6", a)
	tf.del("e/6", false) // a deleted key is no longer attached
	tf.put("e/6", "recreated")
	assert.Equal(t, a, tf.EphemeralSession([]byte("e/1")))
	assert.Equal(t, uint64(0), tf.EphemeralSession([]byte("e/5")))

	// A put naming a missing session is refused and changes nothing.
	rev, hash := tf.Revision(), tf.Hash()
	refused := tf.txn(&Request{Success: []Op{putOp("e/7", "x"), {Type: OpPut, Key: []byte("e/8"), Session: 999}}})
	require.NotNil(t, refused.Coord)
	require.ErrorIs(t, refused.Coord.Err(), ErrSessionNotFound)
	assert.False(t, refused.Succeeded)
	assert.Equal(t, rev, tf.Revision())
	assert.Equal(t, hash, tf.Hash())
	assert.Nil(t, tf.get("e/7"))

	// The session's end deletes its keys in the same command, as one revision.
	ch, err := tf.Watch(t.Context(), WatchRequest{Key: []byte("e/"), Prefix: true, StartRevision: rev + 1})
	require.NoError(t, err)
	res := tf.coord(3*sec, CoordRequest{Op: OpSessionExpire, IDs: []uint64{a}})
	require.Equal(t, int64(1), res.Count)
	require.Equal(t, rev+1, tf.Revision())
	for _, k := range []string{"e/1", "e/2"} {
		assert.Nil(t, tf.get(k), k)
	}
	for _, k := range []string{"e/3", "e/4", "e/5", "e/6"} {
		assert.NotNil(t, tf.get(k), k)
	}
	events := recv(t, ch).Events
	require.Len(t, events, 2)
	for i, k := range []string{"e/1", "e/2"} {
		assert.Equal(t, EventDelete, events[i].Type)
		assert.Equal(t, k, string(events[i].KV.Key))
		assert.Equal(t, rev+1, events[i].KV.ModRevision)
	}
}

func TestOpSessionCodec(t *testing.T) {
	c := &Command{Type: CmdTxn, Txn: &Request{Success: []Op{{Type: OpPut, Key: []byte("k"), Value: []byte("v"), Session: 1 << 40}}}}
	b := EncodeCommand(c)
	require.Len(t, b, commandSize(c))
	got, err := DecodeCommand(b)
	require.NoError(t, err)
	require.Equal(t, c, got)
	// Without a session the encoding is the one of older builds.
	assert.Equal(t, putCmd("k", "v"), EncodeCommand(&Command{Type: CmdTxn, Txn: &Request{Success: []Op{putOp("k", "v")}}}))
	// The flag with session 0 is not canonical.
	bad := append(bytes.Clone(putCmd("k", "v")), 0)
	bad[len(bad)-9+4] |= opFlagSession // the op's flags byte
	_, err = DecodeCommand(bad)
	require.ErrorIs(t, err, ErrCorrupt)
	require.ErrorIs(t, (&Request{Success: []Op{{Type: OpDelete, Key: []byte("k"), Session: 5}}}).Validate(Limits{}), ErrInvalid)
}

func TestSyncSnapshotRoundTrip(t *testing.T) {
	tf := newTestFSM(t, Config{})
	a, b, c := tf.newSession(0, 10*sec), tf.newSession(0, 10*sec), tf.newSession(0, 10*sec)
	tf.semAcquire(a, "S", 2, 2, 1)
	tf.semAcquire(b, "S", 2, 1, 1)
	tf.coord(0, CoordRequest{Op: OpBarrierAwait, Session: a, Name: "B", N: 3, RequestID: 2})
	tf.coord(0, CoordRequest{Op: OpBarrierEnter, Session: b, Name: "D", N: 2, RequestID: 2})
	tf.coord(0, CoordRequest{Op: OpBarrierEnter, Session: c, Name: "D", N: 2, RequestID: 2})
	tf.coord(0, CoordRequest{Op: OpBarrierLeave, Session: c, Name: "D", RequestID: 3})
	tf.coord(0, CoordRequest{Op: OpBarrierAwait, Session: c, Name: "X", N: 2, RequestID: 4})
	tf.coord(0, CoordRequest{Op: OpLatchCreate, Session: a, Name: "L", N: 5, RequestID: 3})
	tf.coord(0, CoordRequest{Op: OpLatchCountDown, Session: a, Name: "L", RequestID: 4})
	tf.txn(&Request{Success: []Op{{Type: OpPut, Key: []byte("eph"), Value: []byte("v"), Session: c}}})
	tf.coord(0, CoordRequest{Op: OpSessionDestroy, Session: c}) // breaks X, deletes eph
	tf.txn(&Request{Success: []Op{{Type: OpPut, Key: []byte("eph2"), Value: []byte("v"), Session: b}}})

	g := New(Config{})
	require.NoError(t, g.Restore(persist(t, tf.FSM).reader()))
	require.Equal(t, tf.Hash(), g.Hash())
	for _, name := range []string{"S", "B", "D", "X"} {
		assert.Equal(t, tf.Semaphore(name), g.Semaphore(name))
		assert.Equal(t, tf.Barrier(name), g.Barrier(name))
	}
	assert.Equal(t, tf.Latch("L"), g.Latch("L"))
	assert.Equal(t, b, g.EphemeralSession([]byte("eph2")))
	assert.NotEqual(t, uint64(0), g.Barrier("X").Broken)

	// The restored replica goes on identically: b's end returns its
	// permit, breaks D (b has not left) and deletes eph2.
	rg := &testFSM{FSM: g, t: t, index: tf.index}
	for _, f := range []*testFSM{tf, rg} {
		f.coord(0, CoordRequest{Op: OpSessionDestroy, Session: b})
	}
	assert.Equal(t, tf.Hash(), g.Hash())
	assert.Nil(t, rg.get("eph2"))
	assert.Equal(t, tf.Semaphore("S"), g.Semaphore("S"))
	assert.Equal(t, b, g.Barrier("D").Broken)
}

// A snapshot of format version 2 (before semaphores, barriers, latches
// and ephemeral keys) still restores.
func TestRestoreSnapshotV2(t *testing.T) {
	tf := newTestFSM(t, Config{})
	tf.put("k", "v")
	s := tf.newSession(0, 10*sec)
	tf.acquire(0, s, "L", 1)
	v3 := persist(t, tf.FSM).Bytes()

	// Rewrite it as version 2: the coordination blob without its four
	// trailing empty sections, and a fresh checksum.
	body := v3[:len(v3)-4]
	blob := tf.st.coord.appendTo(nil)
	require.True(t, bytes.HasSuffix(body, blob))
	head := body[:len(body)-len(blob)-uvarintLen(uint64(len(blob)))]
	old := blob[:len(blob)-4]
	require.Equal(t, []byte{0, 0, 0, 0}, blob[len(blob)-4:])
	v2 := append(bytes.Clone(head), binary.AppendUvarint(nil, uint64(len(old)))...)
	v2 = append(v2, old...)
	v2[len(snapshotMagic)] = snapshotVersionV2
	v2 = binary.BigEndian.AppendUint32(v2, crc32.Checksum(v2, castagnoli))

	g := New(Config{})
	require.NoError(t, g.Restore(io.NopCloser(bytes.NewReader(v2))))
	assert.Equal(t, tf.Hash(), g.Hash())
	assert.Equal(t, tf.Lock("L"), g.Lock("L"))
}
