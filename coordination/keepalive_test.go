package coordination_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/statenode/statenode/api"
	"github.com/statenode/statenode/client"
	"github.com/statenode/statenode/coordination"
	"github.com/statenode/statenode/node/nodetest"
)

// keepAliveLog is an http.RoundTripper that records every keepalive
// request on its way to the real cluster (it observes, it does not answer).
type keepAliveLog struct {
	base *http.Transport

	mu   sync.Mutex
	sent []keepAliveSent
}

type keepAliveSent struct {
	sent time.Time // when it left
	at   time.Time // when its answer (or failure) came
	host string    // the endpoint it was sent to
	ids  []uint64
	ok   bool // answered 200
}

func (l *keepAliveLog) RoundTrip(req *http.Request) (*http.Response, error) {
	var ka api.KeepAliveRequest
	if req.Method != http.MethodPost || req.URL.Path != "/v1/session/keepalive" || req.GetBody == nil {
		return l.base.RoundTrip(req)
	}
	if body, err := req.GetBody(); err == nil {
		err = json.NewDecoder(body).Decode(&ka)
		body.Close()
		if err != nil {
			return nil, err
		}
	}
	sent := time.Now()
	resp, err := l.base.RoundTrip(req)
	ok := err == nil && resp.StatusCode == http.StatusOK
	l.mu.Lock()
	l.sent = append(l.sent, keepAliveSent{sent: sent, at: time.Now(), host: req.URL.Host, ids: ka.IDs, ok: ok})
	l.mu.Unlock()
	return resp, err
}

// CloseIdleConnections lets client.Close close the transport's connections.
func (l *keepAliveLog) CloseIdleConnections() { l.base.CloseIdleConnections() }

// talksTo returns the index of the node that answered the last keepalive:
// the member the client talks to.
func (l *keepAliveLog) talksTo(t *testing.T, c *nodetest.Cluster) int {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	require.NotEmpty(t, l.sent, "no keepalive sent yet")
	host := l.sent[len(l.sent)-1].host
	for _, i := range c.Running() {
		if c.Node(i).HTTPAddr() == host {
			return i
		}
	}
	t.Fatalf("keepalive sent to %s, which is no member", host)
	return -1
}

// longestGap returns the longest time between two successful keepalives
// answered after from (the first counted from from).
func (l *keepAliveLog) longestGap(from time.Time) time.Duration {
	var gap time.Duration
	prev := from
	for _, ka := range l.since(from) {
		if ka.ok {
			gap = max(gap, ka.at.Sub(prev))
			prev = ka.at
		}
	}
	return gap
}

// since returns the keepalives answered at or after t.
func (l *keepAliveLog) since(t time.Time) []keepAliveSent {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []keepAliveSent
	for _, s := range l.sent {
		if !s.at.Before(t) {
			out = append(out, s)
		}
	}
	return out
}

// composedAfter returns the keepalives whose session list was certainly
// made after t: those sent after the first successful answer that came
// at or after t. (A beat copies its list, then sends it, retrying on
// another member if one fails; beats take turns: one answered OK ends
// its beat.)
func (l *keepAliveLog) composedAfter(t time.Time) []keepAliveSent {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i, s := range l.sent {
		if s.ok && !s.at.Before(t) {
			var out []keepAliveSent
			for _, later := range l.sent[i+1:] {
				if !later.sent.Before(s.at) {
					out = append(out, later)
				}
			}
			return out
		}
	}
	return nil
}

// waitKeepAlives waits until n keepalives were answered at or after t.
func (l *keepAliveLog) waitKeepAlives(t *testing.T, after time.Time, n int, within time.Duration) {
	t.Helper()
	eventually(t, within, func() error {
		if got := len(l.since(after)); got < n {
			return fmt.Errorf("%d keepalives since %v, want %d", got, after.Format(time.StampMilli), n)
		}
		return nil
	})
}

func newLoggedClient(t *testing.T, c *nodetest.Cluster) (*client.Client, *keepAliveLog) {
	t.Helper()
	var eps []string
	for _, i := range c.Running() {
		eps = append(eps, c.Node(i).HTTPAddr())
	}
	log := &keepAliveLog{base: http.DefaultTransport.(*http.Transport).Clone()}
	cl, err := client.New(client.Config{Endpoints: eps, HTTPClient: &http.Client{Transport: log}})
	require.NoError(t, err)
	t.Cleanup(func() { cl.Close() })
	return cl, log
}

// liveSessions returns the IDs of the sessions the cluster knows.
func liveSessions(t *testing.T, ctx context.Context, cl *client.Client) []uint64 {
	t.Helper()
	ss, err := cl.Sessions(ctx)
	require.NoError(t, err)
	var ids []uint64
	for _, s := range ss {
		ids = append(ids, s.ID)
	}
	return ids
}

// Fifty sessions on one client are renewed by one keepalive request per
// tick carrying all of them, and live through several TTLs; a session
// destroyed behind their back ends alone.
func TestKeepAliveBatched(t *testing.T) {
	c := nodetest.MakeCluster(t, 3)
	cl, log := newLoggedClient(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const n, ttl = 50, 2 * time.Second
	const tick = ttl / 3

	sessions := make([]*coordination.Session, n)
	var ids []uint64
	for i := range sessions {
		s, err := coordination.NewSession(cl, coordination.WithTTL(ttl))
		require.NoError(t, err)
		t.Cleanup(func() { s.Close() })
		sessions[i] = s
		ids = append(ids, s.ID())
	}
	slices.Sort(ids)

	start := time.Now()
	window := 3 * ttl
	log.waitKeepAlives(t, start, int(window/tick)-1, window+5*time.Second)
	<-time.After(time.Until(start.Add(window))) // the span the sessions must live through
	for _, s := range sessions {
		require.NoError(t, s.Err(), "session %d lives past %v (TTL %v)", s.ID(), window, ttl)
	}
	// A keepalive answered after start may have been composed before the
	// last session joined: only those composed after must carry them all.
	composed := log.composedAfter(start)
	require.NotEmpty(t, composed)
	for _, ka := range composed {
		assert.Equal(t, ids, slices.Sorted(slices.Values(ka.ids)), "every keepalive renews all the sessions")
	}
	sent := log.since(start)
	ticks := int(time.Since(start) / tick)
	assert.LessOrEqual(t, len(sent), ticks+2, "one keepalive request per tick (%d ticks)", ticks)
	assert.Subset(t, liveSessions(t, ctx, cl), ids, "the cluster still knows every session")

	// Destroy one session behind its owner's back: only its Done fires.
	victim := sessions[7]
	require.NoError(t, cl.DestroySession(ctx, victim.ID()))
	select {
	case <-victim.Done():
	case <-time.After(ttl):
		t.Fatalf("the destroyed session's Done did not close within its TTL")
	}
	require.ErrorIs(t, victim.Err(), coordination.ErrSessionExpired)
	after := time.Now()
	log.waitKeepAlives(t, after, 3, 5*ttl)
	rest := slices.DeleteFunc(slices.Clone(ids), func(id uint64) bool { return id == victim.ID() })
	// A keepalive composed before Done closed may carry it; none after.
	composed = log.composedAfter(after)
	require.NotEmpty(t, composed)
	for _, ka := range composed {
		assert.Equal(t, rest, slices.Sorted(slices.Values(ka.ids)), "the ended session is no longer renewed")
	}
	for _, s := range sessions {
		if s != victim {
			require.NoError(t, s.Err(), "session %d must not end with another", s.ID())
		}
	}
}

// backendOnly hides every ability of a client beyond Backend (the session
// watch, the failover keepalive): sessions on it learn their end from the
// batched keepalive alone.
type backendOnly struct{ coordination.Backend }

// The keepalive's answer ends exactly the sessions the cluster no longer
// knows, and a session with a shorter TTL speeds up the shared tick.
func TestKeepAliveMissingAndShorterTTL(t *testing.T) {
	c := nodetest.MakeCluster(t, 3)
	cl, log := newLoggedClient(t, c)
	b := &backendOnly{cl}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	long, err := coordination.NewSession(b, coordination.WithTTL(60*time.Second))
	require.NoError(t, err)
	defer long.Close()
	const ttl = time.Second
	short := make([]*coordination.Session, 3)
	for i := range short {
		short[i], err = coordination.NewSession(b, coordination.WithTTL(ttl))
		require.NoError(t, err)
		defer short[i].Close()
	}
	// A 20s tick would let them expire: the short TTL sets the pace.
	start := time.Now()
	log.waitKeepAlives(t, start, 6, 10*ttl)
	for _, s := range append(short, long) {
		require.NoError(t, s.Err())
	}
	assert.Subset(t, liveSessions(t, ctx, cl), []uint64{long.ID(), short[0].ID(), short[1].ID(), short[2].ID()})
	for _, ka := range log.since(start) {
		assert.Len(t, ka.ids, 4, "one request for all four sessions")
	}

	victim := short[1]
	require.NoError(t, cl.DestroySession(ctx, victim.ID()))
	select {
	case <-victim.Done():
	case <-time.After(5 * ttl):
		t.Fatalf("the destroyed session's Done did not close")
	}
	require.ErrorIs(t, victim.Err(), coordination.ErrSessionExpired)
	assert.Contains(t, victim.Err().Error(), "no longer exists")
	after := time.Now()
	log.waitKeepAlives(t, after, 3, 10*ttl)
	for _, s := range []*coordination.Session{long, short[0], short[2]} {
		require.NoError(t, s.Err(), "session %d must not end with another", s.ID())
	}

	// Closing them all stops the keeper; a new session starts another.
	for _, s := range append(short, long) {
		require.NoError(t, s.Close())
	}
	again, err := coordination.NewSession(b, coordination.WithTTL(ttl))
	require.NoError(t, err)
	defer again.Close()
	after = time.Now()
	log.waitKeepAlives(t, after, 3, 10*ttl)
	for _, ka := range log.since(after) {
		assert.Equal(t, []uint64{again.ID()}, ka.ids, "closed sessions are not renewed")
	}
	require.NoError(t, again.Err())
}

// majorityLeader waits until a node other than isolated leads.
func majorityLeader(t *testing.T, c *nodetest.Cluster, isolated int) {
	t.Helper()
	eventually(t, 20*time.Second, func() error {
		for _, i := range c.Running() {
			if n := c.Node(i); i != isolated && n.Status().State == "Leader" && n.Ready() {
				return nil
			}
		}
		return errors.New("no leader in the majority yet")
	})
}

// The member the client talks to is cut off from the others
// while it still accepts connections. With nothing else in flight, the
// next keepalives go to that member, which cannot commit them: they must
// fail over to the majority within a fraction of the TTL, so the sessions
// live on. Then, with lock waits held on the cut-off member, a wait
// follows the client to the majority and is granted there, and a wait
// whose context ends returns in time.
func TestKeepAliveFailsOverIsolatedMember(t *testing.T) {
	c := nodetest.MakeCluster(t, 3)
	cl, log := newLoggedClient(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	const ttl = 9 * time.Second // an election (≈1 s here) stays well below the 18% of slack the gap bound leaves

	holder, err := coordination.NewSession(cl, coordination.WithTTL(ttl))
	require.NoError(t, err)
	defer holder.Close()
	waiter, err := coordination.NewSession(cl, coordination.WithTTL(ttl))
	require.NoError(t, err)
	defer waiter.Close()
	impatient, err := coordination.NewSession(cl, coordination.WithTTL(ttl))
	require.NoError(t, err)
	defer impatient.Close()
	all := []uint64{holder.ID(), waiter.ID(), impatient.ID()}
	survives := func(d time.Duration) {
		t.Helper()
		select {
		case <-holder.Done():
			t.Fatalf("holder's session ended: %v", holder.Err())
		case <-waiter.Done():
			t.Fatalf("waiter's session ended: %v", waiter.Err())
		case <-impatient.Done():
			t.Fatalf("impatient's session ended: %v", impatient.Err())
		case <-time.After(d):
		}
		for _, s := range []*coordination.Session{holder, waiter, impatient} {
			require.NoError(t, s.Err(), "session %d lives", s.ID())
		}
		assert.Subset(t, liveSessions(t, ctx, cl), all, "the majority keeps the sessions alive")
	}

	// Phase 1: only keepalives. Right after one is answered, cut off the
	// member that answered it: the next one goes there, after that member
	// noticed it is alone.
	log.waitKeepAlives(t, time.Now(), 1, 2*ttl)
	cut := log.talksTo(t, c)
	lastOK := time.Now()
	isolated := time.Now()
	c.Isolate(t, cut)
	t.Logf("isolated node %d (sessions only; leader: %v)", cut, c.Node(cut).Status().State)
	majorityLeader(t, c, cut)
	// Two TTLs after the new leader's renewal, the sessions still live:
	// keepalives reached the majority.
	survives(2 * ttl)
	assert.NotEmpty(t, log.since(isolated.Add(ttl)), "keepalives went on after the isolation")
	// A keepalive gives one member a third of the TTL, then the next:
	// renewals resume within two thirds of the TTL (one tick to the next
	// keepalive, one on the cut-off member), not when the session is
	// about to be lost.
	gap := log.longestGap(lastOK)
	t.Logf("longest time between renewals across the isolation: %v (TTL %v)", gap, ttl)
	assert.Less(t, gap, ttl*85/100, "keepalives failed over within a fraction of the TTL")
	c.Heal(t)
	c.WaitForReplication(t)

	// Phase 2: lock waits on the member that is cut off.
	mh := coordination.NewMutex(holder, "isolate/lock")
	mw := coordination.NewMutex(waiter, "isolate/lock")
	mi := coordination.NewMutex(impatient, "isolate/other")
	mh2 := coordination.NewMutex(holder, "isolate/other")
	require.NoError(t, mh.Lock(ctx))
	require.NoError(t, mh2.Lock(ctx))
	granted := make(chan error, 1)
	go func() { granted <- mw.Lock(ctx) }()
	type result struct {
		err     error
		elapsed time.Duration
	}
	timedOut := make(chan result, 1)
	wctx, wcancel := context.WithTimeout(ctx, 2*ttl)
	defer wcancel()
	go func() {
		start := time.Now()
		err := mi.Lock(wctx)
		timedOut <- result{err, time.Since(start)}
	}()
	eventually(t, 10*time.Second, func() error {
		for _, m := range []*coordination.Mutex{mh, mh2} {
			info, err := m.Info(ctx)
			if err != nil {
				return err
			}
			if len(info.Waiters) != 1 {
				return fmt.Errorf("%s: waiters %v", m.Name(), info.Waiters)
			}
		}
		return nil
	})

	log.waitKeepAlives(t, time.Now(), 1, 2*ttl)
	cut = log.talksTo(t, c)
	c.Isolate(t, cut)
	defer c.Heal(t)
	t.Logf("isolated node %d (waits in flight; leader: %v)", cut, c.Node(cut).Status().State)
	majorityLeader(t, c, cut)
	survives(ttl)

	// The blocked wait on the cut-off member never outlives its context.
	select {
	case r := <-timedOut:
		require.ErrorIs(t, r.err, coordination.ErrWaitTimeout)
		assert.Less(t, r.elapsed, 2*ttl+2*time.Second, "the wait ends with its context")
	case <-time.After(2*ttl + 5*time.Second):
		t.Fatalf("a lock wait outlived its context")
	}

	// The holder releases through the majority; the waiter, whose wait
	// began on the cut-off member, is granted.
	token := mh.Token()
	require.NoError(t, mh.Unlock(ctx))
	select {
	case err := <-granted:
		require.NoError(t, err)
	case <-time.After(20 * time.Second):
		t.Fatalf("the waiter was not granted after the release")
	}
	assert.Greater(t, mw.Token(), token)
	info, err := mw.Info(ctx)
	require.NoError(t, err)
	assert.Equal(t, waiter.ID(), info.Holder)
	require.NoError(t, mw.Unlock(ctx))
	for _, s := range []*coordination.Session{holder, waiter, impatient} {
		require.NoError(t, s.Err())
	}
}
