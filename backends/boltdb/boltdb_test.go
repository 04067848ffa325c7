package boltdb_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"go.uber.org/goleak"

	"github.com/statenode/statenode/backends"
	"github.com/statenode/statenode/backends/backendtest"
	"github.com/statenode/statenode/backends/boltdb"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func open(t *testing.T, path string) *boltdb.Backend {
	t.Helper()
	b, err := boltdb.Open(boltdb.DefaultConfig(path))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestConformance(t *testing.T) {
	backendtest.Run(t, func(t *testing.T) backends.Backend {
		cfg := boltdb.DefaultConfig(filepath.Join(t.TempDir(), "bulk.db"))
		cfg.NoSync = true // durability is tested below
		b, err := boltdb.Open(cfg)
		if err != nil {
			t.Fatal(err)
		}
		return b
	})
}

// TestReopen checks that values, versions and fences survive a restart.
func TestReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "bulk.db")
	b := open(t, path)
	fence := &backends.Fence{Lock: "l", Token: 9}
	v, err := b.Put(ctx, "k", []byte("v"), backends.WriteOptions{Fence: fence})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b = open(t, path)
	defer b.Close()
	got, err := b.Get(ctx, "k")
	if err != nil || string(got.Value) != "v" || got.Version != v {
		t.Fatalf("after reopen: %+v, %v", got, err)
	}
	_, err = b.Put(ctx, "k", []byte("old"), backends.WriteOptions{Fence: &backends.Fence{Lock: "l", Token: 8}})
	if !errors.Is(err, backends.ErrFenced) {
		t.Fatalf("fence forgotten after reopen: %v", err)
	}
}

func TestOpenErrors(t *testing.T) {
	if _, err := boltdb.Open(boltdb.Config{}); err == nil {
		t.Fatal("empty path accepted")
	}
	if _, err := boltdb.Open(boltdb.DefaultConfig(filepath.Join(t.TempDir(), "no", "such", "dir", "x.db"))); err == nil {
		t.Fatal("missing directory accepted")
	}
}
