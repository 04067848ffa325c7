package gossip

import (
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/statenode/statenode/crdt"
)

// Gossip runs one node's membership and CRDT replication: a memberlist
// member whose delegate broadcasts CRDT deltas, exchanges full state by
// push/pull, and persists state in a bbolt file. Create with New, then
// Start; all methods are safe for concurrent use.
type Gossip struct {
	cfg     Config
	log     *slog.Logger
	metrics *metrics
	replica string
	clock   *crdt.Clock
	store   *store // nil without DataDir
	meta    []byte
	now     func() time.Time

	queue  *memberlist.TransmitLimitedQueue
	budget atomic.Int64 // largest delta sent by UDP broadcast, bytes

	mu      sync.Mutex // guards objects, started, closed, ml
	objects map[key]*object
	started bool
	closed  bool
	ml      *memberlist.Memberlist

	members tracker

	wmu      sync.Mutex
	watchers map[chan MemberEvent]struct{}

	stop     chan struct{}
	wg       sync.WaitGroup
	resync   chan string // addresses to push/pull with
	large    chan []byte // deltas too large for a UDP broadcast
	shutOnce sync.Once
	shutErr  error

	stats stats
}

// object is one replicated CRDT.
type object struct {
	key   key
	mu    sync.Mutex
	state crdt.State
	dirty bool // changed by a merge since last written
}

// encode returns the state's encoding and clears dirty; called inside a
// store transaction.
func (o *object) encode() ([]byte, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.dirty = false
	return o.state.MarshalBinary()
}

var emptyEncoding = map[crdt.Kind][]byte{}

func init() {
	for k := crdt.KindGCounter; k <= crdt.KindBoundedCounter; k++ {
		s, _ := crdt.New(k)
		emptyEncoding[k], _ = s.MarshalBinary()
	}
}

// New validates cfg, opens the state store in cfg.DataDir and loads the
// CRDT state it holds. It does not touch the network: call Start.
func New(cfg Config) (*Gossip, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	g := &Gossip{
		cfg:      cfg,
		log:      cfg.Logger,
		metrics:  newMetrics(cfg.Registry),
		meta:     encodeMeta(cfg.Meta),
		now:      cfg.Now,
		objects:  map[key]*object{},
		watchers: map[chan MemberEvent]struct{}{},
		stop:     make(chan struct{}),
		resync:   make(chan string, 16),
		large:    make(chan []byte, 64),
	}
	if g.log == nil {
		g.log = slog.Default()
	}
	g.log = g.log.With("component", "gossip", "node", cfg.NodeID)
	if g.now == nil {
		g.now = time.Now
	}
	g.members.m = map[string]*memberRec{}
	inc := newIncarnation()
	if cfg.DataDir != "" {
		st, objs, stored, err := openStore(cfg.DataDir)
		if err != nil {
			return nil, err
		}
		g.store, inc = st, stored
		for k, s := range objs {
			g.objects[k] = &object{key: k, state: s}
		}
	}
	g.replica = cfg.NodeID + "~" + inc
	g.clock = crdt.NewClock(g.replica, g.now)
	mc := cfg.memberlistConfig()
	if cfg.Tune != nil {
		cfg.Tune(mc)
	}
	// Deltas are retransmitted at least 4×log10(N+1) times by every node
	// that learns them (memberlist's LAN value), even in the local
	// profile, whose memberlist default of 2 loses too many in bursts.
	g.queue = &memberlist.TransmitLimitedQueue{NumNodes: g.members.aliveCount, RetransmitMult: max(mc.RetransmitMult, 4)}
	g.budget.Store(int64(mc.UDPBufferSize - 64))
	g.metrics.queueDepth(g.queue.NumQueued)
	return g, nil
}

// ReplicaID returns the identity under which this node's updates are
// recorded: NodeID, "~", and an incarnation that changes when the node
// restarts after a crash (or without a DataDir), never after a clean
// Shutdown.
func (g *Gossip) ReplicaID() string { return g.replica }

// Clock returns the hybrid logical clock stamping this node's LWW writes.
func (g *Gossip) Clock() *crdt.Clock { return g.clock }

// Start creates the memberlist member, listening on cfg.BindAddr, and
// tries cfg.Join once; if no seed answers it logs a warning and keeps
// retrying every ReconnectInterval. It returns an error only if the node
// cannot listen. ctx bounds the first join attempt.
func (g *Gossip) Start(ctx context.Context) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	switch {
	case g.closed:
		return ErrClosed
	case g.started:
		return nil
	}
	mc := g.cfg.memberlistConfig()
	host, port, _ := splitHostPort(g.cfg.BindAddr)
	mlog := log.New(&logWriter{log: g.log}, "", 0)
	nt, err := memberlist.NewNetTransport(&memberlist.NetTransportConfig{BindAddrs: []string{host}, BindPort: port, Logger: mlog})
	if err != nil {
		return fmt.Errorf("gossip: listen on %s: %w", g.cfg.BindAddr, err)
	}
	var t memberlist.NodeAwareTransport = nt
	if g.cfg.WrapTransport != nil {
		t = g.cfg.WrapTransport(t)
	}
	// Outermost, so that it sees what memberlist sends even when a
	// wrapped transport drops it (observe.go).
	mc.Transport = &observedTransport{NodeAwareTransport: t, g: g}
	mc.BindAddr, mc.BindPort = host, port
	if g.cfg.AdvertiseAddr != "" {
		mc.AdvertiseAddr, mc.AdvertisePort, _ = splitHostPort(g.cfg.AdvertiseAddr)
	}
	mc.Delegate = &delegate{g: g}
	mc.Events = &events{g: g}
	mc.Logger = mlog
	if g.cfg.Tune != nil {
		g.cfg.Tune(mc)
	}
	if ot, ok := mc.Transport.(*observedTransport); ok && mc.EncryptionEnabled() {
		mc.Transport = ot.NodeAwareTransport // encrypted packets cannot be observed
	}
	ml, err := memberlist.Create(mc)
	if err != nil {
		_ = t.Shutdown()
		return fmt.Errorf("gossip: start memberlist: %w", err)
	}
	g.ml, g.started = ml, true
	g.goFunc(g.maintain)
	g.goFunc(g.sendLarge)
	if len(g.cfg.Join) > 0 {
		done := make(chan struct{})
		g.goFunc(func() {
			defer close(done)
			g.join(g.cfg.Join)
		})
		g.mu.Unlock()
		select {
		case <-done:
		case <-ctx.Done():
		}
		g.mu.Lock()
	}
	g.log.Info("gossip started", "addr", ml.LocalNode().Address(), "replica", g.replica)
	return nil
}

func (g *Gossip) join(addrs []string) {
	g.mu.Lock()
	ml := g.ml
	g.mu.Unlock()
	if ml == nil {
		return
	}
	if n, err := ml.Join(addrs); err != nil && n == 0 {
		g.log.Warn("gossip join failed; will retry", "seeds", addrs, "err", err)
	}
}

// goFunc runs f in a goroutine that Shutdown waits for.
func (g *Gossip) goFunc(f func()) {
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		f()
	}()
}

// LocalAddr returns the host:port other members reach this node at, or ""
// before Start.
func (g *Gossip) LocalAddr() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.ml == nil {
		return ""
	}
	return g.ml.LocalNode().Address()
}

// Shutdown leaves the cluster (announcing it, bounded by ctx), stops
// memberlist and background work, writes all CRDT state and marks the
// store cleanly closed. Safe to call more than once; later calls return
// the first call's result.
func (g *Gossip) Shutdown(ctx context.Context) error {
	g.shutOnce.Do(func() { g.shutErr = g.shutdown(ctx, true) })
	return g.shutErr
}

// shutdown stops the node; graceful=false simulates a crash: no leave
// message, no final write, no clean marker.
func (g *Gossip) shutdown(ctx context.Context, graceful bool) error {
	g.mu.Lock()
	g.closed = true
	ml := g.ml
	g.mu.Unlock()
	var errs []error
	if ml != nil {
		if graceful {
			timeout := time.Second
			if dl, ok := ctx.Deadline(); ok {
				timeout = min(timeout, time.Until(dl))
			}
			g.announceLeave(ctx, timeout/2)
			if err := ml.Leave(max(timeout, time.Millisecond)); err != nil {
				g.log.Warn("gossip leave", "err", err)
			}
		}
		if err := ml.Shutdown(); err != nil {
			errs = append(errs, fmt.Errorf("gossip: stop memberlist: %w", err))
		}
	}
	close(g.stop)
	g.wg.Wait()
	if g.store != nil {
		if graceful {
			if err := g.store.write(g.allObjects()); err != nil {
				errs = append(errs, fmt.Errorf("gossip: final write: %w", err))
				graceful = false
			}
		}
		if err := g.store.close(graceful); err != nil {
			errs = append(errs, fmt.Errorf("gossip: close store: %w", err))
		}
	}
	return errors.Join(errs...)
}

func (g *Gossip) allObjects() []*object {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]*object, 0, len(g.objects))
	for _, o := range g.objects {
		out = append(out, o)
	}
	return out
}

// object returns the object k, creating it if create is set; nil if absent.
func (g *Gossip) object(k key, create bool) *object {
	g.mu.Lock()
	defer g.mu.Unlock()
	o := g.objects[k]
	if o == nil && create {
		s, err := crdt.New(k.kind)
		if err != nil {
			return nil
		}
		o = &object{key: k, state: s}
		g.objects[k] = o
	}
	return o
}

func validName(name string) error {
	if name == "" || len(name) > MaxNameLen {
		return fmt.Errorf("%w: %d bytes", ErrInvalidName, len(name))
	}
	return nil
}

// update applies a local mutation: fn changes the state and returns the
// delta. The new state is written to the store before update returns
// (ctx is checked first; the write itself is not interruptible), then the
// delta is queued for gossip.
func (g *Gossip) update(ctx context.Context, k key, fn func(s crdt.State) (crdt.State, error)) error {
	if err := validName(k.name); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	g.mu.Lock()
	closed := g.closed
	g.mu.Unlock()
	if closed {
		return ErrClosed
	}
	o := g.object(k, true)
	o.mu.Lock()
	d, err := fn(o.state)
	var enc []byte
	if err == nil {
		enc, err = d.MarshalBinary()
	}
	o.mu.Unlock()
	if err != nil {
		return err
	}
	if string(enc) == string(emptyEncoding[k.kind]) {
		return nil // no-op (e.g. removing an absent element)
	}
	if g.store != nil {
		if err := g.store.write([]*object{o}); err != nil {
			o.mu.Lock()
			o.dirty = true
			o.mu.Unlock()
			return fmt.Errorf("gossip: persist %v: %w", k, err)
		}
	}
	g.metrics.updates.WithLabelValues(k.kind.String()).Inc()
	g.stats.localUpdates.Add(1)
	g.broadcast(appendDelta(nil, g.now().UnixNano(), k, enc))
	return nil
}

// read calls fn with the state of k, or an empty state if k is unknown.
func (g *Gossip) read(k key, fn func(s crdt.State)) {
	o := g.object(k, false)
	if o == nil {
		s, _ := crdt.New(k.kind)
		fn(s)
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	fn(o.state)
}

// broadcast queues msg for gossip: by UDP broadcast if it fits the packet
// budget, else by TCP to a few random members.
func (g *Gossip) broadcast(msg []byte) {
	if len(msg) <= int(g.budget.Load()) {
		g.queue.QueueBroadcast(&deltaBroadcast{msg: msg})
		return
	}
	select {
	case g.large <- msg:
	default:
		g.drop("large_queue_full", "large delta queue full; anti-entropy will carry it", nil)
	}
}

type deltaBroadcast struct{ msg []byte }

func (b *deltaBroadcast) Invalidates(memberlist.Broadcast) bool { return false }
func (b *deltaBroadcast) Message() []byte                       { return b.msg }
func (b *deltaBroadcast) Finished()                             {}
func (b *deltaBroadcast) UniqueBroadcast()                      {}

var _ memberlist.UniqueBroadcast = (*deltaBroadcast)(nil)

func (g *Gossip) drop(reason, msg string, err error) {
	g.metrics.dropped.WithLabelValues(reason).Inc()
	g.stats.dropped.Add(1)
	g.log.Warn("gossip: "+msg, "reason", reason, "err", err)
}

// receiveDelta merges a delta message; if it taught this node something,
// the node gossips it on (rumor mongering), else it stops here.
func (g *Gossip) receiveDelta(b []byte) {
	g.metrics.received.WithLabelValues("delta").Inc()
	g.metrics.receivedBytes.WithLabelValues("delta").Add(float64(len(b)))
	g.stats.deltasReceived.Add(1)
	g.stats.deltaBytesReceived.Add(uint64(len(b)))
	if len(b) > maxDeltaBytes {
		g.drop("too_large", "delta message too large", fmt.Errorf("%w: %d bytes", ErrMessageTooLarge, len(b)))
		return
	}
	d, err := decodeDelta(b)
	if err != nil {
		g.drop("malformed", "malformed delta message", err)
		return
	}
	o := g.object(d.key, true)
	o.mu.Lock()
	changed, err := o.state.MergeState(d.state)
	if changed {
		o.dirty = true
	}
	o.mu.Unlock()
	if err != nil {
		g.drop("malformed", "delta kind mismatch", err)
		return
	}
	if !changed {
		return
	}
	g.metrics.lag.Observe(max(0, g.now().Sub(time.Unix(0, d.origin)).Seconds()))
	g.broadcast(slices.Clone(b))
}

// announceLeave broadcasts this node's intent to leave, so that members
// report it left rather than dead (memberlist does not tell its delegates
// which), and waits up to timeout for the queue to drain.
func (g *Gossip) announceLeave(ctx context.Context, timeout time.Duration) {
	if g.members.aliveCount() <= 1 {
		return
	}
	g.queue.QueueBroadcast(&deltaBroadcast{msg: appendLeave(nil, g.cfg.NodeID)})
	deadline := time.Now().Add(timeout)
	for g.queue.NumQueued() > 0 && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(10 * time.Millisecond)
	}
}

// receiveLeave records a member's intent to leave and forwards it once.
func (g *Gossip) receiveLeave(b []byte) {
	id, err := decodeLeave(b)
	if err != nil {
		g.drop("malformed", "malformed leave message", err)
		return
	}
	if id == g.cfg.NodeID {
		return
	}
	if g.members.markLeaving(id, g) {
		g.queue.QueueBroadcast(&deltaBroadcast{msg: slices.Clone(b)})
	}
}

// maxDeltaBytes bounds a delta message, UDP or TCP.
const maxDeltaBytes = 4 << 20

// localState encodes every object for push/pull.
func (g *Gossip) localState() []byte {
	objs := g.allObjects()
	entries := make([]entry, 0, len(objs))
	for _, o := range objs {
		o.mu.Lock()
		enc, err := o.state.MarshalBinary()
		o.mu.Unlock()
		if err == nil {
			entries = append(entries, entry{key: o.key, state: enc})
		}
	}
	b := appendState(nil, entries)
	g.metrics.sent.WithLabelValues("state").Inc()
	g.metrics.sentBytes.WithLabelValues("state").Add(float64(len(b)))
	g.stats.statesSent.Add(1)
	g.stats.stateBytesSent.Add(uint64(len(b)))
	return b
}

// mergeRemoteState merges a peer's full state.
func (g *Gossip) mergeRemoteState(b []byte) {
	g.metrics.received.WithLabelValues("state").Inc()
	g.metrics.receivedBytes.WithLabelValues("state").Add(float64(len(b)))
	g.stats.statesReceived.Add(1)
	if len(b) > g.cfg.MaxStateBytes {
		g.drop("too_large", "remote state too large", fmt.Errorf("%w: %d bytes", ErrMessageTooLarge, len(b)))
		return
	}
	states, err := decodeState(b)
	if err != nil {
		g.drop("malformed", "malformed remote state", err)
		return
	}
	for k, s := range states {
		o := g.object(k, true)
		o.mu.Lock()
		if changed, _ := o.state.MergeState(s); changed {
			o.dirty = true
		}
		o.mu.Unlock()
	}
}

// maintain flushes merged state, reconnects to failed members and retries
// the join seeds while alone, until Shutdown.
func (g *Gossip) maintain() {
	flush := time.NewTicker(g.cfg.FlushInterval)
	defer flush.Stop()
	reconnect := time.NewTicker(g.cfg.ReconnectInterval)
	defer reconnect.Stop()
	for {
		select {
		case <-g.stop:
			return
		case <-flush.C:
			g.flush()
		case addr := <-g.resync:
			g.join([]string{addr})
		case <-reconnect.C:
			if g.members.aliveCount() <= 1 && len(g.cfg.Join) > 0 {
				g.join(g.cfg.Join)
			}
			if addr := g.members.randomFailed(g.now().Add(-g.cfg.ReconnectTimeout)); addr != "" {
				g.join([]string{addr})
			}
		}
	}
}

// flush writes objects changed by merges since their last write.
func (g *Gossip) flush() {
	if g.store == nil {
		return
	}
	var dirty []*object
	for _, o := range g.allObjects() {
		o.mu.Lock()
		if o.dirty {
			dirty = append(dirty, o)
		}
		o.mu.Unlock()
	}
	if len(dirty) == 0 {
		return
	}
	if err := g.store.write(dirty); err != nil {
		g.log.Error("gossip: write merged state", "err", err)
		for _, o := range dirty {
			o.mu.Lock()
			o.dirty = true
			o.mu.Unlock()
		}
	}
}

// sendLarge sends deltas too large for UDP over TCP to GossipNodes random
// alive members; receivers forward them the same way.
func (g *Gossip) sendLarge() {
	for {
		select {
		case <-g.stop:
			return
		case msg := <-g.large:
			g.mu.Lock()
			ml := g.ml
			g.mu.Unlock()
			for _, n := range g.members.randomAlive(3, g.cfg.NodeID) {
				if err := ml.SendReliable(n, msg); err != nil {
					g.log.Debug("gossip: send large delta", "to", n.Name, "err", err)
					continue
				}
				g.countSent("delta", len(msg))
			}
		}
	}
}

func (g *Gossip) countSent(kind string, n int) {
	g.metrics.sent.WithLabelValues(kind).Inc()
	g.metrics.sentBytes.WithLabelValues(kind).Add(float64(n))
	if kind == "delta" {
		g.stats.deltasSent.Add(1)
		g.stats.deltaBytesSent.Add(uint64(n))
	}
}

// delegate is memberlist's view of the node. memberlist calls it from its
// packet, stream and gossip goroutines; no method blocks on the network.
type delegate struct{ g *Gossip }

var _ memberlist.Delegate = (*delegate)(nil)

func (d *delegate) NodeMeta(int) []byte               { return d.g.meta }
func (d *delegate) LocalState(bool) []byte            { return d.g.localState() }
func (d *delegate) MergeRemoteState(b []byte, _ bool) { d.g.mergeRemoteState(b) }

// NotifyMsg dispatches a user message: a leave announcement or a delta.
func (d *delegate) NotifyMsg(b []byte) {
	if len(b) >= 2 && b[0] == wireVersion && b[1] == msgLeave {
		d.g.receiveLeave(b)
		return
	}
	d.g.receiveDelta(b)
}

func (d *delegate) GetBroadcasts(overhead, limit int) [][]byte {
	msgs := d.g.queue.GetBroadcasts(overhead, limit)
	for _, m := range msgs {
		d.g.countSent("delta", len(m))
	}
	return msgs
}

// logWriter turns memberlist's "[LEVEL] memberlist: text" lines into slog
// records.
type logWriter struct{ log *slog.Logger }

func (w *logWriter) Write(p []byte) (int, error) {
	s := string(p)
	level := slog.LevelInfo
	for prefix, l := range map[string]slog.Level{"[DEBUG]": slog.LevelDebug, "[WARN]": slog.LevelWarn, "[ERR]": slog.LevelError, "[ERROR]": slog.LevelError, "[INFO]": slog.LevelInfo} {
		if len(s) >= len(prefix) && s[:len(prefix)] == prefix {
			level, s = l, s[len(prefix):]
			break
		}
	}
	for len(s) > 0 && (s[0] == ' ') {
		s = s[1:]
	}
	for len(s) > 0 && s[len(s)-1] == '\n' {
		s = s[:len(s)-1]
	}
	w.log.Log(context.Background(), level, s)
	return len(p), nil
}
