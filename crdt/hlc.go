package crdt

import (
	"cmp"
	"fmt"
	"sync"
	"time"
)

// Timestamp is a hybrid logical clock reading: physical time in Unix
// nanoseconds, a logical counter that orders events within one physical
// instant, and the replica that issued it, which breaks the remaining ties.
// Timestamps from one Clock are strictly increasing, so no two writes ever
// carry equal Timestamps.
type Timestamp struct {
	// Wall is the physical component, Unix nanoseconds.
	Wall int64
	// Logical counts events at the same Wall.
	Logical uint64
	// Replica is the ID of the replica whose clock issued the timestamp.
	Replica string
}

// Compare orders timestamps by Wall, then Logical, then Replica: -1 if t
// is before u, +1 if after, 0 if equal.
func (t Timestamp) Compare(u Timestamp) int {
	if c := cmp.Compare(t.Wall, u.Wall); c != 0 {
		return c
	}
	if c := cmp.Compare(t.Logical, u.Logical); c != 0 {
		return c
	}
	return cmp.Compare(t.Replica, u.Replica)
}

// IsZero reports whether t is the zero Timestamp (never issued by a Clock).
func (t Timestamp) IsZero() bool { return t == Timestamp{} }

// String formats t as "wall.logical@replica" with wall in RFC 3339.
func (t Timestamp) String() string {
	return fmt.Sprintf("%s.%d@%s", time.Unix(0, t.Wall).UTC().Format(time.RFC3339Nano), t.Logical, t.Replica)
}

// Clock is a hybrid logical clock (Kulkarni et al., 2014). Its readings
// follow physical time when it advances and a logical counter when it does
// not (same instant, or the physical clock stepped back), and Observe moves
// it past timestamps seen from other replicas, so a write issued after
// observing another one always orders after it. Safe for concurrent use.
type Clock struct {
	replica string
	now     func() time.Time

	mu   sync.Mutex
	wall int64
	l    uint64
}

// NewClock returns a Clock for replica. now supplies physical time; nil
// means time.Now. Tests pass a fake to make timestamps deterministic.
func NewClock(replica string, now func() time.Time) *Clock {
	if now == nil {
		now = time.Now
	}
	return &Clock{replica: replica, now: now}
}

// Replica returns the replica ID stamped into the clock's readings.
func (c *Clock) Replica() string { return c.replica }

// Now returns a timestamp greater than every one this clock returned or
// observed before.
func (c *Clock) Now() Timestamp {
	pt := c.now().UnixNano()
	c.mu.Lock()
	defer c.mu.Unlock()
	if pt > c.wall {
		c.wall, c.l = pt, 0
	} else {
		c.l++
	}
	return Timestamp{Wall: c.wall, Logical: c.l, Replica: c.replica}
}

// Observe advances the clock past t, a timestamp received from another
// replica, so that the next Now orders after it.
func (c *Clock) Observe(t Timestamp) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case t.Wall > c.wall:
		c.wall, c.l = t.Wall, t.Logical
	case t.Wall == c.wall && t.Logical > c.l:
		c.l = t.Logical
	}
}
