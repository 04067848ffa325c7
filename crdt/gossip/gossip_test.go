package gossip

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/statenode/statenode/crdt"
)

// workload applies random updates at one node and records what was
// acknowledged, so convergence can be checked against it.
type workload struct {
	mu      sync.Mutex
	counter int64
	added   map[string]bool // set elements added and never removed
}

func newWorkload() *workload { return &workload{added: map[string]bool{}} }

// run applies n random updates at g. Elements are unique per node, so the
// expected set is known without modelling concurrency.
func (w *workload) run(t testing.TB, g *Gossip, n int, seed uint64) {
	ctx := context.Background()
	r := rand.New(rand.NewPCG(seed, 1))
	var mine []string
	for i := range n {
		switch r.IntN(4) {
		case 0, 1:
			d := r.Int64N(10) - 3
			if err := g.Counter("visits").Inc(ctx, d); err != nil {
				t.Error(err)
				return
			}
			w.mu.Lock()
			w.counter += d
			w.mu.Unlock()
		case 2:
			e := fmt.Sprintf("%s-%d", g.cfg.NodeID, i)
			if err := g.Set("online").Add(ctx, e); err != nil {
				t.Error(err)
				return
			}
			mine = append(mine, e)
			w.mu.Lock()
			w.added[e] = true
			w.mu.Unlock()
		case 3:
			if len(mine) == 0 {
				continue
			}
			e := mine[0]
			mine = mine[1:]
			if err := g.Set("online").Remove(ctx, e); err != nil {
				t.Error(err)
				return
			}
			w.mu.Lock()
			delete(w.added, e)
			w.mu.Unlock()
		}
		if err := g.Register("leader-hint").Set(ctx, []byte(g.cfg.NodeID)); err != nil {
			t.Error(err)
			return
		}
	}
}

func (w *workload) expected() (int64, []string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var elems []string
	for e := range w.added {
		elems = append(elems, e)
	}
	slices.Sort(elems)
	return w.counter, elems
}

// converged reports nil once every given node holds the expected counter
// and set and the same register value.
func (w *workload) converged(nodes []*Gossip) error {
	wantC, wantS := w.expected()
	var reg []byte
	for i, g := range nodes {
		if v := g.Counter("visits").Value(); v != wantC {
			return fmt.Errorf("%s: counter %d, want %d", g.cfg.NodeID, v, wantC)
		}
		if got := g.Set("online").Elements(); !slices.Equal(got, wantS) {
			return fmt.Errorf("%s: set has %d elements, want %d", g.cfg.NodeID, len(got), len(wantS))
		}
		v, _, _ := g.Register("leader-hint").Get()
		if i > 0 && !bytes.Equal(v, reg) {
			return fmt.Errorf("%s: register %q, %s has %q", g.cfg.NodeID, v, nodes[0].cfg.NodeID, reg)
		}
		reg = v
	}
	return nil
}

func runConcurrently(t testing.TB, w *workload, nodes []*Gossip, n int) {
	var wg sync.WaitGroup
	for i, g := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.run(t, g, n, uint64(i)+uint64(time.Now().UnixNano()))
		}()
	}
	wg.Wait()
}

func TestFiveNodesConverge(t *testing.T) {
	c := makeCluster(t, 5)
	w := newWorkload()
	runConcurrently(t, w, c.nodes, 40)
	waitFor(t, 20*time.Second, func() error { return w.converged(c.nodes) })
	for _, g := range c.nodes {
		if s := g.Stats(); s.DeltasReceived == 0 {
			t.Errorf("%s received no deltas", g.cfg.NodeID)
		}
	}
}

func TestPartitionHeals(t *testing.T) {
	c := makeCluster(t, 5)
	a, b := c.nodes[:2], c.nodes[2:]
	addrs := func(gs []*Gossip) (out []string) {
		for _, g := range gs {
			out = append(out, g.LocalAddr())
		}
		return out
	}
	c.net.setGroups(addrs(a), addrs(b))
	c.net.partition(true)

	wa, wb := newWorkload(), newWorkload()
	runConcurrently(t, wa, a, 30)
	runConcurrently(t, wb, b, 30)
	// Each side converges on its own updates and sees none of the other's.
	waitFor(t, 15*time.Second, func() error {
		if err := wa.converged(a); err != nil {
			return err
		}
		ca, _ := wa.expected()
		cb, sb := wb.expected()
		for _, g := range b {
			if v := g.Counter("visits").Value(); v != cb {
				return fmt.Errorf("%s: counter %d, want %d", g.cfg.NodeID, v, cb)
			}
			if got := g.Set("online").Elements(); !slices.Equal(got, sb) {
				return fmt.Errorf("%s: set not converged inside group", g.cfg.NodeID)
			}
		}
		if ca+cb != ca && a[0].Counter("visits").Value() == ca+cb {
			return errors.New("partition leaked")
		}
		return nil
	})
	for _, g := range a {
		for _, e := range b[0].Set("online").Elements() {
			if g.Set("online").Contains(e) {
				t.Fatalf("%s saw %s across the partition", g.cfg.NodeID, e)
			}
		}
	}

	c.net.partition(false)
	both := newWorkload()
	ca, sa := wa.expected()
	cb, sb := wb.expected()
	both.counter = ca + cb
	for _, e := range append(sa, sb...) {
		both.added[e] = true
	}
	waitFor(t, 30*time.Second, func() error { return both.converged(c.nodes) })
}

func TestCrashRestartKeepsUpdates(t *testing.T) {
	c := makeCluster(t, 3)
	ctx := context.Background()
	victim := c.nodes[2]
	oldReplica := victim.ReplicaID()
	for range 10 {
		if err := victim.Counter("visits").Inc(ctx, 1); err != nil {
			t.Fatal(err)
		}
		if err := victim.Set("online").Add(ctx, "victim"); err != nil {
			t.Fatal(err)
		}
	}
	// Crash at once: the acknowledged updates may not have left the node.
	addr := victim.LocalAddr()
	crash(t, victim)
	if v := c.nodes[0].Counter("visits").Value(); v > 10 {
		t.Fatalf("counter %d before restart, at most 10 possible", v)
	}
	// Others keep updating while it is down.
	if err := c.nodes[0].Counter("visits").Inc(ctx, 100); err != nil {
		t.Fatal(err)
	}

	cfg := c.cfgs[2]
	cfg.BindAddr = addr
	cfg.Join = []string{c.nodes[0].LocalAddr()}
	restarted := c.start(cfg)
	c.nodes[2] = restarted
	if got := restarted.Counter("visits").Value(); got < 10 {
		t.Fatalf("restarted node lost acknowledged updates: counter %d, want >= 10", got)
	}
	if restarted.ReplicaID() == oldReplica {
		t.Fatal("replica ID reused after a crash")
	}
	if err := restarted.Counter("visits").Inc(ctx, 1000); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, func() error {
		for _, g := range c.nodes {
			if v := g.Counter("visits").Value(); v != 1110 {
				return fmt.Errorf("%s: counter %d, want 1110", g.cfg.NodeID, v)
			}
			if !g.Set("online").Contains("victim") {
				return fmt.Errorf("%s: set lacks the victim's element", g.cfg.NodeID)
			}
		}
		return nil
	})

	// A clean restart keeps the replica ID.
	cfg.BindAddr = restarted.LocalAddr()
	id := restarted.ReplicaID()
	if err := restarted.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	again := c.start(cfg)
	c.nodes[2] = again
	if again.ReplicaID() != id {
		t.Fatalf("replica ID %s after clean restart, want %s", again.ReplicaID(), id)
	}
	if v := again.Counter("visits").Value(); v != 1110 {
		t.Fatalf("counter %d after clean restart, want 1110", v)
	}
}

func TestTwoDataCenters(t *testing.T) {
	c := makeCluster(t, 6, func(i int, cfg *Config) {
		cfg.Tune = func(mc *memberlist.Config) {
			// WAN-ish tolerance for the slow link.
			mc.ProbeTimeout = 500 * time.Millisecond
		}
	})
	var dc1, dc2 []string
	for i, g := range c.nodes {
		if i%2 == 0 {
			dc1 = append(dc1, g.LocalAddr())
		} else {
			dc2 = append(dc2, g.LocalAddr())
		}
	}
	c.net.setGroups(dc1, dc2)
	c.net.setDelay(40 * time.Millisecond)
	w := newWorkload()
	runConcurrently(t, w, c.nodes, 25)
	waitFor(t, 20*time.Second, func() error { return w.converged(c.nodes) })
	for _, g := range c.nodes {
		for _, m := range g.Members() {
			if m.State != StateAlive {
				t.Errorf("%s sees %s %v across the slow link", g.cfg.NodeID, m.ID, m.State)
			}
		}
	}
}

// A malformed or oversized message is dropped and counted, never merged,
// and the node keeps working.
func TestBadMessagesDropped(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := makeCluster(t, 2, func(i int, cfg *Config) {
		if i == 1 {
			cfg.Registry = reg
			cfg.MaxStateBytes = 1 << 10
		}
	})
	target := c.nodes[1]

	// A raw memberlist member sends garbage user messages over TCP.
	mc := memberlist.DefaultLocalConfig()
	mc.Name = "intruder"
	mc.BindAddr, mc.BindPort = "127.0.0.1", 0
	mc.LogOutput = bytes.NewBuffer(nil)
	raw, err := memberlist.Create(mc)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = raw.Shutdown() }()
	if _, err := raw.Join([]string{target.LocalAddr()}); err != nil {
		t.Fatal(err)
	}
	var to *memberlist.Node
	for _, n := range raw.Members() {
		if n.Name == target.cfg.NodeID {
			to = n
		}
	}
	bad := [][]byte{
		{wireVersion},
		{9, 9, 9},
		{wireVersion, msgDelta, 0, byte(crdt.KindORSet), 1, 'x', 3, 1, 5, 0xff}, // truncated state
		appendDelta(nil, 0, key{crdt.KindGCounter, "c"}, []byte{1, 2, 0}),       // kind mismatch
	}
	for _, m := range bad {
		if err := raw.SendReliable(to, m); err != nil {
			t.Fatal(err)
		}
	}
	// Oversized full state from push/pull.
	big := appendState(nil, []entry{{key{crdt.KindLWWRegister, "r"}, bytes.Repeat([]byte{0}, 2048)}})
	target.mergeRemoteState(big)

	waitFor(t, 10*time.Second, func() error {
		if got := counterValue(target.metrics.dropped.WithLabelValues("malformed")); got != float64(len(bad)) {
			return fmt.Errorf("malformed drops %v, want %d", got, len(bad))
		}
		return nil
	})
	if got := counterValue(target.metrics.dropped.WithLabelValues("too_large")); got != 1 {
		t.Fatalf("too_large drops %v, want 1", got)
	}
	if objs := target.Objects(); len(objs) != 0 {
		t.Fatalf("bad messages created objects %v", objs)
	}
	// Still working.
	if err := c.nodes[0].Counter("ok").Inc(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, func() error {
		if target.Counter("ok").Value() != 1 {
			return errors.New("update not received after bad messages")
		}
		return nil
	})
}

// A delta too large for a UDP packet travels over TCP.
func TestLargeDeltaOverTCP(t *testing.T) {
	c := makeCluster(t, 3, noPushPull)
	big := bytes.Repeat([]byte("x"), 8000)
	if err := c.nodes[0].Register("big").Set(context.Background(), big); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, func() error {
		for _, g := range c.nodes {
			if v, _, _ := g.Register("big").Get(); !bytes.Equal(v, big) {
				return fmt.Errorf("%s lacks the large value", g.cfg.NodeID)
			}
		}
		return nil
	})
}

func TestWatchMembers(t *testing.T) {
	c := makeCluster(t, 2)
	ctx, cancel := context.WithCancel(context.Background())
	ch := c.nodes[0].Watch(ctx)
	seen := map[string]bool{}
	for range 2 {
		ev := <-ch
		if ev.Previous != StateNone || ev.Member.State != StateAlive {
			t.Fatalf("snapshot event %+v", ev)
		}
		seen[ev.Member.ID] = true
	}
	if !seen["n0"] || !seen["n1"] {
		t.Fatalf("snapshot %v", seen)
	}
	// A third node joins, then leaves gracefully.
	cfg := testConfig(t, "n2", c.net)
	cfg.Join = []string{c.nodes[0].LocalAddr()}
	cfg.Meta = map[string]string{"role": "edge"}
	g := c.start(cfg)
	ev := <-ch
	if ev.Member.ID != "n2" || ev.Member.State != StateAlive || ev.Member.Meta["role"] != "edge" {
		t.Fatalf("join event %+v", ev)
	}
	if err := g.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	ev = <-ch
	if ev.Member.ID != "n2" || ev.Member.State != StateLeft || ev.Previous != StateAlive {
		t.Fatalf("leave event %+v", ev)
	}
	cancel()
	for range ch {
	}
}

func TestLifecycle(t *testing.T) {
	cfg := testConfig(t, "solo", newFaultNet())
	g, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	// Updates before Start are kept and persisted.
	if err := g.Counter("c").Inc(ctx, 2); err != nil {
		t.Fatal(err)
	}
	if err := g.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := g.Counter("").Inc(ctx, 1); !errors.Is(err, ErrInvalidName) {
		t.Fatalf("empty name: %v", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := g.Counter("c").Inc(cctx, 1); !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled ctx: %v", err)
	}
	if err := g.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := g.Shutdown(ctx); err != nil {
		t.Fatalf("second Shutdown: %v", err)
	}
	if err := g.Counter("c").Inc(ctx, 1); !errors.Is(err, ErrClosed) {
		t.Fatalf("after shutdown: %v", err)
	}
	if err := g.Start(ctx); !errors.Is(err, ErrClosed) {
		t.Fatalf("Start after shutdown: %v", err)
	}
	if _, ok := <-g.Watch(ctx); ok {
		t.Fatal("Watch after shutdown returned an open channel")
	}
	g2, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = g2.Shutdown(ctx) }()
	if v := g2.Counter("c").Value(); v != 2 {
		t.Fatalf("reopened counter %d, want 2", v)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*Config)
	}{
		{"no id", func(c *Config) { c.NodeID = "" }},
		{"bad bind", func(c *Config) { c.BindAddr = "nope" }},
		{"bad profile", func(c *Config) { c.Profile = "wan" }},
		{"bad interval", func(c *Config) { c.ReconnectInterval = 0 }},
		{"meta too big", func(c *Config) { c.Meta = map[string]string{"k": string(make([]byte, 600))} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultLocalConfig()
			c.NodeID = "x"
			tt.mod(&c)
			if _, err := New(c); !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("got %v, want ErrInvalidConfig", err)
			}
		})
	}
}

func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	_ = c.Write(&m)
	return m.GetCounter().GetValue()
}
