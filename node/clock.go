package node

import "time"

// wallClock is where the node reads wall-clock time: the stamp the leader
// puts on every command (Command.Time) and the session reaper's view of
// which deadlines have passed. It is the only wall-clock input of the
// replicated state; everything else measures durations.
//
// The release build reads time.Now. A build with the "faultclock" tag
// (clock_fault.go) adds an offset that a fault-injection harness sets at
// run time, to test how sessions behave when a leader's clock jumps.
func (n *Node) wallClock() time.Time { return time.Now().Add(clockOffset()) }
