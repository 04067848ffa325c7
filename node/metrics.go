package node

import (
	"errors"
	"time"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"
)

var nowFunc = time.Now

// metrics are the node's Prometheus collectors, registered on the
// registry passed in Config (never globally).
type metrics struct {
	reg        prometheus.Registerer
	collectors []prometheus.Collector

	commit     prometheus.Histogram
	batchSize  prometheus.Histogram
	readIndex  prometheus.Histogram
	readBatch  prometheus.Histogram
	writes     *prometheus.HistogramVec
	reads      *prometheus.HistogramVec
	writeFails *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer, n *Node) *metrics {
	m := &metrics{reg: reg}
	latency := []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}
	sizes := []float64{1, 2, 4, 8, 16, 32, 64, 128, 256, 512}
	m.commit = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "statenode_raft_commit_duration_seconds", Help: "Time from handing a log entry to Raft until it is applied (leader).", Buckets: latency})
	m.batchSize = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "statenode_proposal_batch_size", Help: "Write commands packed into one Raft log entry.", Buckets: sizes})
	m.readIndex = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "statenode_read_index_duration_seconds", Help: "Time to confirm a read index with a quorum.", Buckets: latency})
	m.readBatch = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "statenode_read_index_batch_size", Help: "Linearizable reads sharing one read-index confirmation.", Buckets: sizes})
	m.writes = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "statenode_write_duration_seconds", Help: "Latency of writes through the node API (including forwarding).", Buckets: latency}, []string{"result"})
	m.reads = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "statenode_read_duration_seconds", Help: "Latency of reads through the node API.", Buckets: latency}, []string{"consistency", "result"})
	m.writeFails = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "statenode_write_errors_total", Help: "Failed writes by class."}, []string{"class"})
	gauge := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f)
	}
	m.collectors = []prometheus.Collector{
		m.commit, m.batchSize, m.readIndex, m.readBatch, m.writes, m.reads, m.writeFails,
		gauge("statenode_raft_state", "Raft state: 0 follower, 1 candidate, 2 leader, 3 shutdown.", func() float64 {
			return float64(n.raft.State())
		}),
		gauge("statenode_raft_is_leader", "1 if this node is the leader.", func() float64 {
			if n.raft.State() == raft.Leader {
				return 1
			}
			return 0
		}),
		gauge("statenode_raft_term", "Current Raft term.", func() float64 { return float64(n.raft.CurrentTerm()) }),
		gauge("statenode_raft_commit_index", "Raft commit index.", func() float64 { return float64(n.raft.CommitIndex()) }),
		gauge("statenode_raft_applied_index", "Last index applied to the state machine.", func() float64 { return float64(n.fsm.AppliedIndex()) }),
		gauge("statenode_raft_last_index", "Last Raft log index.", func() float64 { return float64(n.raft.LastIndex()) }),
		gauge("statenode_kv_revision", "Current store revision.", func() float64 { return float64(n.fsm.Revision()) }),
		gauge("statenode_kv_compact_revision", "Oldest compacted revision.", func() float64 { return float64(n.fsm.CompactRevision()) }),
	}
	for i, c := range m.collectors {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) {
				m.collectors[i] = nil
				continue
			}
		}
	}
	return m
}

func (m *metrics) unregister() {
	for _, c := range m.collectors {
		if c != nil {
			m.reg.Unregister(c)
		}
	}
}

func (m *metrics) observeCommit(d time.Duration, n int) {
	m.commit.Observe(d.Seconds())
	m.batchSize.Observe(float64(n))
}

func (m *metrics) observeReadIndex(d time.Duration, n int) {
	m.readIndex.Observe(d.Seconds())
	m.readBatch.Observe(float64(n))
}

func (m *metrics) observeWrite(start time.Time, err error) {
	if m == nil {
		return
	}
	m.writes.WithLabelValues(resultLabel(err)).Observe(time.Since(start).Seconds())
	if err != nil {
		m.writeFails.WithLabelValues(resultLabel(err)).Inc()
	}
}

func (m *metrics) observeRead(start time.Time, c Consistency, err error) {
	if m == nil {
		return
	}
	cl := "linearizable"
	if c == Stale {
		cl = "stale"
	}
	m.reads.WithLabelValues(cl, resultLabel(err)).Observe(time.Since(start).Seconds())
}

func resultLabel(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, ErrNoLeader), errors.Is(err, ErrNotLeader):
		return "no_leader"
	case errors.Is(err, ErrTimeout):
		return "timeout"
	case errors.Is(err, ErrStopped):
		return "stopped"
	default:
		return "error"
	}
}
