package main

// statenode crdt ... and the agent's gossip flags (docs/CRDT.md).

import (
	"context"
	"fmt"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/statenode/statenode/api"
	"github.com/statenode/statenode/client"
	"github.com/statenode/statenode/node"
)

// gossipFlags are the agent's gossip settings; embedded in agentCmd.
type gossipFlags struct {
	GossipAddr            string        `name:"gossip-addr" placeholder:"HOST:PORT" help:"Address gossip (memberlist, UDP and TCP) listens on, usually port 7946; enables CRDTs and automatic membership (default: off)."`
	GossipAdvertise       string        `name:"gossip-advertise" placeholder:"HOST:PORT" help:"Gossip address other members reach this one at (default: --gossip-addr)."`
	GossipJoin            []string      `name:"gossip-join" aliases:"retry-join" sep:"," placeholder:"HOST:PORT" help:"Gossip addresses of existing members; retried while this member is alone (alias --retry-join)."`
	GossipProfile         string        `name:"gossip-profile" enum:"lan,local" default:"lan" help:"Gossip timings: lan, or local (fast failure detection on one host)."`
	GossipDeadRemoveAfter time.Duration `name:"gossip-dead-remove-after" default:"0s" help:"Remove from Raft a member gossip reports dead or left for this long; 0 never does (see docs/OPERATIONS.md for the trade-off)."`
	BootstrapExpect       int           `name:"bootstrap-expect" default:"0" help:"Form a new cluster once this many servers are seen in gossip (the lowest ID bootstraps); needs --gossip-addr."`
	NonVoter              bool          `name:"non-voter" help:"Join as a Raft non-voter (through gossip or --join): replicates and serves stale reads and CRDTs, no vote; needs --gossip-addr or --join."`
}

// apply copies the flags into cfg.
func (f *gossipFlags) apply(cfg *node.Config) {
	cfg.GossipAddr = f.GossipAddr
	cfg.GossipAdvertise = f.GossipAdvertise
	cfg.GossipJoin = f.GossipJoin
	cfg.GossipProfile = f.GossipProfile
	cfg.GossipDeadRemoveAfter = f.GossipDeadRemoveAfter
	cfg.BootstrapExpect = f.BootstrapExpect
	cfg.NonVoter = f.NonVoter
}

// crdtCmd reads and updates CRDTs. Each request is served by one member
// (the first reachable --addr), from its own state.
type crdtCmd struct {
	Counter  crdtCounterCmd  `cmd:"" help:"A counter any member may increment or decrement (PN-counter)."`
	Set      crdtSetCmd      `cmd:"" help:"An add-wins set of strings (OR-set)."`
	Register crdtRegisterCmd `cmd:"" help:"A last-writer-wins register."`
}

type crdtCounterCmd struct {
	Inc crdtCounterIncCmd `cmd:"" help:"Add N (default 1; negative subtracts) and print the member's value after it."`
	Get crdtCounterGetCmd `cmd:"" help:"Print the counter's value."`
}

type crdtCounterIncCmd struct {
	Name  string `arg:"" help:"Counter name."`
	Delta *int64 `arg:"" optional:"" name:"n" help:"Amount to add (default 1)."`
}

func (c *crdtCounterIncCmd) Run(rc *runContext) error {
	d := int64(1)
	if c.Delta != nil {
		d = *c.Delta
	}
	return crdtDo(rc, func(ctx context.Context, cl *client.Client) (*api.CRDTValue, error) {
		return cl.CRDTUpdate(ctx, api.CRDTPNCounter, c.Name, api.CRDTOp{Op: api.CRDTOpInc, Delta: d})
	})
}

type crdtCounterGetCmd struct {
	Name string `arg:"" help:"Counter name."`
}

func (c *crdtCounterGetCmd) Run(rc *runContext) error {
	return crdtDo(rc, func(ctx context.Context, cl *client.Client) (*api.CRDTValue, error) {
		return cl.CRDTGet(ctx, api.CRDTPNCounter, c.Name)
	})
}

type crdtSetCmd struct {
	Add crdtSetAddCmd `cmd:"" help:"Add ELEM to the set."`
	Rm  crdtSetRmCmd  `cmd:"" help:"Remove ELEM from the set (a concurrent add elsewhere wins)."`
	Ls  crdtSetLsCmd  `cmd:"" help:"Print the set's elements, one a line, sorted."`
}

type crdtSetOpCmd struct {
	Name string `arg:"" help:"Set name."`
	Elem string `arg:"" help:"Element."`
}

type crdtSetAddCmd struct{ crdtSetOpCmd }

type crdtSetRmCmd struct{ crdtSetOpCmd }

func (c *crdtSetAddCmd) Run(rc *runContext) error { return c.run(rc, api.CRDTOpAdd) }
func (c *crdtSetRmCmd) Run(rc *runContext) error  { return c.run(rc, api.CRDTOpRemove) }

func (c *crdtSetOpCmd) run(rc *runContext, op string) error {
	return crdtUpdate(rc, func(ctx context.Context, cl *client.Client) (*api.CRDTValue, error) {
		return cl.CRDTUpdate(ctx, api.CRDTORSet, c.Name, api.CRDTOp{Op: op, Value: c.Elem})
	})
}

type crdtSetLsCmd struct {
	Name string `arg:"" help:"Set name."`
}

func (c *crdtSetLsCmd) Run(rc *runContext) error {
	return crdtDo(rc, func(ctx context.Context, cl *client.Client) (*api.CRDTValue, error) {
		return cl.CRDTGet(ctx, api.CRDTORSet, c.Name)
	})
}

type crdtRegisterCmd struct {
	Set crdtRegisterSetCmd `cmd:"" help:"Write VALUE (or stdin if VALUE is - or missing)."`
	Get crdtRegisterGetCmd `cmd:"" help:"Print the value (an error if never written)."`
}

type crdtRegisterSetCmd struct {
	Name  string  `arg:"" help:"Register name."`
	Value *string `arg:"" optional:"" help:"Value; - or missing reads stdin."`
}

func (c *crdtRegisterSetCmd) Run(rc *runContext) error {
	v, err := rc.readValue(c.Value)
	if err != nil {
		return err
	}
	return crdtUpdate(rc, func(ctx context.Context, cl *client.Client) (*api.CRDTValue, error) {
		return cl.CRDTUpdate(ctx, api.CRDTLWWRegister, c.Name, api.CRDTOp{Op: api.CRDTOpSet, ValueBase64: v})
	})
}

type crdtRegisterGetCmd struct {
	Name string `arg:"" help:"Register name."`
}

func (c *crdtRegisterGetCmd) Run(rc *runContext) error {
	return crdtDo(rc, func(ctx context.Context, cl *client.Client) (*api.CRDTValue, error) {
		return cl.CRDTGet(ctx, api.CRDTLWWRegister, c.Name)
	})
}

// crdtDo runs one read and prints the value: text prints it alone (a
// number, elements one a line, or the register's bytes); json prints the
// whole answer, which names the member that served it ("node").
func crdtDo(rc *runContext, f func(context.Context, *client.Client) (*api.CRDTValue, error)) error {
	return crdtRun(rc, true, f)
}

// crdtUpdate runs an update that prints "OK" (text) or the answer (json).
func crdtUpdate(rc *runContext, f func(context.Context, *client.Client) (*api.CRDTValue, error)) error {
	return crdtRun(rc, false, f)
}

func crdtRun(rc *runContext, show bool, f func(context.Context, *client.Client) (*api.CRDTValue, error)) error {
	cl, ctx, done, err := rc.connect()
	if err != nil {
		return err
	}
	defer done()
	v, err := f(ctx, cl)
	if err != nil {
		return err
	}
	if rc.g.Output == "json" {
		return writeJSON(rc.stdout, v)
	}
	if !show {
		_, err := fmt.Fprintln(rc.stdout, "OK")
		return err
	}
	switch v.Type {
	case api.CRDTPNCounter:
		n, err := v.Int()
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(rc.stdout, strconv.FormatInt(n, 10))
		if err != nil {
			return err
		}
	case api.CRDTORSet:
		els, err := v.Strings()
		if err != nil {
			return err
		}
		for _, e := range els {
			if _, err := fmt.Fprintln(rc.stdout, e); err != nil {
				return err
			}
		}
	case api.CRDTLWWRegister:
		b, ok, err := v.Bytes()
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("register %q was never written (served by %s)", v.Name, v.Node)
		}
		if _, err := fmt.Fprintf(rc.stdout, "%s\n", b); err != nil {
			return err
		}
	}
	return nil
}

// gossipShown reports whether the members carry gossip state (the member
// asked runs gossip).
func gossipShown(ms []api.Member) bool {
	for _, m := range ms {
		if m.Gossip != "" || m.RaftRole != "" {
			return true
		}
	}
	return false
}

// printGossipMembers prints "ID RAFT_ADDR HTTP_ADDR VOTER LEADER ROLE
// GOSSIP GOSSIP_ADDR": the Raft columns of a cluster without gossip, then
// the Raft role (voter, nonvoter, none: alive in gossip, not in Raft) and
// the gossip state (alive, suspect, dead, left; "-" if gossip does not
// know the member).
func printGossipMembers(rc *runContext, ms []api.Member) error {
	tw := tabwriter.NewWriter(rc.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tRAFT_ADDR\tHTTP_ADDR\tVOTER\tLEADER\tROLE\tGOSSIP\tGOSSIP_ADDR")
	for _, m := range ms {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%t\t%t\t%s\t%s\t%s\n", m.ID, orDash(m.RaftAddr), orDash(m.HTTPAddr), m.Voter, m.Leader,
			orDash(m.RaftRole), orDash(m.Gossip), orDash(m.GossipAddr))
	}
	return tw.Flush()
}
