//go:build faultclock

package node

import (
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"
)

// FaultClockEnv names the environment variable that points a fault-clock
// build at the file holding its clock offset. Only binaries built with the
// "faultclock" tag read it; the release build has no such code.
const FaultClockEnv = "STATENODE_FAULT_CLOCK_FILE"

// faultClockRefresh bounds how often the offset file is read: the value is
// cached in between, so the stamping path does not stat a file per command.
const faultClockRefresh = 100 * time.Millisecond

// faultClock holds the cached offset of this process. The file contains a
// Go duration ("15s", "-3s", "0"); a missing or empty file is a zero
// offset; anything else is a zero offset and logged once.
var faultClock struct {
	mu     sync.Mutex
	once   sync.Once
	path   string
	offset time.Duration
	readAt time.Time
	warned bool
}

// clockOffset returns the offset written to the file named by
// FaultClockEnv, re-read at most every faultClockRefresh.
func clockOffset() time.Duration {
	fc := &faultClock
	fc.mu.Lock()
	defer fc.mu.Unlock()
	fc.once.Do(func() { fc.path = os.Getenv(FaultClockEnv) })
	if fc.path == "" {
		return 0
	}
	now := time.Now()
	if !fc.readAt.IsZero() && now.Sub(fc.readAt) < faultClockRefresh {
		return fc.offset
	}
	fc.readAt = now
	d, err := readClockOffset(fc.path)
	if err != nil && !fc.warned {
		fc.warned = true
		slog.Warn("node: fault clock: ignoring the offset file", "path", fc.path, "err", err)
	}
	fc.offset = d
	return d
}

// readClockOffset parses the offset file; a missing or empty file is 0.
func readClockOffset(path string) (time.Duration, error) {
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, err
	}
	return d, nil
}
