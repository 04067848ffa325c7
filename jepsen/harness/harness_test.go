package harness

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/statenode/statenode/api"
	"github.com/statenode/statenode/client"
	"github.com/statenode/statenode/jepsen/checker"
	"github.com/statenode/statenode/jepsen/history"
)

var checkerCulprit = checker.BarrierCulprit

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestScenariosAreWellFormed(t *testing.T) {
	faults := Faults()
	seen := map[string]bool{}
	for _, s := range append(Quick(), Full()...) {
		if seen[s.Name] {
			t.Errorf("scenario %s listed twice", s.Name)
		}
		seen[s.Name] = true
		if _, err := LookupWorkload(s.Workload); err != nil {
			t.Errorf("%s: %v", s.Name, err)
		}
		if len(s.Faults) == 0 {
			t.Errorf("%s: no faults", s.Name)
		}
		for _, f := range s.Faults {
			if _, ok := faults[f]; !ok {
				t.Errorf("%s: unknown fault %s", s.Name, f)
			}
		}
		if got, err := Lookup(s.Name); err != nil || got.Name != s.Name {
			t.Errorf("Lookup(%s) = %v, %v", s.Name, got, err)
		}
	}
	if _, err := Lookup("nope"); !errors.Is(err, ErrUnknownScenario) {
		t.Errorf("Lookup(nope) = %v", err)
	}
	if sc, err := Lookup("set:kill-one+pause-one"); err != nil || sc.Workload != "set" || len(sc.Faults) != 2 {
		t.Errorf("Lookup(set:kill-one+pause-one) = %+v, %v", sc, err)
	}
	if _, err := Lookup("set:meteor"); !errors.Is(err, ErrUnknownScenario) {
		t.Errorf("Lookup(set:meteor) = %v", err)
	}
	if w, err := LookupWorkload("register-stale"); err != nil || w.Name() != "register-stale" {
		t.Errorf("LookupWorkload(register-stale) = %v, %v", w, err)
	}
	if _, ok := Workloads()["register-stale"]; ok {
		t.Errorf("the self-test workload is in the matrix")
	}
	for _, w := range []string{"semaphore", "latch", "barrier"} {
		if _, ok := Workloads()[w]; !ok {
			t.Errorf("workload %s is not registered", w)
		}
		n := 0
		for _, s := range Full() {
			if s.Workload == w {
				n++
			}
		}
		if n < 2 {
			t.Errorf("workload %s has %d scenarios in the full matrix, want its own faults and a mixed one", w, n)
		}
	}
	if _, err := LookupWorkload("semaphore:pause-leader"); !errors.Is(err, ErrUnknownScenario) {
		t.Errorf("LookupWorkload(semaphore:pause-leader) = %v, want ErrUnknownScenario (a scenario, not a workload)", err)
	}
	for _, s := range append(Quick(), Full()...) {
		allowed := WorkloadFaults(s.Workload)
		for _, f := range s.Faults {
			if !slices.Contains(allowed, f) {
				t.Errorf("%s: fault %s is not one of workload %s's", s.Name, f, s.Workload)
			}
		}
	}
}

// TestFullMatrixInjectsEveryFault shows that the full matrix covers every
// pairing it names: each scenario but the mixed ones has time for all its
// faults in the nemesis's worst case (every fault and quiet period at its
// longest, plus slack for injecting, healing and finding the leader);
// register and set meet every fault but the clock, each coordination
// workload a partition, a kill and a pause, and the matrix fits its time
// bound.
func TestFullMatrixInjectsEveryFault(t *testing.T) {
	const slack = 2 * time.Second
	covered := map[string]map[string]bool{}
	for _, s := range Full() {
		if s.Time == 0 {
			t.Errorf("%s: no workload time of its own", s.Name)
			continue
		}
		if strings.HasSuffix(s.Name, "-mixed") {
			continue
		}
		q := quietEnds(s.Time)
		lastStart := q + time.Duration(len(s.Faults)-1)*(maxFault+slack+maxQuiet)
		if lastStart+minFault > s.Time-q {
			t.Errorf("%s: %d faults in %s: the last may start at %s, too late for a %s run", s.Name, len(s.Faults), s.Time, lastStart, s.Time)
		}
		if covered[s.Workload] == nil {
			covered[s.Workload] = map[string]bool{}
		}
		for _, f := range s.Faults {
			if covered[s.Workload][f] {
				t.Errorf("%s: %s meets %s in two scenarios", s.Name, s.Workload, f)
			}
			covered[s.Workload][f] = true
		}
	}
	for w := range Workloads() {
		var want []string
		switch w {
		case "register", "set":
			want = WorkloadFaults(w)
		case "crdt":
			want = []string{"kill-", "pause-"}
		default:
			want = []string{"partition-", "kill-", "pause-"}
		}
		for _, f := range want {
			ok := false
			for g := range covered[w] {
				ok = ok || strings.HasPrefix(g, f)
			}
			if !ok {
				t.Errorf("workload %s: no scenario of its own with fault %s*", w, f)
			}
		}
	}
	for _, w := range []string{"lock", "counter", "semaphore"} {
		if !covered[w]["clock"] {
			t.Errorf("workload %s: no scenario of its own with the clock", w)
		}
	}
	if est := Estimate(Full(), time.Minute); est > 38*time.Minute {
		t.Errorf("full matrix estimated at %s, want at most 38m", est)
	}
	if est := Estimate(Quick(), 40*time.Second); est > 10*time.Minute {
		t.Errorf("quick scenarios estimated at %s, want at most 10m", est)
	}
	if got := Estimate([]Scenario{{Workload: "set", Time: 10 * time.Second}, {Workload: "set"}}, time.Second); got != 11*time.Second+2*ScenarioOverhead("set") {
		t.Errorf("Estimate = %s", got)
	}
}

// writeRun saves a minimal run folder: run.json, runtime.json, histories.
func writeRun(t *testing.T, workload string, ops []history.Op) string {
	t.Helper()
	dir := t.TempDir()
	b, _ := json.Marshal(map[string]any{
		"scenario": Scenario{Name: workload + "-test", Workload: workload, Faults: []string{"kill-one"}},
		"options":  map[string]any{"Nodes": 3, "Seed": 7},
	})
	if err := os.WriteFile(filepath.Join(dir, "run.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "runtime.json"), []byte(`[{"Name":"converge","Valid":true,"Summary":"ok"}]`), 0o644); err != nil {
		t.Fatal(err)
	}
	rec, err := history.NewRecorder(filepath.Join(dir, "client-000.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	for _, op := range ops {
		rec.Add(op)
	}
	if err := rec.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestRecheck(t *testing.T) {
	good := []history.Op{
		{F: history.FAdd, Value: "a", Type: history.TypeOK, Call: 1, Return: 2},
		{Client: FinalClient, F: history.FRead, Values: []string{"a"}, Type: history.TypeOK, Call: 3, Return: 4},
	}
	res, err := Recheck(writeRun(t, "set", good))
	if err != nil || !res.Valid {
		t.Fatalf("good set run: %v, %+v", err, res)
	}
	if len(res.Checks) != 2 || res.Checks[0].Name != "converge" {
		t.Fatalf("checks %+v: want the saved runtime check and the set check", res.Checks)
	}
	lost := append([]history.Op{{F: history.FAdd, Value: "b", Type: history.TypeOK, Call: 1, Return: 2}}, good...)
	dir := writeRun(t, "set", lost)
	res, err = Recheck(dir)
	if err != nil || res.Valid {
		t.Fatalf("lost add passed the re-check: %v, %+v", err, res)
	}
	v, _ := os.ReadFile(filepath.Join(dir, "verdict.txt"))
	if !strings.HasPrefix(string(v), "FAIL set-test seed=7") || !strings.Contains(string(v), "failed=set") {
		t.Fatalf("verdict.txt = %q", v)
	}
	stale := []history.Op{
		{F: history.FPut, Key: "k", Value: "v1", Type: history.TypeOK, Rev: 2, Call: 1, Return: 2},
		{F: history.FPut, Key: "k", Value: "v2", Type: history.TypeOK, Rev: 3, Call: 3, Return: 4},
		{Client: 1, F: history.FGet, Key: "k", Found: true, Out: "v1", Rev: 2, Type: history.TypeOK, Call: 5, Return: 6},
	}
	dir = writeRun(t, "register", stale)
	if res, err = Recheck(dir); err != nil || res.Valid {
		t.Fatalf("stale read passed the re-check: %v, %+v", err, res)
	}
	if _, err := os.Stat(filepath.Join(dir, "history.html")); err != nil {
		t.Fatalf("no visualization: %v", err)
	}
	// A barrier run re-checked: a generation released before its parties
	// arrived fails.
	early := []history.Op{
		{Client: 0, F: history.FBarrier, Key: "b", Session: 1, Size: 3, Token: 10, Type: history.TypeOK, Call: 1, Return: 5},
		{Client: 1, F: history.FBarrier, Key: "b", Session: 2, Size: 3, Token: 10, Arrival: 1, Type: history.TypeOK, Call: 2, Return: 5},
		{Client: 2, F: history.FBarrier, Key: "b", Session: 3, Size: 3, Token: 10, Arrival: 2, Type: history.TypeOK, Call: 6, Return: 7},
	}
	if res, err = Recheck(writeRun(t, "barrier", early)); err != nil || res.Valid {
		t.Fatalf("early barrier release passed the re-check: %v, %+v", err, res)
	}
	early[2].Call = 3
	if res, err = Recheck(writeRun(t, "barrier", early)); err != nil || !res.Valid {
		t.Fatalf("good barrier run: %v, %+v", err, res)
	}
	if _, err := Recheck(t.TempDir()); err == nil {
		t.Fatal("Recheck of an empty folder succeeded")
	}
}

func TestClassifyCoord(t *testing.T) {
	cases := []struct {
		err  error
		want string
	}{
		{nil, history.TypeOK},
		{&client.Error{Status: 409, Code: api.CodeBroken, Message: `barrier "b" broken: session 7 ended while registered`}, history.TypeFail},
		{&client.Error{Status: 409, Code: api.CodeNoPermits, Message: "not enough permits"}, history.TypeFail},
		{&client.Error{Status: 408, Code: api.CodeWaitTimeout, Message: "wait timed out"}, history.TypeFail},
		// the server gave up but could not withdraw the wait: it may still be granted
		{&client.Error{Status: 408, Code: api.CodeWaitTimeout, Message: "wait timed out: context deadline exceeded (withdrawing the wait failed: no leader)"}, history.TypeInfo},
		{errors.New("connection reset"), history.TypeInfo},
	}
	for _, c := range cases {
		if got, _ := classifyCoord(c.err); got != c.want {
			t.Errorf("classifyCoord(%v) = %s, want %s", c.err, got, c.want)
		}
	}
	if got, _ := classifyLatch(&client.Error{Status: 404, Code: api.CodeSessionNotFound, Message: "session 3"}); got != history.TypeInfo {
		t.Errorf("a count-down whose session is gone = %s, want info (a retry of an applied one)", got)
	}
	if got := checkerCulprit(`client: server answered 409 barrier_broken: fsm: barrier is broken: barrier "barrier/0/1" broken: session 5242880 ended while registered`); got != 5242880 {
		t.Errorf("culprit = %d", got)
	}
}

// The warm-up's liveness minimum is the option's, halved only for the
// counter workload, whose clients pause holding its two locks by design.
func TestWarmupMinimum(t *testing.T) {
	for name, w := range Workloads() {
		want := int64(20)
		if name == "counter" {
			want = 10
		}
		if got := minOKBeforeFaults(w, 20); got != want {
			t.Errorf("%s: minimum %d, want %d", name, got, want)
		}
	}
}
