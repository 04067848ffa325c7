package compressed_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/statenode/statenode/backends"
	"github.com/statenode/statenode/backends/backendtest"
	"github.com/statenode/statenode/backends/compressed"
	"github.com/statenode/statenode/backends/memory"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func wrap(t testing.TB, inner backends.Backend, alg compressed.Algorithm) *compressed.Backend {
	cfg := compressed.DefaultConfig()
	cfg.Algorithm = alg
	cfg.Threshold = 16
	b, err := compressed.New(inner, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestConformanceZstd(t *testing.T) {
	backendtest.Run(t, func(t *testing.T) backends.Backend { return wrap(t, memory.New(), compressed.Zstd) })
}

func TestConformanceSnappy(t *testing.T) {
	backendtest.Run(t, func(t *testing.T) backends.Backend { return wrap(t, memory.New(), compressed.Snappy) })
}

// TestMixed writes with each algorithm through one inner store and reads
// every value back through the others.
func TestMixed(t *testing.T) {
	ctx := context.Background()
	inner := memory.New()
	z, s, n := wrap(t, inner, compressed.Zstd), wrap(t, inner, compressed.Snappy), wrap(t, inner, compressed.None)
	defer z.Close()
	text := []byte(strings.Repeat("the quick brown fox jumps over the lazy dog. ", 50))
	for _, w := range []*compressed.Backend{z, s, n} {
		if _, err := w.Put(ctx, "k", text, backends.WriteOptions{}); err != nil {
			t.Fatal(err)
		}
		raw, _ := inner.Get(ctx, "k")
		for _, r := range []*compressed.Backend{z, s, n} {
			got, err := r.Get(ctx, "k")
			if err != nil || !bytes.Equal(got.Value, text) {
				t.Fatalf("read back %d-byte stored form: %v", len(raw.Value), err)
			}
		}
	}
	raw, _ := inner.Get(ctx, "k")
	if raw.Value[0] != byte(compressed.None) {
		t.Fatalf("None wrote header %#x", raw.Value[0])
	}
	if _, err := z.Put(ctx, "k", text, backends.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	raw, _ = inner.Get(ctx, "k")
	if raw.Value[0] != byte(compressed.Zstd) || len(raw.Value) > len(text)/4 {
		t.Fatalf("zstd stored %d bytes for %d of text", len(raw.Value), len(text))
	}
}

// TestIncompressible checks that a value that does not shrink is stored
// raw, one byte longer.
func TestIncompressible(t *testing.T) {
	b := wrap(t, memory.New(), compressed.Zstd)
	v := []byte("0123456789abcdefghij") // too short to shrink
	if got := b.Encode(v); len(got) != len(v)+1 || got[0] != byte(compressed.None) {
		t.Fatalf("Encode = %x", got)
	}
}

func TestCorrupt(t *testing.T) {
	ctx := context.Background()
	inner := memory.New()
	b := wrap(t, inner, compressed.Zstd)
	defer b.Close()
	for _, stored := range [][]byte{{}, {9, 1, 2}, {byte(compressed.Zstd), 1, 2, 3}, {byte(compressed.Snappy), 0xff, 0xff, 0xff, 0xff, 0x0f}} {
		if _, err := inner.Put(ctx, "bad", stored, backends.WriteOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := b.Get(ctx, "bad"); !errors.Is(err, compressed.ErrCorrupt) {
			t.Fatalf("stored %x: %v", stored, err)
		}
	}
}

func FuzzDecode(f *testing.F) {
	b := wrap(f, memory.New(), compressed.Zstd)
	f.Cleanup(func() { b.Close() })
	f.Add([]byte{0})
	f.Add(b.Encode(bytes.Repeat([]byte("abc"), 100)))
	f.Add(append([]byte{byte(compressed.Snappy)}, []byte{0x80, 0x80, 0x80, 0x80, 0x01}...))
	f.Fuzz(func(t *testing.T, stored []byte) {
		v, err := b.Decode(stored)
		if err != nil {
			if !errors.Is(err, compressed.ErrCorrupt) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		back, err := b.Decode(b.Encode(v))
		if err != nil || !bytes.Equal(back, v) {
			t.Fatalf("round trip: %v", err)
		}
	})
}
