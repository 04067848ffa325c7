package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/statenode/statenode/api"
)

// membersOf runs "members -o json" against addrs and returns the members
// sorted by ID.
func membersOf(t *testing.T, addrs string) []api.Member {
	t.Helper()
	r := cli(t, runOpts{}, "--addr", addrs, "-o", "json", "members", "list")
	require.Equal(t, 0, r.code, r.stderr)
	var ms []api.Member
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &ms))
	return ms
}

// memberIDsOf is the IDs of ms, in order.
func memberIDsOf(ms []api.Member) []string {
	ids := make([]string, len(ms))
	for i, m := range ms {
		ids[i] = m.ID
	}
	return ids
}

// TestMembersCLI removes a follower through its own address, then adds a
// fresh agent that waits to be added, and checks that the cluster keeps
// writing and that the new member catches up.
func TestMembersCLI(t *testing.T) {
	n1 := startAgent(t, "n1", "--bootstrap")
	n2 := startAgent(t, "n2", "--join", n1.httpAddr)
	n3 := startAgent(t, "n3", "--join", n1.httpAddr)
	byID := map[string]agentProc{"n1": n1, "n2": n2, "n3": n3}
	all := n1.httpAddr + "," + n2.httpAddr + "," + n3.httpAddr
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		r := cli(t, runOpts{}, "--addr", all, "-o", "json", "members")
		if !assert.Equal(c, 0, r.code, r.stderr) {
			return
		}
		var ms []api.Member
		if assert.NoError(c, json.Unmarshal([]byte(r.stdout), &ms)) {
			assert.Equal(c, []string{"n1", "n2", "n3"}, memberIDsOf(ms))
		}
	}, 60*time.Second, 200*time.Millisecond)

	// Plain "members" is "members list".
	require.Equal(t, ok(t, "--addr", all, "members", "list"), ok(t, "--addr", all, "members"))

	before := putRev(t, all, "members/before", "written-before")

	// Remove a follower, asking that very follower: the client finds the
	// leader.
	var leaderID string
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		r := cli(t, runOpts{}, "--addr", all, "-o", "json", "leader")
		var l api.LeaderInfo
		if assert.Equal(c, 0, r.code, r.stderr) && assert.NoError(c, json.Unmarshal([]byte(r.stdout), &l)) {
			leaderID = l.ID
			assert.NotEmpty(c, l.ID)
		}
	}, 30*time.Second, 100*time.Millisecond)
	var gone agentProc
	var stay []agentProc
	for _, id := range []string{"n1", "n2", "n3"} {
		if id != leaderID && gone.proc == nil {
			gone = byID[id]
		} else {
			stay = append(stay, byID[id])
		}
	}
	require.NotNil(t, gone.proc)
	out := ok(t, "--addr", gone.httpAddr, "members", "remove", gone.id)
	require.Equal(t, "OK removed id="+gone.id+" raft="+gone.raftAddr+" http="+gone.httpAddr+"\n", out)
	rest := stay[0].httpAddr + "," + stay[1].httpAddr
	wantIDs := []string{stay[0].id, stay[1].id}
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		// Every remaining member has applied the removal.
		for _, a := range stay {
			r := cli(t, runOpts{}, "--addr", a.httpAddr, "members", "list")
			if assert.Equal(c, 0, r.code, r.stderr) {
				assert.NotContains(c, r.stdout, gone.id+" ")
				assert.Equal(c, 3, strings.Count(r.stdout, "\n"), r.stdout)
			}
		}
	}, 30*time.Second, 100*time.Millisecond)
	require.Equal(t, wantIDs, memberIDsOf(membersOf(t, rest)))
	require.Equal(t, 0, gone.stop(30*time.Second), "the removed agent stops cleanly")

	// The two remaining members still form a quorum and write.
	putRev(t, rest, "members/after-remove", "still-writing")
	require.Equal(t, "still-writing\n", ok(t, "--addr", rest, "kv", "get", "members/after-remove"))

	// Unknown IDs: exit 1, one line naming the members, nothing changed.
	line := fails(t, runOpts{}, "--addr", rest, "members", "remove", gone.id)
	require.Equal(t, "statenode: unknown member: "+gone.id+" (members: "+strings.Join(wantIDs, ", ")+")", line)
	line = fails(t, runOpts{}, "--addr", rest, "members", "remove", "nope")
	require.Equal(t, "statenode: unknown member: nope (members: "+strings.Join(wantIDs, ", ")+")", line)
	require.Equal(t, wantIDs, memberIDsOf(membersOf(t, rest)))

	// Bad input is refused before anything reaches the cluster.
	line = fails(t, runOpts{}, "--addr", rest, "members", "add", "n 4", "--raft-addr", "127.0.0.1:1", "--http-addr", "127.0.0.1:2")
	require.Contains(t, line, `member ID "n 4"`)
	line = fails(t, runOpts{}, "--addr", rest, "members", "add", "n4", "--raft-addr", "nowhere", "--http-addr", "127.0.0.1:2")
	require.Contains(t, line, `--raft-addr "nowhere" is not HOST:PORT`)
	line = fails(t, runOpts{}, "--addr", rest, "members", "add", "n4", "--raft-addr", "127.0.0.1:1")
	require.Contains(t, line, "--http-addr")
	// The agent's own settings in the environment or a config file do not
	// stand in for the new member's addresses.
	cfg := filepath.Join(t.TempDir(), "cfg.json")
	require.NoError(t, os.WriteFile(cfg, []byte(`{"raft-addr": "127.0.0.1:1", "http-addr": "127.0.0.1:2"}`), 0o600))
	line = fails(t, runOpts{env: []string{"STATENODE_RAFT_ADDR=127.0.0.1:1", "STATENODE_HTTP_ADDR=127.0.0.1:2"}},
		"--addr", rest, "--config", cfg, "members", "add", "n4")
	require.Contains(t, line, "missing flags")
	require.Equal(t, wantIDs, memberIDsOf(membersOf(t, rest)))

	// A fresh agent with neither --bootstrap nor --join waits to be added.
	n4 := startAgent(t, "n4")
	out = ok(t, "--addr", rest, "members", "add", "n4", "--raft-addr", n4.raftAddr, "--http-addr", n4.httpAddr)
	require.Equal(t, "OK added id=n4 raft="+n4.raftAddr+" http="+n4.httpAddr+"\n", out)
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		r := cli(t, runOpts{}, "--addr", n4.httpAddr, "-o", "json", "members")
		if !assert.Equal(c, 0, r.code, r.stderr) {
			return
		}
		var ms []api.Member
		if !assert.NoError(c, json.Unmarshal([]byte(r.stdout), &ms)) {
			return
		}
		assert.Equal(c, append(append([]string{}, wantIDs...), "n4"), memberIDsOf(ms))
		for _, m := range ms {
			if m.ID == "n4" {
				assert.True(c, m.Voter)
				assert.Equal(c, n4.raftAddr, m.RaftAddr)
				assert.Equal(c, n4.httpAddr, m.HTTPAddr)
			}
		}
	}, 60*time.Second, 200*time.Millisecond)

	// It catches up: the value written before it joined is in its own
	// state (a stale read answers from the contacted member only), and so
	// is a write made after.
	after := putRev(t, rest, "members/after-add", "caught-up")
	require.Greater(t, after, before)
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		r := cli(t, runOpts{}, "--addr", n4.httpAddr, "kv", "get", "members/before", "--stale")
		assert.Equal(c, "written-before\n", r.stdout, r.stderr)
		r = cli(t, runOpts{}, "--addr", n4.httpAddr, "kv", "get", "members/after-add", "--stale")
		assert.Equal(c, "caught-up\n", r.stdout, r.stderr)
	}, 30*time.Second, 100*time.Millisecond)

	// The cluster of three writes through the new member.
	putRev(t, n4.httpAddr, "members/through-n4", "yes")
	require.Equal(t, "yes\n", ok(t, "--addr", rest, "kv", "get", "members/through-n4"))
	var removed api.Member
	require.NoError(t, json.Unmarshal([]byte(ok(t, "--addr", rest, "-o", "json", "members", "remove", "n4")), &removed))
	require.Equal(t, api.Member{ID: "n4", RaftAddr: n4.raftAddr, HTTPAddr: n4.httpAddr, Voter: true}, removed)
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		for _, a := range stay {
			r := cli(t, runOpts{}, "--addr", a.httpAddr, "members")
			assert.NotContains(c, r.stdout, "n4 ", r.stderr)
			assert.Equal(c, 3, strings.Count(r.stdout, "\n"), r.stdout)
		}
	}, 30*time.Second, 100*time.Millisecond)
}
