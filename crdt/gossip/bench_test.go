package gossip

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"
)

// BenchmarkConvergence20 measures, on 20 in-process nodes over loopback
// UDP/TCP, the time from the start of a burst of updates (every node
// increments a counter 5 times, concurrently) until every node reads the
// final value. Deltas are the fast path; periodic push/pull (every 2s per
// node in the local profile) still runs, as in production, and repairs
// the rare delta that rumor mongering fails to deliver. One op is one
// burst; ns/op is the convergence time.
//
//	go test -run '^$' -bench Convergence20 -benchtime 5x ./crdt/gossip
//
// Reported: delta-B/update (delta bytes transmitted by all nodes, every
// retransmission and forward included, per update), wire-B/update (all
// memberlist bytes on the wire in the window, probes included), and
// states/op (full-state push/pull messages sent in the window; with 20
// nodes each starting one exchange every 2s, about 10 per second happen
// whether or not anything changed).
func BenchmarkConvergence20(b *testing.B) {
	const nodes, perNode = 20, 5
	c := makeCluster(b, nodes)
	ctx := context.Background()
	var want int64
	var deltaBytes, states, wire, updates uint64
	snapshot := func() (d, s uint64) {
		for _, g := range c.nodes {
			st := g.Stats()
			d += st.DeltaBytesSent
			s += st.StatesSent
		}
		return d, s
	}
	b.ResetTimer()
	for range b.N {
		d0, s0 := snapshot()
		w0 := c.net.bytes.Load()
		start := time.Now()
		var wg sync.WaitGroup
		for _, g := range c.nodes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range perNode {
					if err := g.Counter("bench").Inc(ctx, 1); err != nil {
						b.Error(err)
					}
				}
			}()
		}
		wg.Wait()
		want += nodes * perNode
		waitFor(b, 30*time.Second, func() error {
			for _, g := range c.nodes {
				if v := g.Counter("bench").Value(); v != want {
					return fmt.Errorf("%s: %d, want %d", g.cfg.NodeID, v, want)
				}
			}
			return nil
		})
		elapsed := time.Since(start)
		d1, s1 := snapshot()
		deltaBytes += d1 - d0
		states += s1 - s0
		wire += uint64(c.net.bytes.Load() - w0)
		updates += nodes * perNode
		b.Logf("burst of %d updates converged on %d nodes in %v", nodes*perNode, nodes, elapsed)
	}
	b.StopTimer()
	b.ReportMetric(float64(deltaBytes)/float64(updates), "delta-B/update")
	b.ReportMetric(float64(wire)/float64(updates), "wire-B/update")
	b.ReportMetric(float64(states)/float64(b.N), "states/op")
}
