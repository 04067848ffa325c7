package coordination

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"time"
)

// Keepalives are batched per backend: every Session on one backend value
// (one *client.Client, one *node.Node) joins that backend's keeper, which
// renews all of them with ONE KeepAliveSessions request per tick. The tick
// is the shortest TTL/3 among its sessions; a session that joins with a
// shorter TTL shortens it at once. The keeper stops when its last session
// leaves and a later session starts a new one.

// failoverKeepAliver is an optional ability of a Backend with several
// endpoints (*client.Client): a keepalive that gives each member at most
// perEndpoint before it tries the next one, so that a member cut off from
// the cluster cannot hold it for a whole TTL. Called from the keeper's
// goroutine; it blocks until an answer or ctx ends.
type failoverKeepAliver interface {
	KeepAliveSessionsWithin(ctx context.Context, ids []uint64, perEndpoint time.Duration) ([]uint64, error)
}

var (
	// keepersMu guards keepers and every keeper's sessions, lastBeat and
	// inflight fields, and every Session's lastOK.
	keepersMu sync.Mutex
	// keepers holds the running keeper of each shared backend. Only
	// backends that are pointers are shared (any other is compared by
	// value, which may not be possible); others get a keeper per session.
	keepers = map[Backend]*keeper{}
)

// keeper keeps alive the sessions of one backend.
type keeper struct {
	b      Backend
	shared bool // registered in keepers
	ctx    context.Context
	cancel context.CancelFunc // called when the last session leaves
	done   chan struct{}      // closed when run returns
	wake   chan struct{}      // buffered(1): the tick may have shortened

	// guarded by keepersMu
	sessions map[uint64]*Session
	lastBeat time.Time // when the last successful keepalive was sent
	failing  bool      // the last keepalive failed
	inflight struct {
		tick   time.Duration      // the tick of the request in flight
		cancel context.CancelFunc // aborts it; nil when none is in flight
	}
}

// joinKeeper adds s to its backend's keeper, starting one if needed, and
// sets s.k. The caller sets s.lastOK to when the session's creation was
// sent.
func joinKeeper(s *Session) {
	keepersMu.Lock()
	defer keepersMu.Unlock()
	shared := reflect.TypeOf(s.b).Kind() == reflect.Pointer
	var k *keeper
	if shared {
		k = keepers[s.b]
	}
	if k == nil {
		k = &keeper{b: s.b, shared: shared, done: make(chan struct{}), wake: make(chan struct{}, 1),
			sessions: map[uint64]*Session{}, lastBeat: s.lastOK}
		k.ctx, k.cancel = context.WithCancel(context.Background())
		if shared {
			keepers[s.b] = k
		}
		go k.run()
	}
	shorter := s.ttl/3 < k.tickLocked()
	k.sessions[s.id] = s
	s.k = k
	if shorter {
		// A request in flight may be bounded by the old, longer tick:
		// send a new one that includes s instead.
		if k.inflight.cancel != nil {
			k.inflight.cancel()
		}
		select {
		case k.wake <- struct{}{}:
		default:
		}
	}
}

// leave removes s from the keeper; the last session to leave stops it
// (without waiting: leave may run on the keeper's own goroutine).
func (k *keeper) leave(s *Session) {
	keepersMu.Lock()
	defer keepersMu.Unlock()
	if k.sessions[s.id] != s {
		return
	}
	delete(k.sessions, s.id)
	if len(k.sessions) == 0 {
		if k.shared && keepers[k.b] == k {
			delete(keepers, k.b)
		}
		k.cancel()
	}
}

// waitStopped waits for the keeper's goroutine if the keeper was stopped
// (its last session left). Not to be called from that goroutine.
func (k *keeper) waitStopped() {
	if k.ctx.Err() != nil {
		<-k.done
	}
}

// tickLocked is the shortest TTL/3 of the sessions (a day if none).
func (k *keeper) tickLocked() time.Duration {
	tick := 24 * time.Hour
	for _, s := range k.sessions {
		tick = min(tick, s.ttl/3)
	}
	return tick
}

// delay is how long to wait before the next keepalive: a tick after the
// last successful one, and, after a failure, at least a quarter tick after
// the failed one (so that a dead cluster is not hammered).
func (k *keeper) delay() time.Duration {
	keepersMu.Lock()
	defer keepersMu.Unlock()
	tick := k.tickLocked()
	d := time.Until(k.lastBeat.Add(tick))
	if k.failing {
		return max(d, tick/4)
	}
	return max(d, 0)
}

func (k *keeper) run() {
	defer close(k.done)
	t := time.NewTimer(k.delay())
	defer t.Stop()
	for {
		select {
		case <-k.ctx.Done():
			return
		case <-k.wake:
			t.Reset(k.delay())
			continue
		case <-t.C:
		}
		k.beat()
		t.Reset(k.delay())
	}
}

// beat sends one keepalive for every session of the keeper, then ends the
// sessions the cluster no longer knows and those for which no keepalive
// succeeded for a whole TTL (measured from when the last successful one
// was sent: the cluster may have expired them meanwhile).
func (k *keeper) beat() {
	keepersMu.Lock()
	if len(k.sessions) == 0 {
		keepersMu.Unlock()
		return
	}
	ids := make([]uint64, 0, len(k.sessions))
	tick := k.tickLocked()
	var lost time.Time // the earliest time a session would count as lost
	for id, s := range k.sessions {
		ids = append(ids, id)
		if at := s.lastOK.Add(s.ttl); lost.IsZero() || at.Before(lost) {
			lost = at
		}
	}
	slices.Sort(ids)
	// Give the request until the first session would be lost (at least a
	// quarter tick), each member at most a tick of it.
	ctx, cancel := context.WithDeadline(k.ctx, later(lost, time.Now().Add(tick/4)))
	k.inflight.tick, k.inflight.cancel = tick, cancel
	keepersMu.Unlock()

	sent := time.Now()
	var missing []uint64
	var err error
	if f, ok := k.b.(failoverKeepAliver); ok {
		missing, err = f.KeepAliveSessionsWithin(ctx, ids, tick)
	} else {
		missing, err = k.b.KeepAliveSessions(ctx, ids)
	}
	cancel()
	if k.ctx.Err() != nil {
		return // stopped: every session has left
	}

	type ending struct {
		s   *Session
		err error
	}
	var ended []ending
	keepersMu.Lock()
	k.inflight.cancel = nil
	k.failing = err != nil
	if err == nil {
		k.lastBeat = sent
	}
	now := time.Now()
	for _, id := range ids {
		s := k.sessions[id]
		switch {
		case s == nil: // left meanwhile
		case err == nil && slices.Contains(missing, id):
			ended = append(ended, ending{s, fmt.Errorf("%w: session %d no longer exists", ErrSessionExpired, id)})
		case err == nil:
			s.lastOK = sent
		case now.Sub(s.lastOK) >= s.ttl:
			ended = append(ended, ending{s, fmt.Errorf("%w: session %d lost: no keepalive succeeded for %v: %w", ErrSessionExpired, id, s.ttl, translate(err))})
		}
	}
	keepersMu.Unlock()
	for _, e := range ended {
		e.s.end(e.err) // leaves the keeper
	}
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
