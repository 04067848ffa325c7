package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"

	"github.com/statenode/statenode/coordination"
)

// Running a command while a session holds something: lock (a fenced
// lock), sem (permits) and barrier enter (a place inside a double
// barrier) share the child handling below.

// holdFlags are the flags of lock and sem: how their session lives, how
// long to wait for the grant, and how hard to stop the command when the
// session is lost.
type holdFlags struct {
	TTL       time.Duration
	Wait      time.Duration
	Try       bool
	KillGrace time.Duration
}

func (f holdFlags) validate(usage string, command []string) error {
	switch {
	case len(command) == 0:
		return fmt.Errorf("%w: no command to run (%s)", errUsage, usage)
	case f.TTL < minSessionTTL:
		return fmt.Errorf("%w: --ttl must be at least %s", errUsage, minSessionTTL)
	case f.Wait < 0:
		return fmt.Errorf("%w: --wait must not be negative", errUsage)
	case f.Try && f.Wait > 0:
		return fmt.Errorf("%w: --try and --wait exclude each other", errUsage)
	case f.KillGrace <= 0:
		return fmt.Errorf("%w: --kill-grace must be positive", errUsage)
	}
	return nil
}

// held is what lock and sem hold for their command. Its methods are
// called from the command's goroutine, one at a time.
type held interface {
	// what names it in messages: `lock "x"`, `semaphore "x"`.
	what() string
	// acquire blocks until granted or ctx ends; with try it fails at once
	// if it cannot be granted.
	acquire(ctx context.Context, try bool) error
	// busy says whether err is a try that found it taken, and the message.
	busy(err error) (string, bool)
	// env is added to the command's environment (after acquire).
	env() []string
	// lost says what a session lost while the command ran means for
	// others: "another process may have held the lock since".
	lost() string
	// release gives it back.
	release(ctx context.Context) error
}

// runHolding is lock and sem: it creates a session labelled label,
// acquires h (as f says), runs command while h is held, releases h and
// destroys the session. Its error is an *exitError for the documented exit
// statuses (see lockCmd.Help).
func (rc *runContext) runHolding(f holdFlags, label string, command []string, open func(*coordination.Session) (held, error)) error {
	sigs, stop := waitSignal()
	defer stop()
	cl, err := rc.newClient()
	if err != nil {
		return err
	}
	defer cl.Close()
	sess, err := rc.newSession(cl, f.TTL, sessionLabel(label))
	if err != nil {
		return err
	}
	defer rc.closeSession(sess)
	h, err := open(sess)
	if err != nil {
		return err
	}

	sig, err := interruptible(rc.ctx, sigs, func(ctx context.Context) error {
		if f.Wait > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, f.Wait)
			defer cancel()
		}
		return h.acquire(ctx, f.Try)
	})
	if msg, ok := h.busy(err); ok && sig == nil {
		return &exitError{exitNotAcquired, errors.New(msg)}
	}
	switch {
	case sig != nil && err != nil:
		return &exitError{exitNotAcquired, fmt.Errorf("%s: interrupted (%s) while waiting", h.what(), sig)}
	case errors.Is(err, coordination.ErrWaitTimeout):
		return &exitError{exitNotAcquired, fmt.Errorf("%s not granted within %s", h.what(), f.Wait)}
	case errors.Is(err, coordination.ErrSessionExpired):
		return &exitError{exitSessionLost, fmt.Errorf("%s: session lost while waiting: %w", h.what(), err)}
	case err != nil:
		return err
	}
	// A signal that raced with the grant: the command is not started.
	if sig != nil {
		rc.release(h)
		return &exitError{exitNotAcquired, fmt.Errorf("%s: interrupted (%s)", h.what(), sig)}
	}
	status, err := rc.runChild(sess, sigs, child{what: h.what(), command: command, env: h.env(), killGrace: f.KillGrace, lost: h.lost()})
	if err != nil {
		var ee *exitError
		if !errors.As(err, &ee) || ee.code != exitSessionLost {
			rc.release(h)
		}
		return err
	}
	rc.release(h)
	if status != 0 {
		return &exitError{code: status}
	}
	return nil
}

// release gives h back, reporting a failure as a warning (the session's
// destruction, which follows, releases it too).
func (rc *runContext) release(h held) {
	ctx, cancel := rc.requestContext()
	defer cancel()
	if err := h.release(ctx); err != nil && !errors.Is(err, coordination.ErrSessionExpired) {
		fmt.Fprintf(rc.stderr, "statenode: warning: release %s: %s\n", h.what(), oneLine(err))
	}
}

// child is a command to run while a session holds something.
type child struct {
	what      string   // what is held, for messages: `lock "x"`
	command   []string // the command and its arguments
	env       []string // added to this process's environment
	killGrace time.Duration
	// lost ends the message of a session lost while the command ran:
	// what that means for others.
	lost string
}

// runChild runs c in its own process group, forwarding the signals that
// arrive on sigs to it. If sess ends meanwhile, the group gets SIGTERM,
// then SIGKILL after c.killGrace, because another process may now hold
// what sess held. It returns the command's exit status (128+N if signal N
// ended it), or an *exitError: exitCannotRun if the command could not be
// started (what is held is still held), exitSessionLost if the session
// ended while it ran (nothing is held any more).
func (rc *runContext) runChild(sess *coordination.Session, sigs <-chan os.Signal, c child) (int, error) {
	cmd := exec.Command(c.command[0], c.command[1:]...)
	cmd.Env = append(os.Environ(), c.env...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = rc.stdin, rc.stdout, rc.stderr
	ownProcessGroup(cmd)
	if err := cmd.Start(); err != nil {
		return 0, &exitError{exitCannotRun, fmt.Errorf("%s: %w", c.what, err)}
	}
	waitc := make(chan error, 1)
	go func() { waitc <- cmd.Wait() }()

	var (
		lost    = sess.Done()
		kill    <-chan time.Time
		lostErr error
		grace   *time.Timer
	)
	defer func() {
		if grace != nil {
			grace.Stop()
		}
	}()
	for {
		select {
		case sig := <-sigs:
			_ = signalGroup(cmd.Process, sig)
			continue
		case <-lost:
			lost = nil
			lostErr = sess.Err()
			fmt.Fprintf(rc.stderr, "statenode: %s: %s; stopping the command (SIGTERM, SIGKILL after %s)\n",
				c.what, oneLine(lostErr), c.killGrace)
			_ = signalGroup(cmd.Process, syscall.SIGTERM)
			grace = time.NewTimer(c.killGrace)
			kill = grace.C
			continue
		case <-kill:
			kill = nil
			fmt.Fprintf(rc.stderr, "statenode: %s: the command did not exit within %s of SIGTERM; sending SIGKILL\n", c.what, c.killGrace)
			_ = signalGroup(cmd.Process, syscall.SIGKILL)
			continue
		case <-waitc:
		}
		break
	}
	status := exitStatus(cmd.ProcessState)
	if lostErr == nil {
		lostErr = sess.Err() // ended just as the command exited
	}
	if lostErr != nil {
		// Whatever the command left behind in its group must not go on
		// believing it holds what the session held.
		_ = signalGroup(cmd.Process, syscall.SIGKILL)
		return status, &exitError{exitSessionLost, fmt.Errorf("%s: session lost while the command ran (command exit status %d); %s: %w",
			c.what, status, c.lost, lostErr)}
	}
	return status, nil
}
