// Package coordination provides sessions, fenced locks, named elections,
// counting semaphores, cyclic and double barriers and countdown latches
// owned by statenode's replicated state machine. It works over an embedded
// *node.Node or a remote *client.Client (both implement Backend and the
// optional ElectionBackend, SemaphoreBackend, BarrierBackend and
// LatchBackend).
//
//	s, err := coordination.NewSession(cl, coordination.WithTTL(10*time.Second))
//	m := coordination.NewMutex(s, "jobs/compactor")
//	if err := m.Lock(ctx); err != nil { ... }
//	m.PutFenced(ctx, "jobs/state", data) // refused once a newer grant exists
//	m.Unlock(ctx)
//
// # Semantics
//
// Sessions. A session lives while keepalives arrive (every TTL/3). The
// keepalives of all sessions on one backend (one *client.Client, one
// *node.Node) are batched into one request per tick, paced by the shortest
// TTL/3 among them, however many sessions a process holds. Expiry
// is decided by the leader, which proposes an expire command stamped with
// its clock; the state machine never reads a clock. After a leader change
// every live session gets a fresh TTL (the new leader's first command, as
// etcd's lessor Promote), because deadlines were stamped with the old
// leader's clock and keepalives may have been lost in the election. So a
// session can outlive its TTL by up to one election plus one TTL, never
// less than its TTL. Everything a session holds (locks, queued waits,
// candidacies, semaphore permits, barrier registrations, ephemeral keys)
// is released in the same committed command that ends it.
// Done closes when the session ends: expired, destroyed, closed, or lost
// (no keepalive succeeded for a whole TTL, so the cluster may have expired
// it). Every primitive re-checks its session before reporting success.
//
// Request IDs. Every mutating request carries a request ID unique within
// its session; the state machine remembers the last 256 results per
// session, so a retried acquire or release (after a broken connection or a
// leader change) is applied once. A retried release never frees a newer
// holder's grant. A Session numbers its own requests up from 1; IDs with
// the top bit set (CallerRequestIDBit) belong to the caller, who chooses
// them with Latch.CountDownID, so the two can never collide.
//
// Fenced locks. Lock waits in strict FIFO order of the acquire commands
// in the log, until granted or its context ends (the wait is withdrawn;
// ErrWaitTimeout). TryLock never waits (ErrLocked). The grant's fencing
// token is its log position: the raft index shifted left by 16 bits plus
// the command's position in its (group-committed) log entry, so tokens are
// unique and strictly increasing across grants of a lock; 0 is never a
// token. Waiters are granted by the very command that frees the lock
// (release, session end) and woken by that apply, never by polling.
// Reentrancy is per session, up to WithReentrancy's limit. A release by a
// non-owner, or with a token that is not the current grant, fails with
// ErrNotOwner.
//
// Fencing is enforced: a write carrying a fence (lock name + token) is
// refused with ErrFenced if a newer token has been granted for that lock.
// A holder that paused past its TTL and lost its lock cannot overwrite its
// successor's work (Jepsen's finding against etcd locks).
//
// Deadlocks. The state machine keeps the wait-for graph of sessions over
// locks and semaphores; an acquire that would close a cycle fails at once
// with ErrDeadlock naming the cycle. A session waiting for a lock waits for
// its holder. A session waiting for k permits of a semaphore of N (holding
// own of them) waits for each holder H with N - own - held(H) < k (it
// cannot be served without H's permits, whatever the others do) and for
// every waiter queued ahead of it. Only such definite edges are followed,
// so a reported deadlock is always real; a deadlock that needs several
// holders at once may go unreported, and then blocks until a context ends.
//
// Semaphores. NewSemaphore(s, name, N): N permits, fixed while the
// semaphore is in use (another N fails with ErrMismatch; an idle
// semaphore, which nobody holds or waits for, is forgotten). Acquire(k)
// waits in strict FIFO order, without barging: a large request at the head
// blocks smaller ones behind it. Never more than N permits are held.
// Release(k) returns k permits (0: all); a session's end returns them all.
// Token is the log position of the newest grant still held (0: none).
//
// Barriers. NewBarrier(s, name, N) is a cyclic barrier: Await blocks until
// N parties arrived, then all proceed and learn the generation (the log
// position of the trip, strictly increasing) and their arrival index.
// NewDoubleBarrier: Enter blocks until N parties entered, Leave until all
// of them left. If a registered party's session ends, the barrier breaks:
// every waiter gets ErrBroken naming that session, and so does every later
// request until Reset. A waiter whose context ends withdraws (ErrWaitTimeout)
// without breaking the barrier.
//
// Latches. NewLatch(ctx, s, name, count) creates the latch (idempotent with
// the same count, ErrMismatch otherwise). CountDown applies once per
// request ID; CountDownID takes an ID the caller chooses, so that a
// count-down whose answer was lost can be sent again and counts once.
// Await blocks until the count is zero. A latch is a durable
// object, not tied to a session: it survives the sessions that used it and
// lives until Delete.
//
// Ephemeral keys. A key written with a session (Client.PutEphemeral,
// Node.PutEphemeral) is deleted in the command that ends the session;
// watchers see the delete. A put naming a session that does not exist
// writes nothing.
//
// Elections. Campaign blocks until the session leads (FIFO among
// candidates) and returns the term, the log position of the election: at
// most one leader per name at any log position, and terms strictly
// increase. Resign hands leadership to the next candidate in the same
// command; Proclaim changes the value; Observe streams changes, never going
// back in term.
package coordination
