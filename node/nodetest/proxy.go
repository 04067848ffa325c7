package nodetest

import (
	"io"
	"net"
	"sync"
)

// linkProxy forwards one directed link (node i dialing node j). When
// blocked it closes every connection it carries and refuses new ones, so
// the link behaves like a cut cable.
type linkProxy struct {
	ln     net.Listener
	mu     sync.Mutex
	target string
	block  bool
	conns  map[net.Conn]struct{}
	wg     sync.WaitGroup
	closed bool
}

func newLinkProxy(target string) (*linkProxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &linkProxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.serve()
	return p, nil
}

func (p *linkProxy) addr() string { return p.ln.Addr().String() }

func (p *linkProxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.block || p.closed {
			p.mu.Unlock()
			c.Close()
			continue
		}
		target := p.target
		p.conns[c] = struct{}{}
		p.wg.Add(1)
		p.mu.Unlock()
		go p.pipe(c, target)
	}
}

func (p *linkProxy) pipe(in net.Conn, target string) {
	defer p.wg.Done()
	out, err := net.Dial("tcp", target)
	if err != nil {
		p.drop(in)
		return
	}
	p.mu.Lock()
	if p.block || p.closed {
		p.mu.Unlock()
		out.Close()
		p.drop(in)
		return
	}
	p.conns[out] = struct{}{}
	p.mu.Unlock()
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(out, in); done <- struct{}{} }()
	go func() { _, _ = io.Copy(in, out); done <- struct{}{} }()
	<-done
	p.drop(in)
	p.drop(out)
	<-done
}

func (p *linkProxy) drop(c net.Conn) {
	c.Close()
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
}

// setBlocked cuts (true) or restores (false) the link.
func (p *linkProxy) setBlocked(b bool) {
	p.mu.Lock()
	p.block = b
	var cut []net.Conn
	if b {
		for c := range p.conns {
			cut = append(cut, c)
		}
	}
	p.mu.Unlock()
	for _, c := range cut {
		c.Close()
	}
}

func (p *linkProxy) close() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.ln.Close()
	p.setBlocked(true)
	p.wg.Wait()
}
