// Package metrics is a backends.Backend wrapper that records Prometheus
// latency histograms, error counts by kind, and batch sizes per backend and
// operation. Metrics are registered with the Registerer passed to New,
// never globally.
//
//	reg := prometheus.NewRegistry()
//	b := metrics.New(store, "postgres", reg)
package metrics
