package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/statenode/statenode/api"
	"github.com/statenode/statenode/client"
)

// membersCmd lists and changes the cluster's membership, like etcdctl
// member list|add|remove.
type membersCmd struct {
	List   membersListCmd   `cmd:"" default:"withargs" help:"List the members (the default: statenode members is statenode members list)."`
	Add    membersAddCmd    `cmd:"" help:"Add a voting member; start it first with neither --bootstrap nor --join, and it waits to be added."`
	Remove membersRemoveCmd `cmd:"" help:"Remove a member (a dead one, or one being retired); stop its agent afterwards."`
}

type membersListCmd struct{}

// Run prints a table "ID RAFT_ADDR HTTP_ADDR VOTER LEADER" (text) or the
// member list (json), sorted by ID.
func (membersListCmd) Run(rc *runContext) error {
	cl, ctx, done, err := rc.connect()
	if err != nil {
		return err
	}
	defer done()
	members, err := cl.Members(ctx)
	if err != nil {
		return err
	}
	// Raft lists members in configuration order; sort for stable output.
	slices.SortFunc(members, func(a, b api.Member) int { return strings.Compare(a.ID, b.ID) })
	if rc.g.Output == "json" {
		if members == nil {
			members = []api.Member{}
		}
		return writeJSON(rc.stdout, members)
	}
	if gossipShown(members) {
		return printGossipMembers(rc, members) // crdt.go: adds gossip columns
	}
	tw := tabwriter.NewWriter(rc.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tRAFT_ADDR\tHTTP_ADDR\tVOTER\tLEADER")
	for _, m := range members {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%t\t%t\n", m.ID, m.RaftAddr, m.HTTPAddr, m.Voter, m.Leader)
	}
	return tw.Flush()
}

// membersAddCmd adds a voter. Its address flags are read neither from the
// environment nor from a --config file: an agent's STATENODE_RAFT_ADDR or
// "raft-addr" must not name the member being added.
type membersAddCmd struct {
	ID       string `arg:"" name:"id" help:"The new member's --id."`
	RaftAddr string `name:"raft-addr" required:"" env:"-" config:"-" placeholder:"HOST:PORT" help:"The new member's Raft address (its --raft-advertise or --raft-addr)."`
	HTTPAddr string `name:"http-addr" required:"" env:"-" config:"-" placeholder:"HOST:PORT" help:"The new member's client API address (its --http-advertise or --http-addr)."`
	NonVoter bool   `name:"non-voter" env:"-" config:"-" help:"Add it as a non-voter: it replicates and serves stale reads but does not vote."`
}

// Run validates the arguments, asks the leader (found by the client) to
// add the voter, and prints "OK added id=ID raft=HOST:PORT http=HOST:PORT"
// (text) or the new member (json). The new member catches up from the
// leader's log or a snapshot once it runs.
func (c *membersAddCmd) Run(rc *runContext) error {
	if err := validMemberID(c.ID); err != nil {
		return err
	}
	for _, a := range []struct{ flag, addr string }{{"--raft-addr", c.RaftAddr}, {"--http-addr", c.HTTPAddr}} {
		if _, _, err := net.SplitHostPort(a.addr); err != nil {
			return fmt.Errorf("%w: %s %q is not HOST:PORT", errUsage, a.flag, a.addr)
		}
	}
	cl, ctx, done, err := rc.connect()
	if err != nil {
		return err
	}
	defer done()
	add := cl.AddMember
	if c.NonVoter {
		add = cl.AddNonvoter
	}
	if err := add(ctx, c.ID, c.RaftAddr, c.HTTPAddr); err != nil {
		return fmt.Errorf("add member %s: %w", c.ID, err)
	}
	m := api.Member{ID: c.ID, RaftAddr: c.RaftAddr, HTTPAddr: c.HTTPAddr, Voter: !c.NonVoter}
	if rc.g.Output == "json" {
		return writeJSON(rc.stdout, m)
	}
	_, err = fmt.Fprintf(rc.stdout, "OK added id=%s raft=%s http=%s\n", m.ID, m.RaftAddr, m.HTTPAddr)
	return err
}

type membersRemoveCmd struct {
	ID string `arg:"" name:"id" help:"ID of the member to remove (statenode members lists them)."`
}

// Run asks the leader (found by the client, so any member may be asked,
// the one being removed included) to remove the member, and prints "OK
// removed id=ID raft=HOST:PORT http=HOST:PORT" (text) or the removed member
// (json). An ID that is not a member is an error naming the members.
func (c *membersRemoveCmd) Run(rc *runContext) error {
	if err := validMemberID(c.ID); err != nil {
		return err
	}
	cl, ctx, done, err := rc.connect()
	if err != nil {
		return err
	}
	defer done()
	// The addresses are only for the report; the leader decides whether
	// the ID is a member.
	removed := api.Member{ID: c.ID}
	before, listErr := cl.Members(ctx)
	for _, m := range before {
		if m.ID == c.ID {
			removed = m
		}
	}
	if err := cl.RemoveMember(ctx, c.ID); err != nil {
		if errors.Is(err, client.ErrUnknownMember) {
			if listErr != nil {
				return fmt.Errorf("unknown member: %s", c.ID)
			}
			return fmt.Errorf("unknown member: %s (members: %s)", c.ID, memberIDs(before))
		}
		return fmt.Errorf("remove member %s: %w", c.ID, err)
	}
	removed.Leader = false
	if rc.g.Output == "json" {
		return writeJSON(rc.stdout, removed)
	}
	_, err = fmt.Fprintf(rc.stdout, "OK removed id=%s raft=%s http=%s\n", removed.ID, orDash(removed.RaftAddr), orDash(removed.HTTPAddr))
	return err
}

// validMemberID checks id as the agent checks --id (node.Config.Validate),
// so that a malformed ID never reaches the cluster.
func validMemberID(id string) error {
	if id == "" || strings.ContainsAny(id, " ,=/") {
		return fmt.Errorf("%w: member ID %q must be non-empty without spaces, ',', '=' or '/'", errUsage, id)
	}
	return nil
}

// memberIDs is the members' IDs, sorted and joined by commas.
func memberIDs(ms []api.Member) string {
	ids := make([]string, len(ms))
	for i, m := range ms {
		ids[i] = m.ID
	}
	slices.Sort(ids)
	return strings.Join(ids, ", ")
}

type statusCmd struct{}

// endpointStatus is one element of status -o json.
type endpointStatus struct {
	Endpoint string      `json:"endpoint"`
	Status   *api.Status `json:"status,omitempty"`
	Error    string      `json:"error,omitempty"`
}

// Run asks every endpoint in --addr for its status and prints a table, one
// row per endpoint (text), or a JSON array of {endpoint, status, error}.
// Unreachable endpoints are reported and make the exit status 1.
func (statusCmd) Run(rc *runContext) error {
	cl, err := rc.newClient()
	if err != nil {
		return err
	}
	defer cl.Close()
	rows := make([]endpointStatus, len(rc.g.Addr))
	var failed []error
	for i, ep := range rc.g.Addr {
		ctx, cancel := rc.requestContext()
		st, err := cl.StatusOf(ctx, ep)
		cancel()
		rows[i] = endpointStatus{Endpoint: ep, Status: st}
		if err != nil {
			rows[i].Error = oneLine(err)
			failed = append(failed, fmt.Errorf("%s: %w", ep, err))
		}
	}
	if rc.g.Output == "json" {
		if err := writeJSON(rc.stdout, rows); err != nil {
			return err
		}
	} else {
		tw := tabwriter.NewWriter(rc.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ENDPOINT\tID\tSTATE\tTERM\tLEADER\tREVISION\tCOMMIT\tAPPLIED\tMEMBERS\tVERSION\tLOG")
		for _, r := range rows {
			if r.Status == nil {
				fmt.Fprintf(tw, "%s\t-\tunreachable\t-\t-\t-\t-\t-\t-\t-\t-\n", r.Endpoint)
				continue
			}
			s := r.Status
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%d\t%d\t%d\t%d\t%s\t%s\n", r.Endpoint, s.ID, s.State, s.Term,
				orDash(s.Leader.ID), s.Revision, s.CommitIndex, s.AppliedIndex, s.Members, s.Version, orDash(s.LogEngine))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	return errors.Join(failed...)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// leaderCmd shows or moves the leader.
type leaderCmd struct {
	Show     leaderShowCmd     `cmd:"" default:"1" help:"Print the current leader (the default)."`
	Transfer leaderTransferCmd `cmd:"" help:"Hand leadership to another voter."`
}

type leaderShowCmd struct{}

// Run prints "id=ID http=HOST:PORT raft=HOST:PORT" (text) or the leader
// (json). No known leader is an error.
func (leaderShowCmd) Run(rc *runContext) error {
	cl, ctx, done, err := rc.connect()
	if err != nil {
		return err
	}
	defer done()
	st, err := cl.Status(ctx)
	if err != nil {
		return err
	}
	return printLeader(rc, "", st.Leader)
}

func printLeader(rc *runContext, prefix string, l api.LeaderInfo) error {
	if l.ID == "" {
		return errNoLeader
	}
	if rc.g.Output == "json" {
		return writeJSON(rc.stdout, l)
	}
	_, err := fmt.Fprintf(rc.stdout, "%sid=%s http=%s raft=%s\n", prefix, l.ID, l.HTTPAddr, l.RaftAddr)
	return err
}

type leaderTransferCmd struct {
	To string `name:"to" placeholder:"ID" help:"Member to hand leadership to (default: the most up-to-date voter)."`
}

// Run transfers leadership, waits (up to --timeout) until a member reports
// the new leader, and prints "OK id=... http=... raft=..." (text) or the new
// leader (json).
func (c *leaderTransferCmd) Run(rc *runContext) error {
	cl, ctx, done, err := rc.connect()
	if err != nil {
		return err
	}
	defer done()
	before, err := cl.Status(ctx)
	if err != nil {
		return err
	}
	if before.Members < 2 {
		return errors.New("leader transfer: the cluster has no other member")
	}
	if c.To != "" && before.Leader.ID == c.To {
		return printLeader(rc, "OK ", before.Leader) // already there
	}
	if err := cl.TransferLeadership(ctx, c.To); err != nil {
		return err
	}
	// The old leader has stepped down; wait until the cluster names the
	// new one.
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		st, err := cl.Status(ctx)
		if err == nil && st.Leader.ID != "" && st.Leader.ID != before.Leader.ID && (c.To == "" || st.Leader.ID == c.To) {
			return printLeader(rc, "OK ", st.Leader)
		}
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return fmt.Errorf("leadership transferred, but no member reported the new leader within %s", rc.g.Timeout)
			}
			return ctx.Err()
		case <-t.C:
		}
	}
}
