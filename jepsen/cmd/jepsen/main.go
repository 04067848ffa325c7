// Command jepsen runs the statenode fault-injection harness.
//
//	jepsen run --quick --bin ../bin/statenode       # the scenarios of make jepsen-quick
//	jepsen run --full                               # the full matrix
//	jepsen run --scenario register-kill-leader --seed 42 --time 60s --nodes 5 --rate 200
//	jepsen run --scenario set:kill-one+pause-leader    # any workload with any faults
//	jepsen run --quick --log-engine bolt            # every member on the bbolt Raft log
//	jepsen check out/20260101-120000-register-kill-leader-seed42   # re-check a saved run
//	jepsen list                                     # scenarios, faults, workloads
//
// Every run gets a folder under --out with each client's history
// (client-NNN.jsonl), the nemesis log (nemesis.log, nemesis.jsonl), the node
// logs, history.html (Porcupine, fault windows drawn as annotations),
// result.json and a one-line verdict.txt. A results table is printed at the
// end; the exit status is 1 if any run failed.
package main

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/statenode/statenode/jepsen/harness"
)

func main() {
	os.Exit(realMain(os.Args[1:], os.Stdout, os.Stderr))
}

func usage(w io.Writer) {
	fmt.Fprintln(w, `usage:
  jepsen run [--quick | --full | --scenario NAME[,NAME...]] [--seed N] [--time D] [--nodes N] [--rate R] [--log-engine bolt|wal] [--bin PATH] [--faultclock-bin PATH] [--out DIR]
  jepsen check RUN_DIR...
  jepsen list`)
}

func realMain(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	switch args[0] {
	case "run":
		return cmdRun(ctx, args[1:], stdout, stderr)
	case "check":
		return cmdCheck(args[1:], stdout, stderr)
	case "list":
		return cmdList(stdout)
	case "-h", "--help", "help":
		usage(stdout)
		return 0
	}
	usage(stderr)
	return 2
}

func cmdRun(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	quick := fs.Bool("quick", false, "run the quick scenarios (make jepsen-quick)")
	full := fs.Bool("full", false, "run the full matrix (make jepsen)")
	names := fs.String("scenario", "", "comma-separated scenario names (see jepsen list), or workload:fault+fault")
	seed := fs.Uint64("seed", 0, "seed of the nemesis schedule, targets and operation mix (0: random, printed)")
	dur := fs.Duration("time", 0, "workload time of every scenario, instead of each one's own (40-60s; 40s quick, 60s otherwise for scenarios without one)")
	nodes := fs.Int("nodes", 0, "cluster size (default 3 quick, 5 otherwise)")
	rate := fs.Float64("rate", 150, "operations per second, all clients together")
	perNode := fs.Int("clients-per-node", 2, "clients bound to each member")
	bin := fs.String("bin", "../bin/statenode", "statenode binary (build it without -race)")
	fcBin := fs.String("faultclock-bin", "", "statenode built with -tags faultclock, for the clock fault (default: the --bin path plus -faultclock, if it exists)")
	out := fs.String("out", "out", "parent folder of the run folders")
	opTimeout := fs.Duration("op-timeout", 2*time.Second, "deadline of one client operation")
	minOK := fs.Int64("min-ok", 20, "ok operations required before the first fault")
	keep := fs.Bool("keep-data", false, "keep the members' data directories of passing runs")
	logEngine := fs.String("log-engine", "wal", "Raft log engine of every member (statenode --log-engine): wal or bolt")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if !slices.Contains(harness.LogEngines, *logEngine) {
		fmt.Fprintf(stderr, "jepsen run: --log-engine %q: want one of %s\n", *logEngine, strings.Join(harness.LogEngines, ", "))
		return 2
	}
	var scs []harness.Scenario
	switch {
	case *quick:
		scs = harness.Quick()
	case *full:
		scs = harness.Full()
	case *names != "":
		for _, n := range strings.Split(*names, ",") {
			sc, err := harness.Lookup(strings.TrimSpace(n))
			if err != nil {
				fmt.Fprintln(stderr, "jepsen:", err)
				return 2
			}
			scs = append(scs, sc)
		}
	default:
		fmt.Fprintln(stderr, "jepsen run: give --quick, --full or --scenario")
		return 2
	}
	// Flags given explicitly win over a scenario's own settings.
	fs.Visit(func(f *flag.Flag) {
		for i := range scs {
			switch f.Name {
			case "nodes":
				scs[i].Nodes = 0
			case "time":
				scs[i].Time = 0
			case "rate":
				scs[i].Rate = 0
			}
		}
	})
	if *seed == 0 {
		*seed = rand.Uint64() % 1_000_000
	}
	if *dur == 0 {
		*dur = 60 * time.Second
		if *quick {
			*dur = 40 * time.Second
		}
	}
	if *nodes == 0 {
		*nodes = 5
		if *quick {
			*nodes = 3
		}
	}
	binPath, err := filepath.Abs(*bin)
	if err == nil {
		_, err = os.Stat(binPath)
	}
	if err != nil {
		fmt.Fprintf(stderr, "jepsen: statenode binary: %v (build it: go build -o bin/statenode ./cmd/statenode)\n", err)
		return 2
	}
	fcPath := *fcBin
	if fcPath == "" {
		fcPath = binPath + "-faultclock"
		if _, err := os.Stat(fcPath); err != nil {
			fcPath = ""
		}
	}
	if fcPath != "" {
		if fcPath, err = filepath.Abs(fcPath); err == nil {
			_, err = os.Stat(fcPath)
		}
		if err != nil {
			fmt.Fprintf(stderr, "jepsen: faultclock binary: %v (build it: go build -tags faultclock -o bin/statenode-faultclock ./cmd/statenode)\n", err)
			return 2
		}
	}
	opts := harness.Options{
		FaultClockBinary: fcPath,
		Binary:           binPath, Out: *out, Seed: *seed, Time: *dur, Nodes: *nodes, Rate: *rate,
		ClientsPerNode: *perNode, OpTimeout: *opTimeout, MinOKBeforeFaults: *minOK, KeepData: *keep, Log: stdout,
		LogEngine: *logEngine,
	}
	fmt.Fprintf(stdout, "jepsen: %d scenario(s), seed %d, %s each, %d nodes, rate %.0f/s, log engine %s\n", len(scs), *seed, timeRange(scs, *dur), *nodes, *rate, *logEngine)
	est, over := harness.Estimate(scs, *dur), overheads(scs)
	fmt.Fprintf(stdout, "jepsen: estimated total %s (workload time %s, start-up, final checks and tear-down %s)\n", est, est-over, over)
	var results []*harness.Result
	for _, sc := range scs {
		if ctx.Err() != nil {
			break
		}
		fmt.Fprintf(stdout, "=== %s (workload %s, faults %s)\n", sc.Name, sc.Workload, strings.Join(sc.Faults, ","))
		r := harness.Run(ctx, sc, opts)
		fmt.Fprintf(stdout, "--- %s  (%s, %s)\n", r.Verdict(), r.Wall.Round(time.Second), r.Dir)
		printAnomalies(stdout, r)
		results = append(results, r)
	}
	return table(stdout, results)
}

// timeRange describes the workload times of scs: "45s", or "40s-50s"
// when they differ (def for the scenarios without one).
func timeRange(scs []harness.Scenario, def time.Duration) string {
	lo, hi := def, def
	for i, s := range scs {
		t := cmp.Or(s.Time, def)
		if i == 0 {
			lo, hi = t, t
		}
		lo, hi = min(lo, t), max(hi, t)
	}
	if lo == hi {
		return lo.String()
	}
	return lo.String() + "-" + hi.String()
}

// overheads is the part of harness.Estimate that is not workload time.
func overheads(scs []harness.Scenario) time.Duration {
	var d time.Duration
	for _, s := range scs {
		d += harness.ScenarioOverhead(s.Workload)
	}
	return d
}

func printAnomalies(w io.Writer, r *harness.Result) {
	for _, c := range r.Checks {
		fmt.Fprintf(w, "    %-13s %-5v %s\n", c.Name, c.Valid, c.Summary)
		for i, a := range c.Anomalies {
			if i == 10 {
				fmt.Fprintf(w, "      ... %d more\n", len(c.Anomalies)-10)
				break
			}
			fmt.Fprintf(w, "      %s\n", a)
		}
	}
}

// table prints the results table and returns the exit status.
func table(w io.Writer, results []*harness.Result) int {
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SCENARIO\tWORKLOAD\tSEED\tNODES\tOPS\tOK\tINFO\tANOMALIES\tVERDICT\tWALL")
	status := 0
	for _, r := range results {
		v := "PASS"
		if !r.Valid {
			v, status = "FAIL", 1
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t%s\n", r.Scenario.Name, r.Scenario.Workload, r.Seed, r.Nodes,
			r.Ops, r.OK, r.Info, r.Anomalies, v, r.Wall.Round(time.Second))
	}
	tw.Flush()
	if len(results) == 0 {
		status = 1
	}
	return status
}

func cmdCheck(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "jepsen check: give one or more run folders")
		return 2
	}
	var results []*harness.Result
	for _, dir := range args {
		r, err := harness.Recheck(dir)
		if err != nil {
			fmt.Fprintln(stderr, "jepsen:", err)
			return 2
		}
		fmt.Fprintf(stdout, "--- %s  (%s)\n", r.Verdict(), dir)
		printAnomalies(stdout, r)
		results = append(results, r)
	}
	return table(stdout, results)
}

func cmdList(w io.Writer) int {
	for _, l := range []struct {
		title string
		scs   []harness.Scenario
		def   time.Duration // the workload time of scenarios without one
	}{{"quick scenarios", harness.Quick(), 40 * time.Second}, {"full matrix", harness.Full(), 60 * time.Second}} {
		fmt.Fprintf(w, "%s (%d, estimated %s):\n", l.title, len(l.scs), harness.Estimate(l.scs, l.def))
		for _, s := range l.scs {
			fmt.Fprintf(w, "  %-38s %-9s %-4s %s\n", s.Name, s.Workload, cmp.Or(s.Time, l.def), strings.Join(s.Faults, ","))
		}
	}
	fmt.Fprintln(w, "faults:")
	fs := harness.Faults()
	for _, n := range harness.FaultNames() {
		fmt.Fprintf(w, "  %-18s %s\n", n, fs[n].Doc)
	}
	fmt.Fprintln(w, "workloads:")
	var ws []string
	for k := range harness.Workloads() {
		ws = append(ws, k)
	}
	sort.Strings(ws)
	fmt.Fprintf(w, "  %s\n", strings.Join(ws, ", "))
	p := harness.PendingWorkloads()
	if len(p) > 0 {
		fmt.Fprintln(w, "workload slots not yet available:")
	}
	var ks []string
	for k := range p {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	for _, k := range ks {
		fmt.Fprintf(w, "  %-10s %s\n", k, p[k])
	}
	return 0
}
