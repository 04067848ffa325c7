package gossip_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/statenode/statenode/crdt/gossip"
)

// Two nodes on loopback: an update on one is read on the other.
func Example() {
	ctx := context.Background()
	start := func(id string, join []string) *gossip.Gossip {
		cfg := gossip.DefaultLocalConfig()
		cfg.NodeID, cfg.Join = id, join
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
		g, err := gossip.New(cfg)
		if err != nil {
			panic(err)
		}
		if err := g.Start(ctx); err != nil {
			panic(err)
		}
		return g
	}
	a := start("a", nil)
	defer a.Shutdown(ctx)
	b := start("b", []string{a.LocalAddr()})
	defer b.Shutdown(ctx)

	_ = a.Counter("visits").Inc(ctx, 3)
	_ = b.Set("online").Add(ctx, "b")
	for b.Counter("visits").Value() != 3 || !a.Set("online").Contains("b") {
		time.Sleep(10 * time.Millisecond)
	}
	fmt.Println(b.Counter("visits").Value(), a.Set("online").Elements(), len(a.Members()))
	// Output: 3 [b] 2
}
