module github.com/statenode/statenode/jepsen

go 1.26.8

require (
	github.com/anishathalye/porcupine v1.3.1
	github.com/statenode/statenode v0.0.0-00010101000000-000000000000
	go.uber.org/goleak v1.3.0
)

// The harness tests the statenode of this repository, at this commit.
replace github.com/statenode/statenode => ../
