// Package coordination provides sessions, fenced locks and named elections
// owned by statenode's replicated state machine. It works over an embedded
// *node.Node or a remote *client.Client (both implement Backend).
//
//	s, err := coordination.NewSession(cl, coordination.WithTTL(10*time.Second))
//	m := coordination.NewMutex(s, "jobs/compactor")
//	if err := m.Lock(ctx); err != nil { ... }
//	m.PutFenced(ctx, "jobs/state", data) // refused once a newer grant exists
//	m.Unlock(ctx)
//
// # Semantics
//
// Sessions. A session lives while keepalives arrive (every TTL/3). Expiry
// is decided by the leader, which proposes an expire command stamped with
// its clock; the state machine never reads a clock. After a leader change
// every live session gets a fresh TTL (the new leader's first command, as
// etcd's lessor Promote), because deadlines were stamped with the old
// leader's clock and keepalives may have been lost in the election. So a
// session can outlive its TTL by up to one election plus one TTL, never
// less than its TTL. Everything a session holds (locks, queued waits,
// candidacies) is released in the same committed command that ends it.
// Done closes when the session ends: expired, destroyed, closed, or lost
// (no keepalive succeeded for a whole TTL, so the cluster may have expired
// it). Every primitive re-checks its session before reporting success.
//
// Request IDs. Every mutating request carries a request ID unique within
// its session; the state machine remembers the last 256 results per
// session, so a retried acquire or release (after a broken connection or a
// leader change) is applied once. A retried release never frees a newer
// holder's grant.
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
// locks; an acquire that would close a cycle fails at once with
// ErrDeadlock naming the cycle.
//
// Elections. Campaign blocks until the session leads (FIFO among
// candidates) and returns the term, the log position of the election: at
// most one leader per name at any log position, and terms strictly
// increase. Resign hands leadership to the next candidate in the same
// command; Proclaim changes the value; Observe streams changes, never going
// back in term.
package coordination
