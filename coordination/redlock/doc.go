// Package redlock implements the Redlock algorithm (antirez, "Distributed
// Locks with Redis") over N independent Redis servers: a fast,
// best-effort lock with no single point of failure. For a lock that stays
// safe when its holder pauses, use statenode's own coordination.Mutex,
// whose fencing tokens the store enforces on writes (see below and
// docs/REDLOCK.md).
//
//	rl, err := redlock.Dial(redlock.DefaultConfig(), "10.0.0.1:6379", "10.0.0.2:6379", "10.0.0.3:6379")
//	if err != nil { ... }
//	defer rl.Close()
//	l, err := rl.Lock(ctx, "reports/nightly")
//	if errors.Is(err, redlock.ErrNotAcquired) { ... } // someone else is doing it
//	defer l.Unlock(ctx)
//	// finish within l.Validity(), or call l.Extend(ctx) before it ends
//
// # Algorithm
//
// An attempt picks a fresh token (20 bytes from crypto/rand, hex) and sends
// SET key token NX PX ttl to every server in parallel, each request bounded
// by Config.ServerTimeout (much smaller than the TTL, so a dead server
// costs little). The lock is held if a quorum (N/2+1) answered OK and
// validity remains, where
//
//	validity = TTL − elapsed − drift,  drift = TTL·DriftFactor + 2 ms
//
// and elapsed is the attempt's duration on the client's monotonic clock.
// Lock.Until is the attempt's start plus TTL − drift. A failed attempt is
// released on every server (also those that did not answer: their SET may
// have landed) before Lock retries after RetryDelay plus a random jitter of
// up to RetryJitter, so colliding clients drift apart.
//
// Unlock and Extend run Lua scripts that act only if the key still holds
// this lock's token (compare-and-delete, compare-and-pexpire), so a client
// whose lock expired never frees or prolongs its successor's. Extend needs
// a quorum and a positive new validity, like an acquisition; a failed
// Extend gives the lock up.
//
// # Safety
//
// Redlock's mutual exclusion holds only while its assumptions do: the
// servers' clocks advance at about the same rate (no jumps), the holder
// does not pause (GC, swap, VM freeze) for longer than the validity left,
// and servers do not restart and forget keys within a TTL (run them with
// appendfsync always, or keep a restarted server out for one TTL). Break
// one and two clients can believe they hold the lock (Kleppmann, "How to
// do distributed locking"). The token is random, not increasing, so the
// storage behind the lock cannot refuse the stale holder's writes: there is
// no fencing.
//
// statenode's coordination.Mutex has none of these holes: grants are
// ordered by the Raft log, the fencing token (the grant's log position)
// strictly increases, and fenced KV writes carrying an older token are
// refused by the same log. Use Redlock where an occasional double holder
// only costs efficiency (a job run twice, a cache rebuilt twice); use the
// fenced lock where it would cost correctness.
package redlock
