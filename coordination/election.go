package coordination

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/statenode/statenode/api"
)

// ElectionBackend is the optional ability of a Backend to run named
// elections (*node.Node and *client.Client have it). Campaign blocks
// (bounded by ctx); ObserveElection's channel closes when ctx ends.
type ElectionBackend interface {
	Campaign(ctx context.Context, name string, req api.CampaignRequest) (*api.Election, error)
	Resign(ctx context.Context, name string, req api.ElectionRequest) error
	Proclaim(ctx context.Context, name string, req api.ElectionRequest) error
	ElectionLeader(ctx context.Context, name string) (*api.Election, error)
	ObserveElection(ctx context.Context, name string) (<-chan api.Election, error)
}

// ErrNoElections: the session's backend cannot run elections.
var ErrNoElections = errors.New("coordination: backend does not support elections")

// Election is a named election in which a session campaigns. At most one
// session leads a name at any point of the log; its term (the log
// position at which it was elected) is a fencing token like a lock's.
type Election struct {
	s    *Session
	eb   ElectionBackend
	name string

	mu   sync.Mutex
	term uint64
}

// NewElection returns election name for session s.
func NewElection(s *Session, name string) (*Election, error) {
	eb, ok := s.b.(ElectionBackend)
	if !ok {
		return nil, ErrNoElections
	}
	return &Election{s: s, eb: eb, name: name}, nil
}

// Campaign blocks until the session leads (candidates lead in FIFO order)
// and returns the term, or fails when ctx ends (ErrWaitTimeout; the
// candidacy is withdrawn) or the session ends (ErrSessionExpired: unlike
// etcd's Campaign, it never reports a leadership its session has lost).
func (e *Election) Campaign(ctx context.Context, value string) (uint64, error) {
	if err := e.s.alive(); err != nil {
		return 0, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(e.s.ctx, cancel)
	defer stop()
	res, err := e.eb.Campaign(ctx, e.name, api.CampaignRequest{Session: e.s.id, RequestID: e.s.nextRequestID(), Value: value})
	if err != nil {
		if serr := e.s.alive(); serr != nil {
			return 0, serr
		}
		if ctx.Err() != nil && !errors.Is(err, ErrWaitTimeout) {
			return 0, fmt.Errorf("%w: campaign %q: %w", ErrWaitTimeout, e.name, err)
		}
		return 0, fmt.Errorf("coordination: campaign %q: %w", e.name, translate(err))
	}
	if err := e.s.alive(); err != nil {
		return 0, err
	}
	e.mu.Lock()
	e.term = res.Term
	e.mu.Unlock()
	return res.Term, nil
}

// Term is the term of the session's leadership (0 if it does not lead).
func (e *Election) Term() uint64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.term
}

// Proclaim changes the leader's value without a new election.
func (e *Election) Proclaim(ctx context.Context, value string) error {
	err := e.eb.Proclaim(ctx, e.name, api.ElectionRequest{Session: e.s.id, RequestID: e.s.nextRequestID(), Term: e.Term(), Value: value})
	if err != nil {
		return fmt.Errorf("coordination: proclaim %q: %w", e.name, translate(err))
	}
	return nil
}

// Resign gives up leadership (the next candidate leads, in the same
// command) or a pending candidacy.
func (e *Election) Resign(ctx context.Context) error {
	err := e.eb.Resign(ctx, e.name, api.ElectionRequest{Session: e.s.id, RequestID: e.s.nextRequestID(), Term: e.Term()})
	if err != nil {
		return fmt.Errorf("coordination: resign %q: %w", e.name, translate(err))
	}
	e.mu.Lock()
	e.term = 0
	e.mu.Unlock()
	return nil
}

// Leader describes the election (Leader 0: nobody leads).
func (e *Election) Leader(ctx context.Context) (*api.Election, error) {
	res, err := e.eb.ElectionLeader(ctx, e.name)
	return res, translate(err)
}

// Observe streams the election's state, current first, then every change;
// terms never go backwards. The channel closes when ctx ends.
func (e *Election) Observe(ctx context.Context) (<-chan api.Election, error) {
	ch, err := e.eb.ObserveElection(ctx, e.name)
	return ch, translate(err)
}
