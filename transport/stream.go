package transport

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// Errors returned by the transport.
var (
	// ErrNotAdvertisable: the bound address is a wildcard and no advertise
	// address was given, so peers would not know where to dial.
	ErrNotAdvertisable = errors.New("transport: bound address is not advertisable; set an advertise address")
)

// StreamLayer is a raft.StreamLayer over TCP, optionally wrapped in TLS.
// Accept and Dial may be called from any goroutine (raft's transport does).
type StreamLayer struct {
	ln        net.Listener
	advertise net.Addr
	tls       *tls.Config
	dialer    net.Dialer

	mu       sync.Mutex
	accepted map[net.Conn]struct{} // inbound connections, closed by Close
	closed   bool
}

var _ raft.StreamLayer = (*StreamLayer)(nil)

// Listen binds addr. advertise ("" = the bound address) is what peers are
// told to dial. tlsConf, if non-nil, secures both directions.
func Listen(addr, advertise string, tlsConf *tls.Config) (*StreamLayer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("transport: listen %s: %w", addr, err)
	}
	adv, err := advertiseAddr(ln.Addr(), advertise)
	if err != nil {
		ln.Close()
		return nil, err
	}
	if tlsConf != nil {
		ln = tls.NewListener(ln, tlsConf)
	}
	return &StreamLayer{ln: ln, advertise: adv, tls: tlsConf, accepted: map[net.Conn]struct{}{}}, nil
}

func advertiseAddr(bound net.Addr, advertise string) (net.Addr, error) {
	if advertise != "" {
		a, err := net.ResolveTCPAddr("tcp", advertise)
		if err != nil {
			return nil, fmt.Errorf("transport: advertise address %q: %w", advertise, err)
		}
		if a.IP == nil || a.IP.IsUnspecified() {
			return nil, ErrNotAdvertisable
		}
		return a, nil
	}
	tcp, ok := bound.(*net.TCPAddr)
	if !ok || tcp.IP == nil || tcp.IP.IsUnspecified() {
		return nil, ErrNotAdvertisable
	}
	return tcp, nil
}

// Accept waits for the next inbound connection.
func (s *StreamLayer) Accept() (net.Conn, error) {
	c, err := s.ln.Accept()
	if err != nil {
		return nil, err
	}
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		c.Close()
		return nil, net.ErrClosed
	}
	tc := &trackedConn{Conn: c, s: s}
	s.accepted[tc] = struct{}{}
	return tc, nil
}

// Close stops accepting connections and closes the inbound ones, so that
// no request from a peer is answered once the transport is closed (raft's
// transport does not close them itself).
func (s *StreamLayer) Close() error {
	s.mu.Lock()
	s.closed = true
	conns := make([]net.Conn, 0, len(s.accepted))
	for c := range s.accepted {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	err := s.ln.Close()
	for _, c := range conns {
		c.Close()
	}
	return err
}

// trackedConn removes itself from its stream layer when closed.
type trackedConn struct {
	net.Conn
	s    *StreamLayer
	once sync.Once
}

func (c *trackedConn) Close() error {
	c.once.Do(func() {
		c.s.mu.Lock()
		delete(c.s.accepted, c)
		c.s.mu.Unlock()
	})
	return c.Conn.Close()
}

// Addr is the advertised address.
func (s *StreamLayer) Addr() net.Addr { return s.advertise }

// Dial opens a connection to a peer.
func (s *StreamLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	d := s.dialer
	d.Timeout = timeout
	if s.tls != nil {
		td := tls.Dialer{NetDialer: &d, Config: s.tls}
		return td.Dial("tcp", string(address))
	}
	return d.Dial("tcp", string(address))
}

// RaftConfig configures NewRaftTransport.
type RaftConfig struct {
	// MaxPool is how many idle connections are kept per peer. Default 3.
	MaxPool int
	// Timeout bounds each RPC's I/O (InstallSnapshot scales it by size).
	// Default 10s.
	Timeout time.Duration
	// ServerAddressProvider, if set, chooses the address dialed for a peer ID.
	ServerAddressProvider raft.ServerAddressProvider
	// Logger receives transport logs; nil discards them.
	Logger *slog.Logger
}

// RaftTransport is raft's NetworkTransport with pipelined replication
// turned off.
//
// hashicorp/raft v1.8's pipeline can deadlock: when a follower answers an
// AppendEntries with Success=false, raft's pipeline decoder returns and
// nothing reads the pipeline's responses any more; if the sender has one
// more request to send first, it blocks on the pipeline's in-flight queue
// while the transport's decoder blocks handing over the answer. The
// pipeline is then never closed: that follower receives heartbeats (so it
// never calls an election) but no log entry again, and Raft's shutdown
// waits forever for the stuck replication goroutine. Without a pipeline,
// raft replicates with one AppendEntries RPC in flight per follower, each
// carrying every entry not yet sent (group commit keeps them few and large),
// which on a LAN costs little: the follower applies appends one at a time
// either way.
type RaftTransport struct {
	*raft.NetworkTransport
}

// AppendEntriesPipeline always reports that pipelining is not supported,
// which makes raft use plain AppendEntries RPCs.
func (t *RaftTransport) AppendEntriesPipeline(raft.ServerID, raft.ServerAddress) (raft.AppendPipeline, error) {
	return nil, raft.ErrPipelineReplicationNotSupported
}

// NewRaftTransport builds raft's NetworkTransport over the stream layer.
func NewRaftTransport(s *StreamLayer, cfg RaftConfig) *RaftTransport {
	if cfg.MaxPool <= 0 {
		cfg.MaxPool = 3
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	return &RaftTransport{raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		ServerAddressProvider: cfg.ServerAddressProvider,
		Logger:                HCLogger(cfg.Logger, "transport"),
		Stream:                s,
		MaxPool:               cfg.MaxPool,
		Timeout:               cfg.Timeout,
	})}
}

// HCLogger adapts a *slog.Logger to hclog for hashicorp libraries; nil
// discards.
func HCLogger(l *slog.Logger, name string) hclog.Logger {
	if l == nil {
		return hclog.NewNullLogger()
	}
	return hclog.New(&hclog.LoggerOptions{
		Name:            name,
		Level:           hclog.Info,
		Output:          slogWriter{l: l.With("component", name)},
		DisableTime:     true,
		IncludeLocation: false,
	})
}

// slogWriter forwards hclog's formatted lines ("[WARN]  raft: msg: k=v")
// to slog at the level hclog gave them.
type slogWriter struct{ l *slog.Logger }

var hclogLevels = []struct {
	tag   string
	level slog.Level
}{
	{"[ERROR]", slog.LevelError},
	{"[WARN]", slog.LevelWarn},
	{"[INFO]", slog.LevelInfo},
	{"[DEBUG]", slog.LevelDebug},
	{"[TRACE]", slog.LevelDebug - 4},
}

func (w slogWriter) Write(p []byte) (int, error) {
	line := strings.TrimRight(string(p), "\r\n")
	level := slog.LevelInfo
	for _, l := range hclogLevels {
		if rest, ok := strings.CutPrefix(line, l.tag); ok {
			level, line = l.level, strings.TrimSpace(rest)
			break
		}
	}
	w.l.Log(context.Background(), level, line)
	return len(p), nil
}

var _ io.Writer = slogWriter{}
