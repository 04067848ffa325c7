package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/statenode/statenode/api"
	"github.com/statenode/statenode/client"
	"github.com/statenode/statenode/coordination"
	"github.com/statenode/statenode/node/nodetest"
)

// coordCluster starts a 3-node cluster and returns its --addr value and a
// client of it.
func coordCluster(t *testing.T) (string, *client.Client) {
	t.Helper()
	c := nodetest.MakeCluster(t, 3)
	var eps []string
	for _, i := range c.Running() {
		eps = append(eps, c.Node(i).HTTPAddr())
	}
	cl, err := client.New(client.Config{Endpoints: eps})
	require.NoError(t, err)
	t.Cleanup(func() { cl.Close() })
	return strings.Join(eps, ","), cl
}

// wait waits (at most timeout) for the process to exit by itself and
// returns its exit status.
func (p *proc) wait(timeout time.Duration) int {
	p.t.Helper()
	select {
	case <-p.done:
	case <-time.After(timeout):
		require.Failf(p.t, "timeout", "%s did not exit within %s; stderr:\n%s", p.name, timeout, p.stderr())
	}
	return p.cmd.ProcessState.ExitCode()
}

// failsWith runs the binary, requires exit status code and one line on
// stderr, and returns that line.
func failsWith(t *testing.T, code int, args ...string) string {
	t.Helper()
	r := cli(t, runOpts{}, args...)
	require.Equalf(t, code, r.code, "statenode %v: stdout %q stderr %q", args, r.stdout, r.stderr)
	require.Truef(t, strings.HasSuffix(r.stderr, "\n") && strings.Count(r.stderr, "\n") == 1,
		"statenode %v: stderr is not one line: %q", args, r.stderr)
	return strings.TrimSuffix(r.stderr, "\n")
}

// lineValue returns the value of "key=value" in a line of "k=v" fields.
func lineValue(t *testing.T, line, key string) string {
	t.Helper()
	for _, f := range strings.Fields(line) {
		if v, ok := strings.CutPrefix(f, key+"="); ok {
			return v
		}
	}
	require.Failf(t, "no field", "%q has no %s=", line, key)
	return ""
}

func lineUint(t *testing.T, line, key string) uint64 {
	t.Helper()
	v, err := strconv.ParseUint(lineValue(t, line, key), 10, 64)
	require.NoError(t, err, line)
	return v
}

// requireReleased checks that lock name is free and that no session
// labelled for it is left.
func requireReleased(t *testing.T, cl *client.Client, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	info, err := cl.LockInfo(ctx, name)
	require.NoError(t, err)
	require.Zero(t, info.Holder, "lock %q is still held", name)
	sessions, err := cl.Sessions(ctx)
	require.NoError(t, err)
	for _, s := range sessions {
		require.NotContains(t, s.Name, "lock "+name+" ", "session %d was not destroyed", s.ID)
	}
}

// processGone reports whether pid no longer exists.
func processGone(pid int) bool {
	return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}

func TestLockCommand(t *testing.T) {
	addr, cl := coordCluster(t)

	t.Run("environment and exit status", func(t *testing.T) {
		out := ok(t, "--addr", addr, "lock", "env", "--",
			"sh", "-c", `echo fence=$STATENODE_FENCE lock=$STATENODE_LOCK session=$STATENODE_SESSION`)
		require.Positive(t, lineUint(t, out, "fence"))
		require.Positive(t, lineUint(t, out, "session"))
		require.Equal(t, "env", lineValue(t, out, "lock"))
		requireReleased(t, cl, "env")

		// The next grant has a greater token.
		out2 := ok(t, "--addr", addr, "lock", "env", "--", "sh", "-c", `echo fence=$STATENODE_FENCE`)
		require.Greater(t, lineUint(t, out2, "fence"), lineUint(t, out, "fence"))

		r := cli(t, runOpts{}, "--addr", addr, "lock", "env", "--", "sh", "-c", "exit 7")
		require.Equal(t, 7, r.code, r.stderr)
		require.Empty(t, r.stderr)
		requireReleased(t, cl, "env")

		line := failsWith(t, exitCannotRun, "--addr", addr, "lock", "env", "--", filepath.Join(t.TempDir(), "missing"))
		require.Contains(t, line, "missing")
		requireReleased(t, cl, "env")
	})

	t.Run("usage", func(t *testing.T) {
		require.Contains(t, fails(t, runOpts{}, "--addr", addr, "lock", "u"), "<command>")
		require.Contains(t, fails(t, runOpts{}, "--addr", addr, "lock", "--try", "--wait", "1s", "u", "--", "true"), "exclude")
		require.Contains(t, fails(t, runOpts{}, "--addr", addr, "lock", "--ttl", "1ms", "u", "--", "true"), "--ttl")
		help := ok(t, "lock", "--help")
		for _, want := range []string{"STATENODE_FENCE", "Exit status:", "session lost", "--kill-grace"} {
			require.Contains(t, help, want)
		}
	})

	t.Run("try and wait on a held lock", func(t *testing.T) {
		s, err := coordination.NewSession(cl)
		require.NoError(t, err)
		defer s.Close()
		m := coordination.NewMutex(s, "held")
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, m.Lock(ctx))

		marker := filepath.Join(t.TempDir(), "ran")
		line := failsWith(t, exitNotAcquired, "--addr", addr, "lock", "--try", "held", "--", "touch", marker)
		require.Equal(t, `statenode: lock "held" is held`, line)
		line = failsWith(t, exitNotAcquired, "--addr", addr, "lock", "--wait", "300ms", "held", "--", "touch", marker)
		require.Contains(t, line, "not granted within 300ms")
		require.NoFileExists(t, marker, "the command must not run without the lock")

		// The waiter is granted as soon as the holder releases.
		w := start(t, "lock-waiter", nil, "--addr", addr, "lock", "held", "--", "sh", "-c", "echo granted=$STATENODE_FENCE")
		waitFor(t, 10*time.Second, func() error {
			info, err := cl.LockInfo(ctx, "held")
			if err != nil {
				return err
			}
			if len(info.Waiters) != 1 {
				return fmt.Errorf("waiters %v", info.Waiters)
			}
			return nil
		})
		require.NoError(t, m.Unlock(ctx))
		line = w.waitLine("granted=", 20*time.Second)
		require.Greater(t, lineUint(t, line, "granted"), m.Token())
		require.Equal(t, 0, w.wait(20*time.Second))
	})

	t.Run("holders never overlap", func(t *testing.T) {
		log := filepath.Join(t.TempDir(), "log")
		script := `echo "start $STATENODE_FENCE" >> "$LOG"; sleep 0.05; echo "end $STATENODE_FENCE" >> "$LOG"`
		const procs, rounds = 2, 3
		errs := make(chan error, procs*rounds)
		var wg sync.WaitGroup
		for range procs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range rounds {
					ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
					cmd := exec.CommandContext(ctx, binPath, "--addr", addr, "lock", "overlap", "--", "sh", "-c", script)
					cmd.Env = cleanEnv("LOG=" + log)
					out, err := cmd.CombinedOutput()
					cancel()
					if err != nil {
						errs <- fmt.Errorf("%w: %s", err, out)
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			require.NoError(t, err)
		}
		b, err := os.ReadFile(log)
		require.NoError(t, err)
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		require.Len(t, lines, 2*procs*rounds, string(b))
		var last uint64
		for i := 0; i < len(lines); i += 2 {
			start, end := strings.Fields(lines[i]), strings.Fields(lines[i+1])
			require.Equal(t, "start", start[0], "holders overlapped:\n%s", b)
			require.Equal(t, []string{"end", start[1]}, end, "holders overlapped:\n%s", b)
			tok, err := strconv.ParseUint(start[1], 10, 64)
			require.NoError(t, err)
			require.Greater(t, tok, last, "tokens must increase from holder to holder")
			last = tok
		}
		requireReleased(t, cl, "overlap")
	})

	t.Run("signals are forwarded", func(t *testing.T) {
		p := start(t, "lock-signal", nil, "--addr", addr, "lock", "sig", "--",
			"sh", "-c", `trap 'echo child-term; exit 9' TERM; echo running; while :; do sleep 0.05; done`)
		p.waitLine("running", 20*time.Second)
		require.NoError(t, p.cmd.Process.Signal(syscall.SIGTERM))
		require.Equal(t, "child-term", p.waitLine("child-term", 20*time.Second))
		require.Equal(t, 9, p.wait(20*time.Second), "the command's exit status")
		requireReleased(t, cl, "sig")
	})

	t.Run("session loss stops the command", func(t *testing.T) {
		p := start(t, "lock-lost", nil, "--addr", addr, "lock", "lost", "--",
			"sh", "-c", `trap 'echo child-term; exit 0' TERM; echo pid=$$ session=$STATENODE_SESSION; while :; do sleep 0.05; done`)
		line := p.waitLine("session=", 20*time.Second)
		pid := int(lineUint(t, line, "pid"))
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, cl.DestroySession(ctx, lineUint(t, line, "session")))
		require.Equal(t, "child-term", p.waitLine("child-term", 20*time.Second), "the command gets SIGTERM")
		require.Equal(t, exitSessionLost, p.wait(20*time.Second), "even though the command exited 0")
		require.True(t, processGone(pid), "the command still runs")
		require.Contains(t, p.stderr(), "session lost while the command ran")
	})

	t.Run("session loss kills a command that ignores SIGTERM", func(t *testing.T) {
		p := start(t, "lock-kill", nil, "--addr", addr, "lock", "--kill-grace", "300ms", "stubborn", "--",
			"sh", "-c", `trap '' TERM; echo pid=$$ session=$STATENODE_SESSION; while :; do sleep 0.05; done`)
		line := p.waitLine("session=", 20*time.Second)
		pid := int(lineUint(t, line, "pid"))
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		destroyed := time.Now()
		require.NoError(t, cl.DestroySession(ctx, lineUint(t, line, "session")))
		require.Equal(t, exitSessionLost, p.wait(20*time.Second))
		require.GreaterOrEqual(t, time.Since(destroyed), 300*time.Millisecond, "SIGKILL only after --kill-grace")
		require.True(t, processGone(pid), "the command still runs")
		require.Contains(t, p.stderr(), "sending SIGKILL")
		require.Contains(t, p.stderr(), "command exit status 137")
	})
}

// waitFor polls cond until it holds or d passes.
func waitFor(t *testing.T, d time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %v: %v", d, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

var electedRE = regexp.MustCompile(`^elected term=(\d+)$`)

func TestElectAndSessionCommands(t *testing.T) {
	addr, cl := coordCluster(t)

	a := start(t, "elect-a", nil, "--addr", addr, "elect", "svc", "alpha")
	m := electedRE.FindStringSubmatch(a.waitLine("elected", 20*time.Second))
	require.NotNil(t, m)
	term1, _ := strconv.ParseUint(m[1], 10, 64)
	require.Positive(t, term1)

	leader := ok(t, "--addr", addr, "elect", "leader", "svc")
	require.Equal(t, "alpha", lineValue(t, leader, "value"))
	require.Equal(t, term1, lineUint(t, leader, "term"))
	aSession := lineUint(t, leader, "leader")

	obs := start(t, "elect-observe", nil, "--addr", addr, "elect", "observe", "svc")
	require.Equal(t, fmt.Sprintf("leader=%d term=%d value=alpha", aSession, term1), obs.waitLine("value=alpha", 20*time.Second))

	// A second candidate waits; session ls shows both sessions.
	b := start(t, "elect-b", nil, "--addr", addr, "elect", "svc", "beta")
	var bSession uint64
	waitFor(t, 20*time.Second, func() error {
		r := cli(t, runOpts{}, "--addr", addr, "-o", "json", "session", "ls")
		var ss []api.Session
		if err := json.Unmarshal([]byte(r.stdout), &ss); err != nil {
			return fmt.Errorf("%w: %q", err, r.stdout)
		}
		for _, s := range ss {
			if strings.HasPrefix(s.Name, "elect svc ") && s.ID != aSession {
				bSession = s.ID
				return nil
			}
		}
		return fmt.Errorf("no second elect session in %v", ss)
	})
	table := ok(t, "--addr", addr, "session", "ls")
	require.Regexp(t, `(?m)^ID\s+NAME\s+TTL\s+REMAINING\s+LOCKS\s+WAITING$`, table)
	require.Regexp(t, fmt.Sprintf(`(?m)^%d\s+elect svc \(.*\)\s+10s\s+\S+\s+-\s+-$`, bSession), table)

	// Interrupting the leader resigns: the waiting candidate takes over.
	require.Equal(t, 0, a.stop(20*time.Second))
	m = electedRE.FindStringSubmatch(b.waitLine("elected", 20*time.Second))
	require.NotNil(t, m)
	term2, _ := strconv.ParseUint(m[1], 10, 64)
	require.Greater(t, term2, term1)
	require.Equal(t, fmt.Sprintf("leader=%d term=%d value=beta", bSession, term2), obs.waitLine("value=beta", 20*time.Second))
	require.Equal(t, "beta", lineValue(t, ok(t, "--addr", addr, "elect", "leader", "svc"), "value"))

	// Destroying the leader's session (session rm) ends its leadership.
	require.Equal(t, "OK\n", ok(t, "--addr", addr, "session", "rm", strconv.FormatUint(bSession, 10)))
	require.Equal(t, exitSessionLost, b.wait(20*time.Second))
	require.Contains(t, b.stderr(), "no longer the leader")
	require.GreaterOrEqual(t, lineUint(t, obs.waitLine("leader=none", 20*time.Second), "term"), term2, "terms never go back")
	require.Contains(t, fails(t, runOpts{}, "--addr", addr, "elect", "leader", "svc"), `election "svc" has no leader`)
	require.Equal(t, 0, obs.stop(20*time.Second))

	// A campaign that cannot win within --wait gives up; a session held
	// by a client shows its label and lock.
	s, err := coordination.NewSession(cl, coordination.WithName("test-holder"))
	require.NoError(t, err)
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	e, err := coordination.NewElection(s, "busy")
	require.NoError(t, err)
	_, err = e.Campaign(ctx, "holder")
	require.NoError(t, err)
	require.NoError(t, coordination.NewMutex(s, "res/1").Lock(ctx))
	line := failsWith(t, exitNotAcquired, "--addr", addr, "elect", "busy", "late", "--wait", "300ms")
	require.Contains(t, line, "not elected within 300ms")
	require.Regexp(t, fmt.Sprintf(`(?m)^%d\s+test-holder\s+10s\s+\S+\s+res/1\s+-$`, s.ID()), ok(t, "--addr", addr, "session", "ls"))

	require.Equal(t, "statenode: session not found: 12345", fails(t, runOpts{}, "--addr", addr, "session", "rm", "12345"))
	require.Contains(t, fails(t, runOpts{}, "--addr", addr, "session", "rm", "x"), "<id>")
}

func TestBenchCoordination(t *testing.T) {
	addr, _ := coordCluster(t)
	format := []string{"Summary:", "  Total:\t", "  Slowest:\t", "  Fastest:\t", "  Average:\t", "  Stddev:\t",
		"Response time histogram:", "Latency distribution:", "  99.9% in ", "Operations:"}

	for _, mode := range []string{"--contended", "--distinct"} {
		out := ok(t, "--addr", addr, "bench", "lock", "--workers", "3", mode, "--total", "30")
		for _, want := range append(format, "  lock+unlock:\t30 ok, 0 errors.") {
			require.Contains(t, out, want, mode)
		}
		require.Positive(t, requestsPerSec(t, out))
	}
	out := ok(t, "--addr", addr, "-o", "json", "bench", "lock", "--workers", "2", "--total", "10", "--prefix", "j")
	var s summary
	require.NoError(t, json.Unmarshal([]byte(out), &s))
	require.Equal(t, 10, s.Requests)
	require.Equal(t, []opStats{{Op: "lock+unlock", OK: 10}}, s.Ops)
	require.Equal(t, "distinct", s.Config["mode"])

	out = ok(t, "--addr", addr, "bench", "election", "--total", "10")
	for _, want := range append(format, "  handoff:\t10 ok, 0 errors.") {
		require.Contains(t, out, want)
	}
	out = ok(t, "--addr", addr, "bench", "semaphore", "--workers", "4", "--permits", "2", "--total", "20")
	for _, want := range append(format, "  acquire+release:\t20 ok, 0 errors.") {
		require.Contains(t, out, want)
	}
	require.Positive(t, requestsPerSec(t, out))
	out = ok(t, "--addr", addr, "-o", "json", "bench", "semaphore", "--workers", "3", "--permits", "1", "--total", "9")
	s = summary{}
	require.NoError(t, json.Unmarshal([]byte(out), &s))
	require.Equal(t, []opStats{{Op: "acquire+release", OK: 9}}, s.Ops)
	require.EqualValues(t, 1, s.Config["permits"])
	require.Contains(t, fails(t, runOpts{}, "--addr", addr, "bench", "semaphore", "--permits", "0"), "--permits must be at least 1")
	// Every worker's session is gone after a run.
	require.Equal(t, "ID  NAME  TTL  REMAINING  LOCKS  WAITING\n", ok(t, "--addr", addr, "session", "ls"))

	require.Contains(t, fails(t, runOpts{}, "--addr", addr, "bench", "lock", "--distinct", "--contended"), "can't be used together")
	require.Contains(t, fails(t, runOpts{}, "--addr", addr, "bench", "election", "--workers", "1"), "--workers must be at least 2")
	// The key-value benchmark stays the default.
	require.Contains(t, ok(t, "--addr", addr, "bench", "--total", "20"), "  put:\t20 ok, 0 errors.")
}
