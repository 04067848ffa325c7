package breaker_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sony/gobreaker/v2"
	"go.uber.org/goleak"

	"github.com/statenode/statenode/backends"
	"github.com/statenode/statenode/backends/backendtest"
	"github.com/statenode/statenode/backends/breaker"
	"github.com/statenode/statenode/backends/memory"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestConformance(t *testing.T) {
	backendtest.Run(t, func(t *testing.T) backends.Backend {
		return breaker.New(memory.New(), breaker.DefaultConfig("memory"))
	})
}

// flaky injects outages a real store cannot produce on demand: while down
// is set every call fails with ErrUnavailable. calls counts calls that
// reached it.
type flaky struct {
	*memory.Backend
	down  atomic.Bool
	calls atomic.Int64
}

func (f *flaky) Get(ctx context.Context, key string) (backends.VersionedValue, error) {
	f.calls.Add(1)
	if f.down.Load() {
		return backends.VersionedValue{}, backends.ErrUnavailable
	}
	return f.Backend.Get(ctx, key)
}

func (f *flaky) Ping(ctx context.Context) error {
	f.calls.Add(1)
	if f.down.Load() {
		return backends.ErrUnavailable
	}
	return nil
}

func TestOpenHalfOpenClose(t *testing.T) {
	ctx := context.Background()
	f := &flaky{Backend: memory.New()}
	cfg := breaker.DefaultConfig("flaky")
	cfg.Failures = 3
	cfg.OpenFor = 100 * time.Millisecond
	b := breaker.New(f, cfg)
	defer b.Close()

	// Answers are not failures.
	for range 10 {
		if _, err := b.Get(ctx, "missing"); !errors.Is(err, backends.ErrNotFound) {
			t.Fatal(err)
		}
	}
	if b.State() != gobreaker.StateClosed {
		t.Fatalf("state %v after ErrNotFound answers", b.State())
	}
	f.down.Store(true)
	for range 3 {
		if _, err := b.Get(ctx, "k"); !errors.Is(err, backends.ErrUnavailable) {
			t.Fatal(err)
		}
	}
	if b.State() != gobreaker.StateOpen {
		t.Fatalf("state %v after 3 failures", b.State())
	}
	before := f.calls.Load()
	_, err := b.Get(ctx, "k")
	if !errors.Is(err, breaker.ErrOpen) || !errors.Is(err, backends.ErrUnavailable) {
		t.Fatalf("open breaker: %v", err)
	}
	if f.calls.Load() != before {
		t.Fatal("open breaker called the store")
	}
	st, _ := b.Stats(ctx)
	if st.Extra["breaker_state"] != float64(gobreaker.StateOpen) {
		t.Fatalf("stats %+v", st.Extra)
	}
	f.down.Store(false)
	deadline := time.Now().Add(5 * time.Second)
	for b.State() != gobreaker.StateHalfOpen {
		if time.Now().After(deadline) {
			t.Fatal("breaker never half-opened")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := b.Get(ctx, "missing"); !errors.Is(err, backends.ErrNotFound) {
		t.Fatal(err)
	}
	if b.State() != gobreaker.StateClosed {
		t.Fatalf("state %v after a successful probe", b.State())
	}
}

// TestHealthCheck checks that pings open the breaker without user traffic.
func TestHealthCheck(t *testing.T) {
	f := &flaky{Backend: memory.New()}
	cfg := breaker.DefaultConfig("flaky")
	cfg.Failures = 2
	cfg.OpenFor = time.Hour
	cfg.HealthInterval = 10 * time.Millisecond
	b := breaker.New(f, cfg)
	defer b.Close()
	f.down.Store(true)
	deadline := time.Now().Add(5 * time.Second)
	for b.State() != gobreaker.StateOpen {
		if time.Now().After(deadline) {
			t.Fatal("health checks never opened the breaker")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
