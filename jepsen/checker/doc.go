// Package checker decides whether a recorded history is correct.
//
// Linearizable checks the kv register workload with Porcupine against a
// per-key register model with mod revisions (KVModel), partitioned by key.
// An indeterminate write is never dropped and never assumed failed: it gets
// an unknown output and Return = math.MaxInt64, so that it may take effect
// at any time after its call, or not at all. A search that times out is a
// failure (ErrTimeout), never a pass.
//
// Set checks the set workload: every acknowledged add is in the final read,
// and nothing is read that was not added.
//
// FencedMutex, FencedRegister and LockCounter check the lock and counter
// workloads in the order of the log that fencing tokens give; Election the
// election workload; CRDT the convergence and bounds of gossiped counters
// and OR-sets. Semaphore checks that no more permits are held than exist
// (certain holding spans, and a witness key per holder that the cluster
// deletes with its session); Latch that a latch opens after exactly its
// count of distinct count-downs, retries applying once; Barrier that a
// generation releases only when its parties arrived, that a broken barrier
// names a session that really ended, and that no waiter hangs.
//
//	ops, _ := history.ReadDir(runDir)
//	r := checker.Linearizable(ops, windows, time.Minute, filepath.Join(runDir, "history.html"))
//	if !r.Valid { fmt.Println(r.Anomalies) }
package checker
