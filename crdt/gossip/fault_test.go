package gossip

import (
	"errors"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
)

// faultNet injects what a loopback network cannot produce by itself:
// partitions between groups of nodes and delay between them. Every node
// of a test cluster sends through a faultTransport sharing one faultNet;
// filtering on the sending side of every node cuts both directions.
type faultNet struct {
	mu          sync.Mutex
	group       map[string]int // gossip address → group
	partitioned bool
	delay       time.Duration // one-way, between different groups
	bytes       atomic.Int64  // bytes written on packets and streams
}

func newFaultNet() *faultNet { return &faultNet{group: map[string]int{}} }

var errPartitioned = errors.New("faultnet: partitioned")

// route reports what happens to traffic from one address to another.
func (f *faultNet) route(from, to string) (drop bool, delay time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	gf, okf := f.group[from]
	gt, okt := f.group[to]
	if !okf || !okt || gf == gt {
		return false, 0
	}
	return f.partitioned, f.delay
}

func (f *faultNet) setGroups(groups ...[]string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, g := range groups {
		for _, a := range g {
			f.group[a] = i
		}
	}
}

func (f *faultNet) partition(on bool) {
	f.mu.Lock()
	f.partitioned = on
	f.mu.Unlock()
}

func (f *faultNet) setDelay(d time.Duration) {
	f.mu.Lock()
	f.delay = d
	f.mu.Unlock()
}

// wrap is a Config.WrapTransport.
func (f *faultNet) wrap(t memberlist.NodeAwareTransport) memberlist.NodeAwareTransport {
	ip, port, _ := t.FinalAdvertiseAddr("", 0)
	ft := &faultTransport{
		NodeAwareTransport: t,
		net:                f,
		self:               net.JoinHostPort(ip.String(), strconv.Itoa(port)),
		streams:            make(chan net.Conn),
		stop:               make(chan struct{}),
	}
	ft.delayed = make(chan delayedPacket, 4096)
	ft.innerDone = make(chan struct{})
	ft.relay.Add(2)
	go ft.relayStreams()
	go ft.sendDelayed()
	return ft
}

type faultTransport struct {
	memberlist.NodeAwareTransport
	net       *faultNet
	self      string
	streams   chan net.Conn
	stop      chan struct{}
	relay     sync.WaitGroup
	once      sync.Once
	delayed   chan delayedPacket
	innerDone chan struct{}
}

type delayedPacket struct {
	due time.Time
	msg []byte
	to  memberlist.Address
}

// sendDelayed writes delayed packets when due; the delay is the same for
// all, so FIFO order is due order.
func (t *faultTransport) sendDelayed() {
	defer t.relay.Done()
	for {
		select {
		case p := <-t.delayed:
			select {
			case <-time.After(time.Until(p.due)):
			case <-t.stop:
				return
			}
			_, _ = t.NodeAwareTransport.WriteToAddress(p.msg, p.to)
		case <-t.stop:
			return
		}
	}
}

func (t *faultTransport) WriteTo(b []byte, addr string) (time.Time, error) {
	return t.WriteToAddress(b, memberlist.Address{Addr: addr})
}

func (t *faultTransport) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	drop, delay := t.net.route(t.self, a.Addr)
	if drop {
		return time.Now(), nil // lost on the wire
	}
	t.net.bytes.Add(int64(len(b)))
	if delay > 0 {
		select {
		case t.delayed <- delayedPacket{due: time.Now().Add(delay), msg: slices.Clone(b), to: a}:
		case <-t.stop:
		}
		return time.Now(), nil
	}
	return t.NodeAwareTransport.WriteToAddress(b, a)
}

func (t *faultTransport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	return t.DialAddressTimeout(memberlist.Address{Addr: addr}, timeout)
}

func (t *faultTransport) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	drop, delay := t.net.route(t.self, a.Addr)
	if drop {
		return nil, errPartitioned
	}
	time.Sleep(delay) // connection setup crosses the slow link
	c, err := t.NodeAwareTransport.DialAddressTimeout(a, timeout)
	if err != nil {
		return nil, err
	}
	return &countingConn{Conn: c, n: &t.net.bytes}, nil
}

func (t *faultTransport) StreamCh() <-chan net.Conn { return t.streams }

// relayStreams counts bytes written on accepted streams too.
func (t *faultTransport) relayStreams() {
	defer t.relay.Done()
	in := t.NodeAwareTransport.StreamCh()
	for {
		select {
		case c := <-in:
			select {
			case t.streams <- &countingConn{Conn: c, n: &t.net.bytes}:
			case <-t.stop:
				_ = c.Close()
			}
		case <-t.innerDone:
			return
		}
	}
}

func (t *faultTransport) Shutdown() error {
	var err error
	t.once.Do(func() {
		close(t.stop) // relayStreams now only drains, until innerDone
		err = t.NodeAwareTransport.Shutdown()
		close(t.innerDone)
		t.relay.Wait()
	})
	return err
}

type countingConn struct {
	net.Conn
	n *atomic.Int64
}

func (c *countingConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.n.Add(int64(n))
	return n, err
}
