package redlock_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/statenode/statenode/coordination/redlock"
)

// server is a redis-server process started for a test.
type server struct {
	addr   string
	cmd    *exec.Cmd
	cancel context.CancelFunc
	done   chan struct{} // closed when the process has exited
}

// kill sends SIGKILL (kill -9) and waits for the process to exit.
func (s *server) kill() {
	_ = s.cmd.Process.Kill()
	<-s.done
}

// signal sends sig to the process (SIGSTOP pauses it, SIGCONT resumes it).
func (s *server) signal(sig syscall.Signal) error { return s.cmd.Process.Signal(sig) }

// startRedis runs one redis-server in dir on a free port and waits until it
// answers PING. A port taken between picking and binding is retried.
func startRedis(dir string) (*server, error) {
	var lastErr error
	for range 5 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		port := l.Addr().(*net.TCPAddr).Port
		_ = l.Close()

		logf, err := os.Create(filepath.Join(dir, fmt.Sprintf("redis-%d.log", port)))
		if err != nil {
			return nil, err
		}
		ctx, cancel := context.WithCancel(context.Background())
		cmd := exec.CommandContext(ctx, "redis-server",
			"--port", strconv.Itoa(port), "--bind", "127.0.0.1",
			"--save", "", "--appendonly", "no", "--daemonize", "no", "--dir", dir)
		cmd.Dir, cmd.Stdout, cmd.Stderr = dir, logf, logf
		if err := cmd.Start(); err != nil {
			cancel()
			logf.Close()
			return nil, err
		}
		s := &server{addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), cmd: cmd, cancel: cancel, done: make(chan struct{})}
		go func() { _ = cmd.Wait(); logf.Close(); close(s.done) }()
		if lastErr = waitReady(s, 10*time.Second); lastErr == nil {
			return s, nil
		}
		cancel()
		<-s.done
	}
	return nil, lastErr
}

// waitReady pings s until it answers, it exits, or d passes.
func waitReady(s *server, d time.Duration) error {
	c := goredis.NewClient(&goredis.Options{Addr: s.addr, MaxRetries: -1, DialTimeout: time.Second})
	defer c.Close()
	deadline := time.Now().Add(d)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-s.done:
			return fmt.Errorf("redis-server on %s exited: %w", s.addr, err)
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("redis-server on %s not ready after %v: %w", s.addr, d, err)
		}
	}
}

// startCluster starts n independent redis-servers in t.TempDir(), killed
// in t.Cleanup. It skips the test when redis-server is not on PATH.
func startCluster(t testing.TB, n int) []*server {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Skip("redis-server is not on PATH")
	}
	servers := make([]*server, n)
	for i := range servers {
		s, err := startRedis(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.cancel(); <-s.done })
		servers[i] = s
	}
	return servers
}

func addrs(servers []*server) []string {
	out := make([]string, len(servers))
	for i, s := range servers {
		out[i] = s.addr
	}
	return out
}

// dial returns a Redlock over servers, closed in t.Cleanup.
func dial(t testing.TB, cfg redlock.Config, servers []*server) *redlock.Redlock {
	t.Helper()
	rl, err := redlock.Dial(cfg, addrs(servers)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rl.Close() })
	return rl
}

// inspect returns a plain client for looking at s's keys, closed in
// t.Cleanup.
func inspect(t testing.TB, s *server) *goredis.Client {
	c := goredis.NewClient(&goredis.Options{Addr: s.addr, MaxRetries: -1})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// get returns the value of key on s ("" when absent).
func get(t testing.TB, s *server, key string) string {
	t.Helper()
	v, err := inspect(t, s).Get(context.Background(), key).Result()
	if errors.Is(err, goredis.Nil) {
		return ""
	}
	if err != nil {
		t.Fatalf("GET %s on %s: %v", key, s.addr, err)
	}
	return v
}

// dbsize returns the number of keys on s.
func dbsize(t testing.TB, s *server) int64 {
	t.Helper()
	n, err := inspect(t, s).DBSize(context.Background()).Result()
	if err != nil {
		t.Fatalf("DBSIZE on %s: %v", s.addr, err)
	}
	return n
}

// Servers for the examples, which have no *testing.T: started on first
// use and stopped by TestMain.
var example struct {
	sync.Mutex
	dir     string
	servers []*server
}

// exampleServers returns the addresses of n redis-servers for an example.
func exampleServers(n int) []string {
	example.Lock()
	defer example.Unlock()
	if example.dir == "" {
		dir, err := os.MkdirTemp("", "redlock-example")
		if err != nil {
			panic(err)
		}
		example.dir = dir
	}
	for len(example.servers) < n {
		s, err := startRedis(example.dir)
		if err != nil {
			panic(err)
		}
		example.servers = append(example.servers, s)
	}
	return addrs(example.servers[:n])
}

func stopExampleServers() {
	example.Lock()
	defer example.Unlock()
	for _, s := range example.servers {
		s.cancel()
		<-s.done
	}
	example.servers = nil
	if example.dir != "" {
		_ = os.RemoveAll(example.dir)
	}
}
