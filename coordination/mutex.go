package coordination

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/statenode/statenode/api"
)

// Mutex is a fenced, FIFO, session-owned lock. It is safe for concurrent
// use, but ownership belongs to the session: two Mutexes of one session on
// the same name share the hold (see WithReentrancy).
type Mutex struct {
	s          *Session
	name       string
	reentrancy int64

	mu    sync.Mutex
	token uint64
	held  int64
}

// MutexOption configures NewMutex.
type MutexOption func(*Mutex)

// WithReentrancy lets the session hold the lock up to limit times (each
// Lock needs an Unlock). Default 1: a second Lock fails with
// ErrReentrancyLimit.
func WithReentrancy(limit int) MutexOption {
	return func(m *Mutex) { m.reentrancy = int64(limit) }
}

// NewMutex returns the lock name owned by session s. It does not contact
// the cluster.
func NewMutex(s *Session, name string, opts ...MutexOption) *Mutex {
	m := &Mutex{s: s, name: name, reentrancy: 1}
	for _, o := range opts {
		o(m)
	}
	return m
}

// Lock blocks until the lock is granted to the session (strict FIFO among
// waiters) or ctx ends (ErrWaitTimeout; the wait is withdrawn). A wait
// that would close a wait-for cycle fails at once with ErrDeadlock.
func (m *Mutex) Lock(ctx context.Context) error { return m.lock(ctx, false) }

// TryLock takes the lock if it is free, or fails at once with ErrLocked.
func (m *Mutex) TryLock(ctx context.Context) error { return m.lock(ctx, true) }

func (m *Mutex) lock(ctx context.Context, try bool) error {
	if err := m.s.alive(); err != nil {
		return err
	}
	req := api.LockRequest{Session: m.s.id, RequestID: m.s.nextRequestID(), Try: try, Reentrancy: m.reentrancy}
	// End the wait if the session ends meanwhile.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(m.s.ctx, cancel)
	defer stop()
	res, err := m.s.b.Lock(ctx, m.name, req)
	if err != nil {
		if serr := m.s.alive(); serr != nil {
			return serr
		}
		if ctx.Err() != nil && !errors.Is(err, ErrWaitTimeout) {
			// Canceled mid-request: the server withdraws the wait when
			// the request goes away.
			return fmt.Errorf("%w: lock %q: %w", ErrWaitTimeout, m.name, err)
		}
		return fmt.Errorf("coordination: lock %q: %w", m.name, translate(err))
	}
	// The grant proves the session was alive when it applied; check that
	// it has not been lost since, before reporting success.
	if err := m.s.alive(); err != nil {
		return err
	}
	m.mu.Lock()
	m.token, m.held = res.Token, res.Count
	m.mu.Unlock()
	return nil
}

// Unlock releases one hold. Releasing a lock the session does not hold
// (or no longer holds: expired) fails with ErrNotOwner or
// ErrSessionExpired; a retried release is applied once.
func (m *Mutex) Unlock(ctx context.Context) error {
	m.mu.Lock()
	token := m.token
	m.mu.Unlock()
	err := m.s.b.Unlock(ctx, m.name, api.UnlockRequest{Session: m.s.id, RequestID: m.s.nextRequestID(), Token: token})
	if err != nil {
		return fmt.Errorf("coordination: unlock %q: %w", m.name, translate(err))
	}
	m.mu.Lock()
	if m.held--; m.held <= 0 {
		m.token, m.held = 0, 0
	}
	m.mu.Unlock()
	return nil
}

// Token is the fencing token of the current grant (0 if not held):
// strictly increasing across grants of the lock. Pass it with writes
// (Fence, PutFenced) so that a holder that lost the lock cannot write.
func (m *Mutex) Token() uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.token
}

// Fence is the fence of the current grant, for fenced writes.
func (m *Mutex) Fence() api.Fence { return api.Fence{Lock: m.name, Token: m.Token()} }

// PutFenced writes key=value only while this grant is the newest of the
// lock: a holder that paused past its TTL, and whose lock has since been
// granted to someone else, is refused with ErrFenced.
func (m *Mutex) PutFenced(ctx context.Context, key string, value []byte) (int64, error) {
	rev, err := m.s.b.PutFenced(ctx, key, value, m.Fence())
	if err != nil {
		return 0, fmt.Errorf("coordination: fenced put %q: %w", key, translate(err))
	}
	return rev, nil
}

// Info describes the lock: holder session, token, waiters.
func (m *Mutex) Info(ctx context.Context) (*api.LockInfo, error) {
	info, err := m.s.b.LockInfo(ctx, m.name)
	return info, translate(err)
}

// Name is the lock's name.
func (m *Mutex) Name() string { return m.name }
