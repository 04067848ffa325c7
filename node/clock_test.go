//go:build !faultclock

package node

import (
	"go/build"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"
)

// The release build ignores the fault-clock environment variable: its
// offset is zero whatever the file says, and the file that reads the
// variable is not part of it.
func TestReleaseClockIgnoresFaultClockEnv(t *testing.T) {
	path := filepath.Join(t.TempDir(), "offset")
	if err := os.WriteFile(path, []byte("1h\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("STATENODE_FAULT_CLOCK_FILE", path)
	if d := clockOffset(); d != 0 {
		t.Fatalf("release clock offset %v, want 0", d)
	}
	var n Node
	if skew := time.Until(n.wallClock()); skew > time.Minute || skew < -time.Minute {
		t.Fatalf("release wall clock is %v away from time.Now", skew)
	}

	// Without build tags the package compiles clock_default.go, not
	// clock_fault.go, and clock_default.go imports nothing but time.
	pkg, err := build.Default.ImportDir(".", 0)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(pkg.GoFiles, "clock_default.go") || slices.Contains(pkg.GoFiles, "clock_fault.go") {
		t.Fatalf("release build files %v: want clock_default.go and not clock_fault.go", pkg.GoFiles)
	}
	f, err := parser.ParseFile(token.NewFileSet(), "clock_default.go", nil, parser.ImportsOnly)
	if err != nil {
		t.Fatal(err)
	}
	for _, imp := range f.Imports {
		if p, _ := strconv.Unquote(imp.Path.Value); p != "time" {
			t.Errorf("clock_default.go imports %q: the release clock must not read the environment or files", p)
		}
	}
}
