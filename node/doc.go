// Package node is an embeddable statenode member: a hashicorp/raft replica
// of the fsm state machine (log on raft-boltdb, see raftlog), its client
// HTTP/JSON API, and the plumbing that forwards writes and read-index
// requests from followers to the leader.
//
// A node is a library first; the statenode binary only parses flags and
// wires one up:
//
//	cfg := node.DefaultConfig()
//	cfg.ID, cfg.DataDir, cfg.Bootstrap = "n1", dir, true
//	n, err := node.New(cfg)
//	if err != nil {
//		return err
//	}
//	if err := n.Start(ctx); err != nil {
//		return err
//	}
//	defer n.Shutdown(context.Background())
//	rev, err := n.Put(ctx, []byte("k"), []byte("v"))
//	kv, err := n.Get(ctx, []byte("k"), node.Linearizable)
//
// Writes are validated against the configured limits before anything
// reaches the log, then packed with concurrent writes into one Raft entry
// (group commit). Reads are linearizable by default (read-index, with
// concurrent reads sharing one quorum confirmation) or stale on request.
// Errors are this package's sentinels (ErrNotLeader, ErrNoLeader,
// ErrTimeout for an unknown outcome, ...) or the fsm package's validation
// errors; raft's errors never cross this boundary. A write sent over HTTP
// to a member that finds no leader is answered ErrNoLeader within two
// election timeouts, so a client moves on to another member; an embedded
// caller waits for a leader until its context ends.
//
// Snapshot streams a consistent copy of the whole state from any member
// (GET /v1/snapshot); Restore replaces the state of the whole cluster with
// one, through the leader, after validating all of it (POST /v1/snapshot;
// docs/OPERATIONS.md, "Backup and restore").
//
// DESIGN.md beside this file draws the apply path and the read path;
// package nodetest starts real clusters for tests.
package node
