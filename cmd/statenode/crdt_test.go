package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/statenode/statenode/api"
)

func TestAgentGossipFlagErrors(t *testing.T) {
	dir := t.TempDir()
	line := fails(t, runOpts{}, "agent", "--id", "n1", "--data-dir", dir, "--bootstrap-expect", "3")
	require.Contains(t, line, "need GossipAddr")
	line = fails(t, runOpts{}, "agent", "--id", "n1", "--data-dir", dir, "--gossip-addr", "127.0.0.1:0", "--bootstrap", "--bootstrap-expect", "3")
	require.Contains(t, line, "exclusive")
	line = fails(t, runOpts{}, "agent", "--id", "n1", "--data-dir", dir, "--gossip-addr", "127.0.0.1:0", "--gossip-profile", "wan")
	require.Contains(t, line, "--gossip-profile")
}

// TestCLICRDT: two agents, one a non-voter admitted through gossip
// (--retry-join); CRDT commands on either converge; members shows gossip.
func TestCLICRDT(t *testing.T) {
	g1 := freeAddr(t)
	n1 := startAgent(t, "n1", "--bootstrap", "--gossip-addr", g1, "--gossip-profile", "local")
	n2 := startAgent(t, "n2", "--gossip-addr", freeAddr(t), "--gossip-profile", "local", "--retry-join", g1, "--non-voter")
	all := n1.httpAddr + "," + n2.httpAddr

	require.EventuallyWithT(t, func(c *assert.CollectT) {
		r := cli(t, runOpts{}, "--addr", n1.httpAddr, "-o", "json", "members")
		if !assert.Equal(c, 0, r.code, r.stderr) {
			return
		}
		var ms []api.Member
		if !assert.NoError(c, json.Unmarshal([]byte(r.stdout), &ms)) || !assert.Len(c, ms, 2) {
			return
		}
		assert.Equal(c, api.RaftRoleVoter, ms[0].RaftRole)
		assert.Equal(c, api.RaftRoleNonvoter, ms[1].RaftRole)
		for _, m := range ms {
			assert.Equal(c, "alive", m.Gossip, m.ID)
		}
	}, 60*time.Second, 100*time.Millisecond)
	out := ok(t, "--addr", all, "members")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 3, out)
	require.Equal(t, []string{"ID", "RAFT_ADDR", "HTTP_ADDR", "VOTER", "LEADER", "ROLE", "GOSSIP", "GOSSIP_ADDR"}, strings.Fields(lines[0]))
	require.Regexp(t, `^n2\s+\S+\s+`+n2.httpAddr+`\s+false\s+false\s+nonvoter\s+alive\s+\S+$`, lines[2])

	require.Equal(t, "1\n", ok(t, "--addr", n1.httpAddr, "crdt", "counter", "inc", "visits"))
	require.Equal(t, "5\n", ok(t, "--addr", n1.httpAddr, "crdt", "counter", "inc", "visits", "4"))
	require.Equal(t, "OK\n", ok(t, "--addr", n2.httpAddr, "crdt", "set", "add", "online", "n2"))
	require.Equal(t, "OK\n", ok(t, "--addr", n2.httpAddr, "crdt", "set", "add", "online", "x"))
	require.Equal(t, "OK\n", ok(t, "--addr", n2.httpAddr, "crdt", "set", "rm", "online", "x"))
	require.Equal(t, "OK\n", ok(t, "--addr", n1.httpAddr, "crdt", "register", "set", "mode", "fast"))
	// The updates reach the other member by gossip.
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		r := cli(t, runOpts{}, "--addr", n2.httpAddr, "crdt", "counter", "get", "visits")
		assert.Equal(c, "5\n", r.stdout)
		r = cli(t, runOpts{}, "--addr", n1.httpAddr, "crdt", "set", "ls", "online")
		assert.Equal(c, "n2\n", r.stdout)
		r = cli(t, runOpts{}, "--addr", n2.httpAddr, "crdt", "register", "get", "mode")
		assert.Equal(c, "fast\n", r.stdout)
	}, 30*time.Second, 100*time.Millisecond)

	var v api.CRDTValue
	require.NoError(t, json.Unmarshal([]byte(ok(t, "--addr", n2.httpAddr, "-o", "json", "crdt", "counter", "get", "visits")), &v))
	require.Equal(t, "n2", v.Node, "the answer names the member that served it")
	require.Contains(t, fails(t, runOpts{}, "--addr", n1.httpAddr, "crdt", "register", "get", "never"), "never written")
}
