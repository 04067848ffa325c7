package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/statenode/statenode/api"
)

func TestAgentBadFlags(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no flags", nil, "missing flags: --data-dir=DIR, --id=STRING"},
		{"no data dir", []string{"--id", "n1"}, "--data-dir"},
		{"bad initial cluster", []string{"--id", "n1", "--data-dir", dir, "--initial-cluster", "n1"}, `--initial-cluster: "n1" is not ID=HOST:PORT`},
		{"bootstrap and initial cluster", []string{"--id", "n1", "--data-dir", dir, "--bootstrap", "--initial-cluster", "n1=127.0.0.1:1"}, "exclusive"},
		{"bad log format", []string{"--id", "n1", "--data-dir", dir, "--log-format", "xml"}, "--log-format"},
		{"bad duration", []string{"--id", "n1", "--data-dir", dir, "--heartbeat-timeout", "soon"}, "--heartbeat-timeout"},
		{"bad id", []string{"--id", "n 1", "--data-dir", dir}, "must not contain spaces"},
		{"bad raft addr", []string{"--id", "n1", "--data-dir", dir, "--raft-addr", "nowhere"}, "RaftAddr"},
		{"unknown flag", []string{"--id", "n1", "--data-dir", dir, "--nope"}, "--nope"},
		{"bad log engine", []string{"--id", "n1", "--data-dir", dir, "--log-engine", "rocks"}, "--log-engine"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			line := fails(t, runOpts{}, append([]string{"agent"}, tc.args...)...)
			require.True(t, strings.HasPrefix(line, "statenode: "), line)
			require.Contains(t, line, tc.want)
		})
	}
}

// agentProc is one "statenode agent" of a test cluster.
type agentProc struct {
	*proc
	id, httpAddr, raftAddr string
}

// startAgent runs an agent with fast timeouts on free ports.
func startAgent(t *testing.T, id string, args ...string) agentProc {
	t.Helper()
	a := agentProc{id: id, httpAddr: freeAddr(t), raftAddr: freeAddr(t)}
	a.proc = start(t, id, nil, append([]string{"agent", "--id", id, "--data-dir", t.TempDir(),
		"--http-addr", a.httpAddr, "--raft-addr", a.raftAddr,
		"--heartbeat-timeout", "200ms", "--election-timeout", "200ms", "--leader-lease-timeout", "100ms",
		"--log-format", "json"}, args...)...)
	return a
}

func TestAgentCluster(t *testing.T) {
	n1 := startAgent(t, "n1", "--bootstrap")
	n2 := startAgent(t, "n2", "--join", n1.httpAddr)
	n3 := startAgent(t, "n3", "--join", n1.httpAddr)
	agents := []agentProc{n1, n2, n3}
	all := n1.httpAddr + "," + n2.httpAddr + "," + n3.httpAddr

	// Wait until every member is in the configuration.
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		r := cli(t, runOpts{}, "--addr", all, "-o", "json", "members")
		if !assert.Equal(c, 0, r.code, r.stderr) {
			return
		}
		var ms []api.Member
		if !assert.NoError(c, json.Unmarshal([]byte(r.stdout), &ms)) {
			return
		}
		assert.Len(c, ms, 3)
		for _, m := range ms {
			assert.True(c, m.Voter, m.ID)
			assert.NotEmpty(c, m.HTTPAddr, m.ID)
		}
	}, 60*time.Second, 200*time.Millisecond)

	out := ok(t, "--addr", all, "members")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 4, out)
	for i, a := range agents { // sorted by ID
		require.Regexp(t, fmt.Sprintf(`^%s\s+%s\s+%s\s+true\s+(true|false)$`, a.id, a.raftAddr, a.httpAddr), lines[i+1])
	}

	// Every endpoint reports; exactly one is the leader.
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		r := cli(t, runOpts{}, "--addr", all, "status", "-o", "json")
		if !assert.Equal(c, 0, r.code, r.stderr) {
			return
		}
		var st []endpointStatus
		if !assert.NoError(c, json.Unmarshal([]byte(r.stdout), &st)) {
			return
		}
		leaders := 0
		for _, s := range st {
			if assert.NotNil(c, s.Status, s.Endpoint) {
				assert.Equal(c, 3, s.Status.Members)
				if s.Status.State == "Leader" {
					leaders++
				}
			}
		}
		assert.Equal(c, 1, leaders)
	}, 30*time.Second, 200*time.Millisecond)

	// A write through one member is readable through every other.
	putRev(t, n2.httpAddr, "cluster/key", "replicated")
	for _, a := range agents {
		require.Equal(t, "replicated\n", ok(t, "--addr", a.httpAddr, "kv", "get", "cluster/key"))
	}

	// Move the leader to n3, then to whoever the cluster picks.
	out = ok(t, "--addr", all, "leader", "transfer", "--to", "n3")
	require.Equal(t, "OK id=n3 http="+n3.httpAddr+" raft="+n3.raftAddr+"\n", out)
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		r := cli(t, runOpts{}, "--addr", n1.httpAddr, "leader")
		assert.Equal(c, "id=n3 http="+n3.httpAddr+" raft="+n3.raftAddr+"\n", r.stdout, r.stderr)
	}, 30*time.Second, 100*time.Millisecond)
	out = ok(t, "--addr", all, "leader", "transfer")
	require.Regexp(t, `^OK id=n[12] `, out)

	// Writes still work after the transfers, through any member.
	putRev(t, n3.httpAddr, "cluster/after", "transfer")
	require.Equal(t, "transfer\n", ok(t, "--addr", n1.httpAddr, "kv", "get", "cluster/after"))

	// A bench against the whole cluster.
	out = ok(t, "--addr", all, "bench", "--total", "200", "--clients", "6", "--conns", "3", "--mix", "put=60,get=30,txn=10", "--key-space", "100")
	require.Positive(t, requestsPerSec(t, out))
	require.NotContains(t, out, "Error distribution")

	// A watch through n2 and n3 outlives n2: its stream is on n2 (the
	// client tries endpoints in order) and resumes on n3 without losing or
	// repeating an event.
	rev := putRev(t, n1.httpAddr, "watched/1", "one")
	w := start(t, "watch", nil, "--addr", n2.httpAddr+","+n3.httpAddr, "kv", "watch", "watched/", "--rev", fmt.Sprint(rev))
	require.Equal(t, "PUT watched/1 one", w.waitLine("watched/1", 20*time.Second))

	// SIGTERM shuts an agent down cleanly (exit status 0).
	stopAgent := func(a agentProc) {
		t.Helper()
		require.Equalf(t, 0, a.stop(30*time.Second), "%s exit status; stderr:\n%s", a.id, a.stderr())
		require.Contains(t, a.stderr(), "statenode agent stopped")
	}
	stopAgent(n2)
	putRev(t, n1.httpAddr, "watched/2", "two")
	require.Equal(t, "PUT watched/2 two", w.waitLine("watched/", 30*time.Second))
	require.Contains(t, w.stderr(), "resuming from revision "+fmt.Sprint(rev+1))
	require.Equal(t, 0, w.stop(15*time.Second))
	stopAgent(n3)
	stopAgent(n1)
}

func TestAgentInitialCluster(t *testing.T) {
	ids := []string{"a", "b", "c"}
	raft := []string{freeAddr(t), freeAddr(t), freeAddr(t)}
	var peers []string
	for i, id := range ids {
		peers = append(peers, id+"="+raft[i])
	}
	var https []string
	for i, id := range ids {
		httpAddr := freeAddr(t)
		https = append(https, httpAddr)
		start(t, id, nil, "agent", "--id", id, "--data-dir", t.TempDir(),
			"--http-addr", httpAddr, "--raft-addr", raft[i],
			"--heartbeat-timeout", "200ms", "--election-timeout", "200ms", "--leader-lease-timeout", "100ms",
			"--initial-cluster", strings.Join(peers, ","))
	}
	all := strings.Join(https, ",")
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		r := cli(t, runOpts{}, "--addr", all, "kv", "put", "k", "v")
		assert.Equal(c, 0, r.code, r.stderr)
	}, 60*time.Second, 200*time.Millisecond)
	require.Equal(t, "v\n", ok(t, "--addr", https[2], "kv", "get", "k"))
}

// TestAgentEnvAndConfig starts an agent configured by the environment and a
// config file instead of flags.
func TestAgentEnvAndConfig(t *testing.T) {
	httpAddr, raftAddr, dataDir := freeAddr(t), freeAddr(t), t.TempDir()
	file := t.TempDir() + "/agent.json"
	writeFile(t, file, fmt.Sprintf(`{"id": "fromfile", "data-dir": %q, "raft_addr": %q, "http-addr": "127.0.0.1:1", "bootstrap": true, "heartbeatTimeout": "200ms", "election-timeout": "200ms", "leader-lease-timeout": "100ms", "history-retention": 500}`,
		dataDir, raftAddr))
	// The environment's http-addr beats the file's.
	start(t, "agent", []string{"STATENODE_CONFIG=" + file, "STATENODE_HTTP_ADDR=" + httpAddr}, "agent")
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		r := cli(t, runOpts{}, "--addr", httpAddr, "leader")
		assert.Equal(c, "id=fromfile http="+httpAddr+" raft="+raftAddr+"\n", r.stdout, r.stderr)
	}, 30*time.Second, 100*time.Millisecond)
	// Without --log-engine a new data directory gets the wal engine.
	ident, err := os.ReadFile(filepath.Join(dataDir, "node.json"))
	require.NoError(t, err)
	assert.JSONEq(t, `{"id": "fromfile", "engine": "wal"}`, string(ident))
	assert.DirExists(t, filepath.Join(dataDir, "raft", "wal"))

	// The binary's registry, with Go and process collectors, is served on
	// /metrics next to the node's own metrics.
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+httpAddr+"/metrics", nil)
	require.NoError(t, err)
	resp, err := (&http.Client{Transport: tr}).Do(req)
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	for _, want := range []string{"go_goroutines ", "process_cpu_seconds_total ", "statenode_raft_applied_index "} {
		require.Contains(t, string(body), want)
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	require.NoError(t, os.WriteFile(path, []byte(content), 0o600))
}
