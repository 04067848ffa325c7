package redis_test

import (
	"testing"

	"github.com/statenode/statenode/backends/backendtest"
)

// BenchmarkBatches: go test -run ^$ -bench Batches ./backends/redis
func BenchmarkBatches(b *testing.B) {
	store := newShared(b)
	defer store.Close()
	backendtest.BenchmarkBatches(b, store, 100)
}
