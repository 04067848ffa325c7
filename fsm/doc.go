// Package fsm is statenode's replicated state machine: a deterministic
// hashicorp/raft FSM holding an etcd-style revisioned key-value store and
// the cluster's member metadata.
//
// # Model
//
// Every write is a transaction (Request): compares, then the Success or the
// Failure ops. A transaction that changes at least one key takes the next
// store revision; all its events share it. Keys carry CreateRevision,
// ModRevision and Version as in etcd. The last HistoryRetention revisions of
// events are kept, for reads at a past revision (RangeRequest.Revision) and
// for watches that resume from one (WatchRequest.StartRevision); older ones
// are compacted deterministically after each apply.
//
// # Determinism
//
// Apply reads nothing but the log entry and the state: no clock, no random
// numbers, no environment, no I/O. Time enters as Command.Time, stamped by
// the leader. All replicas must run with the same Config.
//
// # Log entry format (version 1)
//
// Integers are varints (encoding/binary; signed ones zigzag), and only the
// shortest encoding is accepted, so a valid entry re-encodes to the same
// bytes. A "bytes" field is a uvarint length followed by that many bytes.
//
//	command:  0x01 (version) | 0x01 (kind: command) | type | varint time | payload
//	  CmdTxn:          uvarint #compares, compare... | uvarint #success, op... | uvarint #failure, op...
//	    compare:       target | result | bytes key | bytes value | varint number
//	    op:            type | flags (1 prefix, 2 prev_kv, 4 session) | bytes key | bytes value | varint limit
//	                   [| uvarint session, only with flag 4: an ephemeral put]
//	  CmdPutMember:    bytes id | bytes raft address | bytes HTTP address
//	  CmdRemoveMember: bytes id
//	  CmdNoop:         (nothing)
//	batch:    0x01 (version) | 0x02 (kind: batch) | uvarint n | n × (bytes command)
//	response: 0x01 (version) | flags (1 succeeded) | varint revision | uvarint #results, result...
//	  result:  op type | flags (1 more) | varint count | uvarint #kvs, kv...
//	  kv:      bytes key | bytes value | varint create | varint mod | varint version
//
// A plain put of "k"="v" at time 0 is 14 bytes:
// 01 01 01 00 00 01 02 00 01 6b 01 76 00 00.
//
// Applying a command entry returns an ApplyResult; a batch entry, an
// []ApplyResult with one element per command.
//
// # Memory ownership
//
// Decoded commands and responses alias the bytes they were decoded from.
// KeyValues returned by Range, Watch and Apply share their Key and Value
// bytes with the store, which never modifies them: callers must not either.
//
// # Example
//
//	f := fsm.New(fsm.DefaultConfig())
//	cmd := fsm.EncodeCommand(&fsm.Command{Type: fsm.CmdTxn, Txn: &fsm.Request{
//		Success: []fsm.Op{{Type: fsm.OpPut, Key: []byte("greeting"), Value: []byte("hello")}},
//	}})
//	res := f.Apply(&raft.Log{Index: 1, Type: raft.LogCommand, Data: cmd}).(fsm.ApplyResult)
//	fmt.Println(res.Response.Revision) // 1
//	rr, _ := f.Range(fsm.RangeRequest{Key: []byte("greeting")})
//	fmt.Println(string(rr.KVs[0].Value)) // hello
//
// See DESIGN.md for the apply and read paths, compaction and the snapshot
// format.
package fsm
