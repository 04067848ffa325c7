package postgres_test

import (
	"testing"

	"github.com/statenode/statenode/backends/backendtest"
)

// BenchmarkBatches: go test -run ^$ -bench Batches ./backends/postgres
func BenchmarkBatches(b *testing.B) {
	store := newBackend(b)
	defer store.Close()
	backendtest.BenchmarkBatches(b, store, 100)
}
