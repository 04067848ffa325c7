package memory_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/statenode/statenode/backends"
	"github.com/statenode/statenode/backends/backendtest"
	"github.com/statenode/statenode/backends/memory"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestConformance(t *testing.T) {
	backendtest.Run(t, func(t *testing.T) backends.Backend { return memory.New() })
}
