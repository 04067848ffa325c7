package gossip

import (
	"bytes"
	"compress/lzw"
	"context"
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/go-msgpack/v2/codec"
	"github.com/hashicorp/memberlist"
)

// TestSuspectBeforeDead: a member whose traffic stops is reported suspect
// before dead; one whose traffic resumes before the suspicion timeout is
// reported alive again, never dead. Real memberlist on 127.0.0.1; the
// fault transport drops every packet and stream between n2 and the rest.
func TestSuspectBeforeDead(t *testing.T) {
	// SuspicionMult 8 makes the suspicion timeout 8s on every node (three
	// nodes are too few for confirmations to shorten it), leaving time to
	// heal before anyone declares n2 dead.
	c := makeCluster(t, 3, func(_ int, cfg *Config) {
		cfg.Tune = func(mc *memberlist.Config) { mc.SuspicionMult = 8 }
	})
	observer, target := c.nodes[0], c.nodes[2]
	c.net.setGroups([]string{c.nodes[0].LocalAddr(), c.nodes[1].LocalAddr()}, []string{target.LocalAddr()})

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events := observer.Watch(ctx)
	var states []MemberState // n2's states as the observer reports them
	// next waits for n2's next change of state and returns it.
	next := func(timeout time.Duration) MemberState {
		t.Helper()
		deadline := time.After(timeout)
		for {
			select {
			case ev, ok := <-events:
				if !ok {
					t.Fatal("watch closed")
				}
				if ev.Member.ID != "n2" || (len(states) > 0 && ev.Member.State == states[len(states)-1]) {
					continue
				}
				states = append(states, ev.Member.State)
				return ev.Member.State
			case <-deadline:
				t.Fatalf("no change of n2 after %v; states so far %v", timeout, states)
			}
		}
	}
	memberState := func(g *Gossip, id string) MemberState {
		for _, m := range g.Members() {
			if m.ID == id {
				return m.State
			}
		}
		return StateNone
	}
	if s := next(time.Second); s != StateAlive {
		t.Fatalf("snapshot: n2 %v", s)
	}

	// Cut n2 off, then heal while it is only suspected.
	c.net.partition(true)
	if s := next(5 * time.Second); s != StateSuspect {
		t.Fatalf("after the cut: n2 %v, want suspect first (states %v)", s, states)
	}
	if s := memberState(observer, "n2"); s != StateSuspect {
		t.Fatalf("Members reports n2 %v while watch reported suspect", s)
	}
	c.net.partition(false)
	if s := next(6 * time.Second); s != StateAlive {
		t.Fatalf("after healing: n2 %v, want alive (states %v)", s, states)
	}

	// Cut it off for good: suspect, then dead after the timeout.
	c.net.partition(true)
	if s := next(5 * time.Second); s != StateSuspect {
		t.Fatalf("second cut: n2 %v, want suspect (states %v)", s, states)
	}
	suspected := time.Now()
	if s := next(20 * time.Second); s != StateDead {
		t.Fatalf("n2 %v, want dead (states %v)", s, states)
	}
	if waited := time.Since(suspected); waited < 4*time.Second {
		t.Fatalf("dead %v after suspect; the suspicion timeout is 8s", waited)
	}
	want := []MemberState{StateAlive, StateSuspect, StateAlive, StateSuspect, StateDead}
	if !slices.Equal(states, want) {
		t.Fatalf("n2 went through %v, want %v", states, want)
	}
	c.net.partition(false)
}

// TestObserverIgnoresStaleSuspicion: the incarnation rules that keep a
// late packet from moving a member backwards.
func TestObserverIgnoresStaleSuspicion(t *testing.T) {
	c := makeCluster(t, 2)
	g := c.nodes[0]
	state := func() MemberState {
		for _, m := range g.Members() {
			if m.ID == "n1" {
				return m.State
			}
		}
		return StateNone
	}
	g.sawAlive("n1", 5)
	g.sawSuspect("n1", 4) // older than the alive incarnation: stale
	if s := state(); s != StateAlive {
		t.Fatalf("stale suspicion applied: %v", s)
	}
	g.sawSuspect("n1", 5)
	if s := state(); s != StateSuspect {
		t.Fatalf("suspicion at the current incarnation: %v", s)
	}
	g.sawAlive("n1", 5) // same incarnation does not refute
	if s := state(); s != StateSuspect {
		t.Fatalf("alive at the suspected incarnation cleared it: %v", s)
	}
	g.sawAlive("n1", 6)
	if s := state(); s != StateAlive {
		t.Fatalf("refutation not applied: %v", s)
	}
	g.sawSuspect("nobody", 9) // unknown members are not invented
	for _, m := range g.Members() {
		if m.ID == "nobody" {
			t.Fatal("observer invented a member")
		}
	}
	// A suspicion inside memberlist's framing: CRC header, compression,
	// compound message.
	var sus bytes.Buffer
	sus.WriteByte(mlSuspect)
	if err := codec.NewEncoder(&sus, &codec.MsgpackHandle{}).Encode(&mlSuspectMsg{Incarnation: 6, Node: "n1", From: "n0"}); err != nil {
		t.Fatal(err)
	}
	compound := []byte{mlCompound, 2, 0, 1, byte(sus.Len() >> 8), byte(sus.Len()), 0}
	compound = append(compound, sus.Bytes()...)
	var lz bytes.Buffer
	w := lzw.NewWriter(&lz, lzw.LSB, 8)
	_, _ = w.Write(compound)
	_ = w.Close()
	var packet bytes.Buffer
	packet.Write([]byte{mlHasCRC, 0, 0, 0, 0, mlCompress})
	if err := codec.NewEncoder(&packet, &codec.MsgpackHandle{}).Encode(&mlCompressMsg{Algo: 0, Buf: lz.Bytes()}); err != nil {
		t.Fatal(err)
	}
	g.inspectPacket(packet.Bytes(), 0)
	if s := state(); s != StateSuspect {
		t.Fatalf("framed suspicion at incarnation 6: %v", s)
	}
	// Truncated or garbage packets change nothing and do not panic.
	g.sawAlive("n1", 7)
	for i := range packet.Len() {
		g.inspectPacket(packet.Bytes()[:i], 0)
	}
	g.inspectPacket([]byte{mlCompound, 255, 1}, 0)
	if s := state(); s != StateAlive {
		t.Fatalf("garbage changed the state: %v", s)
	}
}
