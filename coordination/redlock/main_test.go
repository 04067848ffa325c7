package redlock_test

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	flag.Parse()
	if _, err := exec.LookPath("redis-server"); err != nil {
		// Tests and benchmarks skip themselves; examples cannot, so they
		// are filtered out here.
		fmt.Fprintln(os.Stderr, "redlock: redis-server is not on PATH; skipping the examples and every test that needs Redis")
		skip := "^Example"
		if f := flag.Lookup("test.skip"); f != nil {
			if s := f.Value.String(); s != "" {
				skip = s + "|" + skip
			}
			_ = f.Value.Set(skip)
		}
	}
	code := m.Run()
	stopExampleServers()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}
