package coordination

import (
	"context"
	"fmt"

	"github.com/statenode/statenode/api"
)

// BarrierBackend is the optional ability of a Backend to run cyclic and
// double barriers (*node.Node and *client.Client have it). Barrier blocks
// (bounded by ctx) for the await, enter and leave actions.
type BarrierBackend interface {
	Barrier(ctx context.Context, name string, req api.BarrierRequest) (*api.BarrierResponse, error)
	BarrierInfo(ctx context.Context, name string) (*api.BarrierInfo, error)
}

// Generation is what a party learns when a cyclic barrier trips.
type Generation struct {
	// Generation is the log position of the command that completed the
	// generation: strictly increasing across the barrier's generations.
	Generation uint64
	// Arrival is the party's arrival order in the generation: 0 for the
	// first, parties-1 for the one whose arrival tripped it.
	Arrival int
}

// Barrier is a named cyclic barrier of a fixed number of parties, owned by
// the state machine: Await blocks until that many sessions arrived, then
// the generation advances and they all proceed. If a party's session ends
// while it waits, the barrier breaks: every waiter fails with ErrBroken
// naming that session (as Java's BrokenBarrierException), and so does
// every later Await until Reset.
type Barrier struct {
	s       *Session
	bb      BarrierBackend
	name    string
	parties int64
}

func barrierBackend(s *Session, name string, parties int) (BarrierBackend, error) {
	bb, ok := s.b.(BarrierBackend)
	if !ok {
		return nil, fmt.Errorf("%w: barriers", ErrUnsupported)
	}
	if parties <= 0 {
		return nil, fmt.Errorf("coordination: barrier %q needs at least one party, not %d", name, parties)
	}
	return bb, nil
}

// NewBarrier returns cyclic barrier name of the given number of parties
// for session s. Every party must give the same number (ErrMismatch).
func NewBarrier(s *Session, name string, parties int) (*Barrier, error) {
	bb, err := barrierBackend(s, name, parties)
	if err != nil {
		return nil, err
	}
	return &Barrier{s: s, bb: bb, name: name, parties: int64(parties)}, nil
}

// Await registers the session in the current generation and blocks until
// the generation's last party arrives, the barrier breaks (ErrBroken) or
// ctx ends (ErrWaitTimeout: the arrival is withdrawn, the barrier is not
// broken; a generation that already tripped stays tripped).
func (b *Barrier) Await(ctx context.Context) (Generation, error) {
	return awaitBarrier(ctx, b.s, b.bb, b.name, api.BarrierRequest{Action: api.BarrierAwait, Parties: b.parties})
}

func awaitBarrier(ctx context.Context, s *Session, bb BarrierBackend, name string, req api.BarrierRequest) (Generation, error) {
	req.Session, req.RequestID = s.id, s.nextRequestID()
	var res *api.BarrierResponse
	err := s.block(ctx, fmt.Sprintf("barrier %q: %s", name, req.Action), func(ctx context.Context) (err error) {
		res, err = bb.Barrier(ctx, name, req)
		return err
	})
	if err != nil {
		return Generation{}, err
	}
	return Generation{Generation: res.Generation, Arrival: int(res.Arrival)}, nil
}

// Reset repairs a broken barrier so that it can be used again. Parties
// waiting at a barrier that is not broken fail with ErrBroken naming this
// session.
func (b *Barrier) Reset(ctx context.Context) error { return resetBarrier(ctx, b.s, b.bb, b.name) }

func resetBarrier(ctx context.Context, s *Session, bb BarrierBackend, name string) error {
	_, err := bb.Barrier(ctx, name, api.BarrierRequest{Session: s.id, RequestID: s.nextRequestID(), Action: api.BarrierReset})
	if err != nil {
		return fmt.Errorf("coordination: reset barrier %q: %w", name, translate(err))
	}
	return nil
}

// Info describes the barrier: parties, who waits, whether it is broken.
func (b *Barrier) Info(ctx context.Context) (*api.BarrierInfo, error) {
	info, err := b.bb.BarrierInfo(ctx, b.name)
	return info, translate(err)
}

// DoubleBarrier is a named double barrier (the Curator and etcd recipe):
// Enter blocks until the given number of parties entered; Leave blocks
// until every party that entered has left. If a party that has not left
// dies, the barrier breaks (ErrBroken naming its session) until Reset.
type DoubleBarrier struct {
	s       *Session
	bb      BarrierBackend
	name    string
	parties int64
}

// NewDoubleBarrier returns double barrier name of the given number of
// parties for session s. Every party must give the same number.
func NewDoubleBarrier(s *Session, name string, parties int) (*DoubleBarrier, error) {
	bb, err := barrierBackend(s, name, parties)
	if err != nil {
		return nil, err
	}
	return &DoubleBarrier{s: s, bb: bb, name: name, parties: int64(parties)}, nil
}

// Enter blocks until all parties entered, the barrier breaks or ctx ends
// (ErrWaitTimeout: the entry is withdrawn). While the parties of a round
// are leaving, Enter fails.
func (d *DoubleBarrier) Enter(ctx context.Context) error {
	_, err := awaitBarrier(ctx, d.s, d.bb, d.name, api.BarrierRequest{Action: api.BarrierEnter, Parties: d.parties})
	return err
}

// Leave blocks until every party that entered has left (or, before all
// parties entered, withdraws the entry at once). When ctx ends the
// session has still left (ErrWaitTimeout).
func (d *DoubleBarrier) Leave(ctx context.Context) error {
	_, err := awaitBarrier(ctx, d.s, d.bb, d.name, api.BarrierRequest{Action: api.BarrierLeave})
	return err
}

// Reset repairs a broken double barrier.
func (d *DoubleBarrier) Reset(ctx context.Context) error { return resetBarrier(ctx, d.s, d.bb, d.name) }

// Info describes the double barrier.
func (d *DoubleBarrier) Info(ctx context.Context) (*api.BarrierInfo, error) {
	info, err := d.bb.BarrierInfo(ctx, d.name)
	return info, translate(err)
}
