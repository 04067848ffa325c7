package coordination

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/statenode/statenode/api"
)

// SemaphoreBackend is the optional ability of a Backend to run counting
// semaphores (*node.Node and *client.Client have it). AcquireSemaphore
// blocks (bounded by ctx).
type SemaphoreBackend interface {
	AcquireSemaphore(ctx context.Context, name string, req api.SemaphoreRequest) (*api.SemaphoreResponse, error)
	ReleaseSemaphore(ctx context.Context, name string, req api.SemaphoreReleaseRequest) error
	SemaphoreInfo(ctx context.Context, name string) (*api.SemaphoreInfo, error)
}

// Semaphore is a named counting semaphore of a fixed number of permits,
// owned by the state machine. Permits belong to the session: they are
// returned, in one committed command, when it ends. Every user of a name
// must agree on the number of permits (ErrMismatch otherwise).
type Semaphore struct {
	s       *Session
	sb      SemaphoreBackend
	name    string
	permits int64

	mu    sync.Mutex
	held  int64
	token uint64 // of the newest grant while held > 0
}

// NewSemaphore returns semaphore name of the given number of permits for
// session s. It does not contact the cluster: the first acquire creates
// the semaphore.
func NewSemaphore(s *Session, name string, permits int) (*Semaphore, error) {
	sb, ok := s.b.(SemaphoreBackend)
	if !ok {
		return nil, fmt.Errorf("%w: semaphores", ErrUnsupported)
	}
	if permits <= 0 {
		return nil, fmt.Errorf("coordination: semaphore %q needs at least one permit, not %d", name, permits)
	}
	return &Semaphore{s: s, sb: sb, name: name, permits: int64(permits)}, nil
}

// Acquire takes n permits, blocking in strict FIFO order (a large request
// at the head of the queue blocks smaller ones behind it) until they are
// granted or ctx ends (ErrWaitTimeout; the wait is withdrawn). A wait that
// would close a wait-for cycle fails at once with ErrDeadlock.
func (m *Semaphore) Acquire(ctx context.Context, n int) error { return m.acquire(ctx, n, false) }

// TryAcquire takes n permits if they are free and nobody waits ahead, or
// fails at once with ErrNoPermits.
func (m *Semaphore) TryAcquire(ctx context.Context, n int) error { return m.acquire(ctx, n, true) }

func (m *Semaphore) acquire(ctx context.Context, n int, try bool) error {
	req := api.SemaphoreRequest{Session: m.s.id, RequestID: m.s.nextRequestID(), Permits: m.permits, Count: int64(n), Try: try}
	var res *api.SemaphoreResponse
	err := m.s.block(ctx, fmt.Sprintf("semaphore %q", m.name), func(ctx context.Context) (err error) {
		res, err = m.sb.AcquireSemaphore(ctx, m.name, req)
		return err
	})
	if err != nil {
		return err
	}
	m.mu.Lock()
	m.held += res.Count
	m.token = max(m.token, res.Token)
	m.mu.Unlock()
	return nil
}

// Release returns n permits (0: every permit the session holds) and grants
// waiters in the same command. Returning more than the session holds
// fails with ErrNotOwner.
func (m *Semaphore) Release(ctx context.Context, n int) error {
	err := m.sb.ReleaseSemaphore(ctx, m.name, api.SemaphoreReleaseRequest{Session: m.s.id, RequestID: m.s.nextRequestID(), Count: int64(n)})
	if err != nil {
		return fmt.Errorf("coordination: release semaphore %q: %w", m.name, translate(err))
	}
	m.mu.Lock()
	if n == 0 || int64(n) >= m.held {
		m.held, m.token = 0, 0
	} else {
		m.held -= int64(n)
	}
	m.mu.Unlock()
	return nil
}

// Held is how many permits this Semaphore acquired and has not released.
func (m *Semaphore) Held() int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.held
}

// Token is the grant token of the newest Acquire whose permits this
// Semaphore still holds, 0 if it holds none. It is the log position of the
// command that granted the permits: the acquire itself or, for a waiter,
// the command that let it through (a release, a withdrawn wait ahead of
// it, a session end). Tokens share the position space of lock fencing
// tokens and election terms and never decrease across grants of the
// semaphore; the waiters granted by one command share one. Use it to order
// or tag a holder's work; it does not fence writes (PutFenced takes lock
// tokens only).
func (m *Semaphore) Token() uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.token
}

// Info describes the semaphore: size, holders, waiters.
func (m *Semaphore) Info(ctx context.Context) (*api.SemaphoreInfo, error) {
	info, err := m.sb.SemaphoreInfo(ctx, m.name)
	return info, translate(err)
}

// Name is the semaphore's name.
func (m *Semaphore) Name() string { return m.name }

// block runs a blocking call of a primitive for the session: it fails at
// once if the session has ended, ends the wait when the session ends
// meanwhile, and re-checks the session before it reports success.
func (s *Session) block(ctx context.Context, what string, call func(ctx context.Context) error) error {
	if err := s.alive(); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(s.ctx, cancel)
	defer stop()
	if err := call(ctx); err != nil {
		if serr := s.alive(); serr != nil {
			return serr
		}
		if ctx.Err() != nil && !errors.Is(translate(err), ErrWaitTimeout) {
			// Canceled mid-request: the server withdraws the wait when
			// the request goes away.
			return fmt.Errorf("%w: %s: %w", ErrWaitTimeout, what, err)
		}
		return fmt.Errorf("coordination: %s: %w", what, translate(err))
	}
	return s.alive()
}
