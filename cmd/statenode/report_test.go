package main

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestNearestRank(t *testing.T) {
	lats := []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	for _, tc := range []struct{ p, want float64 }{
		{10, 1}, {25, 3}, {50, 5}, {75, 8}, {90, 9}, {95, 10}, {99, 10}, {99.9, 10},
	} {
		require.Equal(t, tc.want, nearestRank(lats, tc.p), "p%v", tc.p)
	}
	require.Equal(t, 7.0, nearestRank([]float64{7}, 50))
}

func TestHistogram(t *testing.T) {
	lats := []float64{1, 1, 2, 5, 10, 11}
	h := histogram(lats, 1, 11)
	require.Len(t, h, histogramBuckets)
	require.Equal(t, []int{3, 0, 0, 1, 0, 0, 0, 0, 1, 1}, counts(h))
	require.Equal(t, 2.0, h[0].UpTo)
	require.Equal(t, 11.0, h[len(h)-1].UpTo)

	// All requests equally fast: everything lands in the first bucket.
	h = histogram([]float64{0.5, 0.5}, 0.5, 0.5)
	require.Equal(t, []int{2, 0, 0, 0, 0, 0, 0, 0, 0, 0}, counts(h))
}

func counts(h []bucket) []int {
	var c []int
	for _, b := range h {
		c = append(c, b.Count)
	}
	return c
}

func TestReportText(t *testing.T) {
	r := report{
		Elapsed: 2 * time.Second,
		Lats:    []float64{0.004, 0.001, 0.002, 0.003},
		Ops:     []opStats{{Op: "put", OK: 3}, {Op: "get", OK: 1, Misses: 1, Errors: 2}},
		Errors:  map[string]int{"no leader": 2},
	}
	s := r.summarize()
	require.Equal(t, 2.0, s.RPS)
	require.Equal(t, 0.001, s.Fastest)
	require.Equal(t, 0.004, s.Slowest)
	require.InDelta(t, 0.0025, s.Average, 1e-12)

	var b strings.Builder
	require.NoError(t, s.writeText(&b))
	out := b.String()
	for _, want := range []string{
		"\nSummary:\n  Total:\t2.0000 secs.\n  Slowest:\t0.0040 secs.\n  Fastest:\t0.0010 secs.\n  Average:\t0.0025 secs.\n",
		"  Requests/sec:\t2.0000\n",
		"\nResponse time histogram:\n  0.0013 [1]\t|∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎\n",
		"\nLatency distribution:\n  10% in 0.0010 secs.\n  25% in 0.0010 secs.\n  50% in 0.0020 secs.\n",
		"  99.9% in 0.0040 secs.\n",
		"\nOperations:\n  put:\t3 ok, 0 errors.\n  get:\t1 ok (1 not found), 2 errors.\n",
		"\nError distribution:\n  [2]\tno leader\n",
	} {
		require.Contains(t, out, want)
	}

	// No successful request: still a parseable Requests/sec line.
	b.Reset()
	empty := report{Elapsed: time.Second, Errors: map[string]int{"boom": 1}}
	require.NoError(t, empty.summarize().writeText(&b))
	require.Contains(t, b.String(), "  Requests/sec:\t0.0000\n")
	require.NotContains(t, b.String(), "Latency distribution")
}

func TestParseMix(t *testing.T) {
	w, sum, err := parseMix("put=50,get=40,cas=5,txn=5")
	require.NoError(t, err)
	require.Equal(t, []int{50, 40, 5, 5, 0}, w)
	require.Equal(t, 100, sum)
	w, sum, err = parseMix(" get = 1 , del=2,")
	require.NoError(t, err)
	require.Equal(t, []int{0, 1, 0, 0, 2}, w)
	require.Equal(t, 3, sum)
	for _, bad := range []string{"", "put", "put=-1", "put=x", "scan=1", "put=0"} {
		_, _, err := parseMix(bad)
		require.ErrorIs(t, err, errUsage, bad)
	}
}

func TestAppendKey(t *testing.T) {
	b := &benchCmd{KeySize: 8, KeyPrefix: "p/"}
	require.Equal(t, "p/00000042", string(b.appendKey(nil, 42)))
	b = &benchCmd{KeySize: 2}
	require.Equal(t, "123", string(b.appendKey(nil, 123)))
	require.ErrorIs(t, (&benchCmd{Clients: 1, Conns: 1, Total: 1, KeySpace: 1000, KeySize: 2}).validate(), errUsage)
}
