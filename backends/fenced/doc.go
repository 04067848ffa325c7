// Package fenced binds a fencing token to a backends.Backend: every write
// made through it carries the Fence its Source returns (unless the write
// sets its own), so the store rejects the writes of a lock holder that has
// been superseded. Enforcement is in the stores themselves (see
// backends.Fence and docs/BACKENDS.md); this wrapper only makes it
// automatic and remembers rejections to fail fast.
//
//	lease := ... // a coordination lock: name and fencing token
//	b := fenced.New(store, fenced.Static(backends.Fence{Lock: "jobs/leader", Token: lease.Token}))
//	_, err := b.Put(ctx, "jobs/state", state, backends.WriteOptions{})
//	if errors.Is(err, backends.ErrFenced) { /* we lost the lock: stop */ }
package fenced
