package gossip

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the package's Prometheus collectors, registered on
// Config.Registry if set.
type metrics struct {
	reg           prometheus.Registerer
	members       *prometheus.GaugeVec
	sent          *prometheus.CounterVec
	sentBytes     *prometheus.CounterVec
	received      *prometheus.CounterVec
	receivedBytes *prometheus.CounterVec
	dropped       *prometheus.CounterVec
	updates       *prometheus.CounterVec
	lag           prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		reg: reg,
		members: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "statenode_gossip_members",
			Help: "Gossip members known to this node, by state (alive, suspect, dead, left).",
		}, []string{"state"}),
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "statenode_gossip_messages_sent_total",
			Help: "CRDT gossip messages sent: kind=delta (each broadcast transmission) or state (push/pull).",
		}, []string{"kind"}),
		sentBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "statenode_gossip_bytes_sent_total",
			Help: "Bytes of CRDT gossip messages sent, by kind.",
		}, []string{"kind"}),
		received: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "statenode_gossip_messages_received_total",
			Help: "CRDT gossip messages received, by kind.",
		}, []string{"kind"}),
		receivedBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "statenode_gossip_bytes_received_total",
			Help: "Bytes of CRDT gossip messages received, by kind.",
		}, []string{"kind"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "statenode_gossip_messages_dropped_total",
			Help: "Messages dropped: malformed, too_large, large_queue_full, watch_slow_consumer.",
		}, []string{"reason"}),
		updates: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "statenode_crdt_local_updates_total",
			Help: "Acknowledged local CRDT updates, by CRDT kind.",
		}, []string{"kind"}),
		lag: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "statenode_crdt_delta_propagation_seconds",
			Help:    "Estimated convergence lag: time from a delta's origin to its first merge here (origin clock, may be skewed).",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
		}),
	}
	if reg != nil {
		reg.MustRegister(m.members, m.sent, m.sentBytes, m.received, m.receivedBytes, m.dropped, m.updates, m.lag)
	}
	return m
}

// queueDepth registers a gauge reading the broadcast queue length.
func (m *metrics) queueDepth(f func() int) {
	if m.reg == nil {
		return
	}
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "statenode_gossip_broadcast_queue",
		Help: "CRDT deltas waiting in the broadcast queue.",
	}, func() float64 { return float64(f()) }))
}
