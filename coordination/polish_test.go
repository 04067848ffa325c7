package coordination_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/statenode/statenode/api"
	"github.com/statenode/statenode/client"
	"github.com/statenode/statenode/coordination"
	"github.com/statenode/statenode/node/nodetest"
)

// A count-down sent again with the same caller-chosen ID counts once,
// whether the Latch resends it or another member receives it; caller IDs
// never collide with the session's own request IDs; an ID out of range
// sends nothing.
func TestLatchCountDownIDAppliedOnce(t *testing.T) {
	c := nodetest.MakeCluster(t, 3)
	cls := perNodeClients(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := coordination.NewSession(cls[0], coordination.WithTTL(30*time.Second))
	require.NoError(t, err)
	defer s.Close()
	// NewLatch spends the session's own request ID 1.
	l, err := coordination.NewLatch(ctx, s, "polish/latch", 4)
	require.NoError(t, err)

	for range 2 { // one count-down, its answer "lost" once
		left, err := l.CountDownID(ctx, 7)
		require.NoError(t, err)
		assert.Equal(t, int64(3), left)
	}
	// The same count-down, resent by hand through the other members and the
	// embedded follower nodes: the wire ID is CallerRequestIDBit|7.
	for _, cl := range cls[1:] {
		res, err := cl.CountDownLatch(ctx, "polish/latch", api.LatchRequest{Session: s.ID(), RequestID: coordination.CallerRequestIDBit | 7})
		require.NoError(t, err)
		assert.Equal(t, int64(3), res.Count)
		assert.Equal(t, int64(4), res.Initial)
	}
	for _, n := range c.Followers(t) {
		res, err := n.CountDownLatch(ctx, "polish/latch", api.LatchRequest{Session: s.ID(), RequestID: coordination.CallerRequestIDBit | 7})
		require.NoError(t, err)
		assert.Equal(t, int64(3), res.Count)
		assert.Equal(t, int64(4), res.Initial)
	}
	count, err := l.Count(ctx)
	require.NoError(t, err)
	assert.Equal(t, int64(3), count, "five sends of one ID counted once")

	// Out of range: refused before anything is sent.
	for _, id := range []uint64{0, coordination.MaxCallerRequestID + 1, 1 << 63} {
		_, err := l.CountDownID(ctx, id)
		require.Error(t, err, "id %d", id)
		assert.Contains(t, err.Error(), "not in 1..")
	}
	count, err = l.Count(ctx)
	require.NoError(t, err)
	assert.Equal(t, int64(3), count, "refused IDs changed nothing")

	// Caller ID 1 is not the session's request 1 (the create): it counts.
	left, err := l.CountDownID(ctx, 1)
	require.NoError(t, err)
	assert.Equal(t, int64(2), left)
	// The session's own next IDs do not hit caller IDs either.
	left, err = l.CountDown(ctx)
	require.NoError(t, err)
	assert.Equal(t, int64(1), left)
	left, err = l.CountDownID(ctx, coordination.MaxCallerRequestID)
	require.NoError(t, err)
	assert.Equal(t, int64(0), left)
	actx, acancel := context.WithTimeout(ctx, 10*time.Second)
	defer acancel()
	require.NoError(t, l.Await(actx))
	left, err = l.CountDownID(ctx, 1)
	require.NoError(t, err)
	assert.Equal(t, int64(2), left, "a resend answers the count it left behind")
	c.EnsureSame(t)
}

// Every count-down answer carries the latch's initial count, through each
// member (leader and followers), for first sends and retries, and follows
// a latch deleted and created again with another count.
func TestLatchCountDownAnswersInitial(t *testing.T) {
	c := nodetest.MakeCluster(t, 3)
	cls := perNodeClients(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := cls[0].CreateSession(ctx, api.SessionRequest{TTLMillis: 30000})
	require.NoError(t, err)
	created, err := cls[0].CreateLatch(ctx, "polish/initial", api.LatchRequest{Session: s.ID, RequestID: 1, Count: 5})
	require.NoError(t, err)
	require.Equal(t, int64(5), created.Initial)

	reqID := uint64(10)
	for i, cl := range cls {
		reqID++
		for range 2 { // first send and retry
			res, err := cl.CountDownLatch(ctx, "polish/initial", api.LatchRequest{Session: s.ID, RequestID: reqID})
			require.NoError(t, err)
			assert.Equal(t, api.LatchInfo{Name: "polish/initial", Initial: 5, Count: int64(4 - i)}, *res, "member %d", i)
		}
	}

	require.NoError(t, cls[1].DeleteLatch(ctx, "polish/initial", api.LatchRequest{Session: s.ID, RequestID: 20}))
	_, err = cls[2].CountDownLatch(ctx, "polish/initial", api.LatchRequest{Session: s.ID, RequestID: 21})
	require.ErrorIs(t, err, client.ErrObjectNotFound)
	_, err = cls[2].CreateLatch(ctx, "polish/initial", api.LatchRequest{Session: s.ID, RequestID: 22, Count: 2})
	require.NoError(t, err)
	res, err := cls[1].CountDownLatch(ctx, "polish/initial", api.LatchRequest{Session: s.ID, RequestID: 23})
	require.NoError(t, err)
	assert.Equal(t, api.LatchInfo{Name: "polish/initial", Initial: 2, Count: 1}, *res)
}

// Semaphore.Token is the grant's log position: 0 while nothing is held,
// larger for a later grant (also than a lock token granted in between),
// kept while some of the grant's permits are held, and unchanged by a
// refused TryAcquire.
func TestSemaphoreToken(t *testing.T) {
	c := nodetest.MakeCluster(t, 3)
	cls := perNodeClients(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var sems []*coordination.Semaphore
	var sessions []*coordination.Session
	for i := range 3 {
		s, err := coordination.NewSession(cls[i], coordination.WithTTL(30*time.Second))
		require.NoError(t, err)
		defer s.Close()
		m, err := coordination.NewSemaphore(s, "polish/sem", 2)
		require.NoError(t, err)
		sessions, sems = append(sessions, s), append(sems, m)
	}
	a, b, d := sems[0], sems[1], sems[2]
	assert.Zero(t, a.Token(), "nothing held")

	require.NoError(t, a.Acquire(ctx, 2))
	ta := a.Token()
	require.NotZero(t, ta)
	lock := coordination.NewMutex(sessions[0], "polish/lock")
	require.NoError(t, lock.Lock(ctx))
	tl := lock.Token()
	assert.Greater(t, tl, ta, "the lock was granted after the permits")

	require.ErrorIs(t, d.TryAcquire(ctx, 1), coordination.ErrNoPermits)
	assert.Zero(t, d.Token(), "a refused try holds nothing")

	granted := make(chan error, 1)
	go func() { granted <- b.Acquire(ctx, 1) }()
	eventually(t, 10*time.Second, func() error {
		info, err := a.Info(ctx)
		if err == nil && len(info.Waiters) != 1 {
			err = errors.New("not queued")
		}
		return err
	})
	require.NoError(t, a.Release(ctx, 1))
	require.NoError(t, <-granted)
	tb := b.Token()
	assert.Greater(t, tb, tl, "the waiter was granted by the release, after the lock")
	assert.Equal(t, ta, a.Token(), "a still holds one permit of its grant")

	require.NoError(t, a.Release(ctx, 0))
	assert.Zero(t, a.Token(), "all permits returned")
	require.NoError(t, lock.Unlock(ctx))
	require.NoError(t, a.TryAcquire(ctx, 1))
	assert.Greater(t, a.Token(), tb, "a new grant, a larger token")
	require.NoError(t, b.Release(ctx, 1))
	assert.Zero(t, b.Token())
}
