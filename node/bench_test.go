package node_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/statenode/statenode/client"
	"github.com/statenode/statenode/node"
	"github.com/statenode/statenode/node/nodetest"
	"github.com/statenode/statenode/raftlog"
)

// benchClients runs b.N operations spread over `clients` goroutines.
func benchClients(b *testing.B, clients int, op func(ctx context.Context, i int64) error) {
	ctx := context.Background()
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > int64(b.N) {
					return
				}
				if err := op(ctx, i); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
}

// BenchmarkPut measures puts through the node API of the leader of a
// 3-node loopback cluster (8-byte keys, 256-byte values).
func BenchmarkPut(b *testing.B) {
	for _, engine := range []string{raftlog.EngineBolt, raftlog.EngineWAL} {
		for _, clients := range []int{1, 16, 100, 1000} {
			b.Run(fmt.Sprintf("engine=%s/clients=%d", engine, clients), func(b *testing.B) {
				benchPut(b, engine, clients)
			})
		}
	}
}

func benchPut(b *testing.B, engine string, clients int) {
	c := nodetest.MakeCluster(b, 3, nodetest.WithConfig(func(_ int, c *node.Config) { c.LogEngine = engine }))
	l := c.Leader(b)
	val := make([]byte, 256)
	benchClients(b, clients, func(ctx context.Context, i int64) error {
		_, err := l.Put(ctx, []byte(fmt.Sprintf("%08d", i%10000)), val)
		return err
	})
}

// BenchmarkGet measures linearizable and stale gets on the leader.
func BenchmarkGet(b *testing.B) {
	for _, cons := range []node.Consistency{node.Linearizable, node.Stale} {
		for _, clients := range []int{1, 100} {
			b.Run(fmt.Sprintf("consistency=%d/clients=%d", cons, clients), func(b *testing.B) {
				c := nodetest.MakeCluster(b, 3)
				l := c.Leader(b)
				ctx := context.Background()
				if _, err := l.Put(ctx, []byte("00000001"), make([]byte, 256)); err != nil {
					b.Fatal(err)
				}
				benchClients(b, clients, func(ctx context.Context, i int64) error {
					_, err := l.Get(ctx, []byte("00000001"), cons)
					return err
				})
			})
		}
	}
}

// BenchmarkClientPut3 measures puts through the HTTP API and the Go client
// against a 3-node loopback cluster, 100 concurrent clients over 10
// client instances (etcd benchmark's --clients 100 --conns 10).
func BenchmarkClientPut3(b *testing.B) {
	c := nodetest.MakeCluster(b, 3)
	var eps []string
	for _, n := range c.Nodes {
		eps = append(eps, n.HTTPAddr())
	}
	conns := make([]*client.Client, 10)
	for i := range conns {
		cl, err := client.New(client.Config{Endpoints: eps})
		if err != nil {
			b.Fatal(err)
		}
		defer cl.Close()
		conns[i] = cl
	}
	val := make([]byte, 256)
	benchClients(b, 100, func(ctx context.Context, i int64) error {
		_, err := conns[i%10].Put(ctx, fmt.Sprintf("%08d", i%10000), val)
		return err
	})
}

// BenchmarkClientPut1 is one client, one request at a time, through the
// HTTP API to the leader: the latency a single writer sees, to compare
// with BenchmarkPut's in-process clients=1.
func BenchmarkClientPut1(b *testing.B) {
	for _, engine := range []string{raftlog.EngineBolt, raftlog.EngineWAL} {
		b.Run("engine="+engine, func(b *testing.B) {
			c := nodetest.MakeCluster(b, 3, nodetest.WithConfig(func(_ int, c *node.Config) { c.LogEngine = engine }))
			cl, err := client.New(client.Config{Endpoints: []string{c.Leader(b).HTTPAddr()}})
			if err != nil {
				b.Fatal(err)
			}
			defer cl.Close()
			val := make([]byte, 256)
			benchClients(b, 1, func(ctx context.Context, i int64) error {
				_, err := cl.Put(ctx, fmt.Sprintf("%08d", i%10000), val)
				return err
			})
		})
	}
}
