package harness

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/statenode/statenode/jepsen/history"
	"github.com/statenode/statenode/jepsen/proxy"
)

// A Fault is one kind of trouble the nemesis injects. Inject is called
// from the nemesis goroutine; it chooses its targets (with the run's seeded
// random source), injects the fault, and returns a description and the
// function that heals it. Both may block; both honor ctx.
type Fault struct {
	Name   string
	Doc    string
	Inject func(ctx context.Context, e *Env) (detail string, heal func(context.Context) error, err error)
}

// Faults lists every fault by name.
func Faults() map[string]Fault {
	fs := []Fault{
		{Name: "partition-leader", Doc: "isolate the leader from every other member", Inject: partitionLeader},
		{Name: "partition-one", Doc: "isolate one random member", Inject: partitionOne},
		{Name: "partition-halves", Doc: "cut the cluster into a random minority and majority", Inject: partitionHalves},
		{Name: "partition-ring", Doc: "majorities ring: every member sees a majority, no two the same (5+ nodes)", Inject: partitionRing},
		{Name: "partition-bridge", Doc: "two halves that only a bridge member connects", Inject: partitionBridge},
		{Name: "partition-oneway", Doc: "the leader can receive but not send", Inject: partitionOneWay},
		{Name: "delay", Doc: "50ms ±50ms on every link", Inject: delayAll},
		{Name: "loss", Doc: "10% of chunks on every link lost and retransmitted after 200ms", Inject: lossAll},
		{Name: "kill-leader", Doc: "kill -9 the leader, restart it on the same data dir", Inject: killTargets(pickLeader)},
		{Name: "kill-one", Doc: "kill -9 one random member, restart it", Inject: killTargets(pickOne)},
		{Name: "kill-minority", Doc: "kill -9 a random minority, restart it", Inject: killTargets(pickMinority)},
		{Name: "kill-all", Doc: "kill -9 every member, restart them all", Inject: killTargets(pickAll)},
		{Name: "pause-leader", Doc: "SIGSTOP the leader, SIGCONT it", Inject: pauseTargets(pickLeader)},
		{Name: "pause-one", Doc: "SIGSTOP one random member, SIGCONT it", Inject: pauseTargets(pickOne)},
		{Name: "member", Doc: "remove a random voter under load, wipe it, add it back (join)", Inject: memberChange},
		{Name: "clock", Doc: "the leader's wall clock jumps forward by more than a session TTL, then back (faultclock build)", Inject: clockJump},
	}
	m := map[string]Fault{}
	for _, f := range fs {
		m[f.Name] = f
	}
	return m
}

// FaultNames lists the fault names, sorted.
func FaultNames() []string {
	var names []string
	for n := range Faults() {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// --- targets -----------------------------------------------------------------------

func (e *Env) leaderOrRandom(ctx context.Context) int {
	if i, err := e.Cluster.Leader(ctx, 3*time.Second); err == nil {
		return i
	}
	return e.rng.IntN(len(e.Cluster.Nodes))
}

func pickLeader(ctx context.Context, e *Env) []int { return []int{e.leaderOrRandom(ctx)} }
func pickOne(_ context.Context, e *Env) []int      { return []int{e.rng.IntN(len(e.Cluster.Nodes))} }
func pickAll(_ context.Context, e *Env) []int {
	var all []int
	for i := range e.Cluster.Nodes {
		all = append(all, i)
	}
	return all
}
func pickMinority(_ context.Context, e *Env) []int {
	p := e.rng.Perm(len(e.Cluster.Nodes))
	k := 1 + e.rng.IntN(max((len(p)-1)/2, 1))
	return p[:k]
}

func (e *Env) ids(idx []int) string {
	var s []string
	for _, i := range idx {
		s = append(s, e.Cluster.Nodes[i].ID)
	}
	return strings.Join(s, ",")
}

// --- partitions ----------------------------------------------------------------------

// applyGraph blocks every directed pair for which connected is false.
func (e *Env) applyGraph(connected func(i, j int) bool) func(context.Context) error {
	n := len(e.Cluster.Nodes)
	for i := 0; i < n; i++ {
		for j := 0; j < n; j++ {
			if i != j && !connected(i, j) {
				_ = e.Cluster.Net.Set(i, j, proxy.Faults{Blocked: true})
			}
		}
	}
	return func(context.Context) error { e.Cluster.Net.HealAll(); return nil }
}

func groupsOf(n int, groups ...[]int) []int {
	g := make([]int, n)
	for gi, members := range groups {
		for _, i := range members {
			g[i] = gi
		}
	}
	return g
}

func (e *Env) isolate(a []int) func(context.Context) error {
	in := map[int]bool{}
	for _, i := range a {
		in[i] = true
	}
	return e.applyGraph(func(i, j int) bool { return in[i] == in[j] })
}

func partitionLeader(ctx context.Context, e *Env) (string, func(context.Context) error, error) {
	t := pickLeader(ctx, e)
	return "isolated " + e.ids(t), e.isolate(t), nil
}

func partitionOne(ctx context.Context, e *Env) (string, func(context.Context) error, error) {
	t := pickOne(ctx, e)
	return "isolated " + e.ids(t), e.isolate(t), nil
}

func partitionHalves(_ context.Context, e *Env) (string, func(context.Context) error, error) {
	p := e.rng.Perm(len(e.Cluster.Nodes))
	a := p[:len(p)/2]
	return fmt.Sprintf("minority %s | majority %s", e.ids(a), e.ids(p[len(p)/2:])), e.isolate(a), nil
}

func partitionRing(ctx context.Context, e *Env) (string, func(context.Context) error, error) {
	n := len(e.Cluster.Nodes)
	if n < 5 {
		return partitionHalves(ctx, e)
	}
	p := e.rng.Perm(n)
	pos := make([]int, n)
	for k, i := range p {
		pos[i] = k
	}
	d := (n/2 + 1) / 2 // each member sees itself and 2d others: a majority
	heal := e.applyGraph(func(i, j int) bool {
		dist := (pos[i] - pos[j] + n) % n
		return min(dist, n-dist) <= d
	})
	return "ring " + e.ids(p), heal, nil
}

func partitionBridge(_ context.Context, e *Env) (string, func(context.Context) error, error) {
	n := len(e.Cluster.Nodes)
	p := e.rng.Perm(n)
	half := (n - 1) / 2
	a, bridge, b := p[:half], p[half], p[half+1:]
	g := groupsOf(n, a, []int{bridge}, b)
	heal := e.applyGraph(func(i, j int) bool { return g[i] == g[j] || g[i] == 1 || g[j] == 1 })
	return fmt.Sprintf("%s | bridge %s | %s", e.ids(a), e.Cluster.Nodes[bridge].ID, e.ids(b)), heal, nil
}

func partitionOneWay(ctx context.Context, e *Env) (string, func(context.Context) error, error) {
	l := e.leaderOrRandom(ctx)
	heal := e.applyGraph(func(i, j int) bool { return i != l })
	return e.Cluster.Nodes[l].ID + " cannot send", heal, nil
}

func (e *Env) setAll(f proxy.Faults) func(context.Context) error {
	n := len(e.Cluster.Nodes)
	for i := 0; i < n; i++ {
		for j := 0; j < n; j++ {
			if i != j {
				_ = e.Cluster.Net.Set(i, j, f)
			}
		}
	}
	return func(context.Context) error { e.Cluster.Net.HealAll(); return nil }
}

func delayAll(_ context.Context, e *Env) (string, func(context.Context) error, error) {
	return "every link", e.setAll(proxy.Faults{Delay: 50 * time.Millisecond, Jitter: 50 * time.Millisecond}), nil
}

func lossAll(_ context.Context, e *Env) (string, func(context.Context) error, error) {
	return "every link", e.setAll(proxy.Faults{Loss: 0.1}), nil
}

// --- clocks ----------------------------------------------------------------------------

// clockJump moves the leader's wall clock forward by two to three session
// TTLs of the coordination workloads, and back when healed. The leader
// stamps every command and decides session expiry with that clock: the
// jump expires every session early (and sessions created meanwhile late,
// once it jumps back). Locks may then change hands while their holders
// still think they hold them; fencing must keep that safe.
func clockJump(ctx context.Context, e *Env) (string, func(context.Context) error, error) {
	l := e.leaderOrRandom(ctx)
	d := 2*CoordTTL + time.Duration(e.rng.Int64N(int64(CoordTTL)))
	d = d.Round(100 * time.Millisecond)
	if err := e.Cluster.SetClockOffset(l, d); err != nil {
		return "", nil, err
	}
	heal := func(context.Context) error { return e.Cluster.SetClockOffset(l, 0) }
	return fmt.Sprintf("%s clock +%s", e.Cluster.Nodes[l].ID, d), heal, nil
}

// --- processes -------------------------------------------------------------------------

func killTargets(pick func(context.Context, *Env) []int) func(context.Context, *Env) (string, func(context.Context) error, error) {
	return func(ctx context.Context, e *Env) (string, func(context.Context) error, error) {
		t := pick(ctx, e)
		for _, i := range t {
			if err := e.Cluster.Kill(i); err != nil {
				return "", nil, err
			}
		}
		heal := func(ctx context.Context) error {
			var errs []string
			for _, i := range t {
				if err := e.Cluster.Start(i, false); err != nil {
					errs = append(errs, err.Error())
				}
			}
			for _, i := range t {
				if err := e.Cluster.WaitUp(ctx, i, 20*time.Second); err != nil {
					errs = append(errs, err.Error())
				}
			}
			if len(errs) > 0 {
				return fmt.Errorf("restart after kill -9: %s", strings.Join(errs, "; "))
			}
			return nil
		}
		return "killed " + e.ids(t), heal, nil
	}
}

func pauseTargets(pick func(context.Context, *Env) []int) func(context.Context, *Env) (string, func(context.Context) error, error) {
	return func(ctx context.Context, e *Env) (string, func(context.Context) error, error) {
		t := pick(ctx, e)
		for _, i := range t {
			if err := e.Cluster.Pause(i); err != nil {
				return "", nil, err
			}
		}
		heal := func(context.Context) error {
			for _, i := range t {
				if err := e.Cluster.Resume(i); err != nil {
					return err
				}
			}
			return nil
		}
		return "paused " + e.ids(t), heal, nil
	}
}

func memberChange(ctx context.Context, e *Env) (string, func(context.Context) error, error) {
	i := e.rng.IntN(len(e.Cluster.Nodes))
	n := e.Cluster.Nodes[i]
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := e.Cluster.Admin().RemoveMember(rctx, n.ID); err != nil {
		// The removal may have applied anyway (indeterminate): look.
		if present, lerr := e.memberPresent(rctx, n.ID); lerr != nil || present {
			return "", nil, fmt.Errorf("remove %s: %w", n.ID, err)
		}
	}
	if err := e.Cluster.Kill(i); err != nil {
		return "", nil, err
	}
	if err := e.Cluster.Wipe(i); err != nil {
		return "", nil, err
	}
	heal := func(ctx context.Context) error {
		if err := e.Cluster.Start(i, true); err != nil {
			return err
		}
		if err := e.Cluster.WaitUp(ctx, i, 30*time.Second); err != nil {
			return fmt.Errorf("rejoin %s: %w", n.ID, err)
		}
		deadline := time.Now().Add(20 * time.Second)
		for time.Now().Before(deadline) {
			if ok, _ := e.memberPresent(ctx, n.ID); ok {
				return nil
			}
			time.Sleep(100 * time.Millisecond)
		}
		return fmt.Errorf("%s not a voter again 20s after rejoining", n.ID)
	}
	return "removed, wiped and re-added " + n.ID, heal, nil
}

func (e *Env) memberPresent(ctx context.Context, id string) (bool, error) {
	ms, err := e.Cluster.Admin().Members(ctx)
	if err != nil {
		return false, err
	}
	for _, m := range ms {
		if m.ID == id && m.Voter {
			return true, nil
		}
	}
	return false, nil
}

// --- the nemesis ------------------------------------------------------------------------

// Nemesis logs fault events to nemesis.jsonl (machine) and nemesis.log (human).
type Nemesis struct {
	env     *Env
	mu      sync.Mutex
	events  []history.Event
	jf, hf  *os.File
	nextID  int
	healErr []string // anomalies: heals that failed, leaders that did not appear
}

func newNemesis(e *Env) (*Nemesis, error) {
	jf, err := os.Create(e.path("nemesis.jsonl"))
	if err != nil {
		return nil, err
	}
	hf, err := os.Create(e.path("nemesis.log"))
	if err != nil {
		jf.Close()
		return nil, err
	}
	return &Nemesis{env: e, jf: jf, hf: hf}, nil
}

func (nm *Nemesis) log(ev history.Event) {
	nm.mu.Lock()
	defer nm.mu.Unlock()
	nm.events = append(nm.events, ev)
	b, _ := json.Marshal(ev)
	nm.jf.Write(append(b, '\n'))
	fmt.Fprintf(nm.hf, "%10.3fs %-5s %-3d %-17s %s\n", time.Duration(ev.Time).Seconds(), ev.Phase, ev.ID, ev.Fault, ev.Detail)
}

// Info logs a harness event that is not a fault window.
func (nm *Nemesis) Info(what, detail string) {
	nm.log(history.Event{Phase: "info", Fault: what, Detail: detail, Time: nm.env.Clock.Now()})
}

func (nm *Nemesis) anomaly(s string) {
	nm.mu.Lock()
	nm.healErr = append(nm.healErr, s)
	nm.mu.Unlock()
	nm.Info("anomaly", s)
}

// Events returns the events logged so far.
func (nm *Nemesis) Events() []history.Event {
	nm.mu.Lock()
	defer nm.mu.Unlock()
	return append([]history.Event(nil), nm.events...)
}

func (nm *Nemesis) close() {
	nm.jf.Close()
	nm.hf.Close()
}

// LeaderAfterHeal is how soon after a heal a leader must exist.
const LeaderAfterHeal = 5 * time.Second

// A fault lasts between minFault and maxFault, and is followed by
// minQuiet to maxQuiet without faults.
const (
	minFault = 3 * time.Second
	maxFault = 7 * time.Second
	minQuiet = 2 * time.Second
	maxQuiet = 4 * time.Second
)

// run injects faults from names, one at a time, until end (on the run's
// clock) minus the tail; each fault lasts 3–7 s and is followed by 2–4 s
// of quiet. It returns when the last fault is healed.
func (nm *Nemesis) run(ctx context.Context, names []string, end time.Duration) {
	e := nm.env
	all := Faults()
	order := e.rng.Perm(len(names))
	for k := 0; ctx.Err() == nil; k++ {
		dur := minFault + time.Duration(e.rng.Int64N(int64(maxFault-minFault)))
		left := end - time.Duration(e.Clock.Now())
		if left < minFault {
			return
		}
		dur = min(dur, left)
		f := all[names[order[k%len(order)]]]
		nm.nextID++
		id := nm.nextID
		detail, heal, err := f.Inject(ctx, e)
		if err != nil {
			nm.Info("nemesis-error", fmt.Sprintf("%s: %v", f.Name, err))
			sleepCtx(ctx, time.Second)
			continue
		}
		nm.log(history.Event{ID: id, Phase: "start", Fault: f.Name, Detail: detail, Time: e.Clock.Now()})
		sleepCtx(ctx, dur)
		hctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		herr := heal(hctx)
		cancel()
		nm.log(history.Event{ID: id, Phase: "end", Fault: f.Name, Detail: detail, Time: e.Clock.Now()})
		if herr != nil {
			nm.anomaly(fmt.Sprintf("heal of %s (%s) failed: %v", f.Name, detail, herr))
		}
		nm.checkLeader(f.Name)
		quiet := minQuiet + time.Duration(e.rng.Int64N(int64(maxQuiet-minQuiet)))
		if time.Duration(e.Clock.Now())+quiet+minFault > end {
			return
		}
		sleepCtx(ctx, quiet)
	}
}

// checkLeader requires a leader within LeaderAfterHeal.
func (nm *Nemesis) checkLeader(after string) {
	t0 := time.Now()
	l, err := nm.env.Cluster.Leader(context.Background(), LeaderAfterHeal)
	if err != nil {
		nm.anomaly(fmt.Sprintf("liveness: no leader within %s of healing %s", LeaderAfterHeal, after))
		return
	}
	nm.Info("leader", fmt.Sprintf("%s after %s", nm.env.Cluster.Nodes[l].ID, time.Since(t0).Round(time.Millisecond)))
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
