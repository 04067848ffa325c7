package postgres_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/statenode/statenode/backends"
	"github.com/statenode/statenode/backends/backendtest"
	"github.com/statenode/statenode/backends/postgres"
)

const pgBin = "/usr/lib/postgresql/15/bin"

// pgServer is a PostgreSQL server the test started in its own directory.
type pgServer struct {
	c    *pgCluster
	data string
	port int
}

func (s *pgServer) connString() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable&connect_timeout=2", s.port)
}

func (s *pgServer) start(t *testing.T) {
	t.Helper()
	s.c.run(t, "pg_ctl", "-D", s.data, "-l", s.data+".log", "-w", "-t", "30",
		"-o", fmt.Sprintf("-p %d -k %s", s.port, s.c.dir), "start")
}

func (s *pgServer) stop(t *testing.T) {
	t.Helper()
	s.c.run(t, "pg_ctl", "-D", s.data, "-m", "fast", "-w", "-t", "30", "stop")
}

// exec runs sql on the server over a fresh connection.
func (s *pgServer) exec(t *testing.T, sql string, args ...any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, s.connString())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// queryRow runs sql on the server and scans one row into dst.
func (s *pgServer) queryRow(t *testing.T, sql string, args []any, dst ...any) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, s.connString())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	return conn.QueryRow(ctx, sql, args...).Scan(dst...)
}

// pgCluster is a primary and one streaming hot standby, started from the
// installed server binaries in a temporary directory, as the postgres
// user when the test runs as root (PostgreSQL refuses to run as root).
type pgCluster struct {
	dir              string
	asPostgres       bool
	primary, replica *pgServer
}

func (c *pgCluster) run(t *testing.T, bin string, args ...string) {
	t.Helper()
	name := filepath.Join(pgBin, bin)
	if c.asPostgres {
		args = append([]string{"-u", "postgres", "--", name}, args...)
		name = "runuser"
	}
	cmd := exec.Command(name, args...)
	cmd.Dir = c.dir
	cmd.Env = append(os.Environ(), "LC_ALL=C", "LANG=C")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", bin, strings.Join(args, " "), err, out)
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startCluster starts the primary and the replica, waits until the
// replica streams, and stops and removes both at the end of the test.
func startCluster(t *testing.T) *pgCluster {
	t.Helper()
	if _, err := os.Stat(filepath.Join(pgBin, "postgres")); err != nil {
		t.Skipf("PostgreSQL 15 server binaries not found in %s: %v", pgBin, err)
	}
	c := &pgCluster{asPostgres: os.Geteuid() == 0}
	var uid, gid int
	if c.asPostgres {
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Skipf("running as root and there is no postgres user to run the server as: %v", err)
		}
		uid, _ = strconv.Atoi(u.Uid)
		gid, _ = strconv.Atoi(u.Gid)
	}
	dir, err := os.MkdirTemp("", "statenode-pg-")
	if err != nil {
		t.Fatal(err)
	}
	c.dir = dir
	if c.asPostgres {
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	c.primary = &pgServer{c: c, data: filepath.Join(dir, "primary"), port: freePort(t)}
	c.replica = &pgServer{c: c, data: filepath.Join(dir, "replica"), port: freePort(t)}
	t.Cleanup(func() {
		for _, s := range []*pgServer{c.replica, c.primary} {
			if _, err := os.Stat(filepath.Join(s.data, "postmaster.pid")); err == nil {
				name, args := filepath.Join(pgBin, "pg_ctl"), []string{"-D", s.data, "-m", "immediate", "-w", "stop"}
				if c.asPostgres {
					args = append([]string{"-u", "postgres", "--", name}, args...)
					name = "runuser"
				}
				_ = exec.Command(name, args...).Run()
			}
		}
		if t.Failed() {
			for _, s := range []*pgServer{c.primary, c.replica} {
				if log, err := os.ReadFile(s.data + ".log"); err == nil {
					t.Logf("%s:\n%s", filepath.Base(s.data), log)
				}
			}
		}
		_ = os.RemoveAll(dir)
	})

	c.run(t, "initdb", "-D", c.primary.data, "-U", "postgres", "--auth=trust", "--locale=C", "-E", "UTF8", "--no-sync")
	conf := strings.Join([]string{
		"listen_addresses = '127.0.0.1'",
		"max_connections = 80",
		"shared_buffers = 16MB",
		"fsync = off", // throwaway cluster
		"full_page_writes = off",
		"wal_level = replica",
		"max_wal_senders = 4",
		"hot_standby = on",
		"hot_standby_feedback = on",
		"wal_receiver_status_interval = 1s",
	}, "\n") + "\n"
	f, err := os.OpenFile(filepath.Join(c.primary.data, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(conf); err != nil {
		t.Fatal(err)
	}
	_ = f.Close()
	c.primary.start(t)
	c.run(t, "pg_basebackup", "-h", "127.0.0.1", "-p", strconv.Itoa(c.primary.port), "-U", "postgres",
		"-D", c.replica.data, "-R", "-X", "stream", "-c", "fast", "--no-sync")
	c.replica.start(t)

	var inRecovery bool
	if err := c.replica.queryRow(t, `SELECT pg_is_in_recovery()`, nil, &inRecovery); err != nil || !inRecovery {
		t.Fatalf("replica in recovery: %v %v", inRecovery, err)
	}
	poll(t, "replica streaming", func() bool {
		var n int
		return c.primary.queryRow(t, `SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'`, nil, &n) == nil && n == 1
	})
	return c
}

// poll waits up to 20 s for cond.
func poll(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func schemaName() string {
	var buf [6]byte
	_, _ = rand.Read(buf[:])
	return "sn_test_" + hex.EncodeToString(buf[:])
}

// routed opens a Backend on the cluster's primary with the replica
// configured; the throwaway cluster needs no schema cleanup.
func (c *pgCluster) routed(t *testing.T, schema string, mode postgres.ReadMode, maxLag time.Duration) *postgres.Backend {
	t.Helper()
	cfg := postgres.DefaultConfig(c.primary.connString())
	cfg.Schema = schema
	cfg.MaxConns = 6
	cfg.Replicas = []string{c.replica.connString()}
	cfg.ReadMode = mode
	cfg.MaxReplicaLag = maxLag
	cfg.ReplicaCheckInterval = 25 * time.Millisecond
	b, err := postgres.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

func replicaReads(b *postgres.Backend) int64 { return b.Replicas()[0].Reads }

// getFrom reads key through b and reports whether a replica served it.
func getFrom(t *testing.T, b *postgres.Backend, key string) (string, bool) {
	t.Helper()
	before := replicaReads(b)
	v, err := b.Get(context.Background(), key)
	if errors.Is(err, backends.ErrNotFound) {
		return "", replicaReads(b) > before
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(v.Value), replicaReads(b) > before
}

// TestReplicaRouting starts a primary and a streaming replica and checks
// routing, lag-based fallback, read-your-writes of ReadReplicaSession,
// fallback when the replica is stopped, and the conformance suite with
// replica reads enabled.
func TestReplicaRouting(t *testing.T) {
	c := startCluster(t)

	t.Run("Conformance", func(t *testing.T) {
		// ReadReplicaSession: the suite reads its own writes right away;
		// ReadReplicaPreferred would (by design) fail those checks.
		var mu sync.Mutex
		var stores []*postgres.Backend
		backendtest.Run(t, func(t *testing.T) backends.Backend {
			b := c.routed(t, schemaName(), postgres.ReadReplicaSession, 5*time.Second)
			mu.Lock()
			stores = append(stores, b)
			mu.Unlock()
			return b
		})
		var replica int64
		for _, b := range stores {
			replica += replicaReads(b) // still readable after Close
		}
		t.Logf("conformance: %d reads served by the replica", replica)
	})

	t.Run("LagAndSession", func(t *testing.T) { testLagAndSession(t, c) })
	t.Run("ReplicaDown", func(t *testing.T) { testReplicaDown(t, c) })
}

func testLagAndSession(t *testing.T, c *pgCluster) {
	ctx := context.Background()
	schema := schemaName()
	tight := c.routed(t, schema, postgres.ReadReplicaPreferred, 400*time.Millisecond)
	loose := c.routed(t, schema, postgres.ReadReplicaPreferred, time.Minute)
	session := c.routed(t, schema, postgres.ReadReplicaSession, time.Minute)

	if _, err := tight.Put(ctx, "k", []byte("v1"), backends.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	// Once replayed, the replica serves reads (the replica is a standby,
	// checked above with pg_is_in_recovery()).
	poll(t, "v1 read from the replica", func() bool {
		v, onReplica := getFrom(t, tight, "k")
		return v == "v1" && onReplica
	})
	st, err := tight.Stats(ctx)
	if err != nil || st.Extra["replica_reads"] < 1 || st.Extra["replicas_usable"] != 1 {
		t.Fatalf("stats %v %v", st.Extra, err)
	}
	poll(t, "loose backend on the replica", func() bool {
		v, onReplica := getFrom(t, loose, "k")
		return v == "v1" && onReplica
	})

	// Freeze the replica: writes reach the primary only.
	c.replica.exec(t, `SELECT pg_wal_replay_pause()`)
	t.Cleanup(func() { c.replica.exec(t, `SELECT pg_wal_replay_resume()`) })
	poll(t, "replay paused", func() bool {
		var state string
		return c.replica.queryRow(t, `SELECT pg_get_wal_replay_pause_state()`, nil, &state) == nil && state == "paused"
	})
	readsBefore := replicaReads(tight) + replicaReads(loose)
	for i := range 20 { // writes succeed: a standby would refuse them (read-only)
		if _, err := loose.Put(ctx, "k", fmt.Appendf(nil, "v2-%d", i), backends.WriteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := loose.Put(ctx, "k", []byte("v2"), backends.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	if replicaReads(tight)+replicaReads(loose) != readsBefore {
		t.Fatal("a write was counted as a replica read")
	}
	var onPrimary, onReplica string
	if err := c.primary.queryRow(t, `SELECT convert_from(value, 'UTF8') FROM `+pgx.Identifier{schema}.Sanitize()+`.kv WHERE key = 'k'`, nil, &onPrimary); err != nil || onPrimary != "v2" {
		t.Fatalf("primary has %q %v", onPrimary, err)
	}
	if err := c.replica.queryRow(t, `SELECT convert_from(value, 'UTF8') FROM `+pgx.Identifier{schema}.Sanitize()+`.kv WHERE key = 'k'`, nil, &onReplica); err != nil || onReplica != "v1" {
		t.Fatalf("paused replica has %q %v", onReplica, err)
	}

	// Within a minute of lag the stale replica still serves: v1.
	if v, fromReplica := getFrom(t, loose, "k"); v != "v1" || !fromReplica {
		t.Fatalf("loose read %q from replica=%v, want the replica's stale v1", v, fromReplica)
	}
	// Beyond 400 ms the replica is skipped and the primary answers v2.
	poll(t, "tight backend to see the lag", func() bool { return !tight.Replicas()[0].Usable })
	// Lag is a bound above 400 ms, or -1 once the replica is behind
	// every primary sample still kept.
	if s := tight.Replicas()[0]; !s.Healthy || (s.Lag != -1 && s.Lag <= 400*time.Millisecond) {
		t.Fatalf("status while lagging: %+v", s)
	}
	for _, read := range []func() (string, error){
		func() (string, error) { v, err := tight.Get(ctx, "k"); return string(v.Value), err },
		func() (string, error) { vs, err := tight.GetMany(ctx, []string{"k"}); return string(vs[0].Value), err },
		func() (string, error) {
			p, err := tight.List(ctx, "k", backends.ListOptions{})
			if err != nil || len(p.Entries) != 1 {
				return "", fmt.Errorf("list %+v %v", p, err)
			}
			return string(p.Entries[0].Value), nil
		},
	} {
		before := replicaReads(tight)
		if v, err := read(); err != nil || v != "v2" || replicaReads(tight) != before {
			t.Fatalf("read beyond max lag: %q %v (replica reads %d -> %d)", v, err, before, replicaReads(tight))
		}
	}

	// ReadReplicaSession reads its own write at once (from the primary),
	// although the replica is within its lag bound for older data.
	if _, err := session.Put(ctx, "mine", []byte("m1"), backends.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	if v, fromReplica := getFrom(t, session, "mine"); v != "m1" || fromReplica {
		t.Fatalf("session read of own write: %q from replica=%v", v, fromReplica)
	}
	if v, _ := getFrom(t, loose, "mine"); v != "" {
		t.Fatalf("loose backend saw %q on the paused replica", v)
	}

	// Resumed, the replica catches up and serves again.
	c.replica.exec(t, `SELECT pg_wal_replay_resume()`)
	poll(t, "tight backend back on the replica", func() bool {
		v, fromReplica := getFrom(t, tight, "k")
		return v == "v2" && fromReplica
	})
	poll(t, "session backend back on the replica", func() bool {
		v, fromReplica := getFrom(t, session, "mine")
		return v == "m1" && fromReplica
	})
}

func testReplicaDown(t *testing.T, c *pgCluster) {
	ctx := context.Background()
	b := c.routed(t, schemaName(), postgres.ReadReplicaPreferred, 2*time.Second)
	if _, err := b.PutMany(ctx, []backends.Item{{Key: "a", Value: []byte("1")}, {Key: "b", Value: []byte("2")}}, backends.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	poll(t, "read from the replica", func() bool {
		v, fromReplica := getFrom(t, b, "a")
		return v == "1" && fromReplica
	})

	c.replica.stop(t)
	// The first read after the stop may find a dead pooled connection:
	// it must still succeed, from the primary.
	for i := range 5 {
		vs, err := b.GetMany(ctx, []string{"a", "b"})
		if err != nil || string(vs[0].Value) != "1" || string(vs[1].Value) != "2" {
			t.Fatalf("read %d with the replica down: %+v %v", i, vs, err)
		}
	}
	poll(t, "replica marked down", func() bool { s := b.Replicas()[0]; return !s.Healthy && !s.Usable && s.Err != nil })
	before := replicaReads(b)
	if v, fromReplica := getFrom(t, b, "b"); v != "2" || fromReplica || replicaReads(b) != before {
		t.Fatalf("read with the replica down: %q from replica=%v", v, fromReplica)
	}
	if _, err := b.Put(ctx, "c", []byte("3"), backends.WriteOptions{}); err != nil {
		t.Fatalf("write with the replica down: %v", err)
	}

	c.replica.start(t)
	poll(t, "replica back in use", func() bool {
		v, fromReplica := getFrom(t, b, "c")
		return v == "3" && fromReplica
	})
}

func TestReplicaConfig(t *testing.T) {
	ctx := context.Background()
	for name, mutate := range map[string]func(*postgres.Config){
		"interval not below max lag": func(c *postgres.Config) {
			c.MaxReplicaLag, c.ReplicaCheckInterval = time.Second, time.Second
		},
		"negative lag": func(c *postgres.Config) { c.MaxReplicaLag = -1 },
		"unknown mode": func(c *postgres.Config) { c.ReadMode = 42 },
		"bad conn str": func(c *postgres.Config) { c.Replicas = []string{"postgres://%zz"} },
	} {
		cfg := postgres.DefaultConfig(connString)
		cfg.Schema = uniqueSchema(t)
		cfg.ReadMode = postgres.ReadReplicaPreferred
		cfg.Replicas = []string{"postgres://postgres@127.0.0.1:1/test"}
		mutate(&cfg)
		if b, err := postgres.New(ctx, cfg); !errors.Is(err, postgres.ErrConfig) {
			if err == nil {
				_ = b.Close()
			}
			t.Errorf("%s: %v, want ErrConfig", name, err)
		}
	}

	// A replica that never answers is skipped: reads go to the primary.
	b := newBackend(t, func(c *postgres.Config) {
		c.ReadMode = postgres.ReadReplicaPreferred
		c.Replicas = []string{"postgres://postgres@127.0.0.1:1/test?sslmode=disable&connect_timeout=1"}
		c.MaxReplicaLag = time.Second
		c.ReplicaCheckInterval = 50 * time.Millisecond
	})
	defer b.Close()
	if _, err := b.Put(ctx, "k", []byte("v"), backends.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	if v, err := b.Get(ctx, "k"); err != nil || string(v.Value) != "v" {
		t.Fatalf("get with a dead replica: %+v %v", v, err)
	}
	poll(t, "dead replica reported", func() bool {
		s := b.Replicas()[0]
		return !s.Healthy && errors.Is(s.Err, backends.ErrUnavailable) && s.Addr == "127.0.0.1:1"
	})
	if s := b.Replicas()[0]; s.Reads != 0 || s.Lag != -1 {
		t.Fatalf("dead replica status %+v", s)
	}
	if postgres.ReadReplicaSession.String() != "replica-session" {
		t.Fatal(postgres.ReadReplicaSession.String())
	}
}
