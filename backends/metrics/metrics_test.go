package metrics_test

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/statenode/statenode/backends"
	"github.com/statenode/statenode/backends/backendtest"
	"github.com/statenode/statenode/backends/memory"
	"github.com/statenode/statenode/backends/metrics"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestConformance(t *testing.T) {
	reg := prometheus.NewRegistry() // shared: collectors are reused
	backendtest.Run(t, func(t *testing.T) backends.Backend { return metrics.New(memory.New(), "memory", reg) })
}

func TestCounts(t *testing.T) {
	ctx := context.Background()
	reg := prometheus.NewRegistry()
	a := metrics.New(memory.New(), "a", reg)
	b := metrics.New(memory.New(), "b", reg)
	defer a.Close()
	defer b.Close()
	_, _ = a.Put(ctx, "k", []byte("v"), backends.WriteOptions{})
	_, _ = a.Get(ctx, "k")
	_, _ = a.Get(ctx, "missing")
	_, _ = a.Get(ctx, "")
	_, _ = b.CompareAndSwap(ctx, "k", 5, []byte("v"), backends.WriteOptions{})
	_, _ = b.PutMany(ctx, []backends.Item{{Key: "x", Value: nil}, {Key: "y", Value: nil}}, backends.WriteOptions{})

	got := map[string]float64{}
	series := 0
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			switch mf.GetName() {
			case "statenode_backend_errors_total":
				got[labels["backend"]+"/"+labels["op"]+"/"+labels["kind"]] = m.GetCounter().GetValue()
			case "statenode_backend_operation_duration_seconds":
				series++
			}
		}
	}
	want := map[string]float64{"a/get/invalid": 1, "a/get/not_found": 1, "b/cas/version_mismatch": 1}
	if len(got) != len(want) {
		t.Fatalf("errors_total = %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("errors_total = %v, want %v", got, want)
		}
	}
	if series != 4 {
		t.Fatalf("%d latency series, want 4 (a/put a/get b/cas b/put_many)", series)
	}
}
