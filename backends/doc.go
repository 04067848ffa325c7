// Package backends defines Backend, the interface of statenode's bulk state
// stores, with the types, limits and sentinel errors every store shares.
//
// statenode keeps coordination state in Raft; the bulk of an application's
// state lives in a Backend: memory, boltdb (embedded, the default), redis
// (standalone, Sentinel, Cluster) or postgres, optionally wrapped by cached,
// compressed, breaker, fenced and metrics, which compose in any order.
// Every store and wrapper passes the conformance suite in backendtest.
//
// # Versions
//
// A key's Version is 1 when it is created and grows by one with every
// write; CompareAndSwap(key, expected, value) writes only if the version is
// still expected (0: only if absent). Deleting or expiring a key resets it.
//
// # Fences
//
// A write may carry a Fence{Lock, Token}. The store keeps the highest token
// each lock has written with and rejects, with a *FencedError (ErrFenced),
// any write with an older one, atomically with the write; see Fence and
// docs/BACKENDS.md.
//
//	b, _ := boltdb.Open(boltdb.DefaultConfig("bulk.db"))
//	defer b.Close()
//	opts := backends.WriteOptions{TTL: time.Hour, Fence: &backends.Fence{Lock: "jobs", Token: 7}}
//	ver, err := b.Put(ctx, "jobs/42", []byte("running"), opts)
//	if errors.Is(err, backends.ErrFenced) {
//		// a newer holder of "jobs" has written: stop
//	}
//	_, err = b.CompareAndSwap(ctx, "jobs/42", ver, []byte("done"), opts)
package backends
