// Package raftlog owns a node's on-disk Raft state: the log and stable store
// (fronted by an in-memory log cache), the file snapshot store, and the
// layout of the data directory.
//
// Two log engines are available; a directory keeps the one it was created
// with (node.json records it; opening with the other fails with
// ErrEngineMismatch). Config.Engine empty opens a directory with its own
// engine and creates a new one with EngineWAL:
//
//   - EngineBolt: raft-boltdb/v2 over bbolt, one file. Each append is a
//     bbolt transaction: two fsyncs (data pages, then the meta page).
//   - EngineWAL (default for new directories): hashicorp/raft-wal, append-only segment files plus a small
//     bbolt metadata file. Each append is one write and one fsync, about a
//     third of bbolt's latency on the same disk (BenchmarkStoreLog).
//     Compaction frees whole segments: entries before a snapshot stay in
//     the newest segment until it fills, and Raft may still send them to a
//     lagging follower instead of a snapshot (they are committed entries,
//     so this is only a matter of mechanism, not of safety).
//
// Layout of a data directory:
//
//	DIR/
//	  node.json          identity of the node that owns DIR (ID, log engine); a mismatch refuses to start
//	  raft/LOCK          flock held while the directory is open: a second process gets ErrLocked
//	  raft/raft.db       EngineBolt: Raft log entries and stable store (term, vote)
//	  raft/wal/          EngineWAL: log segments and wal-meta.db (stable store, segment index)
//	  raft/snapshots/    hashicorp/raft file snapshots (one folder per snapshot)
//
// Recovery: an append is fsynced before Raft acknowledges it (with either
// engine), and snapshots are written to a temporary folder and renamed when
// complete, so after a crash (kill -9) Open finds either the old or the new
// state, never a torn one. On restart Raft restores the newest snapshot and
// replays the log entries after it.
//
//	st, err := raftlog.Open(raftlog.Config{Dir: "/var/lib/statenode", NodeID: "n1"})
//	if err != nil { ... }
//	defer st.Close()
//	r, err := raft.NewRaft(conf, fsm, st.Log, st.Stable, st.Snapshots, transport)
package raftlog
