package gossip

import (
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// memberlist's UDP/TCP listeners return from a blocking read only
		// after their socket closes, a moment after Shutdown returns.
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
		// memberlist.Shutdown does not wait for an in-flight probe, which
		// ends at its ProbeTimeout.
		goleak.IgnoreAnyFunction("github.com/hashicorp/memberlist.(*Memberlist).probeNode"),
		goleak.IgnoreAnyFunction("github.com/hashicorp/memberlist.(*Memberlist).triggerFunc"),
	)
}
