package node

import (
	"errors"
	"net"
	"syscall"
	"time"
)

// isDialError reports whether err happened before the request left this
// node (connection refused, unreachable, dial timeout).
func isDialError(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	return errors.Is(err, syscall.ECONNREFUSED)
}

// timeAfter is a capped exponential backoff.
func timeAfter(attempt int) <-chan time.Time {
	d := 100 * time.Millisecond << min(attempt, 4)
	return time.After(d)
}
