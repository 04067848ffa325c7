package metrics

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/statenode/statenode/backends"
)

var _ backends.Backend = (*Backend)(nil)

// Collectors are the metrics, shared by every Backend registered with the
// same Registerer and told apart by the "backend" label.
type collectors struct {
	duration *prometheus.HistogramVec
	errors   *prometheus.CounterVec
	items    *prometheus.HistogramVec
}

func register[T prometheus.Collector](reg prometheus.Registerer, c T) T {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(T); ok {
				return existing
			}
		}
		panic(err) // a different metric with our name: a programming error
	}
	return c
}

func newCollectors(reg prometheus.Registerer) *collectors {
	return &collectors{
		duration: register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "statenode", Subsystem: "backend", Name: "operation_duration_seconds",
			Help:    "Latency of backend operations, in seconds, by backend and operation.",
			Buckets: prometheus.ExponentialBuckets(50e-6, 2, 16), // 50µs .. 1.6s
		}, []string{"backend", "op"})),
		errors: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "statenode", Subsystem: "backend", Name: "errors_total",
			Help: "Failed backend operations by backend, operation and kind (not_found, version_mismatch, fenced, unavailable, invalid, too_large, closed, canceled, other).",
		}, []string{"backend", "op", "kind"})),
		items: register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "statenode", Subsystem: "backend", Name: "batch_items",
			Help:    "Items per batch operation (get_many, put_many, delete_many).",
			Buckets: prometheus.ExponentialBuckets(1, 4, 8),
		}, []string{"backend", "op"})),
	}
}

// Kind classifies err for the errors_total "kind" label.
func Kind(err error) string {
	switch {
	case errors.Is(err, backends.ErrNotFound):
		return "not_found"
	case errors.Is(err, backends.ErrVersionMismatch):
		return "version_mismatch"
	case errors.Is(err, backends.ErrFenced):
		return "fenced"
	case errors.Is(err, backends.ErrUnavailable):
		return "unavailable"
	case errors.Is(err, backends.ErrInvalidKey):
		return "invalid"
	case errors.Is(err, backends.ErrTooLarge):
		return "too_large"
	case errors.Is(err, backends.ErrClosed):
		return "closed"
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return "canceled"
	}
	return "other"
}

// Backend records Prometheus metrics for every call to the inner store:
// statenode_backend_operation_duration_seconds{backend,op},
// statenode_backend_errors_total{backend,op,kind} and
// statenode_backend_batch_items{backend,op}.
type Backend struct {
	inner backends.Backend
	name  string
	c     *collectors
}

// New wraps inner, labelling its metrics backend=name and registering
// them with reg (several Backends may share one reg). Close closes inner.
func New(inner backends.Backend, name string, reg prometheus.Registerer) *Backend {
	return &Backend{inner: inner, name: name, c: newCollectors(reg)}
}

func (b *Backend) observe(op string, start time.Time, err error) {
	b.c.duration.WithLabelValues(b.name, op).Observe(time.Since(start).Seconds())
	if err != nil {
		b.c.errors.WithLabelValues(b.name, op, Kind(err)).Inc()
	}
}

// Get implements backends.Backend.
func (b *Backend) Get(ctx context.Context, key string) (backends.VersionedValue, error) {
	start := time.Now()
	v, err := b.inner.Get(ctx, key)
	b.observe("get", start, err)
	return v, err
}

// Put implements backends.Backend.
func (b *Backend) Put(ctx context.Context, key string, value []byte, opts backends.WriteOptions) (uint64, error) {
	start := time.Now()
	v, err := b.inner.Put(ctx, key, value, opts)
	b.observe("put", start, err)
	return v, err
}

// Delete implements backends.Backend.
func (b *Backend) Delete(ctx context.Context, key string, opts backends.WriteOptions) error {
	start := time.Now()
	err := b.inner.Delete(ctx, key, opts)
	b.observe("delete", start, err)
	return err
}

// List implements backends.Backend.
func (b *Backend) List(ctx context.Context, prefix string, opts backends.ListOptions) (backends.ListPage, error) {
	start := time.Now()
	p, err := b.inner.List(ctx, prefix, opts)
	b.observe("list", start, err)
	return p, err
}

// CompareAndSwap implements backends.Backend.
func (b *Backend) CompareAndSwap(ctx context.Context, key string, expected uint64, value []byte, opts backends.WriteOptions) (uint64, error) {
	start := time.Now()
	v, err := b.inner.CompareAndSwap(ctx, key, expected, value, opts)
	b.observe("cas", start, err)
	return v, err
}

// GetMany implements backends.Backend.
func (b *Backend) GetMany(ctx context.Context, keys []string) ([]backends.VersionedValue, error) {
	start := time.Now()
	v, err := b.inner.GetMany(ctx, keys)
	b.observe("get_many", start, err)
	b.c.items.WithLabelValues(b.name, "get_many").Observe(float64(len(keys)))
	return v, err
}

// PutMany implements backends.Backend.
func (b *Backend) PutMany(ctx context.Context, items []backends.Item, opts backends.WriteOptions) ([]uint64, error) {
	start := time.Now()
	v, err := b.inner.PutMany(ctx, items, opts)
	b.observe("put_many", start, err)
	b.c.items.WithLabelValues(b.name, "put_many").Observe(float64(len(items)))
	return v, err
}

// DeleteMany implements backends.Backend.
func (b *Backend) DeleteMany(ctx context.Context, keys []string, opts backends.WriteOptions) error {
	start := time.Now()
	err := b.inner.DeleteMany(ctx, keys, opts)
	b.observe("delete_many", start, err)
	b.c.items.WithLabelValues(b.name, "delete_many").Observe(float64(len(keys)))
	return err
}

// Stats implements backends.Backend.
func (b *Backend) Stats(ctx context.Context) (backends.Stats, error) {
	st, err := b.inner.Stats(ctx)
	st.Backend = "metrics(" + st.Backend + ")"
	return st, err
}

// Close implements backends.Backend.
func (b *Backend) Close() error { return b.inner.Close() }
