package cached_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/statenode/statenode/backends"
	"github.com/statenode/statenode/backends/cached"
)

// BenchmarkZipfReads reads 10,000 keys with a Zipf(s=1.1) popularity from
// an LRU of 1,000 entries → Redis → PostgreSQL and reports the fraction of
// reads answered by a cache tier (hit%), and by the LRU alone (local%), after
// a warm-up of 50,000 reads:
//
//	go test -run ^$ -bench ZipfReads ./backends/cached
func BenchmarkZipfReads(b *testing.B) {
	const keys, lruSize = 10000, 1000
	ctx := context.Background()
	store := newPostgres(b, "")
	items := make([]backends.Item, keys)
	for i := range items {
		items[i] = backends.Item{Key: fmt.Sprintf("zipf/%05d", i), Value: []byte(fmt.Sprintf("value %d", i))}
	}
	if _, err := store.PutMany(ctx, items, backends.WriteOptions{}); err != nil {
		b.Fatal(err)
	}
	for _, tiers := range []string{"lru", "lru+redis"} {
		b.Run(tiers, func(b *testing.B) {
			cfg := cached.Config{Store: store, LocalSize: lruSize}
			if tiers == "lru+redis" {
				cfg.Remote = newRedis(b)
			}
			c := mustCached(b, cfg)
			// Not closed: it would close the shared store.
			r := rand.New(rand.NewPCG(1, 2))
			z := rand.NewZipf(r, 1.1, 1, keys-1)
			// Warm up: the hit rate of interest is the steady state's.
			for range 50000 {
				if _, err := c.Get(ctx, items[z.Uint64()].Key); err != nil {
					b.Fatal(err)
				}
			}
			before, _ := c.Stats(ctx)
			for b.Loop() {
				if _, err := c.Get(ctx, items[z.Uint64()].Key); err != nil {
					b.Fatal(err)
				}
			}
			st, _ := c.Stats(ctx)
			d := func(k string) float64 { return st.Extra[k] - before.Extra[k] }
			total := d("cache_local_hits") + d("cache_remote_hits") + d("cache_misses")
			b.ReportMetric(100*(d("cache_local_hits")+d("cache_remote_hits"))/total, "hit%")
			b.ReportMetric(100*d("cache_local_hits")/total, "local%")
			if cfg.Remote != nil {
				_ = cfg.Remote.Close()
			}
		})
	}
	_ = store.Close()
}
