package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

var revisionRE = regexp.MustCompile(`^OK revision=(\d+)\n$`)

// putRev runs kv put and returns the revision it printed.
func putRev(t *testing.T, addr, key, value string) int64 {
	t.Helper()
	out := ok(t, "--addr", addr, "kv", "put", key, value)
	m := revisionRE.FindStringSubmatch(out)
	require.NotNilf(t, m, "kv put output %q", out)
	rev, err := strconv.ParseInt(m[1], 10, 64)
	require.NoError(t, err)
	return rev
}

func TestVersion(t *testing.T) {
	require.Equal(t, testVersion+"\n", ok(t, "--version"))
	require.Equal(t, testVersion+"\n", ok(t, "version"))
}

func TestUsageErrors(t *testing.T) {
	line := fails(t, runOpts{}, "no-such-command")
	require.True(t, strings.HasPrefix(line, "statenode: "), line)
	line = fails(t, runOpts{}, "kv", "get")
	require.Contains(t, line, "<key>")
	line = fails(t, runOpts{}, "-o", "yaml", "version")
	require.Contains(t, line, "--output")
	line = fails(t, runOpts{}, "kv", "cas", "k", "v")
	require.Contains(t, line, "--rev")
}

func TestKV(t *testing.T) {
	_, addr := startDev(t)

	t.Run("put and get", func(t *testing.T) {
		rev := putRev(t, addr, "foo", "bar")
		require.Positive(t, rev)
		require.Equal(t, "bar\n", ok(t, "--addr", addr, "kv", "get", "foo"))

		var kv struct {
			Key            string `json:"key"`
			Value          string `json:"value"`
			CreateRevision int64  `json:"create_revision"`
			ModRevision    int64  `json:"mod_revision"`
			Version        int64  `json:"version"`
		}
		require.NoError(t, json.Unmarshal([]byte(ok(t, "--addr", addr, "-o", "json", "kv", "get", "foo")), &kv))
		require.Equal(t, "foo", kv.Key)
		require.Equal(t, "bar", kv.Value)
		require.Equal(t, rev, kv.ModRevision)
		require.Equal(t, int64(1), kv.Version)

		var put struct {
			Revision int64 `json:"revision"`
		}
		require.NoError(t, json.Unmarshal([]byte(ok(t, "--addr", addr, "kv", "put", "foo", "baz", "-o", "json")), &put))
		require.Greater(t, put.Revision, rev)
	})

	t.Run("value from stdin", func(t *testing.T) {
		r := cli(t, runOpts{stdin: "line one\nline two"}, "--addr", addr, "kv", "put", "in1")
		require.Equal(t, 0, r.code, r.stderr)
		require.Equal(t, "line one\nline two\n", ok(t, "--addr", addr, "kv", "get", "in1"))

		r = cli(t, runOpts{stdin: "dash"}, "--addr", addr, "kv", "put", "in2", "-")
		require.Equal(t, 0, r.code, r.stderr)
		require.Equal(t, "dash\n", ok(t, "--addr", addr, "kv", "get", "in2"))
	})

	t.Run("missing key", func(t *testing.T) {
		line := fails(t, runOpts{}, "--addr", addr, "kv", "get", "nope")
		require.Equal(t, "statenode: key not found: nope", line)
	})

	t.Run("ls and prefix get", func(t *testing.T) {
		putRev(t, addr, "dir/b", "2")
		putRev(t, addr, "dir/a", "1")
		putRev(t, addr, "dirt", "x")
		require.Equal(t, "dir/a\ndir/b\n", ok(t, "--addr", addr, "kv", "ls", "dir/"))
		require.Equal(t, "dir/a\ndir/b\n", ok(t, "--addr", addr, "kv", "get", "--prefix", "dir/"))
		require.Equal(t, "dir/a\n", ok(t, "--addr", addr, "kv", "get", "--prefix", "dir/", "--limit", "1"))

		var rr struct {
			KVs []struct {
				Key   string `json:"key"`
				Value string `json:"value"`
			} `json:"kvs"`
			Count int64 `json:"count"`
		}
		require.NoError(t, json.Unmarshal([]byte(ok(t, "--addr", addr, "-o", "json", "kv", "get", "dir/", "--prefix")), &rr))
		require.Equal(t, int64(2), rr.Count)
		require.Len(t, rr.KVs, 2)
		require.Equal(t, "dir/a", rr.KVs[0].Key)
		require.Equal(t, "1", rr.KVs[0].Value)
	})

	t.Run("del", func(t *testing.T) {
		putRev(t, addr, "gone", "soon")
		out := ok(t, "--addr", addr, "kv", "del", "gone")
		require.Regexp(t, `^deleted=1 revision=\d+\n$`, out)
		require.Equal(t, "statenode: key not found: gone", fails(t, runOpts{}, "--addr", addr, "kv", "get", "gone"))
		require.Regexp(t, `^deleted=0 revision=\d+\n$`, ok(t, "--addr", addr, "kv", "del", "gone"))

		putRev(t, addr, "tmp/1", "a")
		putRev(t, addr, "tmp/2", "b")
		require.Regexp(t, `^deleted=2 revision=\d+\n$`, ok(t, "--addr", addr, "kv", "del", "--prefix", "tmp/"))
		require.Empty(t, ok(t, "--addr", addr, "kv", "ls", "tmp/"))
	})

	t.Run("cas", func(t *testing.T) {
		rev := putRev(t, addr, "lock", "v1")
		out := ok(t, "--addr", addr, "kv", "cas", "lock", "--rev", strconv.FormatInt(rev, 10), "v2")
		require.Regexp(t, revisionRE, out)
		require.Equal(t, "v2\n", ok(t, "--addr", addr, "kv", "get", "lock"))

		line := fails(t, runOpts{}, "--addr", addr, "kv", "cas", "lock", "--rev", strconv.FormatInt(rev, 10), "v3")
		require.True(t, strings.HasPrefix(line, "statenode: cas failed: "), line)
		require.Equal(t, "v2\n", ok(t, "--addr", addr, "kv", "get", "lock"))

		ok(t, "--addr", addr, "kv", "cas", "fresh", "--rev", "0", "first")
		line = fails(t, runOpts{}, "--addr", addr, "kv", "cas", "fresh", "--rev", "0", "second")
		require.True(t, strings.HasPrefix(line, "statenode: cas failed: "), line)
	})

	t.Run("stale and historical reads", func(t *testing.T) {
		r1 := putRev(t, addr, "hist", "old")
		putRev(t, addr, "hist", "new")
		require.Equal(t, "old\n", ok(t, "--addr", addr, "kv", "get", "hist", "--rev", strconv.FormatInt(r1, 10)))
		require.Equal(t, "new\n", ok(t, "--addr", addr, "kv", "get", "hist", "--stale"))
	})

	t.Run("addr placement and environment", func(t *testing.T) {
		putRev(t, addr, "where", "here")
		require.Equal(t, "here\n", ok(t, "--addr", addr, "kv", "get", "where"))
		require.Equal(t, "here\n", ok(t, "kv", "get", "where", "--addr", addr))
		require.Equal(t, "here\n", ok(t, "kv", "--addr", addr, "get", "where"))
		r := cli(t, runOpts{env: []string{"STATENODE_ADDR=" + addr}}, "kv", "get", "where")
		require.Equal(t, 0, r.code, r.stderr)
		require.Equal(t, "here\n", r.stdout)
		// Several endpoints, the first one dead: the client moves on.
		dead := freeAddr(t)
		require.Equal(t, "here\n", ok(t, "--addr", dead+","+addr, "kv", "get", "where"))
	})

	t.Run("unreachable", func(t *testing.T) {
		dead := freeAddr(t)
		line := fails(t, runOpts{}, "--addr", dead, "--timeout", "500ms", "kv", "get", "x")
		require.True(t, strings.HasPrefix(line, "statenode: "), line)
	})

	t.Run("watch", func(t *testing.T) {
		rev := putRev(t, addr, "w/a", "1")
		w := start(t, "watch", nil, "--addr", addr, "kv", "watch", "w/", "--rev", strconv.FormatInt(rev, 10))
		// Replayed from history, so the watch is established after this line.
		require.Equal(t, "PUT w/a 1", w.waitLine("w/a", 20*time.Second))
		putRev(t, addr, "w/b", "2")
		putRev(t, addr, "other", "ignored")
		ok(t, "--addr", addr, "kv", "del", "w/a")
		require.Equal(t, "PUT w/b 2", w.waitLine("w/b", 20*time.Second))
		require.Equal(t, "DELETE w/a", w.waitLine("DELETE", 20*time.Second))
		require.Equal(t, 0, w.stop(15*time.Second), "kv watch exits 0 on SIGTERM")

		jw := start(t, "watch-json", nil, "--addr", addr, "-o", "json", "kv", "watch", "w/", "--rev", strconv.FormatInt(rev, 10))
		var ev struct {
			Type string `json:"type"`
			KV   struct {
				Key         string `json:"key"`
				Value       string `json:"value"`
				ModRevision int64  `json:"mod_revision"`
			} `json:"kv"`
			Revision int64 `json:"revision"`
		}
		require.NoError(t, json.Unmarshal([]byte(jw.waitLine(`"w/a"`, 20*time.Second)), &ev))
		require.Equal(t, "PUT", ev.Type)
		require.Equal(t, "1", ev.KV.Value)
		require.Equal(t, rev, ev.Revision)
	})

	t.Run("status members leader", func(t *testing.T) {
		out := ok(t, "--addr", addr, "status")
		lines := strings.Split(strings.TrimSpace(out), "\n")
		require.Len(t, lines, 2, out)
		require.True(t, strings.HasPrefix(lines[0], "ENDPOINT"), out)
		require.Contains(t, lines[1], "Leader")
		require.True(t, strings.HasSuffix(lines[1], " wal"), "the LOG column: %s", out)

		var st []endpointStatus
		require.NoError(t, json.Unmarshal([]byte(ok(t, "--addr", addr, "status", "-o", "json")), &st))
		require.Len(t, st, 1)
		require.NotNil(t, st[0].Status)
		require.Equal(t, "dev", st[0].Status.ID)
		require.Equal(t, "Leader", st[0].Status.State)
		require.Equal(t, testVersion, st[0].Status.Version)
		require.Equal(t, "wal", st[0].Status.LogEngine)
		require.Positive(t, st[0].Status.Revision)

		out = ok(t, "--addr", addr, "members")
		lines = strings.Split(strings.TrimSpace(out), "\n")
		require.Len(t, lines, 2, out)
		require.Equal(t, []string{"dev", strings.Fields(lines[1])[1], addr, "true", "true"}, strings.Fields(lines[1]))

		require.Equal(t, "id=dev http="+addr+" raft="+strings.Fields(lines[1])[1]+"\n", ok(t, "--addr", addr, "leader"))
		require.Equal(t, "statenode: leader transfer: the cluster has no other member",
			fails(t, runOpts{}, "--addr", addr, "leader", "transfer"))
	})
}

func TestDevDataDir(t *testing.T) {
	// Without --data-dir the data lives in a temporary directory that is
	// removed on exit.
	dev, addr := startDev(t)
	putRev(t, addr, "k", "v")
	m := regexp.MustCompile(`\(data in (.+)\)$`).FindStringSubmatch(dev.readyLine)
	require.NotNil(t, m, dev.readyLine)
	require.DirExists(t, m[1])
	require.Equal(t, 0, dev.stop(15*time.Second))
	require.NoDirExists(t, m[1])

	// With --data-dir it is kept, and a restart finds the data again.
	dir := t.TempDir()
	httpAddr, raftAddr := freeAddr(t), freeAddr(t)
	dev, addr = startDevAt(t, httpAddr, raftAddr, "--data-dir", dir)
	require.Contains(t, dev.readyLine, "(data in "+dir+")")
	putRev(t, addr, "kept", "yes")
	require.Equal(t, 0, dev.stop(15*time.Second))
	_, addr = startDevAt(t, httpAddr, raftAddr, "--data-dir", dir)
	require.Equal(t, "yes\n", ok(t, "--addr", addr, "kv", "get", "kept", "--stale"))
	require.Equal(t, "yes\n", ok(t, "--addr", addr, "kv", "get", "kept"))
}

func TestConfigPrecedence(t *testing.T) {
	_, addr := startDev(t)
	putRev(t, addr, "cfg", "value")

	dir := t.TempDir()
	file := filepath.Join(dir, "statenode.json")
	require.NoError(t, os.WriteFile(file, []byte(`{"addr": ["`+addr+`"], "output": "json", "timeout": "5s"}`), 0o600))
	isJSON := func(out string) bool { return strings.HasPrefix(out, "{") }

	// The file alone: its addr and output apply.
	r := cli(t, runOpts{}, "--config", file, "kv", "get", "cfg")
	require.Equal(t, 0, r.code, r.stderr)
	require.True(t, isJSON(r.stdout), r.stdout)

	// The file named by the environment.
	r = cli(t, runOpts{env: []string{"STATENODE_CONFIG=" + file}}, "kv", "get", "cfg")
	require.Equal(t, 0, r.code, r.stderr)
	require.True(t, isJSON(r.stdout), r.stdout)

	// The environment beats the file.
	r = cli(t, runOpts{env: []string{"STATENODE_OUTPUT=text"}}, "--config", file, "kv", "get", "cfg")
	require.Equal(t, 0, r.code, r.stderr)
	require.Equal(t, "value\n", r.stdout)

	// A flag beats the environment and the file.
	r = cli(t, runOpts{env: []string{"STATENODE_OUTPUT=text"}}, "--config", file, "-o", "json", "kv", "get", "cfg")
	require.Equal(t, 0, r.code, r.stderr)
	require.True(t, isJSON(r.stdout), r.stdout)
	r = cli(t, runOpts{env: []string{"STATENODE_OUTPUT=json"}}, "--config", file, "-o", "text", "kv", "get", "cfg")
	require.Equal(t, 0, r.code, r.stderr)
	require.Equal(t, "value\n", r.stdout)

	// A dead address in the environment beats the good one in the file.
	line := fails(t, runOpts{env: []string{"STATENODE_ADDR=" + freeAddr(t), "STATENODE_TIMEOUT=500ms"}}, "--config", file, "kv", "get", "cfg")
	require.True(t, strings.HasPrefix(line, "statenode: "), line)

	// A typo in the file is an error, not a silently ignored setting.
	bad := filepath.Join(dir, "bad.json")
	require.NoError(t, os.WriteFile(bad, []byte(`{"adr": "x"}`), 0o600))
	line = fails(t, runOpts{}, "--config", bad, "version")
	require.Contains(t, line, "unknown keys adr")

	// A missing file is an error too.
	line = fails(t, runOpts{}, "--config", filepath.Join(dir, "missing.json"), "version")
	require.Contains(t, line, "missing.json")
}

func TestBench(t *testing.T) {
	_, addr := startDev(t)

	revision := func() int64 {
		var st []endpointStatus
		require.NoError(t, json.Unmarshal([]byte(ok(t, "--addr", addr, "status", "-o", "json")), &st))
		return st[0].Status.Revision
	}
	rev0 := revision()
	out := ok(t, "--addr", addr, "bench", "--total", "200", "--clients", "4", "--conns", "2")
	rev1 := revision()
	require.Equal(t, int64(204), rev1-rev0, "200 timed puts and one untimed warm-up put per worker")
	prof := filepath.Join(t.TempDir(), "cpu.prof")
	ok(t, "--addr", addr, "bench", "--total", "50", "--clients", "4", "--no-warmup", "--cpu-profile", prof)
	require.Equal(t, int64(50), revision()-rev1, "no warm-up")
	fi, err := os.Stat(prof)
	require.NoError(t, err)
	require.Positive(t, fi.Size(), "the load generator's CPU profile")
	rps := requestsPerSec(t, out)
	require.Positive(t, rps)
	for _, want := range []string{"Summary:", "  Total:\t", "  Slowest:\t", "  Fastest:\t", "  Average:\t", "  Stddev:\t",
		"Response time histogram:", "Latency distribution:", "  99.9% in ", "Operations:", "  put:\t200 ok, 0 errors."} {
		require.Contains(t, out, want)
	}

	// A mixed run with preload, stale reads and a rate limit, in JSON.
	out = ok(t, "--addr", addr, "-o", "json", "bench", "--total", "200", "--clients", "8",
		"--mix", "put=50,get=40,cas=5,txn=5", "--key-space", "50", "--consistency", "s", "--rate", "2000")
	var s summary
	require.NoError(t, json.Unmarshal([]byte(out), &s))
	require.Equal(t, 200, s.Requests)
	require.Empty(t, s.Errors)
	var total int64
	for _, o := range s.Ops {
		total += o.OK
		if o.Op == "get" {
			require.Zero(t, o.Misses, "the key space was preloaded")
		}
	}
	require.Equal(t, int64(200), total)
	require.GreaterOrEqual(t, s.Total, 0.09, "200 requests at 2000/s take at least ~0.1s")

	line := fails(t, runOpts{}, "--addr", addr, "bench", "--mix", "put=1,scan=2")
	require.Contains(t, line, "unknown op")

	// A warm-up that fails says so (its requests are not in the report).
	r := cli(t, runOpts{}, "--addr", freeAddr(t), "--timeout", "300ms", "bench", "--total", "2", "--clients", "2")
	require.Contains(t, r.stderr, "bench: warm-up: 2 of 2 requests failed")
}

// requestsPerSec parses the "Requests/sec:" line of a bench report.
func requestsPerSec(t *testing.T, out string) float64 {
	t.Helper()
	m := regexp.MustCompile(`(?m)^  Requests/sec:\t([0-9.]+)$`).FindStringSubmatch(out)
	require.NotNilf(t, m, "no Requests/sec line in %q", out)
	v, err := strconv.ParseFloat(m[1], 64)
	require.NoError(t, err)
	return v
}
