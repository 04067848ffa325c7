package gossip

import (
	"errors"
	"testing"

	"github.com/statenode/statenode/crdt"
)

// FuzzWire: the gossip decoders return ErrMalformedMessage on bad input
// and never panic.
func FuzzWire(f *testing.F) {
	g := crdt.NewGCounter()
	enc, _ := g.Inc("a", 1).MarshalBinary()
	f.Add(appendDelta(nil, 42, key{crdt.KindGCounter, "c"}, enc))
	f.Add(appendState(nil, []entry{{key{crdt.KindGCounter, "c"}, enc}}))
	f.Add(appendLeave(nil, "n1"))
	f.Add(encodeMeta(map[string]string{"role": "edge"}))
	f.Fuzz(func(t *testing.T, b []byte) {
		if _, err := decodeDelta(b); err != nil && !errors.Is(err, ErrMalformedMessage) {
			t.Fatalf("delta: untyped error %v", err)
		}
		if _, err := decodeState(b); err != nil && !errors.Is(err, ErrMalformedMessage) {
			t.Fatalf("state: untyped error %v", err)
		}
		if _, err := decodeLeave(b); err != nil && !errors.Is(err, ErrMalformedMessage) {
			t.Fatalf("leave: untyped error %v", err)
		}
		_ = decodeMeta(b)
	})
}
