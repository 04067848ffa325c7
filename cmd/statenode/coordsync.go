package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/statenode/statenode/api"
	"github.com/statenode/statenode/client"
	"github.com/statenode/statenode/coordination"
)

// Semaphores, barriers and countdown latches from the shell (statenode
// sem, barrier, latch).

// exitBroken is the exit status of a barrier command whose barrier broke:
// a registered party's session ended (or someone reset it) while this one
// waited. The message names that session.
const exitBroken = 4

// Environment of the commands run by sem and barrier enter (with
// STATENODE_SESSION).
const (
	envSem     = "STATENODE_SEM"
	envPermits = "STATENODE_PERMITS"
	envBarrier = "STATENODE_BARRIER"
)

// briefSessionTTL is the TTL of the sessions that commands create for one
// request (latch create, countdown and rm, barrier reset): the server
// needs a session to deduplicate the request; it is destroyed right after.
const briefSessionTTL = 10 * time.Second

// Request IDs the commands send on behalf of a session they do not own
// (--session) live in the upper half of the ID space, which
// coordination.Session, counting up from 1, never reaches: they cannot
// collide with the requests of the process that keeps the session. A
// --request-id N is sent as userRequestIDBit|N; the others are random
// with randRequestIDBit set too.
const (
	userRequestIDBit = 1 << 63
	randRequestIDBit = 1 << 62
	maxUserRequestID = randRequestIDBit - 1
)

// randomRequestID is a request ID for one request of this process: the
// client retries it with the same ID, so the server applies it once.
func randomRequestID() uint64 { return userRequestIDBit | randRequestIDBit | rand.Uint64()>>2 }

// serverMessage is the server's own message in err (an *client.Error), or
// err on one line.
func serverMessage(err error) string {
	var ce *client.Error
	if errors.As(err, &ce) && ce.Message != "" {
		return ce.Message
	}
	return oneLine(err)
}

// withWait bounds ctx by wait (0: not at all).
func withWait(ctx context.Context, wait time.Duration) (context.Context, context.CancelFunc) {
	if wait > 0 {
		return context.WithTimeout(ctx, wait)
	}
	return context.WithCancel(ctx)
}

// waitTimedOut reports whether a blocking call that failed with err ran
// out of time (the server's wait_timeout, or ctx ended first).
func waitTimedOut(ctx context.Context, err error) bool {
	return errors.Is(err, client.ErrWaitTimeout) || errors.Is(err, coordination.ErrWaitTimeout) || ctx.Err() != nil
}

// withBriefSession runs f with a client and a session created for it
// (labelled label), then destroys the session.
func (rc *runContext) withBriefSession(label string, f func(cl *client.Client, session uint64) error) error {
	cl, err := rc.newClient()
	if err != nil {
		return err
	}
	defer cl.Close()
	sess, err := rc.newSession(cl, briefSessionTTL, sessionLabel(label))
	if err != nil {
		return err
	}
	defer rc.closeSession(sess)
	return f(cl, sess.ID())
}

// idList is ids joined by commas, or "-".
func idList(ids []uint64) string {
	if len(ids) == 0 {
		return "-"
	}
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = strconv.FormatUint(id, 10)
	}
	return strings.Join(s, ",")
}

// ---------------------------------------------------------------- sem

// semCmd groups the semaphore commands.
type semCmd struct {
	Acquire semAcquireCmd `cmd:"" default:"withargs" help:"Run a command while holding permits of semaphore NAME (the default: statenode sem NAME --permits N -- CMD)."`
	Info    semInfoCmd    `cmd:"" help:"Print the size, holders and waiters of semaphore NAME."`
}

type semAcquireCmd struct {
	Name      string        `arg:"" help:"Semaphore name."`
	Command   []string      `arg:"" placeholder:"-- CMD [ARG...]" help:"Command to run while holding the permits, after --."`
	Permits   int           `name:"permits" required:"" env:"-" placeholder:"N" help:"The semaphore's number of permits; every user of NAME must give the same."`
	Count     int           `name:"count" default:"1" placeholder:"K" help:"Permits to hold while the command runs (1 to --permits)."`
	TTL       time.Duration `name:"ttl" default:"10s" help:"Session TTL: how long the permits outlive this process if it dies without returning them."`
	Wait      time.Duration `name:"wait" help:"Give up (exit status 2) if the permits are not granted within this long (0: wait until granted)."`
	Try       bool          `name:"try" help:"Do not wait: exit with status 2 at once if the permits are not free."`
	KillGrace time.Duration `name:"kill-grace" default:"5s" help:"If the session is lost, time between SIGTERM and SIGKILL to the command."`
}

// Help is the detail shown by statenode sem --help.
func (semAcquireCmd) Help() string {
	return `Creates a session, waits in FIFO order for --count of the --permits
permits of semaphore NAME, then runs the command with these variables
added to its environment:

  STATENODE_PERMITS   the permits held (--count)
  STATENODE_SEM       the semaphore name
  STATENODE_SESSION   the session ID

At most --permits permits are held at once across all users of NAME, so
at most --permits/--count commands run at once. A request at the head of
the queue is not overtaken by smaller ones behind it. Every user must
give the same --permits (exit status 1 otherwise). --permits is not read
from STATENODE_PERMITS: that variable is what the command gets.

The command is run as by statenode lock (see statenode lock --help):
signals are forwarded to its process group; when it exits the permits
are returned and the session destroyed; if the session is lost while it
runs, it gets SIGTERM, then SIGKILL after --kill-grace.

Exit status:
  the command's   when it ran and the permits were held throughout
                  (128+N if signal N ended it)
  1               error before the command ran (arguments, cluster,
                  another --permits than the semaphore's)
  2               permits not acquired: not free (--try), --wait ran
                  out, or interrupted while waiting
  3               session lost while waiting or while the command ran
                  (the command was stopped)
  127             the command could not be started`
}

// Run acquires the permits, runs the command and returns them.
func (c *semAcquireCmd) Run(rc *runContext) error {
	f := holdFlags{TTL: c.TTL, Wait: c.Wait, Try: c.Try, KillGrace: c.KillGrace}
	if err := f.validate("statenode sem NAME --permits N -- CMD ARGS...", c.Command); err != nil {
		return err
	}
	switch {
	case c.Permits < 1:
		return fmt.Errorf("%w: --permits must be at least 1", errUsage)
	case c.Count < 1 || c.Count > c.Permits:
		return fmt.Errorf("%w: --count must be 1 to --permits (%d)", errUsage, c.Permits)
	}
	return rc.runHolding(f, "sem "+c.Name, c.Command, func(s *coordination.Session) (held, error) {
		m, err := coordination.NewSemaphore(s, c.Name, c.Permits)
		if err != nil {
			return nil, err
		}
		return &heldPermits{m: m, count: c.Count, session: s.ID()}, nil
	})
}

// heldPermits are the permits held by sem's command.
type heldPermits struct {
	m       *coordination.Semaphore
	count   int
	session uint64
}

func (h *heldPermits) what() string { return fmt.Sprintf("semaphore %q", h.m.Name()) }

func (h *heldPermits) acquire(ctx context.Context, try bool) error {
	var err error
	if try {
		err = h.m.TryAcquire(ctx, h.count)
	} else {
		err = h.m.Acquire(ctx, h.count)
	}
	if errors.Is(err, coordination.ErrMismatch) {
		return fmt.Errorf("semaphore %q: %s", h.m.Name(), serverMessage(err))
	}
	return err
}

func (h *heldPermits) busy(err error) (string, bool) {
	return fmt.Sprintf("semaphore %q has too few free permits (wanted %d)", h.m.Name(), h.count), errors.Is(err, coordination.ErrNoPermits)
}

func (h *heldPermits) env() []string {
	return []string{
		envPermits + "=" + strconv.Itoa(h.count),
		envSem + "=" + h.m.Name(),
		envSession + "=" + strconv.FormatUint(h.session, 10),
	}
}

func (h *heldPermits) lost() string { return "other processes may have held its permits since" }

func (h *heldPermits) release(ctx context.Context) error { return h.m.Release(ctx, 0) }

type semInfoCmd struct {
	Name string `arg:"" help:"Semaphore name."`
}

// Run prints "permits=N used=U holders=ID:K,... waiters=ID:K,..." (text;
// "-" for none, waiters in grant order) or the SemaphoreInfo (json).
// permits=0: nobody holds or waits.
func (c *semInfoCmd) Run(rc *runContext) error {
	cl, ctx, done, err := rc.connect()
	if err != nil {
		return err
	}
	defer done()
	info, err := cl.SemaphoreInfo(ctx, c.Name)
	if err != nil {
		return err
	}
	if rc.g.Output == "json" {
		return writeJSON(rc.stdout, info)
	}
	holds := func(hs []api.SemaphoreHold) string {
		if len(hs) == 0 {
			return "-"
		}
		s := make([]string, len(hs))
		for i, h := range hs {
			s[i] = fmt.Sprintf("%d:%d", h.Session, h.Permits)
		}
		return strings.Join(s, ",")
	}
	_, err = fmt.Fprintf(rc.stdout, "permits=%d used=%d holders=%s waiters=%s\n", info.Permits, info.Used, holds(info.Holders), holds(info.Waiters))
	return err
}

// ---------------------------------------------------------------- barrier

// barrierCmd groups the barrier commands.
type barrierCmd struct {
	Await barrierAwaitCmd `cmd:"" help:"Wait at cyclic barrier NAME until --parties parties arrived; print the generation."`
	Enter barrierEnterCmd `cmd:"" help:"Enter double barrier NAME: run a command once --parties parties entered, then leave."`
	Leave barrierLeaveCmd `cmd:"" help:"Leave double barrier NAME for session --session and wait until every party left."`
	Reset barrierResetCmd `cmd:"" help:"Repair broken barrier NAME (a barrier that is not broken: break its waiting parties)."`
	Info  barrierInfoCmd  `cmd:"" help:"Print the parties, arrivals and state of barrier NAME."`
}

// barrierBrokenRE finds the culprit in a broken barrier's message (the
// state machine's wording: "... broken: session N ended ...", "... was
// reset by session N").
var barrierBrokenRE = regexp.MustCompile(`(?:broken: session|reset by session) (\d+)`)

// barrierFailed turns the error of a barrier request by session own into
// the command's exit: exitBroken naming the culprit, exitSessionLost if
// the session ended (also when the culprit is own), exitNotAcquired when
// the wait ran out (timedOut) or was interrupted (sig).
func (rc *runContext) barrierFailed(cl *client.Client, name string, own uint64, waiting string, wait time.Duration, sig os.Signal, timedOut bool, err error) error {
	broken := errors.Is(err, coordination.ErrBroken) || errors.Is(err, client.ErrBroken)
	lost := errors.Is(err, coordination.ErrSessionExpired) || errors.Is(err, client.ErrSessionNotFound)
	switch {
	case broken:
		var culprit uint64
		if m := barrierBrokenRE.FindStringSubmatch(err.Error()); m != nil {
			culprit, _ = strconv.ParseUint(m[1], 10, 64)
		}
		if culprit == 0 {
			ctx, cancel := rc.requestContext()
			if info, ierr := cl.BarrierInfo(ctx, name); ierr == nil {
				culprit = info.Broken
			}
			cancel()
		}
		switch culprit {
		case own:
			return &exitError{exitSessionLost, fmt.Errorf("barrier %q: session %d lost while %s", name, own, waiting)}
		case 0:
			return &exitError{exitBroken, fmt.Errorf("barrier %q is broken: %s", name, serverMessage(err))}
		}
		return &exitError{exitBroken, fmt.Errorf("barrier %q is broken by session %d (statenode barrier reset repairs it)", name, culprit)}
	case lost:
		return &exitError{exitSessionLost, fmt.Errorf("barrier %q: session lost while %s: %s", name, waiting, serverMessage(err))}
	case sig != nil:
		return &exitError{exitNotAcquired, fmt.Errorf("barrier %q: interrupted (%s) while %s", name, sig, waiting)}
	case timedOut && wait > 0:
		return &exitError{exitNotAcquired, fmt.Errorf("barrier %q: still %s after %s", name, waiting, wait)}
	case errors.Is(err, coordination.ErrMismatch) || errors.Is(err, client.ErrMismatch):
		return fmt.Errorf("barrier %q: %s", name, serverMessage(err))
	}
	return err
}

// printGeneration prints "generation=G arrival=A" (text) or the
// BarrierResponse (json).
func printGeneration(rc *runContext, g api.BarrierResponse) error {
	if rc.g.Output == "json" {
		return writeJSON(rc.stdout, g)
	}
	_, err := fmt.Fprintf(rc.stdout, "generation=%d arrival=%d\n", g.Generation, g.Arrival)
	return err
}

const barrierExitStatus = `Exit status:
  0   done
  1   error (arguments, cluster, another --parties than the barrier's)
  2   --wait ran out or interrupted while waiting (the wait is withdrawn)
  3   session lost (expired, destroyed) while waiting
  4   the barrier is broken: a party's session ended while registered,
      or someone reset it; the message names that session. It stays
      broken until statenode barrier reset NAME.`

type barrierAwaitCmd struct {
	Name    string        `arg:"" help:"Barrier name."`
	Parties int           `name:"parties" required:"" placeholder:"N" help:"Parties of the barrier; every party must give the same."`
	Wait    time.Duration `name:"wait" help:"Give up (exit status 2) if the barrier does not trip within this long (0: wait until it does)."`
	TTL     time.Duration `name:"ttl" default:"10s" help:"Session TTL: how long this party stays registered if the process dies (then the barrier breaks)."`
}

// Help is the detail shown by statenode barrier await --help.
func (barrierAwaitCmd) Help() string {
	return `Creates a session and registers it at cyclic barrier NAME. When the
--parties-th party arrives the generation trips: every party prints
"generation=G arrival=A" and exits 0. G is the same for all of them and
grows from generation to generation; A is the party's arrival order, 0
for the first, N-1 for the one that tripped it.

` + barrierExitStatus
}

// Run waits at the barrier and prints the generation.
func (c *barrierAwaitCmd) Run(rc *runContext) error {
	switch {
	case c.Parties < 1:
		return fmt.Errorf("%w: --parties must be at least 1", errUsage)
	case c.TTL < minSessionTTL:
		return fmt.Errorf("%w: --ttl must be at least %s", errUsage, minSessionTTL)
	case c.Wait < 0:
		return fmt.Errorf("%w: --wait must not be negative", errUsage)
	}
	sigs, stop := waitSignal()
	defer stop()
	cl, err := rc.newClient()
	if err != nil {
		return err
	}
	defer cl.Close()
	sess, err := rc.newSession(cl, c.TTL, sessionLabel("barrier "+c.Name))
	if err != nil {
		return err
	}
	defer rc.closeSession(sess)
	b, err := coordination.NewBarrier(sess, c.Name, c.Parties)
	if err != nil {
		return err
	}
	var (
		gen      coordination.Generation
		timedOut bool
	)
	sig, err := interruptible(rc.ctx, sigs, func(ctx context.Context) error {
		ctx, cancel := withWait(ctx, c.Wait)
		defer cancel()
		var err error
		gen, err = b.Await(ctx)
		timedOut = err != nil && waitTimedOut(ctx, err)
		return err
	})
	if err != nil {
		return rc.barrierFailed(cl, c.Name, sess.ID(), "waiting", c.Wait, sig, timedOut, err)
	}
	return printGeneration(rc, api.BarrierResponse{Generation: gen.Generation, Arrival: int64(gen.Arrival)})
}

type barrierEnterCmd struct {
	Name      string        `arg:"" help:"Double barrier name."`
	Command   []string      `arg:"" optional:"" placeholder:"-- CMD [ARG...]" help:"Command to run between entering and leaving, after --."`
	Parties   int           `name:"parties" required:"" placeholder:"N" help:"Parties of the barrier; every party must give the same."`
	Wait      time.Duration `name:"wait" help:"Give up (exit status 2) if --parties parties have not entered within this long (0: wait until they have)."`
	Session   uint64        `name:"session" env:"-" placeholder:"ID" help:"Enter for this existing session instead of running a command; leave with statenode barrier leave --session."`
	TTL       time.Duration `name:"ttl" default:"10s" help:"Session TTL: how long this party stays inside if the process dies (then the barrier breaks)."`
	KillGrace time.Duration `name:"kill-grace" default:"5s" help:"If the session is lost, time between SIGTERM and SIGKILL to the command."`
}

// Help is the detail shown by statenode barrier enter --help.
func (barrierEnterCmd) Help() string {
	return `Creates a session, enters double barrier NAME and waits until --parties
parties entered; then runs the command with STATENODE_BARRIER (the name)
and STATENODE_SESSION in its environment, as statenode lock runs its
command (signals forwarded; SIGTERM, then SIGKILL after --kill-grace, if
the session is lost). When the command exits, the party leaves and waits
until every party left (a second SIGINT or SIGTERM stops that wait: the
party has left all the same); then the session is destroyed. Exit status:
the command's, or as below.

With --session ID and no command, enters for that session (kept alive by
another process) and prints "generation=G arrival=A" once the barrier
filled; statenode barrier leave --session ID leaves later.

` + barrierExitStatus + `
  127 the command could not be started (the party left)`
}

// Run enters, runs the command and leaves; with --session it only enters.
func (c *barrierEnterCmd) Run(rc *runContext) error {
	switch {
	case c.Parties < 1:
		return fmt.Errorf("%w: --parties must be at least 1", errUsage)
	case c.Wait < 0:
		return fmt.Errorf("%w: --wait must not be negative", errUsage)
	case c.Session != 0 && len(c.Command) > 0:
		return fmt.Errorf("%w: --session and a command exclude each other", errUsage)
	case c.Session != 0:
		return rc.barrierRequest(c.Name, c.Session, "entering", c.Wait,
			api.BarrierRequest{Action: api.BarrierEnter, Parties: int64(c.Parties)})
	}
	f := holdFlags{TTL: c.TTL, Wait: c.Wait, KillGrace: c.KillGrace}
	if err := f.validate("statenode barrier enter NAME --parties N -- CMD ARGS... (or --session ID)", c.Command); err != nil {
		return err
	}
	sigs, stop := waitSignal()
	defer stop()
	cl, err := rc.newClient()
	if err != nil {
		return err
	}
	defer cl.Close()
	sess, err := rc.newSession(cl, c.TTL, sessionLabel("barrier "+c.Name))
	if err != nil {
		return err
	}
	defer rc.closeSession(sess)
	d, err := coordination.NewDoubleBarrier(sess, c.Name, c.Parties)
	if err != nil {
		return err
	}
	var timedOut bool
	sig, err := interruptible(rc.ctx, sigs, func(ctx context.Context) error {
		ctx, cancel := withWait(ctx, c.Wait)
		defer cancel()
		err := d.Enter(ctx)
		timedOut = err != nil && waitTimedOut(ctx, err)
		return err
	})
	if err != nil {
		return rc.barrierFailed(cl, c.Name, sess.ID(), "entering", c.Wait, sig, timedOut, err)
	}
	what := fmt.Sprintf("barrier %q", c.Name)
	status, runErr := 0, error(nil)
	if sig == nil { // else a signal raced with the entry: leave at once
		status, runErr = rc.runChild(sess, sigs, child{what: what, command: c.Command, killGrace: c.KillGrace,
			env:  []string{envBarrier + "=" + c.Name, envSession + "=" + strconv.FormatUint(sess.ID(), 10)},
			lost: "the barrier is broken for the other parties"})
		var ee *exitError
		if errors.As(runErr, &ee) && ee.code == exitSessionLost {
			return runErr
		}
	}
	leaveSig, err := interruptible(rc.ctx, sigs, d.Leave)
	switch {
	case err != nil && leaveSig != nil:
		fmt.Fprintf(rc.stderr, "statenode: %s: interrupted (%s) while waiting for the other parties to leave; this one has left\n", what, leaveSig)
	case err != nil:
		return rc.barrierFailed(cl, c.Name, sess.ID(), "leaving", 0, nil, false, err)
	}
	switch {
	case runErr != nil:
		return runErr
	case sig != nil:
		return &exitError{exitNotAcquired, fmt.Errorf("%s: interrupted (%s); the command was not run", what, sig)}
	case status != 0:
		return &exitError{code: status}
	}
	return nil
}

// barrierRequest sends a blocking barrier request (enter, leave) for
// session, a session this process does not own, and prints its outcome.
func (rc *runContext) barrierRequest(name string, session uint64, waiting string, wait time.Duration, req api.BarrierRequest) error {
	sigs, stop := waitSignal()
	defer stop()
	cl, err := rc.newClient()
	if err != nil {
		return err
	}
	defer cl.Close()
	req.Session, req.RequestID = session, randomRequestID()
	var (
		res      *api.BarrierResponse
		timedOut bool
	)
	sig, err := interruptible(rc.ctx, sigs, func(ctx context.Context) error {
		ctx, cancel := withWait(ctx, wait)
		defer cancel()
		var err error
		res, err = cl.Barrier(ctx, name, req)
		timedOut = err != nil && waitTimedOut(ctx, err)
		return err
	})
	if err != nil {
		return rc.barrierFailed(cl, name, session, waiting, wait, sig, timedOut, err)
	}
	if req.Action == api.BarrierLeave && rc.g.Output != "json" {
		_, err = fmt.Fprintln(rc.stdout, "OK")
		return err
	}
	return printGeneration(rc, *res)
}

type barrierLeaveCmd struct {
	Name    string        `arg:"" help:"Double barrier name."`
	Session uint64        `name:"session" required:"" env:"-" placeholder:"ID" help:"The session that entered (statenode barrier enter --session)."`
	Wait    time.Duration `name:"wait" help:"Stop waiting (exit status 2) if not every party has left within this long; the session has left all the same (0: wait)."`
}

// Run leaves for --session, waits until every party left and prints "OK"
// (text) or the BarrierResponse (json).
func (c *barrierLeaveCmd) Run(rc *runContext) error {
	switch {
	case c.Session == 0:
		return fmt.Errorf("%w: 0 is not a session ID", errUsage)
	case c.Wait < 0:
		return fmt.Errorf("%w: --wait must not be negative", errUsage)
	}
	return rc.barrierRequest(c.Name, c.Session, "leaving", c.Wait, api.BarrierRequest{Action: api.BarrierLeave})
}

type barrierResetCmd struct {
	Name string `arg:"" help:"Barrier name."`
}

// Run resets the barrier and prints "OK".
func (c *barrierResetCmd) Run(rc *runContext) error {
	err := rc.withBriefSession("barrier reset "+c.Name, func(cl *client.Client, session uint64) error {
		ctx, cancel := rc.requestContext()
		defer cancel()
		_, err := cl.Barrier(ctx, c.Name, api.BarrierRequest{Session: session, RequestID: randomRequestID(), Action: api.BarrierReset})
		return err
	})
	if err != nil {
		return err
	}
	if rc.g.Output == "json" {
		return writeJSON(rc.stdout, map[string]string{"reset": c.Name})
	}
	_, err = fmt.Fprintln(rc.stdout, "OK")
	return err
}

type barrierInfoCmd struct {
	Name string `arg:"" help:"Barrier name."`
}

// Run prints "parties=N double=B arrived=IDs left=IDs leaving=B broken=ID"
// (text; "-" for no IDs, broken=0: not broken) or the BarrierInfo (json).
// parties=0: the barrier is idle.
func (c *barrierInfoCmd) Run(rc *runContext) error {
	cl, ctx, done, err := rc.connect()
	if err != nil {
		return err
	}
	defer done()
	info, err := cl.BarrierInfo(ctx, c.Name)
	if err != nil {
		return err
	}
	if rc.g.Output == "json" {
		return writeJSON(rc.stdout, info)
	}
	_, err = fmt.Fprintf(rc.stdout, "parties=%d double=%t arrived=%s left=%s leaving=%t broken=%d\n",
		info.Parties, info.Double, idList(info.Arrived), idList(info.Left), info.Leaving, info.Broken)
	return err
}

// ---------------------------------------------------------------- latch

// latchCmd groups the countdown latch commands.
type latchCmd struct {
	Create    latchCreateCmd    `cmd:"" help:"Create latch NAME with count --count (again with the same count: no change)."`
	Countdown latchCountdownCmd `cmd:"" name:"countdown" help:"Count latch NAME down by one; print the new count."`
	Await     latchAwaitCmd     `cmd:"" help:"Wait until latch NAME reaches zero."`
	Get       latchGetCmd       `cmd:"" help:"Print the count of latch NAME."`
	Rm        latchRmCmd        `cmd:"" help:"Delete latch NAME; its waiters fail."`
}

// latchError words the errors of the latch commands.
func latchError(name string, err error) error {
	switch {
	case errors.Is(err, client.ErrObjectNotFound):
		return fmt.Errorf("latch not found: %s", name)
	case errors.Is(err, client.ErrMismatch):
		return fmt.Errorf("latch %q: %s", name, serverMessage(err))
	}
	return err
}

// printLatch prints "initial=I count=C" (text) or the LatchInfo (json).
func printLatch(rc *runContext, l *api.LatchInfo) error {
	if rc.g.Output == "json" {
		return writeJSON(rc.stdout, l)
	}
	_, err := fmt.Fprintf(rc.stdout, "initial=%d count=%d\n", l.Initial, l.Count)
	return err
}

type latchCreateCmd struct {
	Name  string `arg:"" help:"Latch name."`
	Count int64  `name:"count" required:"" placeholder:"C" help:"Initial count (0: open at once)."`
}

// Run creates the latch and prints "initial=C count=N" (text) or the
// LatchInfo (json). A latch is not tied to any session: it lives until
// latch rm.
func (c *latchCreateCmd) Run(rc *runContext) error {
	if c.Count < 0 {
		return fmt.Errorf("%w: --count must not be negative", errUsage)
	}
	var info *api.LatchInfo
	err := rc.withBriefSession("latch create "+c.Name, func(cl *client.Client, session uint64) error {
		ctx, cancel := rc.requestContext()
		defer cancel()
		var err error
		info, err = cl.CreateLatch(ctx, c.Name, api.LatchRequest{Session: session, RequestID: randomRequestID(), Count: c.Count})
		return err
	})
	if err != nil {
		return latchError(c.Name, err)
	}
	return printLatch(rc, info)
}

type latchCountdownCmd struct {
	Name      string `arg:"" help:"Latch name."`
	Session   uint64 `name:"session" env:"-" placeholder:"ID" help:"Count down for this existing session (for --request-id)."`
	RequestID uint64 `name:"request-id" placeholder:"ID" help:"With --session: a number unique among this session's count-downs; a retry with the same one counts once."`
}

// Help is the detail shown by statenode latch countdown --help.
func (latchCountdownCmd) Help() string {
	return `Each count-down is applied exactly once per session and request ID, so
a retried request never counts twice. To make a rerun of the command
itself (after a timeout, say) count once, give the session of a process
that keeps it alive (such as $STATENODE_SESSION in a command run by
statenode lock or sem) and a --request-id of 1 to 4611686018427387903
that is unique among its count-downs. Without --session, a session is
created for the request and destroyed after it.`
}

// Run counts down and prints "count=N" (text) or the LatchInfo (json).
func (c *latchCountdownCmd) Run(rc *runContext) error {
	switch {
	case c.RequestID != 0 && c.Session == 0:
		return fmt.Errorf("%w: --request-id needs --session (request IDs are remembered per session)", errUsage)
	case c.RequestID > maxUserRequestID:
		return fmt.Errorf("%w: --request-id must be at most %d", errUsage, uint64(maxUserRequestID))
	}
	var info *api.LatchInfo
	countDown := func(cl *client.Client, session, reqID uint64) error {
		ctx, cancel := rc.requestContext()
		defer cancel()
		var err error
		info, err = cl.CountDownLatch(ctx, c.Name, api.LatchRequest{Session: session, RequestID: reqID})
		return err
	}
	var err error
	if c.Session == 0 {
		err = rc.withBriefSession("latch countdown "+c.Name, func(cl *client.Client, session uint64) error {
			return countDown(cl, session, randomRequestID())
		})
	} else {
		reqID := randomRequestID()
		if c.RequestID != 0 {
			reqID = userRequestIDBit | c.RequestID
		}
		var cl *client.Client
		if cl, err = rc.newClient(); err != nil {
			return err
		}
		defer cl.Close()
		err = countDown(cl, c.Session, reqID)
		if errors.Is(err, client.ErrSessionNotFound) {
			return fmt.Errorf("session not found: %d", c.Session)
		}
	}
	if err != nil {
		return latchError(c.Name, err)
	}
	if rc.g.Output == "json" {
		return writeJSON(rc.stdout, info)
	}
	_, err = fmt.Fprintf(rc.stdout, "count=%d\n", info.Count)
	return err
}

type latchAwaitCmd struct {
	Name string        `arg:"" help:"Latch name."`
	Wait time.Duration `name:"wait" help:"Give up (exit status 2) if the count is not zero within this long (0: wait until it is)."`
}

// Help is the detail shown by statenode latch await --help.
func (latchAwaitCmd) Help() string {
	return `Waits (server-side, without polling) until latch NAME reaches zero,
then prints "initial=I count=0" and exits 0. Needs no session.

Exit status:
  0   the count is zero
  1   error (no such latch, or it was deleted while waiting; cluster)
  2   --wait ran out, or interrupted while waiting`
}

// Run waits until the count is zero and prints the latch.
func (c *latchAwaitCmd) Run(rc *runContext) error {
	if c.Wait < 0 {
		return fmt.Errorf("%w: --wait must not be negative", errUsage)
	}
	sigs, stop := waitSignal()
	defer stop()
	cl, err := rc.newClient()
	if err != nil {
		return err
	}
	defer cl.Close()
	var (
		info     *api.LatchInfo
		timedOut bool
	)
	sig, err := interruptible(rc.ctx, sigs, func(ctx context.Context) error {
		ctx, cancel := withWait(ctx, c.Wait)
		defer cancel()
		var err error
		info, err = cl.AwaitLatch(ctx, c.Name)
		timedOut = err != nil && waitTimedOut(ctx, err)
		return err
	})
	switch {
	case err == nil:
		return printLatch(rc, info)
	case errors.Is(err, client.ErrObjectNotFound):
		return latchError(c.Name, err)
	case sig != nil:
		return &exitError{exitNotAcquired, fmt.Errorf("latch %q: interrupted (%s) while waiting", c.Name, sig)}
	case timedOut && c.Wait > 0:
		return &exitError{exitNotAcquired, fmt.Errorf("latch %q not open within %s", c.Name, c.Wait)}
	}
	return err
}

type latchGetCmd struct {
	Name string `arg:"" help:"Latch name."`
}

// Run prints "initial=I count=C" (text) or the LatchInfo (json).
func (c *latchGetCmd) Run(rc *runContext) error {
	cl, ctx, done, err := rc.connect()
	if err != nil {
		return err
	}
	defer done()
	info, err := cl.LatchInfo(ctx, c.Name)
	if err != nil {
		return latchError(c.Name, err)
	}
	return printLatch(rc, info)
}

type latchRmCmd struct {
	Name string `arg:"" help:"Latch name."`
}

// Run deletes the latch and prints "OK".
func (c *latchRmCmd) Run(rc *runContext) error {
	err := rc.withBriefSession("latch rm "+c.Name, func(cl *client.Client, session uint64) error {
		ctx, cancel := rc.requestContext()
		defer cancel()
		return cl.DeleteLatch(ctx, c.Name, api.LatchRequest{Session: session, RequestID: randomRequestID()})
	})
	if err != nil {
		return latchError(c.Name, err)
	}
	if rc.g.Output == "json" {
		return writeJSON(rc.stdout, map[string]string{"deleted": c.Name})
	}
	_, err = fmt.Fprintln(rc.stdout, "OK")
	return err
}
