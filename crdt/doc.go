// Package crdt implements convergent replicated data types as delta-state
// CRDTs: GCounter, PNCounter, BoundedCounter, LWWRegister, MVRegister,
// ORSet (add-wins, without tombstones) and LWWMap, plus the hybrid logical
// clock that stamps last-writer-wins writes. It uses only the standard
// library and does no I/O; statenode's crdt/gossip package replicates
// these types between nodes.
//
// # Model
//
// Every type is a join-semilattice: Merge is commutative, associative and
// idempotent, so replicas that have received the same updates, in any
// order and with any duplication, hold equal states. Every mutator
// changes the receiver and returns a delta, a small state of the same
// type that, merged into any replica, applies the update there. Deltas
// merge exactly like full states, so they may be lost, reordered or
// repeated; a full-state merge repairs whatever deltas missed.
//
// Replica IDs are strings; a replica must never reuse its ID after losing
// state (crdt/gossip adds an incarnation to the node ID for that).
//
// # Encoding (version 1)
//
// Each state encodes to canonical bytes (equal states, equal bytes):
// 0x01 (version) | kind | body, integers as varints. Decode and each
// type's UnmarshalBinary accept exactly the canonical encodings and return
// an error wrapping ErrMalformed, ErrUnsupportedVersion or ErrUnknownKind
// for anything else, never a panic. Bodies are documented on each type's
// AppendBinary. A one-replica GCounter increment is 11 bytes.
//
// # Concurrency
//
// States are not safe for concurrent use. Clock is.
//
// # Example
//
//	a, b := crdt.NewORSet(), crdt.NewORSet()
//	d := a.Add("node-a", "alice") // a changes; d is the delta
//	b.Merge(d)                    // ship d however you like
//	b.Merge(d)                    // duplicates are harmless
//	fmt.Println(b.Elements())     // [alice]
package crdt
