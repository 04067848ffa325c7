package gossip

import "sync/atomic"

type stats struct {
	localUpdates       atomic.Uint64
	deltasSent         atomic.Uint64
	deltaBytesSent     atomic.Uint64
	deltasReceived     atomic.Uint64
	deltaBytesReceived atomic.Uint64
	statesSent         atomic.Uint64
	stateBytesSent     atomic.Uint64
	statesReceived     atomic.Uint64
	dropped            atomic.Uint64
}

// Stats are this node's cumulative CRDT traffic counters (the same
// numbers the metrics export), for tests and measurements.
type Stats struct {
	// LocalUpdates counts acknowledged local updates.
	LocalUpdates uint64
	// DeltasSent and DeltaBytesSent count delta transmissions (a delta is
	// sent several times: memberlist retransmits each broadcast
	// RetransmitMult×log10(N+1) times, and receivers forward it once).
	DeltasSent, DeltaBytesSent uint64
	// DeltasReceived and DeltaBytesReceived count delta messages received.
	DeltasReceived, DeltaBytesReceived uint64
	// StatesSent and StateBytesSent count full-state push/pull messages.
	StatesSent, StateBytesSent uint64
	// StatesReceived counts full states received.
	StatesReceived uint64
	// Dropped counts malformed or oversized messages dropped.
	Dropped uint64
}

// Stats returns a snapshot of the traffic counters.
func (g *Gossip) Stats() Stats {
	s := &g.stats
	return Stats{
		LocalUpdates:       s.localUpdates.Load(),
		DeltasSent:         s.deltasSent.Load(),
		DeltaBytesSent:     s.deltaBytesSent.Load(),
		DeltasReceived:     s.deltasReceived.Load(),
		DeltaBytesReceived: s.deltaBytesReceived.Load(),
		StatesSent:         s.statesSent.Load(),
		StateBytesSent:     s.stateBytesSent.Load(),
		StatesReceived:     s.statesReceived.Load(),
		Dropped:            s.dropped.Load(),
	}
}
