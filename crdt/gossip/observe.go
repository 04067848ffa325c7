package gossip

// Suspicion, as this node's memberlist holds it.
//
// memberlist v0.7 tells its EventDelegate about joins, updates and deaths
// but not about suspicion, and Memberlist.Members returns pointers into
// its own node table whose state it changes under a lock the caller
// cannot take (and the State field of the returned Node is never set).
// What memberlist does expose is its transport. Every change of belief
// it accepts about another member, it gossips on: a member it starts to
// suspect (after its own failed probe, or on a peer's suspect message
// that it accepts) is re-broadcast as a suspect message, and an alive
// message that refutes a suspicion (a higher incarnation) is
// re-broadcast too. Both leave through Transport.WriteToAddress, so a
// thin wrapper around the transport that decodes the node's own outgoing
// packets sees each change shortly after memberlist makes it (within a
// gossip or probe interval), without reading memberlist's state at all.
//
// Deaths still come from EventDelegate.NotifyLeave, which memberlist
// calls under its lock, so "dead" and "left" are exact; suspicion is
// reported from the messages, guarded by incarnation numbers so that a
// late packet never moves a member backwards: a suspicion counts only
// against an incarnation at least as new as the last one seen, and only
// for a member currently alive; an alive message clears it only with a
// newer incarnation (SWIM's precedence rules, which memberlist follows).
//
// The packet formats are memberlist's wire protocol (message types,
// compound and compressed framing, CRC header), which is versioned and
// stable; msgpack decoding uses memberlist's own codec. The observer is
// off when memberlist encrypts packets (Config.Tune set a keyring): the
// node then reports members alive until they are declared dead.

import (
	"bytes"
	"compress/lzw"
	"encoding/binary"
	"io"
	"time"

	"github.com/hashicorp/go-msgpack/v2/codec"
	"github.com/hashicorp/memberlist"
)

// memberlist message types (memberlist net.go; stable wire values).
const (
	mlSuspect  = 3
	mlAlive    = 4
	mlCompound = 7
	mlCompress = 9
	mlHasCRC   = 12
)

// maxObservedPacket bounds what the observer decompresses; memberlist's
// UDP packets are far smaller.
const maxObservedPacket = 64 << 10

// mlSuspectMsg and mlAliveMsg mirror memberlist's suspect and alive
// messages (fields the observer needs).
type mlSuspectMsg struct {
	Incarnation uint32
	Node        string
	From        string
}

type mlAliveMsg struct {
	Incarnation uint32
	Node        string
}

type mlCompressMsg struct {
	Algo uint8
	Buf  []byte
}

// observedTransport passes everything to the wrapped transport and shows
// each outgoing packet to the Gossip first. memberlist calls WriteTo and
// WriteToAddress from its probe, gossip and packet goroutines; observing
// never blocks.
type observedTransport struct {
	memberlist.NodeAwareTransport
	g *Gossip
}

var _ memberlist.NodeAwareTransport = (*observedTransport)(nil)

func (t *observedTransport) WriteTo(b []byte, addr string) (time.Time, error) {
	t.g.inspectPacket(b, 0)
	return t.NodeAwareTransport.WriteTo(b, addr)
}

func (t *observedTransport) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	t.g.inspectPacket(b, 0)
	return t.NodeAwareTransport.WriteToAddress(b, a)
}

// inspectPacket looks for suspect and alive messages in a packet
// memberlist is sending. Anything it cannot decode is ignored: the
// packet is the node's own, and the observer only refines states.
func (g *Gossip) inspectPacket(b []byte, depth int) {
	if len(b) == 0 || depth > 3 {
		return
	}
	switch b[0] {
	case mlHasCRC:
		if len(b) > 5 {
			g.inspectPacket(b[5:], depth+1)
		}
	case mlCompress:
		var c mlCompressMsg
		if decodeMsgpack(b[1:], &c) != nil || c.Algo != 0 {
			return
		}
		r := lzw.NewReader(bytes.NewReader(c.Buf), lzw.LSB, 8)
		plain, err := io.ReadAll(io.LimitReader(r, maxObservedPacket))
		_ = r.Close()
		if err == nil {
			g.inspectPacket(plain, depth+1)
		}
	case mlCompound:
		if len(b) < 2 {
			return
		}
		n := int(b[1])
		body := b[2:]
		if len(body) < 2*n {
			return
		}
		lens, body := body[:2*n], body[2*n:]
		for i := range n {
			l := int(binary.BigEndian.Uint16(lens[2*i:]))
			if l > len(body) {
				return
			}
			g.inspectPacket(body[:l], depth+1)
			body = body[l:]
		}
	case mlSuspect:
		var s mlSuspectMsg
		if decodeMsgpack(b[1:], &s) == nil && s.Node != g.cfg.NodeID {
			g.sawSuspect(s.Node, s.Incarnation)
		}
	case mlAlive:
		var a mlAliveMsg
		if decodeMsgpack(b[1:], &a) == nil && a.Node != g.cfg.NodeID {
			g.sawAlive(a.Node, a.Incarnation)
		}
	}
}

func decodeMsgpack(b []byte, out any) error {
	var h codec.MsgpackHandle
	return codec.NewDecoderBytes(b, &h).Decode(out)
}

// sawSuspect records that this node's memberlist suspects id at
// incarnation inc.
func (g *Gossip) sawSuspect(id string, inc uint32) {
	g.change(id, func(r *memberRec) bool {
		if r.State != StateAlive || (r.incKnown && inc < r.inc) || (r.deadKnown && inc <= r.deadInc) {
			return false
		}
		r.inc, r.incKnown = inc, true
		r.State = StateSuspect
		return true
	})
}

// sawAlive records that this node's memberlist accepted incarnation inc
// of id; a newer incarnation than the suspected one clears a suspicion.
func (g *Gossip) sawAlive(id string, inc uint32) {
	g.change(id, func(r *memberRec) bool {
		if r.incKnown && inc <= r.inc {
			return false
		}
		r.inc, r.incKnown = inc, true
		if r.State != StateSuspect {
			return false // the incarnation is recorded; no visible change
		}
		r.State = StateAlive
		return true
	})
}
