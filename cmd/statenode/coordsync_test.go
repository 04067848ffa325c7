package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/statenode/statenode/api"
	"github.com/statenode/statenode/client"
	"github.com/statenode/statenode/coordination"
)

// requireRunning fails if p has already exited.
func requireRunning(t *testing.T, p *proc, why string) {
	t.Helper()
	select {
	case <-p.done:
		t.Fatalf("%s exited (%v) but %s; stderr:\n%s", p.name, p.err, why, p.stderr())
	default:
	}
}

// reqCtx is a context for one request of a test.
func reqCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestSemCommand(t *testing.T) {
	addr, cl := coordCluster(t)

	t.Run("never more than N inside", func(t *testing.T) {
		// Each command appends "start", stays inside until two commands
		// are inside and the third process waits in the semaphore's queue
		// (or all three have started), then appends "end". With N=2 the
		// first two run together while the third waits; an over-granting
		// semaphore lets the third in beside them, one that grants fewer
		// than N lets no two overlap.
		log := filepath.Join(t.TempDir(), "log")
		script := `echo "start $STATENODE_SESSION permits=$STATENODE_PERMITS sem=$STATENODE_SEM" >> "$LOG"
i=0
while [ $i -lt 1000 ]; do
	s=$(grep -c '^start' "$LOG"); e=$(grep -c '^end' "$LOG")
	if [ "$s" -ge 3 ]; then break; fi
	if [ $((s - e)) -ge 2 ] && "$SN" --addr "$ADDR" sem info pool | grep -q 'waiters=[0-9]'; then break; fi
	sleep 0.02; i=$((i + 1))
done
echo "end $STATENODE_SESSION" >> "$LOG"`
		const procs = 3
		errs := make(chan error, procs)
		var wg sync.WaitGroup
		for range procs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
				defer cancel()
				cmd := exec.CommandContext(ctx, binPath, "--addr", addr, "sem", "pool", "--permits", "2", "--", "sh", "-c", script)
				cmd.Env = cleanEnv("LOG="+log, "SN="+binPath, "ADDR="+addr)
				if out, err := cmd.CombinedOutput(); err != nil {
					errs <- fmt.Errorf("%w: %s", err, out)
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
		require.Len(t, lines, 2*procs, string(b))
		inside := map[string]bool{}
		most := 0
		for _, l := range lines {
			f := strings.Fields(l)
			switch f[0] {
			case "start":
				require.Equal(t, []string{"permits=1", "sem=pool"}, f[2:], l)
				require.False(t, inside[f[1]], "session %s started twice:\n%s", f[1], b)
				inside[f[1]] = true
			case "end":
				require.True(t, inside[f[1]], "session %s ended without starting:\n%s", f[1], b)
				delete(inside, f[1])
			}
			most = max(most, len(inside))
		}
		require.Equal(t, 2, most, "the most commands inside at once, with 2 permits:\n%s", b)
		info, err := cl.SemaphoreInfo(reqCtx(t), "pool")
		require.NoError(t, err)
		require.Zero(t, info.Used, "every permit is returned")
	})

	t.Run("environment, info and usage", func(t *testing.T) {
		out := ok(t, "--addr", addr, "sem", "env", "--permits", "3", "--count", "2", "--",
			"sh", "-c", `echo permits=$STATENODE_PERMITS sem=$STATENODE_SEM session=$STATENODE_SESSION`)
		require.Equal(t, "2", lineValue(t, out, "permits"))
		require.Equal(t, "env", lineValue(t, out, "sem"))
		require.Positive(t, lineUint(t, out, "session"))

		r := cli(t, runOpts{}, "--addr", addr, "sem", "env", "--permits", "1", "--", "sh", "-c", "exit 5")
		require.Equal(t, 5, r.code, r.stderr)
		require.Equal(t, "permits=0 used=0 holders=- waiters=-\n", ok(t, "--addr", addr, "sem", "info", "env"))

		require.Contains(t, fails(t, runOpts{}, "--addr", addr, "sem", "u", "--permits", "2", "--count", "3", "--", "true"), "--count must be 1 to --permits (2)")
		require.Contains(t, fails(t, runOpts{}, "--addr", addr, "sem", "u", "--permits", "0", "--", "true"), "--permits must be at least 1")
		require.Contains(t, fails(t, runOpts{}, "--addr", addr, "sem", "u", "--", "true"), "--permits")
		require.Contains(t, fails(t, runOpts{}, "--addr", addr, "sem", "u", "--permits", "1"), "<command>")
		// STATENODE_PERMITS is what a command gets, never the flag.
		require.Contains(t, fails(t, runOpts{env: []string{"STATENODE_PERMITS=2"}}, "--addr", addr, "sem", "u", "--", "true"), "--permits")
		help := ok(t, "sem", "acquire", "--help")
		for _, want := range []string{"STATENODE_PERMITS", "Exit status:", "--kill-grace"} {
			require.Contains(t, help, want)
		}
	})

	t.Run("try, wait and mismatch on a full semaphore", func(t *testing.T) {
		s, err := coordination.NewSession(cl, coordination.WithName("test-holder"))
		require.NoError(t, err)
		defer s.Close()
		m, err := coordination.NewSemaphore(s, "full", 2)
		require.NoError(t, err)
		require.NoError(t, m.Acquire(reqCtx(t), 2))
		require.Equal(t, fmt.Sprintf("permits=2 used=2 holders=%d:2 waiters=-\n", s.ID()), ok(t, "--addr", addr, "sem", "info", "full"))

		marker := filepath.Join(t.TempDir(), "ran")
		line := failsWith(t, exitNotAcquired, "--addr", addr, "sem", "--try", "full", "--permits", "2", "--", "touch", marker)
		require.Equal(t, `statenode: semaphore "full" has too few free permits (wanted 1)`, line)
		line = failsWith(t, exitNotAcquired, "--addr", addr, "sem", "--wait", "300ms", "full", "--permits", "2", "--", "touch", marker)
		require.Contains(t, line, `semaphore "full" not granted within 300ms`)
		line = fails(t, runOpts{}, "--addr", addr, "sem", "full", "--permits", "3", "--", "touch", marker)
		require.Contains(t, line, "mismatch")
		require.NoFileExists(t, marker, "the command must not run without the permits")

		// A waiter is granted by the release that frees its permits.
		w := start(t, "sem-waiter", nil, "--addr", addr, "sem", "full", "--permits", "2", "--count", "2", "--",
			"sh", "-c", "echo granted=$STATENODE_PERMITS")
		waitFor(t, 20*time.Second, func() error {
			info, err := cl.SemaphoreInfo(reqCtx(t), "full")
			if err != nil {
				return err
			}
			if len(info.Waiters) != 1 || info.Waiters[0].Permits != 2 {
				return fmt.Errorf("waiters %v", info.Waiters)
			}
			return nil
		})
		require.Regexp(t, fmt.Sprintf(`^permits=2 used=2 holders=%d:2 waiters=\d+:2\n$`, s.ID()), ok(t, "--addr", addr, "sem", "info", "full"))
		requireRunning(t, w, "its permits are held")
		require.NoError(t, m.Release(reqCtx(t), 1))
		requireRunning(t, w, "one permit is still held") // strict: it wants 2
		require.NoError(t, m.Release(reqCtx(t), 1))
		require.Equal(t, "granted=2", w.waitLine("granted=", 20*time.Second))
		require.Equal(t, 0, w.wait(20*time.Second))
	})

	t.Run("session loss stops the command", func(t *testing.T) {
		p := start(t, "sem-lost", nil, "--addr", addr, "sem", "lost", "--permits", "1", "--",
			"sh", "-c", `trap 'echo child-term; exit 0' TERM; echo session=$STATENODE_SESSION; while :; do sleep 0.05; done`)
		id := lineUint(t, p.waitLine("session=", 20*time.Second), "session")
		require.NoError(t, cl.DestroySession(reqCtx(t), id))
		require.Equal(t, "child-term", p.waitLine("child-term", 20*time.Second))
		require.Equal(t, exitSessionLost, p.wait(20*time.Second))
		require.Contains(t, p.stderr(), `semaphore "lost": session lost while the command ran`)
	})
}

func TestBarrierCommands(t *testing.T) {
	addr, cl := coordCluster(t)

	barrierInfo := func(name string) *api.BarrierInfo {
		t.Helper()
		info, err := cl.BarrierInfo(reqCtx(t), name)
		require.NoError(t, err)
		return info
	}
	waitArrived := func(name string, n int) []uint64 {
		t.Helper()
		var arrived []uint64
		waitFor(t, 20*time.Second, func() error {
			info, err := cl.BarrierInfo(reqCtx(t), name)
			if err != nil {
				return err
			}
			if arrived = info.Arrived; len(arrived) != n {
				return fmt.Errorf("arrived %v, want %d", arrived, n)
			}
			return nil
		})
		return arrived
	}

	t.Run("await trips one generation for all parties", func(t *testing.T) {
		const parties = 3
		var ps []*proc
		for i := range parties {
			ps = append(ps, start(t, fmt.Sprintf("await-%d", i), nil, "--addr", addr, "barrier", "await", "gen", "--parties", strconv.Itoa(parties)))
		}
		gens := map[uint64]bool{}
		var arrivals []int
		for _, p := range ps {
			line := p.waitLine("generation=", 30*time.Second)
			require.Regexp(t, `^generation=\d+ arrival=\d+$`, line)
			gens[lineUint(t, line, "generation")] = true
			arrivals = append(arrivals, int(lineUint(t, line, "arrival")))
			require.Equal(t, 0, p.wait(20*time.Second))
		}
		require.Len(t, gens, 1, "every party sees the same generation")
		slices.Sort(arrivals)
		require.Equal(t, []int{0, 1, 2}, arrivals)
		require.Equal(t, "parties=0 double=false arrived=- left=- leaving=false broken=0\n", ok(t, "--addr", addr, "barrier", "info", "gen"))

		// The next generation is a greater one.
		var first uint64
		for g := range gens {
			first = g
		}
		out := ok(t, "--addr", addr, "barrier", "await", "gen", "--parties", "1")
		require.Greater(t, lineUint(t, out, "generation"), first)

		var g api.BarrierResponse
		require.NoError(t, json.Unmarshal([]byte(ok(t, "--addr", addr, "-o", "json", "barrier", "await", "gen", "--parties", "1")), &g))
		require.Positive(t, g.Generation)
		require.Zero(t, g.Arrival)
	})

	t.Run("a dead party breaks the barrier", func(t *testing.T) {
		a := start(t, "broken-a", nil, "--addr", addr, "barrier", "await", "brk", "--parties", "3")
		b := start(t, "broken-b", nil, "--addr", addr, "barrier", "await", "brk", "--parties", "3")
		arrived := waitArrived("brk", 2)
		culprit := arrived[0]
		require.NoError(t, cl.DestroySession(reqCtx(t), culprit))

		codes := map[int]*proc{a.wait(20 * time.Second): a, b.wait(20 * time.Second): b}
		require.Contains(t, codes, exitSessionLost, "the party whose session was destroyed")
		require.Contains(t, codes, exitBroken, "the other party")
		require.Contains(t, codes[exitSessionLost].stderr(), "session lost while waiting")
		require.Equal(t, fmt.Sprintf("statenode: barrier \"brk\" is broken by session %d (statenode barrier reset repairs it)\n", culprit),
			codes[exitBroken].stderr())

		// It stays broken, for newcomers too, until reset.
		require.Equal(t, fmt.Sprintf("parties=3 double=false arrived=- left=- leaving=false broken=%d\n", culprit),
			ok(t, "--addr", addr, "barrier", "info", "brk"))
		line := failsWith(t, exitBroken, "--addr", addr, "barrier", "await", "brk", "--parties", "3", "--wait", "10s")
		require.Contains(t, line, fmt.Sprintf("broken by session %d", culprit))
		require.Equal(t, "OK\n", ok(t, "--addr", addr, "barrier", "reset", "brk"))
		require.Zero(t, barrierInfo("brk").Broken)
		line = failsWith(t, exitNotAcquired, "--addr", addr, "barrier", "await", "brk", "--parties", "3", "--wait", "300ms")
		require.Equal(t, `statenode: barrier "brk": still waiting after 300ms`, line)
		require.Empty(t, barrierInfo("brk").Arrived, "a wait that ran out is withdrawn")
	})

	t.Run("a reset breaks the waiting parties", func(t *testing.T) {
		a := start(t, "reset-a", nil, "--addr", addr, "barrier", "await", "rst", "--parties", "2")
		waitArrived("rst", 1)
		require.Equal(t, "OK\n", ok(t, "--addr", addr, "barrier", "reset", "rst"))
		require.Equal(t, exitBroken, a.wait(20*time.Second))
		require.Regexp(t, `^statenode: barrier "rst" is broken by session \d+ \(statenode barrier reset repairs it\)\n$`, a.stderr())
	})

	t.Run("mismatch and usage", func(t *testing.T) {
		a := start(t, "mismatch-a", nil, "--addr", addr, "barrier", "await", "mm", "--parties", "2")
		waitArrived("mm", 1)
		require.Contains(t, fails(t, runOpts{}, "--addr", addr, "barrier", "await", "mm", "--parties", "3"), "mismatch")
		out := ok(t, "--addr", addr, "barrier", "await", "mm", "--parties", "2")
		require.Equal(t, "1", lineValue(t, out, "arrival"))
		require.Equal(t, 0, a.wait(20*time.Second))

		require.Contains(t, fails(t, runOpts{}, "--addr", addr, "barrier", "await", "u", "--parties", "0"), "--parties must be at least 1")
		require.Contains(t, fails(t, runOpts{}, "--addr", addr, "barrier", "enter", "u", "--parties", "2"), "no command to run")
		require.Contains(t, fails(t, runOpts{}, "--addr", addr, "barrier", "enter", "u", "--parties", "2", "--session", "5", "--", "true"), "exclude")
		require.Contains(t, fails(t, runOpts{}, "--addr", addr, "barrier", "leave", "u"), "--session")
		require.Contains(t, ok(t, "barrier", "await", "--help"), "Exit status:")
	})

	t.Run("double barrier", func(t *testing.T) {
		dir := t.TempDir()
		release := filepath.Join(dir, "release")
		env := []string{"SN=" + binPath, "ADDR=" + addr, "RELEASE=" + release}
		// A's command shows the barrier as it runs: full.
		a := start(t, "enter-a", env, "--addr", addr, "barrier", "enter", "dbl", "--parties", "2", "--",
			"sh", "-c", `echo "a $STATENODE_BARRIER $STATENODE_SESSION $("$SN" --addr "$ADDR" barrier info dbl)"`)
		aSession := waitArrived("dbl", 1)[0]
		requireRunning(t, a, "the barrier is not full")
		// B's command stays inside until the test releases it.
		b := start(t, "enter-b", env, "--addr", addr, "barrier", "enter", "dbl", "--parties", "2", "--",
			"sh", "-c", `echo b-inside; i=0; while [ ! -f "$RELEASE" ] && [ $i -lt 1500 ]; do sleep 0.02; i=$((i + 1)); done; echo b-out`)

		line := a.waitLine("a dbl", 30*time.Second)
		f := strings.Fields(line)
		require.Equal(t, strconv.FormatUint(aSession, 10), f[2], line)
		arrived := strings.Split(lineValue(t, line, "arrived"), ",")
		require.Len(t, arrived, 2, "A's command ran before both parties entered: %s", line)
		require.Equal(t, "true", lineValue(t, line, "leaving"), line)
		b.waitLine("b-inside", 30*time.Second)

		// A has left, but waits for B.
		waitFor(t, 20*time.Second, func() error {
			if left := barrierInfo("dbl").Left; !slices.Contains(left, aSession) {
				return fmt.Errorf("left %v", left)
			}
			return nil
		})
		requireRunning(t, a, "B has not left")
		require.NoError(t, os.WriteFile(release, nil, 0o644))
		b.waitLine("b-out", 30*time.Second)
		require.Equal(t, 0, a.wait(20*time.Second), a.stderr())
		require.Equal(t, 0, b.wait(20*time.Second), b.stderr())
		require.Equal(t, "parties=0 double=false arrived=- left=- leaving=false broken=0\n", ok(t, "--addr", addr, "barrier", "info", "dbl"))
	})

	t.Run("double barrier for a session kept elsewhere", func(t *testing.T) {
		s1, err := coordination.NewSession(cl)
		require.NoError(t, err)
		defer s1.Close()
		s2, err := coordination.NewSession(cl)
		require.NoError(t, err)
		defer s2.Close()
		id1, id2 := strconv.FormatUint(s1.ID(), 10), strconv.FormatUint(s2.ID(), 10)

		e1 := start(t, "enter-1", nil, "--addr", addr, "barrier", "enter", "ext", "--parties", "2", "--session", id1)
		waitArrived("ext", 1)
		out := ok(t, "--addr", addr, "barrier", "enter", "ext", "--parties", "2", "--session", id2)
		require.Regexp(t, `^generation=\d+ arrival=1\n$`, out)
		require.Equal(t, "0", lineValue(t, e1.waitLine("generation=", 20*time.Second), "arrival"))
		require.Equal(t, 0, e1.wait(20*time.Second))

		line := failsWith(t, exitNotAcquired, "--addr", addr, "barrier", "leave", "ext", "--session", id1, "--wait", "300ms")
		require.Contains(t, line, "still leaving after 300ms")
		require.Equal(t, "OK\n", ok(t, "--addr", addr, "barrier", "leave", "ext", "--session", id2))
		require.Zero(t, barrierInfo("ext").Parties, "the barrier is idle once both left")

		line = failsWith(t, exitSessionLost, "--addr", addr, "barrier", "enter", "ext", "--parties", "2", "--session", "12345")
		require.Contains(t, line, "session not found")
	})
}

func TestLatchCommands(t *testing.T) {
	addr, cl := coordCluster(t)

	require.Equal(t, "initial=3 count=3\n", ok(t, "--addr", addr, "latch", "create", "l", "--count", "3"))
	require.Equal(t, "initial=3 count=3\n", ok(t, "--addr", addr, "latch", "create", "l", "--count", "3"), "creating again changes nothing")
	require.Contains(t, fails(t, runOpts{}, "--addr", addr, "latch", "create", "l", "--count", "4"), "mismatch")

	w := start(t, "latch-await", nil, "--addr", addr, "latch", "await", "l")
	line := failsWith(t, exitNotAcquired, "--addr", addr, "latch", "await", "l", "--wait", "300ms")
	require.Equal(t, `statenode: latch "l" not open within 300ms`, line)
	for _, want := range []string{"count=2\n", "count=1\n"} {
		require.Equal(t, want, ok(t, "--addr", addr, "latch", "countdown", "l"))
	}
	require.Equal(t, "initial=3 count=1\n", ok(t, "--addr", addr, "latch", "get", "l"))
	requireRunning(t, w, "the count is 1")
	require.Equal(t, "count=0\n", ok(t, "--addr", addr, "latch", "countdown", "l"))
	require.Equal(t, "initial=3 count=0", w.waitLine("count=", 20*time.Second))
	require.Equal(t, 0, w.wait(20*time.Second))
	require.Equal(t, "count=0\n", ok(t, "--addr", addr, "latch", "countdown", "l"), "never below zero")
	require.Equal(t, "initial=3 count=0\n", ok(t, "--addr", addr, "latch", "await", "l", "--wait", "5s"), "an open latch returns at once")

	// The latch outlives the sessions that counted it down; rm deletes it
	// and fails its waiters.
	require.Equal(t, "initial=1 count=1\n", ok(t, "--addr", addr, "latch", "create", "r", "--count", "1"))
	w = start(t, "latch-await-rm", nil, "--addr", addr, "latch", "await", "r")
	require.Equal(t, "OK\n", ok(t, "--addr", addr, "latch", "rm", "r"))
	require.Equal(t, 1, w.wait(20*time.Second))
	require.Equal(t, "statenode: latch not found: r\n", w.stderr())
	require.Equal(t, "statenode: latch not found: r", fails(t, runOpts{}, "--addr", addr, "latch", "get", "r"))
	require.Equal(t, "statenode: latch not found: r", fails(t, runOpts{}, "--addr", addr, "latch", "countdown", "r"))

	// With a session kept by another process, a request ID counts once.
	s, err := coordination.NewSession(cl, coordination.WithName("test-keeper"))
	require.NoError(t, err)
	defer s.Close()
	id := strconv.FormatUint(s.ID(), 10)
	ok(t, "--addr", addr, "latch", "create", "x", "--count", "2")
	require.Equal(t, "count=1\n", ok(t, "--addr", addr, "latch", "countdown", "x", "--session", id, "--request-id", "7"))
	require.Equal(t, "count=1\n", ok(t, "--addr", addr, "latch", "countdown", "x", "--session", id, "--request-id", "7"), "a retry counts once")
	require.Equal(t, "count=0\n", ok(t, "--addr", addr, "latch", "countdown", "x", "--session", id, "--request-id", "8"))
	require.Contains(t, fails(t, runOpts{}, "--addr", addr, "latch", "countdown", "x", "--request-id", "9"), "--request-id needs --session")
	require.Equal(t, "statenode: session not found: 12345", fails(t, runOpts{}, "--addr", addr, "latch", "countdown", "x", "--session", "12345"))
	var info api.LatchInfo
	require.NoError(t, json.Unmarshal([]byte(ok(t, "--addr", addr, "-o", "json", "latch", "get", "x")), &info))
	require.Equal(t, api.LatchInfo{Name: "x", Initial: 2, Count: 0}, info)

	// Ephemeral keys: kv put --session.
	require.Equal(t, "statenode: session not found: 12345", fails(t, runOpts{}, "--addr", addr, "kv", "put", "eph", "v", "--session", "12345"))
	_, err = cl.Get(reqCtx(t), "eph")
	require.ErrorIs(t, err, client.ErrKeyNotFound, "nothing is written for a missing session")
	require.Regexp(t, `^OK revision=\d+\n$`, ok(t, "--addr", addr, "kv", "put", "eph", "v", "--session", id))
	require.Equal(t, "v\n", ok(t, "--addr", addr, "kv", "get", "eph"))
	// STATENODE_SESSION (set by lock and sem for their command) does not
	// make a put ephemeral.
	r := cli(t, runOpts{env: []string{"STATENODE_SESSION=" + id}}, "--addr", addr, "kv", "put", "plain", "v")
	require.Equal(t, 0, r.code, r.stderr)
	require.NoError(t, s.Close())
	require.Equal(t, "statenode: key not found: eph", fails(t, runOpts{}, "--addr", addr, "kv", "get", "eph"), "the key goes with its session")
	require.Equal(t, "v\n", ok(t, "--addr", addr, "kv", "get", "plain"))
}
