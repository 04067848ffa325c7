// Package raftlog owns a node's on-disk Raft state: the log and stable store
// (raft-boltdb/v2 over bbolt, fronted by an in-memory log cache), the file
// snapshot store, and the layout of the data directory.
//
// Layout of a data directory:
//
//	DIR/
//	  node.json          identity of the node that owns DIR (ID); a mismatch refuses to start
//	  raft/raft.db       bbolt: Raft log entries and stable store (term, vote)
//	  raft/snapshots/    hashicorp/raft file snapshots (one folder per snapshot)
//
// Recovery: bbolt commits are fsynced before Raft acknowledges an append, and
// snapshots are written to a temporary folder and renamed when complete, so
// after a crash (kill -9) Open finds either the old or the new state, never a
// torn one. On restart Raft restores the newest snapshot and replays the log
// entries after it.
//
//	st, err := raftlog.Open(raftlog.Config{Dir: "/var/lib/statenode", NodeID: "n1"})
//	if err != nil { ... }
//	defer st.Close()
//	r, err := raft.NewRaft(conf, fsm, st.Log, st.Stable, st.Snapshots, transport)
package raftlog
