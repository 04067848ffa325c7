package harness

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/statenode/statenode/api"
	"github.com/statenode/statenode/client"
	"github.com/statenode/statenode/jepsen/checker"
	"github.com/statenode/statenode/jepsen/history"
)

// Scenario is one run: a workload under a set of faults.
type Scenario struct {
	Name     string   `json:"name"`
	Workload string   `json:"workload"`
	Faults   []string `json:"faults"`
	// Nodes, Time and Rate override the run's options when not zero.
	Nodes int           `json:"nodes,omitempty"`
	Time  time.Duration `json:"time,omitempty"`
	Rate  float64       `json:"rate,omitempty"`
}

// Options are the settings shared by every scenario of an invocation.
type Options struct {
	Binary string // statenode binary
	// FaultClockBinary is statenode built with -tags faultclock, used for
	// the scenarios with the clock fault (and only for them).
	FaultClockBinary string
	Out              string        // parent directory of run folders
	Seed             uint64        // reproduces the nemesis schedule, targets and operation mix
	Time             time.Duration // workload duration per scenario
	Nodes            int           // cluster size
	Rate             float64       // operations per second, all clients together
	ClientsPerNode   int           // clients bound to each member
	OpTimeout        time.Duration // one operation's deadline
	CheckTimeout     time.Duration // Porcupine's budget; running out is a failure
	// MinOKBeforeFaults is the liveness guard of the warm-up: fewer ok
	// operations than this before the first fault fails the run.
	MinOKBeforeFaults int64
	// KeepData keeps the members' data directories of a passing run (a
	// failing run always keeps them).
	KeepData bool
	// LogEngine is passed to every member as --log-engine: "bolt" or
	// "wal" (empty: the binary's default, wal for new directories).
	LogEngine string
	Log       io.Writer `json:"-"` // progress lines
}

// Env is what workloads and faults see of a run.
type Env struct {
	Options
	Cluster *Cluster
	Clock   *history.Clock
	Dir     string
	rng     *rand.Rand // nemesis only (one goroutine)
	tokens  chan struct{}
	okOps   atomic.Int64
	lastRev sync.Map // key → int64: a mod revision some client saw, for cas
}

func (e *Env) path(name string) string { return filepath.Join(e.Dir, name) }

// token waits for the rate limiter; false once ctx ended.
func (e *Env) token(ctx context.Context) bool {
	select {
	case <-e.tokens:
		return true
	case <-ctx.Done():
		return false
	}
}

// Check is one named check with its verdict, as saved in result.json.
type Check = checker.Result

// Result is the outcome of one run.
type Result struct {
	Scenario  Scenario      `json:"scenario"`
	Seed      uint64        `json:"seed"`
	Nodes     int           `json:"nodes"`
	Rate      float64       `json:"rate"`
	Time      time.Duration `json:"time"`
	Dir       string        `json:"dir"`
	Ops       int           `json:"ops"`
	OK        int           `json:"ok"`
	Info      int           `json:"info"`
	Fail      int           `json:"fail"`
	Checks    []Check       `json:"checks"`
	Valid     bool          `json:"valid"`
	Error     string        `json:"error,omitempty"` // the harness itself failed
	Wall      time.Duration `json:"wall"`
	Anomalies int           `json:"anomalies"`
}

// Verdict is the one-line verdict written to verdict.txt.
func (r *Result) Verdict() string {
	v := "PASS"
	if !r.Valid {
		v = "FAIL"
	}
	var bad []string
	for _, c := range r.Checks {
		if !c.Valid {
			bad = append(bad, c.Name)
		}
	}
	s := fmt.Sprintf("%s %s seed=%d ops=%d ok=%d info=%d anomalies=%d", v, r.Scenario.Name, r.Seed, r.Ops, r.OK, r.Info, r.Anomalies)
	if len(bad) > 0 {
		s += " failed=" + strings.Join(bad, ",")
	}
	if r.Error != "" {
		s += " error=" + r.Error
	}
	return s
}

func (o *Options) logf(format string, args ...any) {
	if o.Log != nil {
		fmt.Fprintf(o.Log, format+"\n", args...)
	}
}

// Run runs one scenario: start a fresh cluster, drive the workload while the
// nemesis injects faults, heal, run the liveness and convergence checks,
// tear everything down, check the history, and save everything in a new
// folder under opts.Out.
func Run(ctx context.Context, sc Scenario, opts Options) *Result {
	if sc.Nodes > 0 {
		opts.Nodes = sc.Nodes
	}
	if sc.Time > 0 {
		opts.Time = sc.Time
	}
	if sc.Rate > 0 {
		opts.Rate = sc.Rate
	}
	t0 := time.Now()
	res := &Result{Scenario: sc, Seed: opts.Seed, Nodes: opts.Nodes, Rate: opts.Rate, Time: opts.Time}
	defer func() { res.Wall = time.Since(t0) }()
	dir := filepath.Join(opts.Out, fmt.Sprintf("%s-%s-seed%d", time.Now().Format("20060102-150405"), sc.Name, opts.Seed))
	res.Dir = dir
	if err := os.MkdirAll(dir, 0o755); err != nil {
		res.Error = err.Error()
		return res
	}
	checks, err := run(ctx, sc, opts, dir)
	if err != nil {
		res.Error = err.Error()
	}
	res.Checks = append(res.Checks, checks...)
	res.Wall = time.Since(t0)
	finish(res, dir)
	if res.Valid && !opts.KeepData {
		_ = os.RemoveAll(filepath.Join(dir, "data"))
	}
	return res
}

// finish checks the saved history, fills in the counts and the verdict, and
// writes result.json and verdict.txt.
func finish(res *Result, dir string) {
	ops, err := history.ReadDir(dir)
	if err != nil && res.Error == "" {
		res.Error = err.Error()
	}
	evs, _ := history.ReadEvents(filepath.Join(dir, "nemesis.jsonl"))
	var end int64
	for _, o := range ops {
		end = max(end, o.Return)
	}
	windows := history.Windows(evs, end)
	res.Ops, res.OK, res.Info, res.Fail = 0, 0, 0, 0
	for _, o := range ops {
		if o.Client == FinalClient {
			continue
		}
		res.Ops++
		switch o.Type {
		case history.TypeOK:
			res.OK++
		case history.TypeInfo:
			res.Info++
		default:
			res.Fail++
		}
	}
	if w, err := LookupWorkload(res.Scenario.Workload); err == nil && res.Error == "" {
		timeout := 2 * time.Minute
		res.Checks = append(res.Checks, w.Check(ops, windows, dir, timeout)...)
	}
	res.Valid = res.Error == "" && len(res.Checks) > 0
	res.Anomalies = 0
	for _, c := range res.Checks {
		if !c.Valid {
			res.Valid = false
		}
		res.Anomalies += len(c.Anomalies)
	}
	b, _ := json.MarshalIndent(res, "", "  ")
	_ = os.WriteFile(filepath.Join(dir, "result.json"), append(b, '\n'), 0o644)
	_ = os.WriteFile(filepath.Join(dir, "verdict.txt"), []byte(res.Verdict()+"\n"), 0o644)
}

// run does the live part of a run and returns the checks made while the
// cluster was up (liveness, convergence), saved to runtime.json so that a
// re-check keeps them.
func run(ctx context.Context, sc Scenario, opts Options, dir string) (checks []Check, err error) {
	w, err := LookupWorkload(sc.Workload)
	if err != nil {
		return nil, err
	}
	all := Faults()
	for _, f := range sc.Faults {
		if _, ok := all[f]; !ok {
			return nil, fmt.Errorf("%w: fault %q", ErrUnknownScenario, f)
		}
	}
	ccfg := ClusterConfig{Binary: opts.Binary, Nodes: opts.Nodes, Dir: dir, Seed: opts.Seed, LogEngine: opts.LogEngine}
	if slices.Contains(sc.Faults, "clock") {
		if opts.FaultClockBinary == "" {
			return nil, fmt.Errorf("%w: give --faultclock-bin", ErrNoFaultClock)
		}
		ccfg.Binary, ccfg.FaultClock = opts.FaultClockBinary, true
	}
	if g, ok := w.(interface{ gossip() bool }); ok && g.gossip() {
		ccfg.Gossip = true
	}
	b, _ := json.MarshalIndent(struct {
		Scenario Scenario `json:"scenario"`
		Options  Options  `json:"options"`
	}{sc, opts}, "", "  ")
	if err := os.WriteFile(filepath.Join(dir, "run.json"), append(b, '\n'), 0o644); err != nil {
		return nil, err
	}
	defer func() {
		b, _ := json.MarshalIndent(checks, "", "  ")
		_ = os.WriteFile(filepath.Join(dir, "runtime.json"), append(b, '\n'), 0o644)
	}()

	// A member that exits while starting most likely lost its port to
	// another process between the draw and the bind: start afresh.
	var c *Cluster
	for attempt := 1; ; attempt++ {
		c, err = startCluster(ctx, ccfg)
		if err == nil || attempt == 3 || ctx.Err() != nil || !errors.Is(err, ErrNotRunning) {
			break
		}
		opts.logf("    cluster start failed (%v); retrying with new ports", err)
		logs, _ := filepath.Glob(filepath.Join(dir, "node-*.log"))
		for _, l := range logs {
			_ = os.Rename(l, filepath.Join(dir, fmt.Sprintf("attempt%d-%s", attempt, filepath.Base(l))))
		}
		_ = os.RemoveAll(filepath.Join(dir, "data"))
	}
	if err != nil {
		return nil, err
	}
	defer c.Stop()

	e := &Env{
		Options: opts, Cluster: c, Clock: history.NewClock(), Dir: dir,
		rng:    rand.New(rand.NewPCG(opts.Seed, 0x6e656d65736973)),
		tokens: make(chan struct{}, 1),
	}
	nm, err := newNemesis(e)
	if err != nil {
		return nil, err
	}
	defer nm.close()
	nm.Info("run", fmt.Sprintf("%s: workload %s, faults %s, %d nodes, %s, rate %.0f/s, seed %d, log engine %s",
		sc.Name, sc.Workload, strings.Join(sc.Faults, ","), opts.Nodes, opts.Time, opts.Rate, opts.Seed, logEngineName(opts.LogEngine)))

	runCtx, stop := context.WithTimeout(ctx, opts.Time)
	defer stop()
	go e.pace(runCtx)
	var wg sync.WaitGroup
	var werr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		werr = w.Run(runCtx, e)
	}()

	// Warm-up: the cluster must serve before any fault.
	warm := quietEnds(opts.Time)
	sleepCtx(runCtx, warm)
	okWarm := e.okOps.Load()
	nm.Info("warmup", fmt.Sprintf("%d ok operations in %s", okWarm, warm))
	minOK := minOKBeforeFaults(w, opts.MinOKBeforeFaults)
	warmCheck := Check{Name: "warmup", Valid: okWarm >= minOK, Ops: int(okWarm),
		Summary: fmt.Sprintf("%d ok operations before the first fault (minimum %d)", okWarm, minOK)}
	if !warmCheck.Valid {
		warmCheck.Anomalies = []string{"liveness: " + warmCheck.Summary}
	}
	checks = append(checks, warmCheck)

	if len(sc.Faults) > 0 {
		nm.run(runCtx, sc.Faults, opts.Time-quietEnds(opts.Time))
	}
	wg.Wait()
	nm.Info("workload", fmt.Sprintf("stopped: %d ok operations", e.okOps.Load()))

	// Heal whatever is left (a run cut short by a signal).
	healAll(e)
	heal := Check{Name: "nemesis", Valid: true, Summary: "every heal succeeded and a leader followed within " + LeaderAfterHeal.String()}
	nm.checkLeader("the end of the run")
	if len(nm.healErr) > 0 {
		heal.Valid, heal.Anomalies = false, nm.healErr
		heal.Summary = fmt.Sprintf("%d heal or liveness failures", len(nm.healErr))
	}
	checks = append(checks, heal)

	// A final write must succeed.
	fw := Check{Name: "final-write", Valid: true, Summary: "a write after healing succeeded"}
	if err := finalWrite(ctx, c, "jepsen/final", 15*time.Second); err != nil {
		fw.Valid, fw.Summary, fw.Anomalies = false, "no write succeeded after healing", []string{"liveness: " + err.Error()}
	}
	nm.Info("final-write", fw.Summary)
	checks = append(checks, fw)

	if err := w.Final(ctx, e); err != nil {
		checks = append(checks, Check{Name: "final-read", Summary: err.Error(), Anomalies: []string{"liveness: " + err.Error()}})
	}
	cv := converge(ctx, c, 20*time.Second)
	nm.Info("converge", cv.Summary)
	checks = append(checks, cv)
	return checks, werr
}

// quietEnds is how long a run of workload time t goes without faults at
// its start (the warm-up) and at its end.
func quietEnds(t time.Duration) time.Duration { return min(5*time.Second, t/6) }

func logEngineName(e string) string {
	if e == "" {
		return "wal (default)"
	}
	return e
}

// LogEngines are the values of Options.LogEngine (statenode's
// --log-engine).
var LogEngines = []string{"bolt", "wal"}

// startCluster starts a fresh cluster and waits for a first write.
func startCluster(ctx context.Context, cfg ClusterConfig) (*Cluster, error) {
	c, err := NewCluster(cfg)
	if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			c.Stop()
		}
	}()
	for i := range c.Nodes {
		if err := c.Start(i, false); err != nil {
			return nil, err
		}
	}
	for i := range c.Nodes {
		if err := c.WaitUp(ctx, i, 30*time.Second); err != nil {
			return nil, err
		}
	}
	if _, err := c.Leader(ctx, 30*time.Second); err != nil {
		return nil, fmt.Errorf("initial election: %w", err)
	}
	if err := finalWrite(ctx, c, "jepsen/ready", 30*time.Second); err != nil {
		return nil, fmt.Errorf("first write: %w", err)
	}
	ok = true
	return c, nil
}

// pace feeds the rate limiter until ctx ends.
func (e *Env) pace(ctx context.Context) {
	rate := e.Rate
	if rate <= 0 {
		rate = 100
	}
	t := time.NewTicker(time.Duration(float64(time.Second) / rate))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			select {
			case e.tokens <- struct{}{}:
			default:
			}
		}
	}
}

// healAll lifts every fault: network healed, paused members continued,
// dead members restarted.
func healAll(e *Env) {
	c := e.Cluster
	c.Net.HealAll()
	if c.cfg.FaultClock {
		for i := range c.Nodes {
			_ = c.SetClockOffset(i, 0)
		}
	}
	for i, n := range c.Nodes {
		if n.Paused() {
			_ = c.Resume(i)
		}
		if !n.Running() {
			_ = c.Start(i, n.Wiped())
			_ = c.WaitUp(context.Background(), i, 20*time.Second)
		}
	}
}

// finalWrite retries a put until one succeeds or timeout passes.
func finalWrite(ctx context.Context, c *Cluster, key string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var err error
	for ctx.Err() == nil {
		octx, ocancel := context.WithTimeout(ctx, 3*time.Second)
		_, err = c.Admin().Put(octx, key, []byte(time.Now().Format(time.RFC3339Nano)))
		ocancel()
		if err == nil {
			return nil
		}
		sleepCtx(ctx, 100*time.Millisecond)
	}
	return fmt.Errorf("no write succeeded within %s: %w", timeout, err)
}

// converge waits until every member reports the same applied index and
// revision, then compares each member's local copy of the whole store (a
// stale range served by that member alone) with a linearizable range.
func converge(ctx context.Context, c *Cluster, timeout time.Duration) Check {
	ck := Check{Name: "converge"}
	deadline := time.Now().Add(timeout)
	var revs []int64
	for {
		revs = revs[:0]
		var applied []uint64
		okAll := true
		for i := range c.Nodes {
			st, err := c.Status(ctx, i)
			if err != nil {
				okAll = false
				break
			}
			revs = append(revs, st.Revision)
			applied = append(applied, st.AppliedIndex)
		}
		if okAll && allEqual(revs) && allEqual(applied) {
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			ck.Summary = fmt.Sprintf("members did not converge within %s: revisions %v", timeout, revs)
			ck.Anomalies = []string{ck.Summary}
			return ck
		}
		sleepCtx(ctx, 100*time.Millisecond)
	}
	lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	lin, err := c.Admin().Range(lctx, "")
	if err != nil {
		ck.Summary = "linearizable range failed: " + err.Error()
		ck.Anomalies = []string{ck.Summary}
		return ck
	}
	want := hashKVs(lin.KVs)
	ck.Ops = len(lin.KVs)
	for i, n := range c.Nodes {
		b, err := client.New(client.Config{Endpoints: []string{n.HTTPAddr}, RequestTimeout: 5 * time.Second})
		if err != nil {
			ck.Anomalies = append(ck.Anomalies, err.Error())
			continue
		}
		r, err := b.Range(lctx, "", client.WithStale())
		b.Close()
		if err != nil {
			ck.Anomalies = append(ck.Anomalies, fmt.Sprintf("%s: stale range: %v", n.ID, err))
			continue
		}
		if h := hashKVs(r.KVs); h != want || r.Revision != lin.Revision {
			ck.Anomalies = append(ck.Anomalies, fmt.Sprintf("%s: state differs: %d keys at revision %d (hash %s), leader view %d keys at revision %d (hash %s)",
				n.ID, len(r.KVs), r.Revision, h[:12], len(lin.KVs), lin.Revision, want[:12]))
		}
		_ = i
	}
	ck.Valid = len(ck.Anomalies) == 0
	if ck.Valid {
		ck.Summary = fmt.Sprintf("%d members equal: %d keys at revision %d (hash %s)", len(c.Nodes), len(lin.KVs), lin.Revision, want[:12])
	} else {
		ck.Summary = fmt.Sprintf("%d members differ", len(ck.Anomalies))
	}
	return ck
}

func allEqual[T comparable](xs []T) bool {
	for _, x := range xs {
		if x != xs[0] {
			return false
		}
	}
	return len(xs) > 0
}

func hashKVs(kvs []api.KeyValue) string {
	h := sha256.New()
	for _, kv := range kvs {
		fmt.Fprintf(h, "%q=%q@%d/%d/%d\n", kv.Key, kv.Value, kv.CreateRevision, kv.ModRevision, kv.Version)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Recheck checks a saved run again from its files: the history with the
// workload's checkers, plus the liveness and convergence checks saved while
// the cluster was up (runtime.json).
func Recheck(dir string) (*Result, error) {
	b, err := os.ReadFile(filepath.Join(dir, "run.json"))
	if err != nil {
		return nil, fmt.Errorf("harness: not a run folder: %w", err)
	}
	var saved struct {
		Scenario Scenario `json:"scenario"`
		Options  Options  `json:"options"`
	}
	if err := json.Unmarshal(b, &saved); err != nil {
		return nil, fmt.Errorf("harness: run.json: %w", err)
	}
	res := &Result{Scenario: saved.Scenario, Seed: saved.Options.Seed, Nodes: saved.Options.Nodes,
		Rate: saved.Options.Rate, Time: saved.Options.Time, Dir: dir}
	if b, err := os.ReadFile(filepath.Join(dir, "runtime.json")); err == nil {
		var checks []Check
		if err := json.Unmarshal(b, &checks); err != nil {
			return nil, fmt.Errorf("harness: runtime.json: %w", err)
		}
		res.Checks = checks
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	if saved.Scenario.Nodes == 0 && saved.Options.Nodes == 0 {
		return nil, fmt.Errorf("harness: run.json lacks the cluster size")
	}
	// Keep the original run's wall time (result.json is rewritten).
	if b, err := os.ReadFile(filepath.Join(dir, "result.json")); err == nil {
		var old Result
		if json.Unmarshal(b, &old) == nil {
			res.Wall = old.Wall
		}
	}
	finish(res, dir)
	return res, nil
}
