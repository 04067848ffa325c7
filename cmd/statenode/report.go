package main

import (
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
	"time"
)

// benchPercentiles are the latency percentiles reported, as etcd's
// benchmark does.
var benchPercentiles = []float64{10, 25, 50, 75, 90, 95, 99, 99.9}

// histogramBuckets is the number of equal-width buckets between the fastest
// and the slowest request.
const histogramBuckets = 10

// report is the outcome of a benchmark run.
type report struct {
	Elapsed time.Duration  // wall time of the measured phase
	Lats    []float64      // seconds, of every request that did not fail; sorted by summarize
	Ops     []opStats      // per operation type, in a stable order
	Errors  map[string]int // error message -> count
}

// opStats counts the requests of one operation type.
type opStats struct {
	Op     string `json:"op"`
	OK     int64  `json:"ok"`     // answered (includes Misses)
	Misses int64  `json:"misses"` // get: not found; cas: compare failed; txn: failure branch; del: nothing deleted
	Errors int64  `json:"errors"` // failed requests (not in the latencies)
}

// summary holds the statistics derived from a report. Durations are in
// seconds.
type summary struct {
	Total       float64        `json:"total_secs"`
	Requests    int            `json:"requests"` // successful requests (len(Lats))
	Slowest     float64        `json:"slowest_secs"`
	Fastest     float64        `json:"fastest_secs"`
	Average     float64        `json:"average_secs"`
	Stddev      float64        `json:"stddev_secs"`
	RPS         float64        `json:"requests_per_sec"`
	Percentiles []percentile   `json:"latency_distribution"`
	Histogram   []bucket       `json:"histogram"`
	Ops         []opStats      `json:"ops"`
	Errors      map[string]int `json:"errors"`
	Config      map[string]any `json:"config,omitempty"`
}

type percentile struct {
	P    float64 `json:"percentile"`
	Secs float64 `json:"secs"`
}

type bucket struct {
	UpTo  float64 `json:"le_secs"` // inclusive upper bound
	Count int     `json:"count"`
}

// summarize sorts r.Lats and computes the statistics.
func (r *report) summarize() summary {
	sort.Float64s(r.Lats)
	s := summary{Total: r.Elapsed.Seconds(), Requests: len(r.Lats), Ops: r.Ops, Errors: r.Errors}
	if s.Errors == nil {
		s.Errors = map[string]int{}
	}
	n := len(r.Lats)
	if n == 0 {
		return s
	}
	if s.Total > 0 {
		s.RPS = float64(n) / s.Total
	}
	s.Fastest, s.Slowest = r.Lats[0], r.Lats[n-1]
	var sum float64
	for _, l := range r.Lats {
		sum += l
	}
	s.Average = sum / float64(n)
	var sq float64
	for _, l := range r.Lats {
		sq += (l - s.Average) * (l - s.Average)
	}
	s.Stddev = math.Sqrt(sq / float64(n))
	for _, p := range benchPercentiles {
		s.Percentiles = append(s.Percentiles, percentile{P: p, Secs: nearestRank(r.Lats, p)})
	}
	s.Histogram = histogram(r.Lats, s.Fastest, s.Slowest)
	return s
}

// nearestRank returns the p-th percentile of sorted (non-empty) by the
// nearest-rank method: the smallest value with at least p% of the values at
// or below it.
func nearestRank(sorted []float64, p float64) float64 {
	idx := int(math.Ceil(p/100*float64(len(sorted)))) - 1
	idx = max(0, min(idx, len(sorted)-1))
	return sorted[idx]
}

// histogram counts sorted latencies into histogramBuckets equal-width
// buckets from fastest to slowest; the last bucket ends at slowest.
func histogram(sorted []float64, fastest, slowest float64) []bucket {
	width := (slowest - fastest) / histogramBuckets
	out := make([]bucket, histogramBuckets)
	prev := 0
	for i := range out {
		up := fastest + width*float64(i+1)
		if i == histogramBuckets-1 {
			up = slowest
		}
		// Index of the first latency above up.
		end := sort.Search(len(sorted), func(j int) bool { return sorted[j] > up })
		out[i] = bucket{UpTo: up, Count: end - prev}
		prev = end
	}
	return out
}

// writeText prints s in the layout of etcd's benchmark report (pkg/report),
// so that the two compare line by line, followed by per-operation counts
// and the error distribution.
func (s summary) writeText(w io.Writer) error {
	var b strings.Builder
	b.WriteString("\nSummary:\n")
	fmt.Fprintf(&b, "  Total:\t%4.4f secs.\n", s.Total)
	fmt.Fprintf(&b, "  Slowest:\t%4.4f secs.\n", s.Slowest)
	fmt.Fprintf(&b, "  Fastest:\t%4.4f secs.\n", s.Fastest)
	fmt.Fprintf(&b, "  Average:\t%4.4f secs.\n", s.Average)
	fmt.Fprintf(&b, "  Stddev:\t%4.4f secs.\n", s.Stddev)
	fmt.Fprintf(&b, "  Requests/sec:\t%4.4f\n", s.RPS)

	if len(s.Histogram) > 0 {
		b.WriteString("\nResponse time histogram:\n")
		most := 0
		for _, h := range s.Histogram {
			most = max(most, h.Count)
		}
		for _, h := range s.Histogram {
			bar := 0
			if most > 0 {
				bar = h.Count * 40 / most
			}
			fmt.Fprintf(&b, "  %4.4f [%d]\t|%s\n", h.UpTo, h.Count, strings.Repeat("∎", bar))
		}
	}
	if len(s.Percentiles) > 0 {
		b.WriteString("\nLatency distribution:\n")
		for _, p := range s.Percentiles {
			fmt.Fprintf(&b, "  %v%% in %4.4f secs.\n", p.P, p.Secs)
		}
	}
	if len(s.Ops) > 0 {
		b.WriteString("\nOperations:\n")
		for _, o := range s.Ops {
			fmt.Fprintf(&b, "  %s:\t%d ok", o.Op, o.OK)
			if label := missLabel(o.Op); label != "" {
				fmt.Fprintf(&b, " (%d %s)", o.Misses, label)
			}
			fmt.Fprintf(&b, ", %d errors.\n", o.Errors)
		}
	}
	if len(s.Errors) > 0 {
		b.WriteString("\nError distribution:\n")
		type kv struct {
			msg string
			n   int
		}
		var errs []kv
		for m, n := range s.Errors {
			errs = append(errs, kv{m, n})
		}
		sort.Slice(errs, func(i, j int) bool {
			if errs[i].n != errs[j].n {
				return errs[i].n > errs[j].n
			}
			return errs[i].msg < errs[j].msg
		})
		for _, e := range errs {
			fmt.Fprintf(&b, "  [%d]\t%s\n", e.n, e.msg)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// missLabel names what a miss is for op ("" if it has none).
func missLabel(op string) string {
	switch op {
	case "get":
		return "not found"
	case "cas":
		return "compare failed"
	case "txn":
		return "failure branch"
	case "del":
		return "nothing deleted"
	}
	return ""
}
