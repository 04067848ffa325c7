// Package boltdb is the default, embedded backends.Backend: one bbolt file
// per node. Every call is one bbolt transaction, so batches are atomic and,
// unless Config.NoSync, durable when the call returns. Fences live in a
// second bucket and are checked and raised in the same transaction as the
// write they guard.
//
//	b, err := boltdb.Open(boltdb.DefaultConfig("/var/lib/statenode/bulk.db"))
//	if err != nil { ... }
//	defer b.Close()
//	ver, err := b.Put(ctx, "user/42", []byte("ada"), backends.WriteOptions{})
package boltdb
