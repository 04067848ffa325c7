package redlock_test

import (
	"context"
	"testing"
	"time"

	"github.com/statenode/statenode/coordination/redlock"
)

// BenchmarkLockUnlock measures one uncontended acquire + release on five
// servers (each a parallel round trip to every server).
func BenchmarkLockUnlock(b *testing.B) {
	servers := startCluster(b, 5)
	rl := dial(b, redlock.DefaultConfig(), servers)
	ctx := context.Background()
	start := time.Now()
	for b.Loop() {
		l, err := rl.TryLock(ctx, "bench")
		if err != nil {
			b.Fatal(err)
		}
		if err := l.Unlock(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "cycles/s")
}
