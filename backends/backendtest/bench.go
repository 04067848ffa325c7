package backendtest

import (
	"context"
	"fmt"
	"testing"

	"github.com/statenode/statenode/backends"
)

// BenchmarkBatches reports, for batches of n keys, the cost of n single
// calls against one batch call, for Put and Get. Each b.N iteration moves
// n keys, so ns/op compares directly.
func BenchmarkBatches(b *testing.B, store backends.Backend, n int) {
	ctx := context.Background()
	items := make([]backends.Item, n)
	keys := make([]string, n)
	for i := range items {
		keys[i] = fmt.Sprintf("bench/%04d", i)
		items[i] = backends.Item{Key: keys[i], Value: []byte(fmt.Sprintf("value-%04d-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", i))}
	}
	b.Run(fmt.Sprintf("Put/one-by-one/%d", n), func(b *testing.B) {
		for b.Loop() {
			for _, it := range items {
				if _, err := store.Put(ctx, it.Key, it.Value, backends.WriteOptions{}); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
	b.Run(fmt.Sprintf("Put/batch/%d", n), func(b *testing.B) {
		for b.Loop() {
			if _, err := store.PutMany(ctx, items, backends.WriteOptions{}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run(fmt.Sprintf("Get/one-by-one/%d", n), func(b *testing.B) {
		for b.Loop() {
			for _, k := range keys {
				if _, err := store.Get(ctx, k); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
	b.Run(fmt.Sprintf("Get/batch/%d", n), func(b *testing.B) {
		for b.Loop() {
			if _, err := store.GetMany(ctx, keys); err != nil {
				b.Fatal(err)
			}
		}
	})
}
