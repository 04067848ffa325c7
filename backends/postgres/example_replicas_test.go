package postgres_test

import (
	"fmt"

	"github.com/statenode/statenode/backends/postgres"
)

// ExampleReadMode lists where reads may go; writes always go to the
// primary.
func ExampleReadMode() {
	for _, m := range []postgres.ReadMode{postgres.ReadPrimary, postgres.ReadReplicaPreferred, postgres.ReadReplicaSession} {
		fmt.Println(m)
	}
	// Output:
	// primary
	// replica-preferred
	// replica-session
}
