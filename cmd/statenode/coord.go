package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/statenode/statenode/api"
	"github.com/statenode/statenode/client"
	"github.com/statenode/statenode/coordination"
)

// Exit statuses of the coordination commands besides 0 and 1 (see
// lockCmd.Help; exitBroken is in coordsync.go).
const (
	// exitNotAcquired: the lock was not granted (--try found it held,
	// --wait ran out, or a signal arrived while waiting); for elect, the
	// campaign ended the same ways without leading; for sem, barrier and
	// latch await, the permits, the trip or the zero count likewise.
	exitNotAcquired = 2
	// exitSessionLost: the session ended (expired, destroyed) while the
	// lock or leadership was held or awaited; a running command was stopped.
	exitSessionLost = 3
	// exitCannotRun: the command could not be started (the shell's 127).
	exitCannotRun = 127
)

// Environment of the command run by lock (STATENODE_SESSION also by sem
// and barrier enter).
const (
	envFence   = "STATENODE_FENCE"
	envLock    = "STATENODE_LOCK"
	envSession = "STATENODE_SESSION"
)

// minSessionTTL is the shortest --ttl the commands accept (the server's
// lower bound).
const minSessionTTL = 100 * time.Millisecond

// sessionLabel names a session in "session ls": what holds it and where.
func sessionLabel(what string) string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%s (%s pid %d)", what, host, os.Getpid())
}

// newSession creates a session with ttl and label, bounded by --timeout.
func (rc *runContext) newSession(cl *client.Client, ttl time.Duration, label string) (*coordination.Session, error) {
	ctx, cancel := rc.requestContext()
	defer cancel()
	return coordination.NewSession(cl, coordination.WithTTL(ttl), coordination.WithName(label), coordination.WithContext(ctx))
}

// closeSession destroys s (releasing whatever it still holds) and reports
// a failure as a warning: the cluster expires the session within its TTL
// anyway.
func (rc *runContext) closeSession(s *coordination.Session) {
	if err := s.Close(); err != nil {
		fmt.Fprintf(rc.stderr, "statenode: warning: destroy session %d: %s (it expires within %s)\n", s.ID(), oneLine(err), s.TTL())
	}
}

// waitSignal returns a channel of SIGINT and SIGTERM and a function that
// stops delivering them. While it is set up, the signals no longer kill
// the process.
func waitSignal() (<-chan os.Signal, func()) {
	ch := make(chan os.Signal, 4)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	return ch, func() { signal.Stop(ch) }
}

// interruptible runs f with a context that ends when a signal arrives on
// sigs; it returns the signal, if one arrived, and f's error.
func interruptible(ctx context.Context, sigs <-chan os.Signal, f func(context.Context) error) (os.Signal, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- f(ctx) }()
	select {
	case err := <-errc:
		return nil, err
	case sig := <-sigs:
		cancel()
		return sig, <-errc
	}
}

// ---------------------------------------------------------------- lock

type lockCmd struct {
	Name      string        `arg:"" help:"Lock name."`
	Command   []string      `arg:"" placeholder:"-- CMD [ARG...]" help:"Command to run while holding the lock, after --."`
	TTL       time.Duration `name:"ttl" default:"10s" help:"Session TTL: how long the lock outlives this process if it dies without releasing it."`
	Wait      time.Duration `name:"wait" help:"Give up (exit status 2) if the lock is not granted within this long (0: wait until granted)."`
	Try       bool          `name:"try" help:"Do not wait: exit with status 2 at once if the lock is held."`
	KillGrace time.Duration `name:"kill-grace" default:"5s" help:"If the session is lost, time between SIGTERM and SIGKILL to the command."`
}

// Help is the detail shown by statenode lock --help.
func (lockCmd) Help() string {
	return `Creates a session, waits for lock NAME in FIFO order, then runs the
command with these variables added to its environment:

  STATENODE_FENCE     the lock's fencing token (a positive integer; pass it
                      with writes so that a stale holder's are refused)
  STATENODE_LOCK      the lock name
  STATENODE_SESSION   the session ID

SIGINT and SIGTERM are forwarded to the command. The command runs in its
own process group, so signals reach everything it starts (it is not the
terminal's foreground job: one that reads the terminal is stopped by
SIGTTIN; pipe its input instead). When it exits, the
lock is released and the session destroyed. If the session is lost while
it runs (expired, destroyed), the command is sent SIGTERM, then SIGKILL
after --kill-grace, because another process may now hold the lock.

Exit status:
  the command's   when it ran and the lock was held throughout
                  (128+N if signal N ended it)
  1               error before the command ran (arguments, cluster)
  2               lock not acquired: held (--try), --wait ran out, or
                  interrupted while waiting
  3               session lost while waiting or while the command ran
                  (the command was stopped)
  127             the command could not be started`
}

func (c *lockCmd) flags() holdFlags {
	return holdFlags{TTL: c.TTL, Wait: c.Wait, Try: c.Try, KillGrace: c.KillGrace}
}

// Run acquires the lock, runs the command and releases the lock.
func (c *lockCmd) Run(rc *runContext) error {
	f := c.flags()
	if err := f.validate("statenode lock NAME -- CMD ARGS...", c.Command); err != nil {
		return err
	}
	return rc.runHolding(f, "lock "+c.Name, c.Command, func(s *coordination.Session) (held, error) {
		return &heldLock{m: coordination.NewMutex(s, c.Name), session: s.ID()}, nil
	})
}

// heldLock is the lock held by lock's command.
type heldLock struct {
	m       *coordination.Mutex
	session uint64
}

func (h *heldLock) what() string { return fmt.Sprintf("lock %q", h.m.Name()) }

func (h *heldLock) acquire(ctx context.Context, try bool) error {
	if try {
		return h.m.TryLock(ctx)
	}
	return h.m.Lock(ctx)
}

func (h *heldLock) busy(err error) (string, bool) {
	return fmt.Sprintf("lock %q is held", h.m.Name()), errors.Is(err, coordination.ErrLocked)
}

func (h *heldLock) env() []string {
	return []string{
		envFence + "=" + strconv.FormatUint(h.m.Token(), 10),
		envLock + "=" + h.m.Name(),
		envSession + "=" + strconv.FormatUint(h.session, 10),
	}
}

func (h *heldLock) lost() string { return "another process may have held the lock since" }

func (h *heldLock) release(ctx context.Context) error { return h.m.Unlock(ctx) }

// ---------------------------------------------------------------- elect

// electCmd groups the election commands.
type electCmd struct {
	Campaign electCampaignCmd `cmd:"" default:"withargs" help:"Campaign for NAME with VALUE and lead until interrupted (the default: statenode elect NAME VALUE)."`
	Observe  electObserveCmd  `cmd:"" help:"Print the state of election NAME, then every change, until interrupted."`
	Leader   electLeaderCmd   `cmd:"" help:"Print the current leader of election NAME."`
}

type electCampaignCmd struct {
	Name  string        `arg:"" help:"Election name."`
	Value string        `arg:"" help:"The leader's value (an address, an ID) shown to observers."`
	TTL   time.Duration `name:"ttl" default:"10s" help:"Session TTL: how long the leadership outlives this process if it dies without resigning."`
	Wait  time.Duration `name:"wait" help:"Give up (exit status 2) if not elected within this long (0: wait until elected)."`
}

// Help is the detail shown by statenode elect campaign --help.
func (electCampaignCmd) Help() string {
	return `Creates a session and campaigns (candidates lead in FIFO order). Once
elected it prints "elected term=T" (-o json: the election) and leads until
SIGINT or SIGTERM, then resigns, so that the next candidate leads at once.
An election named like a subcommand (observe, leader, campaign) needs the
explicit form: statenode elect campaign NAME VALUE.

Exit status:
  0   resigned after SIGINT or SIGTERM
  1   error (arguments, cluster)
  2   not elected: --wait ran out or interrupted while campaigning
  3   session lost (expired, destroyed) while campaigning or leading:
      this process no longer leads`
}

// Run campaigns, prints the term and leads until a signal or the end of
// the session.
func (c *electCampaignCmd) Run(rc *runContext) error {
	switch {
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
	sess, err := rc.newSession(cl, c.TTL, sessionLabel("elect "+c.Name))
	if err != nil {
		return err
	}
	defer rc.closeSession(sess)
	e, err := coordination.NewElection(sess, c.Name)
	if err != nil {
		return err
	}
	var term uint64
	sig, err := interruptible(rc.ctx, sigs, func(ctx context.Context) error {
		if c.Wait > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, c.Wait)
			defer cancel()
		}
		var err error
		term, err = e.Campaign(ctx, c.Value)
		return err
	})
	switch {
	case sig != nil && err != nil:
		return &exitError{exitNotAcquired, fmt.Errorf("election %q: interrupted (%s) while campaigning", c.Name, sig)}
	case errors.Is(err, coordination.ErrWaitTimeout):
		return &exitError{exitNotAcquired, fmt.Errorf("election %q: not elected within %s", c.Name, c.Wait)}
	case errors.Is(err, coordination.ErrSessionExpired):
		return &exitError{exitSessionLost, fmt.Errorf("election %q: session lost while campaigning: %w", c.Name, err)}
	case err != nil:
		return err
	}
	if sig == nil {
		if rc.g.Output == "json" {
			err = writeJSON(rc.stdout, api.Election{Name: c.Name, Leader: sess.ID(), Term: term, Value: c.Value})
		} else {
			_, err = fmt.Fprintf(rc.stdout, "elected term=%d\n", term)
		}
		if err != nil {
			return err
		}
		select {
		case sig = <-sigs:
		case <-sess.Done():
			return &exitError{exitSessionLost, fmt.Errorf("election %q: session lost; no longer the leader (term %d): %w", c.Name, term, sess.Err())}
		}
	}
	ctx, cancel := rc.requestContext()
	defer cancel()
	if err := e.Resign(ctx); err != nil {
		if errors.Is(err, coordination.ErrSessionExpired) {
			return &exitError{exitSessionLost, fmt.Errorf("election %q: session lost before resigning: %w", c.Name, err)}
		}
		// Destroying the session (deferred) ends the leadership too.
		fmt.Fprintf(rc.stderr, "statenode: warning: resign %q: %s\n", c.Name, oneLine(err))
	}
	return nil
}

type electObserveCmd struct {
	Name string `arg:"" help:"Election name."`
}

// Run prints one line per state of the election until SIGINT/SIGTERM:
// "leader=ID term=T value=V" or "leader=none term=T" (text), or the
// election as JSON. Terms never go backwards.
func (c *electObserveCmd) Run(rc *runContext) error {
	cl, ctx, done, err := rc.connectUntilSignal()
	if err != nil {
		return err
	}
	defer done()
	ch, err := cl.ObserveElection(ctx, c.Name)
	if err != nil {
		return err
	}
	for e := range ch {
		if err := printElection(rc, e); err != nil {
			return err
		}
	}
	return nil
}

func printElection(rc *runContext, e api.Election) error {
	if rc.g.Output == "json" {
		return writeJSON(rc.stdout, e)
	}
	var err error
	if e.Leader == 0 {
		_, err = fmt.Fprintf(rc.stdout, "leader=none term=%d\n", e.Term)
	} else {
		_, err = fmt.Fprintf(rc.stdout, "leader=%d term=%d value=%s\n", e.Leader, e.Term, e.Value)
	}
	return err
}

type electLeaderCmd struct {
	Name string `arg:"" help:"Election name."`
}

// Run prints "leader=ID term=T value=V" (text) or the election (json);
// nobody leading is an error.
func (c *electLeaderCmd) Run(rc *runContext) error {
	cl, ctx, done, err := rc.connect()
	if err != nil {
		return err
	}
	defer done()
	e, err := cl.ElectionLeader(ctx, c.Name)
	if err != nil {
		return err
	}
	if e.Leader == 0 {
		return fmt.Errorf("election %q has no leader", c.Name)
	}
	return printElection(rc, *e)
}

// ---------------------------------------------------------------- session

// sessionCmd groups the session commands.
type sessionCmd struct {
	Ls sessionLsCmd `cmd:"" help:"List the live sessions."`
	Rm sessionRmCmd `cmd:"" help:"Destroy session ID, releasing everything it holds."`
}

type sessionLsCmd struct{}

// Run prints a table "ID NAME TTL REMAINING LOCKS WAITING" (text) or the
// sessions (json). REMAINING is the expiry deadline, stamped with the
// leader's clock, minus this machine's clock.
func (sessionLsCmd) Run(rc *runContext) error {
	cl, ctx, done, err := rc.connect()
	if err != nil {
		return err
	}
	defer done()
	sessions, err := cl.Sessions(ctx)
	if err != nil {
		return err
	}
	if rc.g.Output == "json" {
		if sessions == nil {
			sessions = []api.Session{}
		}
		return writeJSON(rc.stdout, sessions)
	}
	now := time.Now()
	tw := tabwriter.NewWriter(rc.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tTTL\tREMAINING\tLOCKS\tWAITING")
	for _, s := range sessions {
		remaining := "-"
		if s.ExpiresMillis > 0 {
			remaining = max(time.UnixMilli(s.ExpiresMillis).Sub(now), 0).Round(time.Millisecond).String()
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", s.ID, orDash(s.Name), time.Duration(s.TTLMillis)*time.Millisecond,
			remaining, orDash(strings.Join(s.Locks, ",")), orDash(strings.Join(s.Waiting, ",")))
	}
	return tw.Flush()
}

type sessionRmCmd struct {
	ID uint64 `arg:"" help:"Session ID (from session ls)."`
}

// Run destroys the session and prints "OK".
func (c *sessionRmCmd) Run(rc *runContext) error {
	if c.ID == 0 {
		return fmt.Errorf("%w: 0 is not a session ID", errUsage)
	}
	cl, ctx, done, err := rc.connect()
	if err != nil {
		return err
	}
	defer done()
	err = cl.DestroySession(ctx, c.ID)
	if errors.Is(err, client.ErrSessionNotFound) {
		return fmt.Errorf("session not found: %d", c.ID)
	}
	if err != nil {
		return err
	}
	if rc.g.Output == "json" {
		return writeJSON(rc.stdout, map[string]uint64{"destroyed": c.ID})
	}
	_, err = fmt.Fprintln(rc.stdout, "OK")
	return err
}
