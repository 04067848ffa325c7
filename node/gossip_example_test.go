package node_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/statenode/statenode/node"
)

// A node started with GossipAddr replicates CRDTs beside its Raft log.
func ExampleNode_CRDT() {
	dir, _ := os.MkdirTemp("", "statenode-example-")
	defer os.RemoveAll(dir)
	cfg := node.DefaultLocalConfig()
	cfg.ID, cfg.DataDir, cfg.Bootstrap = "n1", dir, true
	cfg.GossipAddr = "127.0.0.1:0" // enables gossip and CRDTs
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	n, err := node.New(cfg)
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	if err := n.Start(ctx); err != nil {
		panic(err)
	}
	defer n.Shutdown(ctx)

	visits := n.CRDT().Counter("visits")
	_ = visits.Inc(ctx, 2)
	_ = visits.Inc(ctx, 1)
	_ = n.CRDT().Set("online").Add(ctx, "n1")
	fmt.Println(visits.Value(), n.CRDT().Set("online").Elements())
	// Output: 3 [n1]
}
