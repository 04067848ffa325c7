package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/alecthomas/kong"
)

// version is the build's version, set with
// go build -ldflags "-X main.version=v1.2.3".
var version = "dev"

// Globals are the flags every command accepts, before or after the command
// name (statenode --addr X kv get k == statenode kv get k --addr X).
type Globals struct {
	Addr    []string         `name:"addr" sep:"," default:"127.0.0.1:7001" placeholder:"HOST:PORT" help:"Client API endpoints of cluster members, comma-separated (default: the dev node)."`
	Output  string           `name:"output" short:"o" enum:"text,json" default:"text" placeholder:"text|json" help:"Output format: text or json."`
	Timeout time.Duration    `name:"timeout" default:"10s" help:"Deadline of each client request, e.g. 5s or 500ms."`
	Config  kong.ConfigFlag  `name:"config" placeholder:"FILE" help:"JSON file of flag values, keys are flag names ({\"addr\": \"10.0.0.1:7001\"})."`
	Version kong.VersionFlag `name:"version" env:"-" help:"Print the version and exit."`
}

// CLI is the command tree.
type CLI struct {
	Globals `embed:""`

	Agent   agentCmd   `cmd:"" help:"Run a cluster member until SIGINT or SIGTERM."`
	Dev     devCmd     `cmd:"" help:"Run a throw-away single-node cluster for development."`
	KV      kvCmd      `cmd:"" name:"kv" help:"Read, write and watch keys."`
	Members membersCmd `cmd:"" help:"List, add or remove the cluster's members (list is the default)."`
	CRDT    crdtCmd    `cmd:"" name:"crdt" help:"Read and update CRDTs (counters, sets, registers) served by any member; needs --gossip-addr on the agents."`
	Status  statusCmd  `cmd:"" help:"Show the status of each endpoint in --addr."`
	Leader  leaderCmd  `cmd:"" help:"Show or move the cluster's leader."`
	Lock    lockCmd    `cmd:"" help:"Run a command while holding a fenced lock (the token is in $STATENODE_FENCE); stop it if the session is lost."`
	Elect   electCmd   `cmd:"" help:"Campaign in, observe or query a named election."`
	Sem     semCmd     `cmd:"" help:"Run a command while holding permits of a counting semaphore, or show one."`
	Barrier barrierCmd `cmd:"" help:"Wait at a cyclic barrier, run a command inside a double barrier, reset or show one."`
	Latch   latchCmd   `cmd:"" help:"Create, count down, await, show or delete a countdown latch."`
	Session sessionCmd `cmd:"" help:"List or destroy coordination sessions."`
	Snap    snapCmd    `cmd:"" name:"snapshot" help:"Save, inspect or restore a snapshot of the cluster's state (backup and restore)."`
	Bench   benchGroup `cmd:"" help:"Generate load and report latency and throughput (etcd benchmark format): key-value (the default), lock, election, semaphore."`
	Ver     versionCmd `cmd:"" name:"version" help:"Print the version."`
}

const description = `statenode is a coordination service: a replicated, linearizable key-value
store with watches.

Every flag can also be set with an environment variable STATENODE_<FLAG>
(upper case, dashes become underscores: --http-addr is STATENODE_HTTP_ADDR)
or in a JSON file named by --config (keys are flag names: {"addr": "..."}).
Precedence: command-line flag > environment variable > config file > default.

Exit status: 0 on success, 1 on any error (one line on stderr). lock,
sem, elect, barrier and latch await have more (see statenode lock --help).`

// runContext is what every command's Run receives.
type runContext struct {
	ctx    context.Context
	g      *Globals
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
}

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run parses args, runs the chosen command and returns the exit status.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	var cli CLI
	parser, err := kong.New(&cli,
		kong.Name("statenode"),
		kong.Description(description),
		kong.Writers(stdout, stderr),
		kong.Vars(defaultVars()),
		kong.DefaultEnvars("STATENODE"),
		kong.Configuration(loadConfigFile),
		kong.ConfigureHelp(kong.HelpOptions{Compact: true}),
	)
	if err != nil { // a bug in the command tree, not a user error
		fmt.Fprintf(stderr, "statenode: %s\n", oneLine(err))
		return 1
	}
	kctx, err := parser.Parse(args)
	if err != nil {
		fmt.Fprintf(stderr, "statenode: %s (see statenode --help)\n", oneLine(err))
		return 1
	}
	rc := &runContext{ctx: ctx, g: &cli.Globals, stdin: stdin, stdout: stdout, stderr: stderr}
	if err := kctx.Run(rc); err != nil {
		code := 1
		var ee *exitError
		if errors.As(err, &ee) {
			code, err = ee.code, ee.err
		}
		if err != nil {
			fmt.Fprintf(stderr, "statenode: %s\n", oneLine(err))
		}
		return code
	}
	return 0
}

// exitError makes run exit with code instead of 1, printing err (if not
// nil) as usual. lock, sem, elect, barrier and latch await use it for
// their documented exit statuses and to pass on the exit status of the
// command they ran.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

// oneLine flattens a (possibly joined, multi-line) error message so that
// every failure is reported on exactly one line of stderr.
func oneLine(err error) string {
	var lines []string
	for _, l := range strings.Split(err.Error(), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	return strings.Join(lines, "; ")
}

// Errors of the commands. run prints every error as one line after
// "statenode: ", so these messages carry no prefix of their own.
var (
	// errUsage: flags or arguments that parsed but do not make sense
	// (together); found by a command before it does anything.
	errUsage = errors.New("invalid arguments")
	// errNoLeader: the member asked knows no leader.
	errNoLeader = errors.New("no leader")
)

type versionCmd struct{}

func (versionCmd) Run(rc *runContext) error {
	if rc.g.Output == "json" {
		return writeJSON(rc.stdout, map[string]string{"version": version})
	}
	_, err := fmt.Fprintln(rc.stdout, version)
	return err
}
