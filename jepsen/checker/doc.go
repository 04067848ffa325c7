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
// and OR-sets.
//
//	ops, _ := history.ReadDir(runDir)
//	r := checker.Linearizable(ops, windows, time.Minute, filepath.Join(runDir, "history.html"))
//	if !r.Valid { fmt.Println(r.Anomalies) }
package checker
