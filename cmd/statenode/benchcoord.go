package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/statenode/statenode/client"
	"github.com/statenode/statenode/coordination"
)

// Coordination benchmarks (statenode bench lock|election|semaphore): one session per
// worker, as etcd's concurrency.Mutex benchmarks do, all over one client
// whose connections are not capped (a waiter holds its connection while
// the server blocks).

// benchCoordFlags are the flags every coordination benchmark has, besides
// --workers (its default differs).
type benchCoordFlags struct {
	Total  int           `name:"total" default:"1000" help:"Cycles to run across all workers."`
	TTL    time.Duration `name:"ttl" default:"10s" help:"TTL of the workers' sessions."`
	Prefix string        `name:"prefix" default:"bench" help:"Prefix of the primitives' names, so that runs can be kept apart."`
}

func (f *benchCoordFlags) validate(workers, minWorkers int) error {
	switch {
	case workers < minWorkers:
		return fmt.Errorf("%w: --workers must be at least %d", errUsage, minWorkers)
	case f.Total < 1:
		return fmt.Errorf("%w: --total must be at least 1", errUsage)
	case f.TTL < minSessionTTL:
		return fmt.Errorf("%w: --ttl must be at least %s", errUsage, minSessionTTL)
	}
	return nil
}

func (f *benchCoordFlags) config(workers int) map[string]any {
	return map[string]any{"workers": workers, "total": f.Total, "ttl": f.TTL.String(), "prefix": f.Prefix}
}

// benchEnv is what a coordination benchmark runs in: the signal-bound
// context, the client and one session per worker.
type benchEnv struct {
	ctx      context.Context
	cl       *client.Client
	sessions []*coordination.Session
}

// openBenchEnv connects and creates one session per worker (untimed).
// closeEnv destroys the sessions and closes the client.
func openBenchEnv(rc *runContext, f *benchCoordFlags, workers int) (env *benchEnv, closeEnv func(), err error) {
	// Ctrl-C stops the run early; the report covers what completed.
	ctx, stop := signal.NotifyContext(rc.ctx, os.Interrupt, syscall.SIGTERM)
	cl, err := client.New(client.Config{Endpoints: rc.g.Addr, RequestTimeout: rc.g.Timeout})
	if err != nil {
		stop()
		return nil, nil, err
	}
	env = &benchEnv{ctx: ctx, cl: cl, sessions: make([]*coordination.Session, workers)}
	closeEnv = func() {
		var wg sync.WaitGroup
		for _, s := range env.sessions {
			if s != nil {
				wg.Add(1)
				go func() { defer wg.Done(); _ = s.Close() }()
			}
		}
		wg.Wait()
		cl.Close()
		stop()
	}
	errs := make([]error, workers)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16) // sessions created at a time
	for i := range env.sessions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			env.sessions[i], errs[i] = coordination.NewSession(cl, coordination.WithTTL(f.TTL),
				coordination.WithName(sessionLabel(fmt.Sprintf("bench worker %d", i))), coordination.WithContext(ctx))
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		closeEnv()
		return nil, nil, fmt.Errorf("create sessions: %w", err)
	}
	return env, closeEnv, nil
}

// benchCycle is one timed cycle of a worker (lock+unlock, acquire+release):
// called from that worker's goroutine only, one call at a time.
type benchCycle func(ctx context.Context) error

// runCycles runs total cycles over the workers (one goroutine each, taking
// cycle numbers from a shared counter) and reports them as operation op.
// A cycle that fails is counted with its error, not timed.
func runCycles(ctx context.Context, op string, workers []benchCycle, total int) report {
	type record struct {
		lats []float64
		errs map[string]int
		ok   int64
	}
	recs := make([]record, len(workers))
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for i, cycle := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := &recs[i]
			r.errs = map[string]int{}
			for next.Add(1) <= int64(total) && ctx.Err() == nil {
				t0 := time.Now()
				err := cycle(ctx)
				lat := time.Since(t0)
				switch {
				case err != nil && ctx.Err() != nil:
					return // interrupted: not a failure of the cluster
				case err != nil:
					r.errs[oneLine(err)]++
				default:
					r.lats = append(r.lats, lat.Seconds())
					r.ok++
				}
			}
		}()
	}
	wg.Wait()
	rep := report{Elapsed: time.Since(start), Errors: map[string]int{}}
	s := opStats{Op: op}
	for _, r := range recs {
		rep.Lats = append(rep.Lats, r.lats...)
		s.OK += r.ok
		for m, n := range r.errs {
			rep.Errors[m] += n
			s.Errors += int64(n)
		}
	}
	rep.Ops = []opStats{s}
	return rep
}

// printBenchReport prints r as bench does: the text report, or the JSON
// summary with config.
func printBenchReport(rc *runContext, r report, config map[string]any) error {
	s := r.summarize()
	if rc.g.Output == "json" {
		s.Config = config
		return writeJSON(rc.stdout, s)
	}
	return s.writeText(rc.stdout)
}

// ---------------------------------------------------------------- lock

type benchLockCmd struct {
	benchCoordFlags `embed:""`
	Workers         int  `name:"workers" default:"1" help:"Concurrent workers, each with its own session."`
	Distinct        bool `name:"distinct" xor:"mode" help:"Each worker cycles its own lock (the default): throughput of independent locks."`
	Contended       bool `name:"contended" xor:"mode" help:"All workers cycle one lock: every grant is a handoff from the previous holder."`
}

// Run times --total lock+unlock cycles.
func (b *benchLockCmd) Run(rc *runContext) error {
	if err := b.validate(b.Workers, 1); err != nil {
		return err
	}
	env, closeEnv, err := openBenchEnv(rc, &b.benchCoordFlags, b.Workers)
	if err != nil {
		return err
	}
	defer closeEnv()
	mode := "distinct"
	if b.Contended {
		mode = "contended"
	}
	workers := make([]benchCycle, b.Workers)
	for i, s := range env.sessions {
		name := b.Prefix + "/lock"
		if !b.Contended {
			name += "/" + strconv.Itoa(i)
		}
		m := coordination.NewMutex(s, name)
		workers[i] = func(ctx context.Context) error {
			if err := m.Lock(ctx); err != nil {
				return err
			}
			return m.Unlock(ctx)
		}
	}
	fmt.Fprintf(rc.stderr, "bench lock: %d cycles, %d workers, %s locks, session TTL %s\n", b.Total, b.Workers, mode, b.TTL)
	r := runCycles(env.ctx, "lock+unlock", workers, b.Total)
	config := b.config(b.Workers)
	config["mode"] = mode
	return printBenchReport(rc, r, config)
}

// ---------------------------------------------------------------- semaphore

type benchSemaphoreCmd struct {
	benchCoordFlags `embed:""`
	Workers         int `name:"workers" default:"10" help:"Concurrent workers, each with its own session."`
	Permits         int `name:"permits" default:"3" env:"-" help:"Permits of the semaphore: how many workers hold one at a time."`
}

// Run times --total acquire+release cycles of one permit each, by
// --workers workers sharing one semaphore of --permits permits. With more
// workers than permits, most grants are hand-offs: the release that frees
// a permit grants it to the first waiter in the same command.
func (b *benchSemaphoreCmd) Run(rc *runContext) error {
	if err := b.validate(b.Workers, 1); err != nil {
		return err
	}
	if b.Permits < 1 {
		return fmt.Errorf("%w: --permits must be at least 1", errUsage)
	}
	env, closeEnv, err := openBenchEnv(rc, &b.benchCoordFlags, b.Workers)
	if err != nil {
		return err
	}
	defer closeEnv()
	name := b.Prefix + "/semaphore"
	workers := make([]benchCycle, b.Workers)
	for i, s := range env.sessions {
		m, err := coordination.NewSemaphore(s, name, b.Permits)
		if err != nil {
			return err
		}
		workers[i] = func(ctx context.Context) error {
			if err := m.Acquire(ctx, 1); err != nil {
				return err
			}
			return m.Release(ctx, 1)
		}
	}
	fmt.Fprintf(rc.stderr, "bench semaphore: %d cycles, %d workers, %d permits, session TTL %s\n", b.Total, b.Workers, b.Permits, b.TTL)
	r := runCycles(env.ctx, "acquire+release", workers, b.Total)
	config := b.config(b.Workers)
	config["permits"] = b.Permits
	return printBenchReport(rc, r, config)
}

// ---------------------------------------------------------------- election

type benchElectionCmd struct {
	benchCoordFlags `embed:""`
	Workers         int `name:"workers" default:"3" help:"Candidates, each with its own session (at least 2)."`
}

// Run has --workers candidates (at least 2) campaign for one election in
// a ring: the leader resigns as soon as it is elected and campaigns again,
// so the next candidate in line leads. A handoff's latency runs from the
// start of the resign until the next leader's Campaign returns, as that
// leader sees it; with three or more candidates the next one has been
// waiting since long before the resign.
func (b *benchElectionCmd) Run(rc *runContext) error {
	if err := b.validate(b.Workers, 2); err != nil {
		return err
	}
	env, closeEnv, err := openBenchEnv(rc, &b.benchCoordFlags, b.Workers)
	if err != nil {
		return err
	}
	defer closeEnv()
	name := b.Prefix + "/election"
	elections := make([]*coordination.Election, b.Workers)
	for i, s := range env.sessions {
		if elections[i], err = coordination.NewElection(s, name); err != nil {
			return err
		}
	}
	fmt.Fprintf(rc.stderr, "bench election: %d handoffs, %d candidates, session TTL %s\n", b.Total, b.Workers, b.TTL)

	ctx, cancel := context.WithCancel(env.ctx)
	defer cancel()
	var (
		resignAt atomic.Int64 // unix ns at which the last resign started; 0: none pending
		handoffs atomic.Int64
		lats     = make([][]float64, b.Workers)
		errs     = make([]map[string]int, b.Workers)
		wg       sync.WaitGroup
	)
	start := time.Now()
	for i, e := range elections {
		errs[i] = map[string]int{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			value := "candidate-" + strconv.Itoa(i)
			for ctx.Err() == nil {
				if _, err := e.Campaign(ctx, value); err != nil {
					if ctx.Err() == nil {
						errs[i][oneLine(err)]++
						cancel() // the ring is broken: end the run
					}
					return
				}
				now := time.Now()
				if t := resignAt.Swap(0); t != 0 {
					lats[i] = append(lats[i], now.Sub(time.Unix(0, t)).Seconds())
					if handoffs.Add(1) >= int64(b.Total) {
						cancel() // done; the sessions' end releases the leadership
						return
					}
				}
				resignAt.Store(time.Now().UnixNano())
				if err := e.Resign(ctx); err != nil {
					if ctx.Err() == nil {
						errs[i][oneLine(err)]++
						cancel() // nobody else can lead: end the run
					}
					return
				}
			}
		}()
	}
	wg.Wait()
	r := report{Elapsed: time.Since(start), Errors: map[string]int{}}
	s := opStats{Op: "handoff"}
	for i := range lats {
		r.Lats = append(r.Lats, lats[i]...)
		s.OK += int64(len(lats[i]))
		for m, n := range errs[i] {
			r.Errors[m] += n
			s.Errors += int64(n)
		}
	}
	r.Ops = []opStats{s}
	return printBenchReport(rc, r, b.config(b.Workers))
}
