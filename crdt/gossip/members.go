package gossip

import (
	"context"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
)

// MemberState is a member's gossip state as this node sees it.
type MemberState int

// Member states.
const (
	// StateNone precedes a member's first event.
	StateNone MemberState = iota
	// StateAlive: the member answers probes (or was just heard from).
	StateAlive
	// StateSuspect: the member failed a probe (this node's or a peer's)
	// and has not refuted it yet; it is declared dead if it does not
	// refute within memberlist's suspicion timeout. Observed from the
	// node's own gossip (observe.go), so it shows up to a gossip interval
	// after memberlist starts suspecting.
	StateSuspect
	// StateDead: the member failed probes and indirect probes past the
	// suspicion timeout. The node keeps trying to reconnect to it for
	// Config.ReconnectTimeout.
	StateDead
	// StateLeft: the member announced a graceful leave.
	StateLeft
)

// String returns "alive", "suspect", "dead", "left" or "none".
func (s MemberState) String() string {
	switch s {
	case StateAlive:
		return "alive"
	case StateSuspect:
		return "suspect"
	case StateDead:
		return "dead"
	case StateLeft:
		return "left"
	}
	return "none"
}

// Member is one node of the gossip pool.
type Member struct {
	// ID is the member's NodeID.
	ID string
	// Addr is the member's gossip host:port.
	Addr string
	// State is the member's gossip state.
	State MemberState
	// Meta is the member's Config.Meta.
	Meta map[string]string
	// Since is when this node saw the member enter State.
	Since time.Time
	// Joined is when this node saw the member join: first seen, or back
	// alive after dead or left. A suspicion that is refuted does not
	// change it.
	Joined time.Time
}

// MemberEvent reports a member's change of state, address or metadata.
type MemberEvent struct {
	Member Member
	// Previous is the state before the change (StateNone for a member
	// first seen, and for the snapshot Watch sends first).
	Previous MemberState
}

type memberRec struct {
	Member
	node    *memberlist.Node // copy, for SendReliable
	leaving bool             // announced a graceful leave

	// Incarnations seen in this node's suspect and alive gossip
	// (observe.go): the newest, and the newest when the member was last
	// declared dead or left, below which suspicions are stale.
	inc, deadInc        uint32
	incKnown, deadKnown bool
}

// tracker holds the member table, fed by memberlist's event callbacks.
type tracker struct {
	mu sync.Mutex
	m  map[string]*memberRec
}

// aliveCount counts alive and suspect members (suspects are still in
// the pool), at least 1.
func (t *tracker) aliveCount() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, r := range t.m {
		if r.State == StateAlive || r.State == StateSuspect {
			n++
		}
	}
	return max(n, 1)
}

func (t *tracker) snapshot() []Member {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.snapshotLocked()
}

func (t *tracker) snapshotLocked() []Member {
	out := make([]Member, 0, len(t.m))
	for _, r := range t.m {
		m := r.Member
		m.Meta = maps.Clone(m.Meta)
		out = append(out, m)
	}
	slices.SortFunc(out, func(a, b Member) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// randomFailed returns the address of a random dead member that failed
// after since, or "".
func (t *tracker) randomFailed(since time.Time) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var addrs []string
	for _, r := range t.m {
		if r.State == StateDead && r.Since.After(since) {
			addrs = append(addrs, r.Addr)
		}
	}
	if len(addrs) == 0 {
		return ""
	}
	return addrs[rand.IntN(len(addrs))]
}

// randomAlive returns up to k random alive members other than self.
func (t *tracker) randomAlive(k int, self string) []*memberlist.Node {
	t.mu.Lock()
	defer t.mu.Unlock()
	var nodes []*memberlist.Node
	for id, r := range t.m {
		if id != self && r.State == StateAlive && r.node != nil {
			nodes = append(nodes, r.node)
		}
	}
	rand.Shuffle(len(nodes), func(i, j int) { nodes[i], nodes[j] = nodes[j], nodes[i] })
	return nodes[:min(k, len(nodes))]
}

// events receives memberlist's membership callbacks. memberlist calls
// them synchronously while holding its node table lock: they must not
// block or call back into memberlist.
type events struct{ g *Gossip }

var _ memberlist.EventDelegate = (*events)(nil)

func (e *events) NotifyJoin(n *memberlist.Node)   { e.g.observe(n, StateAlive) }
func (e *events) NotifyUpdate(n *memberlist.Node) { e.g.observe(n, StateAlive) }
func (e *events) NotifyLeave(n *memberlist.Node) {
	st := StateDead
	e.g.members.mu.Lock()
	if r := e.g.members.m[n.Name]; r != nil && r.leaving {
		st = StateLeft
	}
	e.g.members.mu.Unlock()
	e.g.observe(n, st)
}

// markLeaving records that id announced a leave and reports whether that
// was news. A member already reported dead becomes left.
func (t *tracker) markLeaving(id string, g *Gossip) bool {
	t.mu.Lock()
	r := t.m[id]
	if r == nil || r.leaving {
		t.mu.Unlock()
		return false
	}
	r.leaving = true
	dead := r.State == StateDead
	node := r.node
	t.mu.Unlock()
	if dead && node != nil {
		g.observe(&memberlist.Node{Name: id, Addr: node.Addr, Port: node.Port, Meta: encodeMeta(r.Meta)}, StateLeft)
	}
	return true
}

// observe records n in state st and emits an event if anything changed.
// A member that comes back from dead or left gets a push/pull right away,
// so a healed partition converges without waiting for the next periodic
// exchange.
func (g *Gossip) observe(n *memberlist.Node, st MemberState) {
	node := &memberlist.Node{Name: n.Name, Addr: slices.Clone(n.Addr), Port: n.Port}
	m := Member{ID: n.Name, Addr: node.Address(), State: st, Meta: decodeMeta(n.Meta), Since: g.now()}
	g.members.mu.Lock()
	old := g.members.m[n.Name]
	prev := StateNone
	rec := &memberRec{Member: m, node: node}
	if old != nil {
		prev = old.State
		if prev == st && old.Addr == m.Addr && maps.Equal(old.Meta, m.Meta) {
			g.members.mu.Unlock()
			return
		}
		if prev == st {
			rec.Since = old.Since
		}
		rec.Joined = old.Joined
		rec.inc, rec.incKnown, rec.deadInc, rec.deadKnown = old.inc, old.incKnown, old.deadInc, old.deadKnown
		if st != StateAlive {
			rec.leaving = old.leaving
		}
	}
	if st == StateAlive && (prev == StateNone || prev == StateDead || prev == StateLeft) {
		rec.Joined = rec.Since
	}
	if st == StateDead || st == StateLeft {
		rec.deadInc, rec.deadKnown = rec.inc, rec.incKnown
	}
	g.members.m[n.Name] = rec
	g.changedLocked(rec.Member, prev)
	g.members.mu.Unlock()
	if st == StateAlive && (prev == StateDead || prev == StateLeft) && n.Name != g.cfg.NodeID {
		select {
		case g.resync <- m.Addr:
		default:
		}
	}
}

// change applies fn to the record of member id under the tracker lock;
// if fn reports a change of state, the member's Since is reset and an
// event emitted. Unknown members are left alone.
func (g *Gossip) change(id string, fn func(r *memberRec) bool) {
	g.members.mu.Lock()
	r := g.members.m[id]
	if r == nil {
		g.members.mu.Unlock()
		return
	}
	prev := r.State
	if !fn(r) || r.State == prev {
		g.members.mu.Unlock()
		return
	}
	r.Since = g.now()
	g.changedLocked(r.Member, prev)
	g.members.mu.Unlock()
}

// changedLocked updates the member gauges, logs and emits the event of
// a member's change from prev. Called with the tracker lock held, so
// that watchers receive each member's events in the order of the
// changes; nothing here blocks.
func (g *Gossip) changedLocked(m Member, prev MemberState) {
	counts := map[MemberState]int{}
	for _, r := range g.members.m {
		counts[r.State]++
	}
	for _, s := range []MemberState{StateAlive, StateSuspect, StateDead, StateLeft} {
		g.metrics.members.WithLabelValues(s.String()).Set(float64(counts[s]))
	}
	g.log.Debug("gossip member", "member", m.ID, "addr", m.Addr, "state", m.State, "previous", prev)
	g.emit(MemberEvent{Member: m, Previous: prev})
}

func (g *Gossip) emit(ev MemberEvent) {
	g.wmu.Lock()
	defer g.wmu.Unlock()
	for ch := range g.watchers {
		e := ev
		e.Member.Meta = maps.Clone(ev.Member.Meta)
		select {
		case ch <- e:
		default:
			g.metrics.dropped.WithLabelValues("watch_slow_consumer").Inc()
		}
	}
}

// Members returns every member this node knows of, itself included,
// sorted by ID. Dead and left members stay listed.
func (g *Gossip) Members() []Member { return g.members.snapshot() }

// watchBuffer is each watcher's channel capacity; events for a watcher
// that falls further behind are dropped and counted
// (statenode_gossip_messages_dropped_total{reason="watch_slow_consumer"}).
const watchBuffer = 256

// Watch returns a channel that first receives one event per known member
// (Previous = StateNone) and then every membership change. It is closed
// when ctx ends or the node shuts down. memberlist must never wait for a
// reader, so a watcher more than watchBuffer events behind loses events.
func (g *Gossip) Watch(ctx context.Context) <-chan MemberEvent {
	g.mu.Lock()
	closed := g.closed
	g.mu.Unlock()
	if closed {
		ch := make(chan MemberEvent)
		close(ch)
		return ch
	}
	// The snapshot and the registration happen under the tracker lock,
	// under which every change is emitted: no change falls between them.
	g.members.mu.Lock()
	snap := g.members.snapshotLocked()
	ch := make(chan MemberEvent, max(watchBuffer, 2*len(snap)))
	g.wmu.Lock()
	for _, m := range snap {
		ch <- MemberEvent{Member: m}
	}
	g.watchers[ch] = struct{}{}
	g.wmu.Unlock()
	g.members.mu.Unlock()
	g.goFunc(func() {
		select {
		case <-ctx.Done():
		case <-g.stop:
		}
		g.wmu.Lock()
		delete(g.watchers, ch)
		close(ch)
		g.wmu.Unlock()
	})
	return ch
}
