package proxy

import (
	"bufio"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// echoServer echoes every line back until the connection closes.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				_, _ = io.Copy(c, c)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

func roundTrip(c net.Conn, msg string, wait time.Duration) (string, error) {
	_ = c.SetDeadline(time.Now().Add(wait))
	if _, err := io.WriteString(c, msg+"\n"); err != nil {
		return "", err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return line, err
}

func setup(t *testing.T) (*Net, *Link) {
	t.Helper()
	nw := New(2, 1)
	t.Cleanup(func() { nw.Close() })
	l, err := nw.AddLink(0, 1, "test", echoServer(t))
	if err != nil {
		t.Fatal(err)
	}
	return nw, l
}

func dial(t *testing.T, l *Link) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", l.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestForwards(t *testing.T) {
	_, l := setup(t)
	c := dial(t, l)
	for _, m := range []string{"a", "bb", "ccc"} {
		got, err := roundTrip(c, m, 5*time.Second)
		if err != nil || got != m+"\n" {
			t.Fatalf("round trip %q = %q, %v", m, got, err)
		}
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// TestPartitionClosesAndHolds: a partition closes the connections it cuts,
// holds new ones without delivering a byte, and a heal closes those too;
// after the heal, new connections work.
func TestPartitionClosesAndHolds(t *testing.T) {
	nw, l := setup(t)
	old := dial(t, l)
	if _, err := roundTrip(old, "x", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := nw.Set(1, 0, Faults{Blocked: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := roundTrip(old, "y", 5*time.Second); err == nil || isTimeout(err) {
		t.Fatalf("connection across a new partition: err = %v, want it closed", err)
	}
	held := dial(t, l)
	if _, err := roundTrip(held, "z", 300*time.Millisecond); !isTimeout(err) {
		t.Fatalf("connection during a partition: err = %v, want a timeout (bytes held)", err)
	}
	nw.HealAll()
	_ = held.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := held.Read(make([]byte, 1)); err == nil || isTimeout(err) {
		t.Fatalf("held connection after the heal: err = %v, want it closed", err)
	}
	fresh := dial(t, l)
	if got, err := roundTrip(fresh, "w", 5*time.Second); err != nil || got != "w\n" {
		t.Fatalf("after heal: %q, %v", got, err)
	}
}

// TestOneWay: blocking only the answers (1→0) lets requests through but
// holds the replies.
func TestOneWay(t *testing.T) {
	nw, l := setup(t)
	if err := nw.Set(1, 0, Faults{Blocked: true}); err != nil {
		t.Fatal(err)
	}
	c := dial(t, l)
	if _, err := roundTrip(c, "q", 300*time.Millisecond); !isTimeout(err) {
		t.Fatalf("reply across a one-way block: err = %v, want a timeout", err)
	}
	if f := nw.Faults(0, 1); f.Blocked {
		t.Fatalf("0→1 blocked too: %+v", f)
	}
}

// TestDelay: a delay holds each direction's bytes at least that long, in order.
func TestDelay(t *testing.T) {
	nw, l := setup(t)
	const d = 100 * time.Millisecond
	if err := nw.Set(0, 1, Faults{Delay: d}); err != nil {
		t.Fatal(err)
	}
	c := dial(t, l)
	start := time.Now()
	got, err := roundTrip(c, "slow", 5*time.Second)
	if err != nil || got != "slow\n" {
		t.Fatalf("%q, %v", got, err)
	}
	if el := time.Since(start); el < d {
		t.Fatalf("round trip took %s, less than the %s delay", el, d)
	}
}

// TestLossIsDelayNotCorruption: with every chunk lost, bytes still arrive
// intact, later.
func TestLossIsDelayNotCorruption(t *testing.T) {
	nw, l := setup(t)
	if err := nw.Set(0, 1, Faults{Loss: 1, Retransmit: 50 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	c := dial(t, l)
	start := time.Now()
	for _, m := range []string{"one", "two", "three"} {
		got, err := roundTrip(c, m, 5*time.Second)
		if err != nil || got != m+"\n" {
			t.Fatalf("%q, %v", got, err)
		}
	}
	if el := time.Since(start); el < 150*time.Millisecond {
		t.Fatalf("three lost chunks took %s, less than three retransmissions", el)
	}
}

func TestBadNode(t *testing.T) {
	nw := New(2, 1)
	defer nw.Close()
	if _, err := nw.AddLink(0, 2, "x", "127.0.0.1:1"); !errors.Is(err, ErrUnknownNode) {
		t.Fatalf("AddLink to node 2 of 2: %v", err)
	}
	if err := nw.Set(-1, 0, Faults{}); !errors.Is(err, ErrUnknownNode) {
		t.Fatalf("Set from -1: %v", err)
	}
	nw.Close()
	if _, err := nw.AddLink(0, 1, "x", "127.0.0.1:1"); !errors.Is(err, ErrClosed) {
		t.Fatalf("AddLink after Close: %v", err)
	}
}
