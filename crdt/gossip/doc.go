// Package gossip replicates crdt types between statenode nodes over
// hashicorp/memberlist, which also provides the gossip membership and
// failure detection. It is a library: node wires it into its
// configuration, HTTP API and CLI.
//
// # Dissemination
//
// A local update (Counter.Inc, Set.Add, ...) mutates this node's state,
// writes it to DataDir/crdt.db (bbolt, fsync), and queues the delta as a
// memberlist broadcast. Broadcasts ride memberlist's gossip packets
// (TransmitLimitedQueue, within the UDP packet budget; each node
// transmits a delta 4×log10(N+1) times); a node that learns something
// from a delta forwards it the same way, one that learns nothing drops
// it. A delta too large for a packet goes over TCP to three random
// members, who forward it alike. Full state travels by memberlist
// push/pull (LocalState/MergeRemoteState) on join, every PushPullInterval,
// when a member comes back from dead, and on the periodic reconnect to
// failed members; it repairs anything deltas missed, so partitions heal.
//
// # Durability
//
// An update is acknowledged (its mutator returns nil) only after it is
// on disk. A node restarted on the same DataDir keeps all its
// acknowledged updates. Replica identity is NodeID plus an incarnation
// that survives clean shutdowns only: after a crash, the node may have
// gossiped updates it never wrote, so it takes a new incarnation rather
// than risk reissuing a counter value or dot.
//
// # Bad input
//
// Malformed or oversized messages are dropped, logged and counted in
// statenode_gossip_messages_dropped_total{reason}; decoders never panic.
//
// # Example
//
//	cfg := gossip.DefaultConfig()
//	cfg.NodeID, cfg.DataDir = "n1", "/var/lib/statenode/gossip"
//	cfg.Join = []string{"10.0.0.2:7946"}
//	g, err := gossip.New(cfg)
//	if err != nil { ... }
//	if err := g.Start(ctx); err != nil { ... }
//	defer g.Shutdown(context.Background())
//	_ = g.Counter("visits").Inc(ctx, 1)
//	fmt.Println(g.Counter("visits").Value())
//
// See docs/CRDT.md for the full design.
package gossip
