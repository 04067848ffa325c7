package gossip

import (
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/prometheus/client_golang/prometheus"
)

// Profiles select memberlist's timing defaults.
const (
	// ProfileLAN uses memberlist.DefaultLANConfig: 200ms gossip, 1s probes,
	// 30s push/pull. The default.
	ProfileLAN = "lan"
	// ProfileLocal is for tests and single-host clusters on loopback:
	// memberlist.DefaultLocalConfig (100ms gossip, 200ms probe timeout)
	// with 2s push/pull and fast reconnects.
	ProfileLocal = "local"
)

// MaxNameLen is the longest object name accepted, in bytes.
const MaxNameLen = 255

// Config configures a Gossip. Start from DefaultConfig (or
// DefaultLocalConfig in tests); Validate checks how fields relate.
type Config struct {
	// NodeID is this node's memberlist name; unique in the cluster and
	// stable across restarts. Required.
	NodeID string

	// BindAddr is the host:port memberlist listens on, UDP and TCP on the
	// same port ("127.0.0.1:0" picks a free port). Default "0.0.0.0:7946".
	BindAddr string
	// AdvertiseAddr is the host:port other members reach this node at;
	// default: the bound address (BindAddr must then name a host, or
	// memberlist picks a private IP).
	AdvertiseAddr string
	// Join lists host:port gossip addresses of existing members. Start
	// tries them once; while the node is alone, it retries them every
	// ReconnectInterval (Consul's retry-join).
	Join []string

	// DataDir holds crdt.db, the durable CRDT state. "" keeps state in
	// memory only: updates are then not durable, and a restart begins a
	// new replica identity.
	DataDir string

	// Profile is ProfileLAN (default) or ProfileLocal.
	Profile string

	// ReconnectInterval is how often the node tries to re-join one member
	// it believes dead (and its Join seeds while alone), so a healed
	// partition merges even after memberlist stopped gossiping to the
	// other side. Default 10s (LAN), 500ms (local).
	ReconnectInterval time.Duration
	// ReconnectTimeout is how long after a member failed the node stops
	// trying to reconnect to it. Default 72h, as Consul.
	ReconnectTimeout time.Duration

	// FlushInterval is how often CRDT state merged from other nodes is
	// written to DataDir. Local updates are written before they return;
	// merged state can be fetched again from peers, so it is batched.
	// Default 100ms.
	FlushInterval time.Duration

	// MaxStateBytes bounds a full-state (push/pull) message accepted from
	// a peer; larger ones are dropped and counted. Default 32 MiB.
	MaxStateBytes int

	// Meta is published to other members with this node's membership
	// (memberlist limits the encoding to 512 bytes).
	Meta map[string]string

	// Logger receives logs, memberlist's included; nil = slog.Default().
	Logger *slog.Logger
	// Registry registers the package's metrics; nil = not registered.
	Registry prometheus.Registerer

	// Now is the physical clock read by the hybrid logical clock that
	// stamps LWW writes; nil = time.Now.
	Now func() time.Time

	// WrapTransport, if set, wraps the UDP/TCP transport memberlist uses;
	// tests inject partitions and delay with it.
	WrapTransport func(memberlist.NodeAwareTransport) memberlist.NodeAwareTransport
	// Tune, if set, is called on the memberlist configuration last, to
	// override any of its timing fields.
	Tune func(*memberlist.Config)
}

// DefaultConfig returns the LAN profile; set NodeID and DataDir.
func DefaultConfig() Config {
	return Config{
		BindAddr:          "0.0.0.0:7946",
		Profile:           ProfileLAN,
		ReconnectInterval: 10 * time.Second,
		ReconnectTimeout:  72 * time.Hour,
		FlushInterval:     100 * time.Millisecond,
		MaxStateBytes:     32 << 20,
	}
}

// DefaultLocalConfig returns the local profile bound to a free loopback
// port, for tests.
func DefaultLocalConfig() Config {
	c := DefaultConfig()
	c.BindAddr = "127.0.0.1:0"
	c.Profile = ProfileLocal
	c.ReconnectInterval = 500 * time.Millisecond
	return c
}

// Validate reports the first problem with c, wrapped in ErrInvalidConfig.
func (c *Config) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, args...)...)
	}
	if c.NodeID == "" {
		return bad("NodeID is required")
	}
	if len(c.NodeID) > MaxNameLen {
		return bad("NodeID longer than %d bytes", MaxNameLen)
	}
	if _, _, err := splitHostPort(c.BindAddr); err != nil {
		return bad("BindAddr %q: %v", c.BindAddr, err)
	}
	if c.AdvertiseAddr != "" {
		if _, _, err := splitHostPort(c.AdvertiseAddr); err != nil {
			return bad("AdvertiseAddr %q: %v", c.AdvertiseAddr, err)
		}
	}
	if c.Profile != ProfileLAN && c.Profile != ProfileLocal {
		return bad("Profile %q is neither %q nor %q", c.Profile, ProfileLAN, ProfileLocal)
	}
	if c.ReconnectInterval <= 0 || c.ReconnectTimeout <= 0 || c.FlushInterval <= 0 {
		return bad("ReconnectInterval, ReconnectTimeout and FlushInterval must be positive")
	}
	if c.MaxStateBytes <= 0 {
		return bad("MaxStateBytes must be positive")
	}
	if n := len(encodeMeta(c.Meta)); n > memberlist.MetaMaxSize {
		return bad("Meta encodes to %d bytes, limit %d", n, memberlist.MetaMaxSize)
	}
	return nil
}

func splitHostPort(addr string) (string, int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("bad port %q", p)
	}
	return host, port, nil
}

// memberlistConfig derives memberlist's configuration from c.
func (c *Config) memberlistConfig() *memberlist.Config {
	var mc *memberlist.Config
	if c.Profile == ProfileLocal {
		mc = memberlist.DefaultLocalConfig()
		mc.PushPullInterval = 2 * time.Second
		mc.GossipToTheDeadTime = 5 * time.Second
		mc.DeadNodeReclaimTime = 100 * time.Millisecond
	} else {
		mc = memberlist.DefaultLANConfig()
		mc.DeadNodeReclaimTime = 30 * time.Second
	}
	mc.Name = c.NodeID
	return mc
}
