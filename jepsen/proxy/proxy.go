package proxy

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"time"
)

// Errors returned by this package.
var (
	// ErrClosed: the network or link has been closed.
	ErrClosed = errors.New("proxy: closed")
	// ErrUnknownNode: a node index outside the network.
	ErrUnknownNode = errors.New("proxy: unknown node")
)

// Faults are the conditions of one directed pair of nodes: what happens to
// the bytes that node From sends to node To, on every connection between
// them, whichever side opened it.
type Faults struct {
	// Blocked holds the bytes (they are never delivered: connections that
	// carried held bytes are closed when the block lifts).
	Blocked bool
	// Delay is added to every chunk of bytes, in order; Jitter adds a
	// uniformly random extra in [0, Jitter).
	Delay, Jitter time.Duration
	// Loss is the probability (0..1) that a chunk is "lost": TCP would
	// retransmit it, so it arrives late (after Retransmit), never corrupt.
	Loss float64
	// Retransmit is the extra delay of a lost chunk; default 200ms
	// (Linux's minimum retransmission timeout).
	Retransmit time.Duration
}

// Net is a set of n nodes whose member-to-member traffic goes through one
// userspace TCP proxy per directed link: node i reaches node j's service s
// only through Link(i, j, s). Faults are set per directed pair of nodes
// (i→j: the bytes i sends to j), so that a one-way partition is expressible
// even though TCP connections carry bytes both ways. Methods are safe for
// concurrent use.
type Net struct {
	n    int
	seed uint64

	mu     sync.Mutex
	faults [][]Faults // [from][to]
	links  []*Link
	closed bool
}

// New creates a network of n nodes with no links and no faults. seed seeds
// the loss and jitter draws.
func New(n int, seed uint64) *Net {
	f := make([][]Faults, n)
	for i := range f {
		f[i] = make([]Faults, n)
	}
	return &Net{n: n, seed: seed, faults: f}
}

// Link is one directed proxy: a listener that node From dials to reach
// address Target of node To.
type Link struct {
	From, To int
	Name     string // e.g. "raft" or "http"
	Target   string // address the proxy forwards to
	net      *Net
	ln       net.Listener
	rng      *rand.Rand // guarded by net.mu

	mu     sync.Mutex
	conns  map[*pipe]struct{}
	closed bool
	wg     sync.WaitGroup
}

// Addr is the address node From dials.
func (l *Link) Addr() string { return l.ln.Addr().String() }

// AddLink starts a proxy on a free 127.0.0.1 port for traffic from node from
// to the address target of node to.
func (nw *Net) AddLink(from, to int, name, target string) (*Link, error) {
	if from < 0 || from >= nw.n || to < 0 || to >= nw.n {
		return nil, fmt.Errorf("%w: %d→%d", ErrUnknownNode, from, to)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("proxy: listen: %w", err)
	}
	nw.mu.Lock()
	defer nw.mu.Unlock()
	if nw.closed {
		ln.Close()
		return nil, ErrClosed
	}
	l := &Link{
		From: from, To: to, Name: name, Target: target, net: nw, ln: ln,
		rng:   rand.New(rand.NewPCG(nw.seed, uint64(len(nw.links)+1))),
		conns: map[*pipe]struct{}{},
	}
	nw.links = append(nw.links, l)
	l.wg.Add(1)
	go l.accept()
	return l, nil
}

// Set replaces the faults of the directed pair from→to. Connections that
// were carrying bytes that are now blocked, or whose bytes were held and
// are now released, are closed: a partition breaks the connections it cuts
// and a heal starts them afresh, the bytes in between are never delivered.
func (nw *Net) Set(from, to int, f Faults) error {
	if from < 0 || from >= nw.n || to < 0 || to >= nw.n {
		return fmt.Errorf("%w: %d→%d", ErrUnknownNode, from, to)
	}
	nw.mu.Lock()
	old := nw.faults[from][to]
	nw.faults[from][to] = f
	links := append([]*Link(nil), nw.links...)
	nw.mu.Unlock()
	if old.Blocked != f.Blocked {
		for _, l := range links {
			if (l.From == from && l.To == to) || (l.From == to && l.To == from) {
				l.closeConns()
			}
		}
	}
	return nil
}

// Faults returns the faults of the directed pair from→to.
func (nw *Net) Faults(from, to int) Faults {
	nw.mu.Lock()
	defer nw.mu.Unlock()
	return nw.faults[from][to]
}

// HealAll removes every fault (closing the connections that were blocked).
func (nw *Net) HealAll() {
	for i := 0; i < nw.n; i++ {
		for j := 0; j < nw.n; j++ {
			if i != j {
				_ = nw.Set(i, j, Faults{})
			}
		}
	}
}

// Close stops every link and closes every connection. Safe to call twice.
func (nw *Net) Close() error {
	nw.mu.Lock()
	nw.closed = true
	links := nw.links
	nw.links = nil
	nw.mu.Unlock()
	for _, l := range links {
		l.close()
	}
	return nil
}

// draw returns the extra delay of one chunk sent from→to and whether the
// pair is blocked.
func (l *Link) draw(from, to int) (time.Duration, bool) {
	l.net.mu.Lock()
	defer l.net.mu.Unlock()
	f := l.net.faults[from][to]
	if f.Blocked {
		return 0, true
	}
	d := f.Delay
	if f.Jitter > 0 {
		d += time.Duration(l.rng.Int64N(int64(f.Jitter)))
	}
	if f.Loss > 0 && l.rng.Float64() < f.Loss {
		rt := f.Retransmit
		if rt <= 0 {
			rt = 200 * time.Millisecond
		}
		d += rt
	}
	return d, false
}

func (l *Link) accept() {
	defer l.wg.Done()
	for {
		c, err := l.ln.Accept()
		if err != nil {
			return
		}
		p := &pipe{link: l, client: c, done: make(chan struct{})}
		l.mu.Lock()
		if l.closed {
			l.mu.Unlock()
			c.Close()
			return
		}
		l.conns[p] = struct{}{}
		l.wg.Add(1)
		l.mu.Unlock()
		go p.run()
	}
}

func (l *Link) closeConns() {
	l.mu.Lock()
	ps := make([]*pipe, 0, len(l.conns))
	for p := range l.conns {
		ps = append(ps, p)
	}
	l.mu.Unlock()
	for _, p := range ps {
		p.close()
	}
}

func (l *Link) close() {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	l.ln.Close()
	l.closeConns()
	l.wg.Wait()
}

// pipe is one proxied connection: client is node From's side, server the
// connection to Target.
type pipe struct {
	link   *Link
	client net.Conn
	once   sync.Once
	done   chan struct{}

	mu     sync.Mutex
	server net.Conn
}

func (p *pipe) close() {
	p.once.Do(func() {
		close(p.done)
		p.client.Close()
		p.mu.Lock()
		if p.server != nil {
			p.server.Close()
		}
		p.mu.Unlock()
	})
}

func (p *pipe) run() {
	l := p.link
	defer func() {
		p.close()
		l.mu.Lock()
		delete(l.conns, p)
		l.mu.Unlock()
		l.wg.Done()
	}()
	// A blocked link holds the connection without dialing the target: to
	// the dialer it looks like a blackholed peer.
	for {
		if _, blocked := l.draw(l.From, l.To); !blocked {
			break
		}
		select {
		case <-p.done:
			return
		case <-time.After(20 * time.Millisecond):
		}
	}
	s, err := net.DialTimeout("tcp", l.Target, 2*time.Second)
	if err != nil {
		return
	}
	p.mu.Lock()
	p.server = s
	p.mu.Unlock()
	select {
	case <-p.done:
		s.Close()
		return
	default:
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); p.flow(p.client, s, l.From, l.To) }()
	go func() { defer wg.Done(); p.flow(s, p.client, l.To, l.From) }()
	wg.Wait()
}

type chunk struct {
	b   []byte
	due time.Time
}

// flow copies src to dst, applying the faults of from→to to each chunk.
// A reader stamps each chunk with its due time and a writer delivers the
// chunks in order, so that a delay does not accumulate across chunks.
func (p *pipe) flow(src, dst net.Conn, from, to int) {
	defer p.close()
	ch := make(chan chunk, 64)
	go func() {
		defer close(ch)
		buf := make([]byte, 32<<10)
		for {
			n, err := src.Read(buf)
			if n > 0 {
				d, blocked := p.link.draw(from, to)
				for blocked {
					// Hold the bytes; Set closes this connection when the
					// block lifts, so they are never delivered.
					select {
					case <-p.done:
						return
					case <-time.After(20 * time.Millisecond):
					}
					d, blocked = p.link.draw(from, to)
				}
				c := chunk{b: append([]byte(nil), buf[:n]...), due: time.Now().Add(d)}
				select {
				case ch <- c:
				case <-p.done:
					return
				}
			}
			if err != nil {
				if !errors.Is(err, io.EOF) {
					p.close()
				}
				return
			}
		}
	}()
	for c := range ch {
		if w := time.Until(c.due); w > 0 {
			t := time.NewTimer(w)
			select {
			case <-t.C:
			case <-p.done:
				t.Stop()
				return
			}
		}
		if _, err := dst.Write(c.b); err != nil {
			return
		}
	}
	// src said EOF: pass the half-close on.
	if tc, ok := dst.(*net.TCPConn); ok {
		_ = tc.CloseWrite()
		<-p.done
	}
}
