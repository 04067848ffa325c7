package fenced_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"

	"go.uber.org/goleak"

	"github.com/statenode/statenode/backends"
	"github.com/statenode/statenode/backends/backendtest"
	"github.com/statenode/statenode/backends/fenced"
	"github.com/statenode/statenode/backends/memory"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestConformance(t *testing.T) {
	backendtest.Run(t, func(t *testing.T) backends.Backend {
		return fenced.New(memory.New(), fenced.Static(backends.Fence{Lock: "wrapper-lock", Token: 1}))
	})
}

// counting counts writes that reach the store.
type counting struct {
	*memory.Backend
	puts atomic.Int64
}

func (c *counting) Put(ctx context.Context, key string, value []byte, opts backends.WriteOptions) (uint64, error) {
	c.puts.Add(1)
	return c.Backend.Put(ctx, key, value, opts)
}

// TestSupersededHolder plays two lock holders: the old one (token 1) is
// rejected once the new one (token 2) has written, and from then on
// without reaching the store.
func TestSupersededHolder(t *testing.T) {
	ctx := context.Background()
	store := &counting{Backend: memory.New()}
	defer store.Close()
	old := fenced.New(store, fenced.Static(backends.Fence{Lock: "leader", Token: 1}))
	cur := fenced.New(store, fenced.Static(backends.Fence{Lock: "leader", Token: 2}))
	if _, err := old.Put(ctx, "state", []byte("old"), backends.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cur.Put(ctx, "state", []byte("new"), backends.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		_, err := old.Put(ctx, "state", []byte(fmt.Sprint("stale", i)), backends.WriteOptions{})
		if !errors.Is(err, backends.ErrFenced) {
			t.Fatalf("stale write %d: %v", i, err)
		}
	}
	if n := store.puts.Load(); n != 3 {
		t.Fatalf("%d puts reached the store, want 3 (the first rejection only)", n)
	}
	if v, _ := store.Get(ctx, "state"); string(v.Value) != "new" {
		t.Fatalf("state = %q", v.Value)
	}
}
