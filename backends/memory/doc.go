// Package memory is an in-process backends.Backend: a btree under one
// mutex, for tests and for single-node deployments whose bulk state fits in
// memory and may be lost on restart. Every call, batches included, is
// atomic; fences are enforced under the same mutex.
//
//	b := memory.New()
//	defer b.Close()
//	v, err := b.Put(ctx, "user/42", []byte("ada"), backends.WriteOptions{})
package memory
