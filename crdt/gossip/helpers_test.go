package gossip

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
)

// cluster is a set of in-process nodes on 127.0.0.1 sharing a faultNet.
type cluster struct {
	t     testing.TB
	net   *faultNet
	nodes []*Gossip
	cfgs  []Config
}

type clusterOpt func(i int, c *Config)

func testConfig(t testing.TB, id string, fn *faultNet) Config {
	c := DefaultLocalConfig()
	c.NodeID = id
	c.DataDir = t.TempDir()
	c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	if os.Getenv("GOSSIP_TEST_LOG") != "" {
		c.Logger = slog.Default()
	}
	c.WrapTransport = fn.wrap
	return c
}

// makeCluster starts n nodes; each joins the ones started before it. It waits until every
// node sees all n alive.
func makeCluster(t testing.TB, n int, opts ...clusterOpt) *cluster {
	t.Helper()
	c := &cluster{t: t, net: newFaultNet()}
	for i := range n {
		cfg := testConfig(t, fmt.Sprintf("n%d", i), c.net)
		// Join every earlier node: the push/pull of each join spreads
		// the full member list at once.
		for _, g := range c.nodes {
			cfg.Join = append(cfg.Join, g.LocalAddr())
		}
		for _, o := range opts {
			o(i, &cfg)
		}
		c.cfgs = append(c.cfgs, cfg)
		c.nodes = append(c.nodes, c.start(cfg))
	}
	t.Cleanup(c.shutdown)
	c.waitAlive(n)
	return c
}

func (c *cluster) start(cfg Config) *Gossip {
	c.t.Helper()
	g, err := New(cfg)
	if err != nil {
		c.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := g.Start(ctx); err != nil {
		c.t.Fatal(err)
	}
	return g
}

func (c *cluster) shutdown() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, g := range c.nodes {
		if g != nil {
			_ = g.Shutdown(ctx)
		}
	}
}

// waitAlive waits until every running node sees n alive members.
func (c *cluster) waitAlive(n int) {
	c.t.Helper()
	waitFor(c.t, 20*time.Second, func() error {
		for _, g := range c.nodes {
			if g == nil {
				continue
			}
			alive := 0
			for _, m := range g.Members() {
				if m.State == StateAlive {
					alive++
				}
			}
			if alive != n {
				return fmt.Errorf("%s sees %d alive, want %d", g.cfg.NodeID, alive, n)
			}
		}
		return nil
	})
}

// waitFor polls cond until it returns nil or the deadline passes.
func waitFor(t testing.TB, timeout time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met after %v: %v", timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// crash stops a node as a kill -9 would: no leave message, no final
// write of merged state, no clean-shutdown marker.
func crash(t testing.TB, g *Gossip) {
	t.Helper()
	g.shutOnce.Do(func() { g.shutErr = g.shutdown(context.Background(), false) })
}

// noPushPull disables periodic anti-entropy, so only deltas carry updates.
func noPushPull(_ int, c *Config) {
	c.Tune = func(mc *memberlist.Config) { mc.PushPullInterval = 0 }
}
