package crdt_test

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/statenode/statenode/crdt"
)

// seeds returns a valid encoding of a non-trivial state of every kind.
func seeds(t testing.TB) [][]byte {
	clk := crdt.NewClock("a", func() time.Time { return time.Unix(1, 0) })
	g := crdt.NewGCounter()
	g.Inc("a", 3)
	g.Inc("b", 1)
	pn := crdt.NewPNCounter()
	pn.Inc("a", 5)
	pn.Inc("b", -2)
	r := crdt.NewLWWRegister()
	r.Set(clk, []byte("v"))
	mv := crdt.NewMVRegister()
	mv.Set("a", []byte("x"))
	mv2 := crdt.NewMVRegister()
	mv2.Set("b", []byte("y"))
	mv.Merge(mv2)
	s := crdt.NewORSet()
	s.Add("a", "e1")
	s.Add("a", "e2")
	s.Remove("e1")
	s.Merge(crdt.NewORSet().Add("b", "e3"))
	far := crdt.NewORSet()
	far.Merge(&crdt.ORSet{})
	m := crdt.NewLWWMap()
	m.Put(clk, "k", []byte("v"))
	m.Delete(clk, "gone")
	bc := crdt.NewBoundedCounter()
	bc.Inc("a", 10)
	if _, err := bc.Transfer("a", "b", 4); err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for _, st := range []crdt.State{g, pn, r, mv, s, m, bc, crdt.NewORSet(), crdt.NewLWWRegister()} {
		b, err := st.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

// FuzzDecode: any input either fails with a package error or decodes to a
// state whose canonical encoding is the input itself; never a panic.
func FuzzDecode(f *testing.F) {
	for _, s := range seeds(f) {
		f.Add(s)
	}
	f.Add([]byte{})
	f.Add([]byte{1, 5, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := crdt.Decode(b)
		if err != nil {
			if !errors.Is(err, crdt.ErrMalformed) && !errors.Is(err, crdt.ErrUnsupportedVersion) && !errors.Is(err, crdt.ErrUnknownKind) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		got, err := s.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, b) {
			t.Fatalf("re-encoding differs:\n in %x\nout %x", b, got)
		}
		// A decoded state merges with itself without change.
		if changed, err := s.MergeState(s.CloneState()); err != nil || changed {
			t.Fatalf("self-merge changed=%v err=%v", changed, err)
		}
	})
}

// fuzzKind fuzzes one type's UnmarshalBinary directly.
func fuzzKind(f *testing.F, k crdt.Kind) {
	for _, s := range seeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s, _ := crdt.New(k)
		if err := s.(interface{ UnmarshalBinary([]byte) error }).UnmarshalBinary(b); err != nil {
			return
		}
		if got, _ := s.MarshalBinary(); !bytes.Equal(got, b) {
			t.Fatalf("re-encoding differs:\n in %x\nout %x", b, got)
		}
	})
}

func FuzzGCounter(f *testing.F)       { fuzzKind(f, crdt.KindGCounter) }
func FuzzPNCounter(f *testing.F)      { fuzzKind(f, crdt.KindPNCounter) }
func FuzzLWWRegister(f *testing.F)    { fuzzKind(f, crdt.KindLWWRegister) }
func FuzzMVRegister(f *testing.F)     { fuzzKind(f, crdt.KindMVRegister) }
func FuzzORSet(f *testing.F)          { fuzzKind(f, crdt.KindORSet) }
func FuzzLWWMap(f *testing.F)         { fuzzKind(f, crdt.KindLWWMap) }
func FuzzBoundedCounter(f *testing.F) { fuzzKind(f, crdt.KindBoundedCounter) }

func TestDecodeErrors(t *testing.T) {
	valid := seeds(t)
	tests := []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, crdt.ErrMalformed},
		{"header only version", []byte{1}, crdt.ErrMalformed},
		{"future version", []byte{2, 1, 0}, crdt.ErrUnsupportedVersion},
		{"unknown kind", []byte{1, 99, 0}, crdt.ErrUnknownKind},
		{"truncated gcounter", valid[0][:len(valid[0])-1], crdt.ErrMalformed},
		{"trailing byte", append(append([]byte{}, valid[0]...), 0), crdt.ErrMalformed},
		{"non-canonical varint", []byte{1, 1, 0x80, 0x00}, crdt.ErrMalformed},
		{"huge count", []byte{1, 1, 0xff, 0xff, 0xff, 0xff, 0x0f}, crdt.ErrMalformed},
		{"zero count entry", []byte{1, 1, 1, 1, 'a', 0}, crdt.ErrMalformed},
		{"unsorted entries", []byte{1, 1, 2, 1, 'b', 1, 1, 'a', 1}, crdt.ErrMalformed},
		{"orset dot outside context", []byte{1, 5, 1, 1, 'e', 1, 1, 'a', 1, 0, 0}, crdt.ErrMalformed},
		{"register zero timestamp", []byte{1, 3, 1, 0, 0, 0, 0}, crdt.ErrMalformed},
		{"register bad flag", []byte{1, 3, 7}, crdt.ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := crdt.Decode(tt.in); !errors.Is(err, tt.want) {
				t.Fatalf("Decode(%x) = %v, want %v", tt.in, err, tt.want)
			}
		})
	}
	for _, b := range valid {
		if _, err := crdt.Decode(b); err != nil {
			t.Fatalf("Decode(valid %x): %v", b, err)
		}
	}
	// Decoding into the wrong type is a kind mismatch.
	if err := crdt.NewGCounter().UnmarshalBinary(valid[1]); !errors.Is(err, crdt.ErrKindMismatch) {
		t.Fatalf("got %v, want ErrKindMismatch", err)
	}
}

func TestEncodingIsCompact(t *testing.T) {
	// One increment from one replica: header, count, id, value.
	g := crdt.NewGCounter()
	d := g.Inc("node-1", 1)
	b, _ := d.MarshalBinary()
	if want := []byte{1, 1, 1, 6, 'n', 'o', 'd', 'e', '-', '1', 1}; !bytes.Equal(b, want) {
		t.Fatalf("gcounter delta = %x, want %x", b, want)
	}
	// An ORSet with 1000 add/remove cycles by one replica costs the same as
	// one with a single cycle: no tombstones.
	s := crdt.NewORSet()
	for range 1000 {
		s.Add("r", "x")
		s.Remove("x")
	}
	b, _ = s.MarshalBinary()
	if want := []byte{1, 5, 0, 1, 1, 'r', 0xe8, 0x07, 0}; !bytes.Equal(b, want) {
		t.Fatalf("orset after 1000 removes = %x, want %x", b, want)
	}
}
