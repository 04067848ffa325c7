package node_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/statenode/statenode/api"
	"github.com/statenode/statenode/crdt/gossip"
	"github.com/statenode/statenode/node"
	"github.com/statenode/statenode/node/nodetest"
)

// gossipNode starts a node with gossip on free loopback ports (local
// profile) and stops it at the end of the test. edit changes the
// configuration before start.
func gossipNode(t *testing.T, id string, edit func(c *node.Config)) *node.Node {
	t.Helper()
	cfg := node.DefaultLocalConfig()
	cfg.ID = id
	cfg.DataDir = t.TempDir()
	cfg.RaftAddr = nodetest.FreeAddr(t)
	cfg.HTTPAddr = nodetest.FreeAddr(t)
	cfg.GossipAddr = "127.0.0.1:0"
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	if os.Getenv("STATENODE_TEST_LOG") != "" {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("test_node", id)
	}
	if edit != nil {
		edit(&cfg)
	}
	n, err := node.New(cfg)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, n.Start(ctx))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_ = n.Shutdown(ctx)
	})
	if !n.Removed() { // a removed node does not gossip
		require.NotEmpty(t, n.CRDT().LocalAddr())
	}
	return n
}

// raftServers returns n's Raft configuration by ID.
func raftServers(n *node.Node) map[string]raft.Server {
	f := n.Raft().GetConfiguration()
	if f.Error() != nil {
		return nil
	}
	out := map[string]raft.Server{}
	for _, s := range f.Configuration().Servers {
		out[string(s.ID)] = s
	}
	return out
}

func getMembers(t *testing.T, n *node.Node) []api.Member {
	t.Helper()
	resp, err := http.Get("http://" + n.HTTPAddr() + "/v1/members")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var ms []api.Member
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&ms))
	return ms
}

func findMember(ms []api.Member, id string) *api.Member {
	for i := range ms {
		if ms[i].ID == id {
			return &ms[i]
		}
	}
	return nil
}

// TestGossipClusterLifecycle: three servers with BootstrapExpect=3 form
// one cluster; a fourth that only joins gossip becomes a voter; a
// non-voter joins, serves stale reads and CRDTs; a member that leaves is
// removed from Raft by GossipDeadRemoveAfter.
func TestGossipClusterLifecycle(t *testing.T) {
	common := func(c *node.Config) { c.GossipDeadRemoveAfter = time.Second }
	n1 := gossipNode(t, "n1", func(c *node.Config) { common(c); c.BootstrapExpect = 3 })
	seed := []string{n1.CRDT().LocalAddr()}
	// n3 starts before n2: the lowest ID (n1) bootstraps whatever the order.
	n3 := gossipNode(t, "n3", func(c *node.Config) { common(c); c.BootstrapExpect = 3; c.GossipJoin = seed })
	n2 := gossipNode(t, "n2", func(c *node.Config) { common(c); c.BootstrapExpect = 3; c.GossipJoin = seed })
	servers := []*node.Node{n1, n2, n3}

	waitCluster := func(nodes []*node.Node, voters, nonvoters []string) {
		t.Helper()
		require.EventuallyWithT(t, func(c *assert.CollectT) {
			leader := ""
			for _, n := range nodes {
				conf := raftServers(n)
				assert.Len(c, conf, len(voters)+len(nonvoters), n.ID())
				for _, id := range voters {
					assert.Equal(c, raft.Voter, conf[id].Suffrage, "%s sees %s", n.ID(), id)
				}
				for _, id := range nonvoters {
					assert.Equal(c, raft.Nonvoter, conf[id].Suffrage, "%s sees %s", n.ID(), id)
				}
				l := n.Leader().ID
				assert.NotEmpty(c, l, n.ID())
				if leader == "" {
					leader = l
				}
				assert.Equal(c, leader, l, "one leader")
			}
		}, 60*time.Second, 50*time.Millisecond)
	}
	waitCluster(servers, []string{"n1", "n2", "n3"}, nil)
	// One cluster, formed once: every node has the same first log entry
	// configuration (n1 bootstrapped), and writes replicate everywhere.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	_, err := n2.Put(ctx, []byte("k"), []byte("v1"))
	require.NoError(t, err)
	for _, n := range servers {
		kv, err := n.Get(ctx, []byte("k"), node.Linearizable)
		require.NoError(t, err)
		require.Equal(t, "v1", string(kv.Value))
	}

	// A fourth server joins through gossip only (no Join, no bootstrap).
	n4 := gossipNode(t, "n4", func(c *node.Config) { common(c); c.GossipJoin = []string{n3.CRDT().LocalAddr()} })
	waitCluster(append(servers, n4), []string{"n1", "n2", "n3", "n4"}, nil)

	// A non-voter joins through gossip, replicates, serves stale reads.
	n5 := gossipNode(t, "n5", func(c *node.Config) {
		common(c)
		c.NonVoter = true
		c.GossipJoin = []string{n2.CRDT().LocalAddr()}
	})
	waitCluster([]*node.Node{n1, n2, n3, n4, n5}, []string{"n1", "n2", "n3", "n4"}, []string{"n5"})
	_, err = n1.Put(ctx, []byte("k"), []byte("v2"))
	require.NoError(t, err)
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		kv, err := n5.Get(ctx, []byte("k"), node.Stale)
		if assert.NoError(c, err) {
			assert.Equal(c, "v2", string(kv.Value))
		}
	}, 20*time.Second, 20*time.Millisecond)

	// CRDTs work on the non-voter like anywhere else.
	require.NoError(t, n5.CRDT().Counter("visits").Inc(ctx, 2))
	require.NoError(t, n1.CRDT().Counter("visits").Inc(ctx, 3))
	require.NoError(t, n5.CRDT().Set("online").Add(ctx, "n5"))
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		for _, n := range []*node.Node{n1, n2, n3, n4, n5} {
			assert.Equal(c, int64(5), n.CRDT().Counter("visits").Value(), n.ID())
			assert.Equal(c, []string{"n5"}, n.CRDT().Set("online").Elements(), n.ID())
		}
	}, 30*time.Second, 20*time.Millisecond)

	// /v1/members shows gossip state beside the Raft role.
	// (n3's gossip view may learn of n5 a moment after the CRDTs converge.)
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		ms := getMembers(t, n3)
		if !assert.Len(c, ms, 5) {
			return
		}
		for _, m := range ms {
			assert.Equal(c, "alive", m.Gossip, m.ID)
			assert.NotEmpty(c, m.GossipAddr, m.ID)
			want := api.RaftRoleVoter
			if m.ID == "n5" {
				want = api.RaftRoleNonvoter
			}
			assert.Equal(c, want, m.RaftRole, m.ID)
			assert.Equal(c, m.ID != "n5", m.Voter, m.ID)
		}
	}, 20*time.Second, 50*time.Millisecond)

	// A member that goes away is removed after GossipDeadRemoveAfter.
	sctx, scancel := context.WithTimeout(context.Background(), 20*time.Second)
	require.NoError(t, n4.Shutdown(sctx))
	scancel()
	waitCluster([]*node.Node{n1, n2, n3, n5}, []string{"n1", "n2", "n3"}, []string{"n5"})
	require.Nil(t, findMember(getMembers(t, n1), "n4"), "a member that left is not listed")
}

// TestGossipDisabledByDefault: without GossipAddr nothing changes: no
// CRDTs, the CRDT routes answer 501, /v1/members has no gossip fields.
func TestGossipDisabledByDefault(t *testing.T) {
	c := nodetest.MakeCluster(t, 1)
	n := c.Nodes[0]
	require.Nil(t, n.CRDT())
	require.False(t, n.GossipEnabled())
	_, err := n.GossipMembers()
	require.ErrorIs(t, err, node.ErrGossipDisabled)

	for _, path := range []string{"/v1/crdt/counter/x", "/v1/members/watch", "/v1/crdt"} {
		resp, err := http.Get("http://" + n.HTTPAddr() + path)
		require.NoError(t, err)
		var e api.Error
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&e))
		resp.Body.Close()
		require.Equal(t, http.StatusNotImplemented, resp.StatusCode, path)
		require.Equal(t, api.CodeGossipDisabled, e.Code, path)
	}
	resp, err := http.Get("http://" + n.HTTPAddr() + "/v1/members")
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NotContains(t, string(body), "gossip")
	require.NotContains(t, string(body), "raft_role")
}

func TestGossipConfigValidate(t *testing.T) {
	base := func() node.Config {
		c := node.DefaultLocalConfig()
		c.ID, c.DataDir = "n1", t.TempDir()
		return c
	}
	for _, tc := range []struct {
		name string
		edit func(c *node.Config)
		want string // "" = valid
	}{
		{"off", func(c *node.Config) {}, ""},
		{"on", func(c *node.Config) { c.GossipAddr = "127.0.0.1:0"; c.BootstrapExpect = 3 }, ""},
		{"expect without gossip", func(c *node.Config) { c.BootstrapExpect = 3 }, "need GossipAddr"},
		{"nonvoter without gossip", func(c *node.Config) { c.NonVoter = true }, "need GossipAddr"},
		{"join without gossip", func(c *node.Config) { c.GossipJoin = []string{"127.0.0.1:7946"} }, "need GossipAddr"},
		{"bad addr", func(c *node.Config) { c.GossipAddr = "nowhere" }, "GossipAddr"},
		{"bad profile", func(c *node.Config) { c.GossipAddr = "127.0.0.1:0"; c.GossipProfile = "wan" }, "GossipProfile"},
		{"expect and bootstrap", func(c *node.Config) { c.GossipAddr = "127.0.0.1:0"; c.BootstrapExpect = 3; c.Bootstrap = true }, "exclusive"},
		{"nonvoter joins by http", func(c *node.Config) { c.GossipAddr = "127.0.0.1:0"; c.NonVoter = true; c.Join = []string{"x:1"} }, "NonVoter"},
		{"negative", func(c *node.Config) { c.GossipAddr = "127.0.0.1:0"; c.GossipDeadRemoveAfter = -1 }, "negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := base()
			tc.edit(&c)
			err := c.Validate()
			if tc.want == "" {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			require.Contains(t, err.Error(), tc.want)
		})
	}
}

// TestCRDTHTTP drives /v1/crdt and /v1/members/watch over HTTP.
func TestCRDTHTTP(t *testing.T) {
	n1 := gossipNode(t, "n1", func(c *node.Config) { c.Bootstrap = true })
	base := "http://" + n1.HTTPAddr()
	post := func(path, body string) (int, map[string]any) {
		t.Helper()
		resp, err := http.Post(base+path, "application/json", strings.NewReader(body))
		require.NoError(t, err)
		defer resp.Body.Close()
		var out map[string]any
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
		return resp.StatusCode, out
	}
	get := func(path string) (int, map[string]any) {
		t.Helper()
		resp, err := http.Get(base + path)
		require.NoError(t, err)
		defer resp.Body.Close()
		var out map[string]any
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
		return resp.StatusCode, out
	}

	code, v := post("/v1/crdt/counter/visits", `{"op":"inc","delta":5}`)
	require.Equal(t, http.StatusOK, code, v)
	require.Equal(t, "pncounter", v["type"])
	require.Equal(t, "n1", v["node"])
	require.EqualValues(t, 5, v["value"])
	code, v = post("/v1/crdt/pncounter/visits", `{"op":"dec","delta":2}`)
	require.Equal(t, http.StatusOK, code, v)
	code, v = get("/v1/crdt/counter/visits")
	require.Equal(t, http.StatusOK, code)
	require.EqualValues(t, 3, v["value"])
	require.Equal(t, "n1", v["node"])
	require.True(t, strings.HasPrefix(v["replica"].(string), "n1~"), v)

	post("/v1/crdt/set/online", `{"op":"add","value":"a"}`)
	post("/v1/crdt/set/online", `{"op":"add","value":"b"}`)
	code, v = post("/v1/crdt/set/online", `{"op":"remove","value":"a"}`)
	require.Equal(t, http.StatusOK, code, v)
	require.Equal(t, []any{"b"}, v["value"])

	code, v = get("/v1/crdt/register/cfg")
	require.Equal(t, http.StatusOK, code)
	require.Nil(t, v["value"], "never written")
	code, v = post("/v1/crdt/register/cfg", `{"op":"set","value_base64":"/wA="}`)
	require.Equal(t, http.StatusOK, code, v)
	require.Equal(t, "base64", v["encoding"])
	require.Equal(t, "/wA=", v["value"])
	require.NotNil(t, v["timestamp"])

	code, v = post("/v1/crdt/map/m", `{"op":"put","key":"x","value":"1"}`)
	require.Equal(t, http.StatusOK, code, v)
	require.Equal(t, map[string]any{"x": "1"}, v["value"])

	code, v = post("/v1/crdt/bcounter/seats", `{"op":"inc","delta":1}`)
	require.Equal(t, http.StatusOK, code, v)
	require.EqualValues(t, 1, v["rights"])
	code, v = post("/v1/crdt/bcounter/seats", `{"op":"dec","delta":2}`)
	require.Equal(t, http.StatusConflict, code, v)
	require.Equal(t, api.CodeInsufficientRights, v["code"])

	for _, tc := range []struct{ path, body, code string }{
		{"/v1/crdt/nosuch/x", `{"op":"inc"}`, api.CodeInvalid},
		{"/v1/crdt/set/x", `{"op":"inc","delta":1}`, api.CodeBadRequest},
		{"/v1/crdt/counter/x", `{"op":"inc","bogus":1}`, api.CodeBadRequest},
		{"/v1/crdt/counter/x", `{"op":`, api.CodeBadRequest},
		{"/v1/crdt/gcounter/x", `{"op":"inc","delta":-1}`, api.CodeBadRequest},
		{"/v1/crdt/set/x", `{"op":"add","value":"a","value_base64":"YQ=="}`, api.CodeBadRequest},
		{"/v1/crdt/counter/" + strings.Repeat("n", 300), `{"op":"inc","delta":1}`, api.CodeInvalid},
	} {
		code, v := post(tc.path, tc.body)
		require.Equal(t, http.StatusBadRequest, code, "%s %s: %v", tc.path, tc.body, v)
		require.Equal(t, tc.code, v["code"], "%s %s", tc.path, tc.body)
	}

	resp, err := http.Get(base + "/v1/crdt")
	require.NoError(t, err)
	var objs []api.CRDTObject
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&objs))
	resp.Body.Close()
	require.Contains(t, objs, api.CRDTObject{Type: "pncounter", Name: "visits"})
	require.Contains(t, objs, api.CRDTObject{Type: "orset", Name: "online"})

	// The member watch first lists n1, then reports a newcomer.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/v1/members/watch", nil)
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, "application/x-ndjson", resp.Header.Get("Content-Type"))
	dec := json.NewDecoder(resp.Body)
	next := func() api.MemberEvent {
		t.Helper()
		for {
			var ev api.MemberEvent
			require.NoError(t, dec.Decode(&ev))
			if !ev.Heartbeat {
				return ev
			}
		}
	}
	ev := next()
	require.Equal(t, "n1", ev.ID)
	require.Equal(t, "alive", ev.State)
	require.Empty(t, ev.Previous)
	require.Equal(t, n1.HTTPAddr(), ev.HTTPAddr)
	require.True(t, ev.Voter)
	gossipNode(t, "n2", func(c *node.Config) { c.NonVoter = true; c.GossipJoin = []string{n1.CRDT().LocalAddr()} })
	for {
		ev = next()
		if ev.ID == "n2" {
			break
		}
	}
	require.Equal(t, "alive", ev.State)
	require.False(t, ev.Voter)
	// The leader added the non-voter it saw in gossip.
	require.Eventually(t, func() bool {
		resp, err := http.Get(base + "/v1/members")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var ms []api.Member
		if json.NewDecoder(resp.Body).Decode(&ms) != nil {
			return false
		}
		m := findMember(ms, "n2")
		return m != nil && m.RaftRole == api.RaftRoleNonvoter
	}, 30*time.Second, 20*time.Millisecond)
}

// TestGossipMetricsAndRestart: the gossip collectors are served on the
// node's /metrics, and a node restarted on the same registry and data
// directory registers them again and keeps its CRDT updates.
func TestGossipMetricsAndRestart(t *testing.T) {
	reg := prometheus.NewRegistry()
	var cfg node.Config
	n := gossipNode(t, "n1", func(c *node.Config) { c.Bootstrap = true; c.Registry = reg; cfg = *c })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, n.CRDT().Counter("c").Inc(ctx, 7))
	resp, err := http.Get("http://" + n.HTTPAddr() + "/metrics")
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Contains(t, string(body), `statenode_gossip_members{state="alive"} 1`)
	require.Contains(t, string(body), `statenode_crdt_local_updates_total{kind="pncounter"} 1`)
	require.NoError(t, n.Shutdown(ctx))

	cfg.Bootstrap = false
	n2, err := node.New(cfg)
	require.NoError(t, err)
	require.NoError(t, n2.Start(ctx))
	defer n2.Shutdown(context.Background())
	require.Equal(t, int64(7), n2.CRDT().Counter("c").Value())
	mfs, err := reg.Gather()
	require.NoError(t, err)
	found := false
	for _, mf := range mfs {
		found = found || mf.GetName() == "statenode_gossip_members"
	}
	require.True(t, found)
}

// TestGossipLeaveIsNotUndone: a member that leaves (still running) is not
// added back by the leader's gossip reconciliation.
func TestGossipLeaveIsNotUndone(t *testing.T) {
	n1 := gossipNode(t, "n1", func(c *node.Config) { c.Bootstrap = true })
	n2 := gossipNode(t, "n2", func(c *node.Config) { c.GossipJoin = []string{n1.CRDT().LocalAddr()} })
	require.Eventually(t, func() bool { return len(raftServers(n1)) == 2 }, 30*time.Second, 20*time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, n2.Leave(ctx))
	require.Eventually(t, func() bool { _, in := raftServers(n1)["n2"]; return !in }, 10*time.Second, 20*time.Millisecond)
	// Several reconciliation rounds (250ms each in the local profile).
	require.Never(t, func() bool { _, in := raftServers(n1)["n2"]; return in }, 1500*time.Millisecond, 50*time.Millisecond)
	require.ErrorIs(t, n2.CRDT().Counter("c").Inc(ctx, 1), gossip.ErrClosed)
}

// TestGossipRemoveRunningMember: a member removed by Remove while it runs
// learns it, leaves gossip (peers see it left) and reports itself
// removed; the leader's gossip reconciliation never adds it back, even
// after it restarts on its data directory. Started on a new data
// directory, the same ID joins again.
func TestGossipRemoveRunningMember(t *testing.T) {
	const interval = 200 * time.Millisecond // the duties loop's period
	common := func(c *node.Config) { c.GossipReconcileInterval = interval }
	n1 := gossipNode(t, "n1", func(c *node.Config) { common(c); c.Bootstrap = true })
	seed := []string{n1.CRDT().LocalAddr()}
	n2 := gossipNode(t, "n2", func(c *node.Config) { common(c); c.GossipJoin = seed })
	n3dir := t.TempDir()
	n3cfg := func(c *node.Config) { common(c); c.DataDir = n3dir; c.GossipJoin = seed }
	n3 := gossipNode(t, "n3", n3cfg)
	inConf := func(n *node.Node, id string) bool { _, ok := raftServers(n)[id]; return ok }
	require.Eventually(t, func() bool {
		return len(raftServers(n1)) == 3 && len(raftServers(n2)) == 3 && n3.Leader().ID != ""
	}, 30*time.Second, 20*time.Millisecond)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// n3 has caught up (the removal entry is then the next it receives).
	_, err := n1.Put(ctx, []byte("k"), []byte("v"))
	require.NoError(t, err)
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		kv, err := n3.Get(ctx, []byte("k"), node.Stale)
		if assert.NoError(c, err) {
			assert.Equal(c, "v", string(kv.Value))
		}
	}, 20*time.Second, 20*time.Millisecond)
	require.NoError(t, n2.Remove(ctx, "n3"))

	// From the removal until n3 reports itself removed, and for 10 duty
	// intervals after, n3 must never be back in the configuration: the
	// leader's reconciliation runs every interval (and on every gossip
	// event, such as n3 leaving), so a re-add would show within one.
	deadline := time.Now().Add(30 * time.Second)
	var removedAt time.Time
	for removedAt.IsZero() || time.Since(removedAt) < 10*interval {
		require.False(t, inConf(n1, "n3") || inConf(n2, "n3"), "n3 added back: n1 %v n2 %v", raftServers(n1), raftServers(n2))
		if removedAt.IsZero() && n3.Removed() {
			removedAt = time.Now()
		}
		require.True(t, time.Now().Before(deadline), "n3 never saw its removal; n3 sees %v, state %s", raftServers(n3), n3.Status().State)
		time.Sleep(interval / 10)
	}
	require.Equal(t, node.StatusRemoved, n3.Status().State)
	resp, err := http.Get("http://" + n3.HTTPAddr() + "/v1/status")
	require.NoError(t, err)
	var st api.Status
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&st))
	resp.Body.Close()
	require.Equal(t, node.StatusRemoved, st.State)
	require.ErrorIs(t, n3.CRDT().Counter("c").Inc(ctx, 1), gossip.ErrClosed)
	// The others record n3 as left (a graceful leave), not dead.
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		for _, n := range []*node.Node{n1, n2} {
			ms, err := n.GossipMembers()
			require.NoError(t, err)
			state := gossip.StateNone
			for _, m := range ms {
				if m.ID == "n3" {
					state = m.State
				}
			}
			assert.Equal(c, gossip.StateLeft, state, n.ID())
		}
	}, 10*time.Second, 20*time.Millisecond)

	// Restarted on the same data directory, n3 stays out of gossip and of
	// the configuration.
	sctx, scancel := context.WithTimeout(context.Background(), 20*time.Second)
	require.NoError(t, n3.Shutdown(sctx))
	scancel()
	n3 = gossipNode(t, "n3", n3cfg)
	require.True(t, n3.Removed())
	require.Equal(t, node.StatusRemoved, n3.Status().State)
	require.Never(t, func() bool { return inConf(n1, "n3") || inConf(n2, "n3") }, 10*interval, interval/10)
	sctx, scancel = context.WithTimeout(context.Background(), 20*time.Second)
	require.NoError(t, n3.Shutdown(sctx))
	scancel()

	// On a new data directory, the same ID joins again through gossip.
	n3 = gossipNode(t, "n3", func(c *node.Config) { common(c); c.GossipJoin = seed })
	require.Eventually(t, func() bool { return inConf(n1, "n3") && inConf(n2, "n3") }, 30*time.Second, 20*time.Millisecond)
	require.False(t, n3.Removed())
}
