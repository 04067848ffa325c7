package coordination

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/statenode/statenode/api"
)

// Backend is what the primitives need from statenode: an embedded
// *node.Node or a remote *client.Client both implement it. Its methods
// are called from the caller's goroutine and from the session's keepalive
// goroutine; they block (bounded by their context) while the cluster
// commits.
type Backend interface {
	CreateSession(ctx context.Context, req api.SessionRequest) (*api.Session, error)
	KeepAliveSessions(ctx context.Context, ids []uint64) (missing []uint64, err error)
	DestroySession(ctx context.Context, id uint64) error
	Lock(ctx context.Context, name string, req api.LockRequest) (*api.LockResponse, error)
	Unlock(ctx context.Context, name string, req api.UnlockRequest) error
	LockInfo(ctx context.Context, name string) (*api.LockInfo, error)
	PutFenced(ctx context.Context, key string, value []byte, fence api.Fence) (int64, error)
}

// sessionWaiter is an optional ability of a Backend: blocking until a
// session ends, so that Done closes at once instead of at the next
// keepalive. Called from the session's watch goroutine.
type sessionWaiter interface {
	WaitSession(ctx context.Context, id uint64) error
}

// DefaultTTL is the session TTL without WithTTL: long enough to ride out a
// leader election (sessions get a fresh TTL after one), short enough that a
// dead holder's locks move on within seconds.
const DefaultTTL = 10 * time.Second

type sessionOptions struct {
	ttl  time.Duration
	name string
	ctx  context.Context
}

// SessionOption configures NewSession.
type SessionOption func(*sessionOptions)

// WithTTL sets the session's time to live without keepalives (default
// DefaultTTL; at least 100ms). Keepalives are sent every TTL/3, in one
// request for every session of the same backend (the shortest TTL/3 of
// them sets the pace).
func WithTTL(ttl time.Duration) SessionOption { return func(o *sessionOptions) { o.ttl = ttl } }

// WithName labels the session in listings (statenode session ls).
func WithName(name string) SessionOption { return func(o *sessionOptions) { o.name = name } }

// WithContext bounds the creation of the session (default: 10s).
func WithContext(ctx context.Context) SessionOption { return func(o *sessionOptions) { o.ctx = ctx } }

// Session is a client's liveness in the cluster. Locks and candidacies
// belong to a session and are released, in one committed command, when it
// ends. It is kept alive in the background until Close, together with the
// other sessions of its backend (one keepalive request per tick for all of
// them); Done closes when it ends for any reason.
type Session struct {
	b   Backend
	id  uint64
	ttl time.Duration
	k   *keeper // renews the session with the others of its backend

	// lastOK is when the last successful keepalive covering the session
	// (first: its creation) was sent. Guarded by keepersMu.
	lastOK time.Time

	reqID   atomic.Uint64 // request IDs: unique within the session
	closing atomic.Bool   // Close has begun: the end is ErrClosed

	ctx    context.Context // ends when the session ends
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
	err    error // why it ended; set before done closes
	wg     sync.WaitGroup
}

// NewSession creates a session on b and starts keeping it alive.
func NewSession(b Backend, opts ...SessionOption) (*Session, error) {
	o := sessionOptions{ttl: DefaultTTL, ctx: context.Background()}
	for _, opt := range opts {
		opt(&o)
	}
	ctx, cancel := context.WithTimeout(o.ctx, 10*time.Second)
	defer cancel()
	sent := time.Now()
	created, err := b.CreateSession(ctx, api.SessionRequest{TTLMillis: o.ttl.Milliseconds(), Name: o.name})
	if err != nil {
		return nil, fmt.Errorf("coordination: create session: %w", translate(err))
	}
	s := &Session{b: b, id: created.ID, ttl: o.ttl, done: make(chan struct{}), lastOK: sent}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	joinKeeper(s)
	if w, ok := b.(sessionWaiter); ok {
		s.goFunc(func() {
			if err := w.WaitSession(s.ctx, s.id); err == nil {
				s.end(fmt.Errorf("%w: session %d ended", ErrSessionExpired, s.id))
			}
		})
	}
	return s, nil
}

func (s *Session) goFunc(f func()) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		f()
	}()
}

// ID is the session's ID (the log position of its creation).
func (s *Session) ID() uint64 { return s.id }

// TTL is the session's time to live.
func (s *Session) TTL() time.Duration { return s.ttl }

// Done is closed when the session ends: expired, destroyed (a keepalive
// or the backend's session watch finds it gone), lost (no keepalive
// succeeded for a TTL) or closed. Err says why.
func (s *Session) Done() <-chan struct{} { return s.done }

// Err is nil while the session lives, then why it ended (wrapping
// ErrSessionExpired or ErrClosed).
func (s *Session) Err() error {
	select {
	case <-s.done:
		return s.err
	default:
		return nil
	}
}

// alive returns the session's end error, or nil: every primitive calls it
// before it reports success.
func (s *Session) alive() error { return s.Err() }

func (s *Session) nextRequestID() uint64 { return s.reqID.Add(1) }

func (s *Session) end(err error) {
	if s.closing.Load() && !errors.Is(err, ErrClosed) {
		err = fmt.Errorf("%w: session %d", ErrClosed, s.id)
	}
	s.once.Do(func() {
		s.err = err
		// Out of the keepalive set first: once Done has closed, no
		// keepalive is composed with this session. Done closes before
		// the session's context ends, so that a request cancelled by it
		// finds the session ended (alive reads done).
		s.k.leave(s)
		close(s.done)
		s.cancel()
	})
}

// Close destroys the session, releasing everything it holds, and stops
// its goroutines. Safe to call more than once.
func (s *Session) Close() error {
	var err error
	if s.Err() == nil && !s.closing.Swap(true) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err = s.b.DestroySession(ctx, s.id)
		cancel()
		if err = translate(err); errors.Is(err, ErrSessionExpired) {
			err = nil
		}
	}
	s.end(fmt.Errorf("%w: session %d", ErrClosed, s.id))
	s.wg.Wait()
	s.k.waitStopped()
	return err
}

// Orphan stops keeping the session alive without destroying it: it ends
// by expiry, one TTL later. For tests and hand-offs.
func (s *Session) Orphan() {
	s.end(fmt.Errorf("%w: session %d orphaned", ErrClosed, s.id))
	s.wg.Wait()
	s.k.waitStopped()
}
