package backends_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/statenode/statenode/backends"
	"github.com/statenode/statenode/backends/memory"
)

func Example_fence() {
	ctx := context.Background()
	store := memory.New()
	defer store.Close()

	old := backends.WriteOptions{Fence: &backends.Fence{Lock: "leader", Token: 1}}
	cur := backends.WriteOptions{Fence: &backends.Fence{Lock: "leader", Token: 2}}

	_, _ = store.Put(ctx, "state", []byte("from holder 1"), old)
	_, _ = store.Put(ctx, "state", []byte("from holder 2"), cur)
	_, err := store.Put(ctx, "state", []byte("late write of holder 1"), old)
	fmt.Println(errors.Is(err, backends.ErrFenced))

	v, _ := store.Get(ctx, "state")
	fmt.Printf("%s (version %d)\n", v.Value, v.Version)
	// Output:
	// true
	// from holder 2 (version 2)
}

func Example_compareAndSwap() {
	ctx := context.Background()
	store := memory.New()
	defer store.Close()

	v1, _ := store.CompareAndSwap(ctx, "counter", 0, []byte("1"), backends.WriteOptions{})
	_, err := store.CompareAndSwap(ctx, "counter", 0, []byte("1"), backends.WriteOptions{})
	fmt.Println(v1, errors.Is(err, backends.ErrVersionMismatch))
	v2, _ := store.CompareAndSwap(ctx, "counter", v1, []byte("2"), backends.WriteOptions{})
	fmt.Println(v2)
	// Output:
	// 1 true
	// 2
}
