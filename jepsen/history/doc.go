// Package history records what the harness's clients did: one Op per
// completed operation, on one monotonic time base (Clock) shared by every
// client and the nemesis, written as JSONL so that a run can be checked
// again later.
//
// An operation is ok (its result is known), fail (it certainly did not take
// effect) or info (indeterminate: a timeout or a broken connection after the
// request left). Checkers treat info writes as possibly applied at any time
// after their call, never as failed.
//
//	clock := history.NewClock()
//	rec, _ := history.NewRecorder(filepath.Join(dir, "client-0.jsonl"))
//	call := clock.Now()
//	... do the operation ...
//	rec.Add(history.Op{Client: 0, F: history.FPut, Key: "k", Value: "c0-1", Type: history.TypeOK, Call: call, Return: clock.Now()})
package history
