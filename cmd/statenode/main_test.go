package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/statenode/statenode/node/nodetest"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// binPath is the statenode binary built by TestMain; the tests run it as
// real processes.
var binPath string

const testVersion = "v0.0.0-test"

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "statenode-cli-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binPath = filepath.Join(dir, "statenode")
	args := []string{"build", "-o", binPath, "-ldflags", "-X main.version=" + testVersion}
	if raceEnabled {
		args = append(args, "-race")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	out, err := exec.CommandContext(ctx, "go", append(args, ".")...).CombinedOutput()
	cancel()
	if err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}

	code := m.Run()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
			code = 1
		}
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

// freeAddr returns a loopback address whose port was free a moment ago,
// outside the kernel's ephemeral range (nodetest.FreeAddr).
func freeAddr(t *testing.T) string { return nodetest.FreeAddr(t) }

// cleanEnv is the test process's environment without STATENODE_* variables,
// plus extra. A binary built with -race sleeps 1s at exit (the race
// runtime's atexit_sleep_ms); turn that off.
func cleanEnv(extra ...string) []string {
	var env []string
	gorace := "atexit_sleep_ms=0"
	for _, e := range os.Environ() {
		switch {
		case strings.HasPrefix(e, "STATENODE_"):
		case strings.HasPrefix(e, "GORACE="):
			gorace = strings.TrimPrefix(e, "GORACE=") + " " + gorace
		default:
			env = append(env, e)
		}
	}
	env = append(env, "GORACE="+gorace)
	return append(env, extra...)
}

// result is the outcome of one finished statenode invocation.
type result struct {
	stdout, stderr string
	code           int
}

// runOpts changes how cli runs the binary.
type runOpts struct {
	env   []string // extra environment variables
	stdin string
}

// cli runs the binary to completion (at most 60s) and returns its output and
// exit status.
func cli(t *testing.T, opts runOpts, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binPath, args...)
	cmd.Env = cleanEnv(opts.env...)
	cmd.Stdin = strings.NewReader(opts.stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		require.Truef(t, ok, "statenode %v: %v", args, err)
		code = ee.ExitCode()
	}
	require.NoError(t, ctx.Err(), "statenode %v did not finish in time", args)
	return result{stdout: stdout.String(), stderr: stderr.String(), code: code}
}

// ok runs the binary and requires exit status 0 and an empty stderr.
func ok(t *testing.T, args ...string) string {
	t.Helper()
	r := cli(t, runOpts{}, args...)
	require.Equalf(t, 0, r.code, "statenode %v: stderr %q", args, r.stderr)
	return r.stdout
}

// fails runs the binary, requires exit status 1 and exactly one line on
// stderr, and returns that line.
func fails(t *testing.T, opts runOpts, args ...string) string {
	t.Helper()
	r := cli(t, opts, args...)
	require.Equalf(t, 1, r.code, "statenode %v: stdout %q stderr %q", args, r.stdout, r.stderr)
	require.Truef(t, strings.HasSuffix(r.stderr, "\n") && strings.Count(r.stderr, "\n") == 1,
		"statenode %v: stderr is not one line: %q", args, r.stderr)
	return strings.TrimSuffix(r.stderr, "\n")
}

// proc is a long-running statenode process (agent, dev, kv watch).
type proc struct {
	t     *testing.T
	name  string
	cmd   *exec.Cmd
	lines chan string // stdout, line by line; closed at EOF
	// readyLine is the line dev printed when ready (startDev only).
	readyLine string
	errMu     sync.Mutex
	errb      bytes.Buffer // stderr
	done      chan struct{}
	err       error // of Wait, valid after done is closed
}

func (p *proc) Write(b []byte) (int, error) {
	p.errMu.Lock()
	defer p.errMu.Unlock()
	return p.errb.Write(b)
}

func (p *proc) stderr() string {
	p.errMu.Lock()
	defer p.errMu.Unlock()
	return p.errb.String()
}

// start runs the binary in the background. t.Cleanup stops it: SIGTERM,
// then SIGKILL if it has not exited after 15s; its stderr is logged if the
// test failed.
func start(t *testing.T, name string, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{t: t, name: name, lines: make(chan string, 1024), done: make(chan struct{})}
	p.cmd = exec.Command(binPath, args...)
	p.cmd.Env = cleanEnv(env...)
	p.cmd.Stderr = p
	out, err := p.cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, p.cmd.Start())
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			select {
			case p.lines <- sc.Text():
			default: // nobody reads this far ahead; drop
			}
		}
		close(p.lines)
		_, _ = io.Copy(io.Discard, out)
		p.err = p.cmd.Wait()
	}()
	t.Cleanup(func() {
		p.stop(15 * time.Second)
		if strings.Contains(p.stderr(), "WARNING: DATA RACE") {
			t.Errorf("%s: data race", p.name)
		}
		if t.Failed() {
			t.Logf("%s stderr:\n%s", p.name, p.stderr())
		}
	})
	return p
}

// stop sends SIGTERM and waits for the exit (SIGKILL after grace) and
// returns the exit status.
func (p *proc) stop(grace time.Duration) int {
	select {
	case <-p.done:
	default:
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(grace):
			p.t.Errorf("%s did not exit %s after SIGTERM; killing it", p.name, grace)
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	}
	return p.cmd.ProcessState.ExitCode()
}

// waitLine reads stdout lines until one contains substr and returns it.
func (p *proc) waitLine(substr string, timeout time.Duration) string {
	p.t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	var seen []string
	for {
		select {
		case l, ok := <-p.lines:
			if !ok {
				require.Failf(p.t, "output ended", "%s exited (%v) before printing %q; stdout %q; stderr:\n%s",
					p.name, p.waitErr(), substr, seen, p.stderr())
			}
			if strings.Contains(l, substr) {
				return l
			}
			seen = append(seen, l)
		case <-deadline.C:
			require.Failf(p.t, "timeout", "%s did not print %q within %s; stdout %q; stderr:\n%s",
				p.name, substr, timeout, seen, p.stderr())
		}
	}
}

func (p *proc) waitErr() error {
	<-p.done
	return p.err
}

// startDev runs "statenode dev" on free ports and returns its client API
// address once it has printed that it is ready.
func startDev(t *testing.T, extra ...string) (*proc, string) {
	t.Helper()
	return startDevAt(t, freeAddr(t), freeAddr(t), extra...)
}

// startDevAt is startDev on the given addresses.
func startDevAt(t *testing.T, httpAddr, raftAddr string, extra ...string) (*proc, string) {
	t.Helper()
	p := start(t, "dev", nil, append([]string{"dev", "--http-addr", httpAddr, "--raft-addr", raftAddr}, extra...)...)
	p.readyLine = p.waitLine("ready at", 30*time.Second)
	require.Contains(t, p.readyLine, "statenode dev node ready at http://"+httpAddr+" ")
	return p, httpAddr
}
