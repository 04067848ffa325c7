package breaker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/sony/gobreaker/v2"

	"github.com/statenode/statenode/backends"
)

var _ backends.Backend = (*Backend)(nil)

// Sentinel errors of this package.
var (
	// ErrOpen is returned while the breaker is open (or half-open with
	// its probe budget spent): the store is not called. It wraps
	// backends.ErrUnavailable.
	ErrOpen = fmt.Errorf("breaker: circuit open: %w", backends.ErrUnavailable)
)

// Pinger is implemented by stores with a cheap health check (the redis and
// postgres backends).
type Pinger interface {
	// Ping returns nil when the store answers; it may block until ctx
	// ends.
	Ping(ctx context.Context) error
}

// Config configures a breaker.
type Config struct {
	// Name labels the breaker in Stats and state-change callbacks.
	Name string
	// Failures is how many consecutive ErrUnavailable results open the
	// breaker (default 5: one bad request is noise, five in a row is an
	// outage).
	Failures uint32
	// OpenFor is how long the breaker stays open before it lets probes
	// through (default 5 s).
	OpenFor time.Duration
	// HalfOpenProbes is how many calls are let through while half-open;
	// that many successes close the breaker (default 1).
	HalfOpenProbes uint32
	// HealthInterval, when > 0 and the store implements Pinger, pings the
	// store through the breaker at this interval, so an outage is noticed
	// (and recovery probed) without user traffic.
	HealthInterval time.Duration
	// OnStateChange is called (from the calling goroutine, under no lock
	// of ours) when the state changes; it must not block.
	OnStateChange func(name string, from, to gobreaker.State)
}

// DefaultConfig returns the defaults described on Config.
func DefaultConfig(name string) Config {
	return Config{Name: name, Failures: 5, OpenFor: 5 * time.Second, HalfOpenProbes: 1}
}

// Backend is a circuit breaker (closed → open → half-open, from
// sony/gobreaker) around a store. Only failures that mean the store is
// unreachable (backends.ErrUnavailable) count; ErrNotFound, version
// mismatches, fences, bad input and cancelled contexts are answers.
type Backend struct {
	inner backends.Backend
	cb    *gobreaker.CircuitBreaker[any]

	stop      context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

// New wraps inner. Close stops the health checks and closes inner.
func New(inner backends.Backend, cfg Config) *Backend {
	if cfg.Failures == 0 {
		cfg.Failures = 5
	}
	if cfg.OpenFor <= 0 {
		cfg.OpenFor = 5 * time.Second
	}
	if cfg.HalfOpenProbes == 0 {
		cfg.HalfOpenProbes = 1
	}
	failures := cfg.Failures
	st := gobreaker.Settings{
		Name:        cfg.Name,
		MaxRequests: cfg.HalfOpenProbes,
		Timeout:     cfg.OpenFor,
		ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= failures },
		IsSuccessful: func(err error) bool {
			return err == nil || !errors.Is(err, backends.ErrUnavailable)
		},
		IsExcluded: func(err error) bool {
			return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, backends.ErrClosed)
		},
		OnStateChange: cfg.OnStateChange,
	}
	ctx, cancel := context.WithCancel(context.Background())
	b := &Backend{inner: inner, cb: gobreaker.NewCircuitBreaker[any](st), stop: cancel}
	if p, ok := inner.(Pinger); ok && cfg.HealthInterval > 0 {
		b.wg.Go(func() { b.health(ctx, p, cfg.HealthInterval) })
	}
	return b
}

func (b *Backend) health(ctx context.Context, p Pinger, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			pctx, cancel := context.WithTimeout(ctx, every)
			_ = b.Ping(pctx)
			cancel()
		}
	}
}

// State returns the breaker state.
func (b *Backend) State() gobreaker.State { return b.cb.State() }

func do[T any](b *Backend, fn func() (T, error)) (T, error) {
	res, err := b.cb.Execute(func() (any, error) { return fn() })
	if errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests) {
		var zero T
		return zero, fmt.Errorf("%w (%v)", ErrOpen, err)
	}
	v, _ := res.(T)
	return v, err
}

func do0(b *Backend, fn func() error) error {
	_, err := do(b, func() (struct{}, error) { return struct{}{}, fn() })
	return err
}

// Ping checks the store through the breaker (ErrOpen while open). It
// reports nil for stores that are not Pingers.
func (b *Backend) Ping(ctx context.Context) error {
	p, ok := b.inner.(Pinger)
	if !ok {
		return nil
	}
	return do0(b, func() error { return p.Ping(ctx) })
}

// Get implements backends.Backend.
func (b *Backend) Get(ctx context.Context, key string) (backends.VersionedValue, error) {
	return do(b, func() (backends.VersionedValue, error) { return b.inner.Get(ctx, key) })
}

// Put implements backends.Backend.
func (b *Backend) Put(ctx context.Context, key string, value []byte, opts backends.WriteOptions) (uint64, error) {
	return do(b, func() (uint64, error) { return b.inner.Put(ctx, key, value, opts) })
}

// Delete implements backends.Backend.
func (b *Backend) Delete(ctx context.Context, key string, opts backends.WriteOptions) error {
	return do0(b, func() error { return b.inner.Delete(ctx, key, opts) })
}

// List implements backends.Backend.
func (b *Backend) List(ctx context.Context, prefix string, opts backends.ListOptions) (backends.ListPage, error) {
	return do(b, func() (backends.ListPage, error) { return b.inner.List(ctx, prefix, opts) })
}

// CompareAndSwap implements backends.Backend.
func (b *Backend) CompareAndSwap(ctx context.Context, key string, expected uint64, value []byte, opts backends.WriteOptions) (uint64, error) {
	return do(b, func() (uint64, error) { return b.inner.CompareAndSwap(ctx, key, expected, value, opts) })
}

// GetMany implements backends.Backend.
func (b *Backend) GetMany(ctx context.Context, keys []string) ([]backends.VersionedValue, error) {
	return do(b, func() ([]backends.VersionedValue, error) { return b.inner.GetMany(ctx, keys) })
}

// PutMany implements backends.Backend.
func (b *Backend) PutMany(ctx context.Context, items []backends.Item, opts backends.WriteOptions) ([]uint64, error) {
	return do(b, func() ([]uint64, error) { return b.inner.PutMany(ctx, items, opts) })
}

// DeleteMany implements backends.Backend.
func (b *Backend) DeleteMany(ctx context.Context, keys []string, opts backends.WriteOptions) error {
	return do0(b, func() error { return b.inner.DeleteMany(ctx, keys, opts) })
}

// Stats implements backends.Backend. It answers even while the breaker is
// open (with the store's error, if any) and adds breaker_state (0 closed,
// 1 half-open, 2 open) and breaker_consecutive_failures.
func (b *Backend) Stats(ctx context.Context) (backends.Stats, error) {
	st, err := b.inner.Stats(ctx)
	st.Backend = "breaker(" + st.Backend + ")"
	if st.Extra == nil {
		st.Extra = map[string]float64{}
	}
	st.Extra["breaker_state"] = float64(b.cb.State())
	st.Extra["breaker_consecutive_failures"] = float64(b.cb.Counts().ConsecutiveFailures)
	return st, err
}

// Close implements backends.Backend.
func (b *Backend) Close() error {
	b.closeOnce.Do(func() {
		b.stop()
		b.wg.Wait()
	})
	return b.inner.Close()
}
