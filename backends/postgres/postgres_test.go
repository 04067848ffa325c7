package postgres_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/goleak"

	"github.com/statenode/statenode/backends"
	"github.com/statenode/statenode/backends/backendtest"
	"github.com/statenode/statenode/backends/postgres"
)

const connString = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// uniqueSchema returns a schema name no other run uses and drops it at the
// end of the test.
func uniqueSchema(t testing.TB) string {
	var buf [6]byte
	_, _ = rand.Read(buf[:])
	s := "sn_test_" + hex.EncodeToString(buf[:])
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, connString)
		if err != nil {
			return
		}
		defer conn.Close(ctx)
		_, _ = conn.Exec(ctx, `DROP SCHEMA IF EXISTS `+pgx.Identifier{s}.Sanitize()+` CASCADE`)
	})
	return s
}

func newBackend(t testing.TB, mutate ...func(*postgres.Config)) *postgres.Backend {
	cfg := postgres.DefaultConfig(connString)
	cfg.Schema = uniqueSchema(t)
	cfg.MaxConns = 8
	for _, m := range mutate {
		m(&cfg)
	}
	b, err := postgres.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestConformance(t *testing.T) {
	backendtest.Run(t, func(t *testing.T) backends.Backend { return newBackend(t) })
}

// TestConformanceCopy runs the suite with every PutMany going through COPY.
func TestConformanceCopy(t *testing.T) {
	backendtest.Run(t, func(t *testing.T) backends.Backend {
		return newBackend(t, func(c *postgres.Config) { c.CopyThreshold = 1 })
	})
}

// TestMigrateTwice checks that a second store on the same schema (another
// node starting) finds it migrated and shares its data.
func TestMigrateTwice(t *testing.T) {
	ctx := context.Background()
	schema := uniqueSchema(t)
	open := func() *postgres.Backend {
		cfg := postgres.DefaultConfig(connString)
		cfg.Schema = schema
		b, err := postgres.New(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	b1, b2 := open(), open()
	defer b1.Close()
	defer b2.Close()
	if _, err := b1.Put(ctx, "k", []byte("v"), backends.WriteOptions{Fence: &backends.Fence{Lock: "l", Token: 3}}); err != nil {
		t.Fatal(err)
	}
	if v, err := b2.Get(ctx, "k"); err != nil || string(v.Value) != "v" {
		t.Fatalf("second store: %+v %v", v, err)
	}
	if _, err := b2.Put(ctx, "k", []byte("x"), backends.WriteOptions{Fence: &backends.Fence{Lock: "l", Token: 2}}); !errors.Is(err, backends.ErrFenced) {
		t.Fatalf("fence not shared: %v", err)
	}
}

// TestCopyLoad loads a large batch through COPY and checks it, with a
// duplicate key whose last value must win.
func TestCopyLoad(t *testing.T) {
	ctx := context.Background()
	b := newBackend(t, func(c *postgres.Config) { c.CopyThreshold = 100 })
	defer b.Close()
	items := make([]backends.Item, 2000)
	for i := range items {
		items[i] = backends.Item{Key: fmt.Sprintf("load/%05d", i), Value: fmt.Appendf(nil, "v%d", i)}
	}
	items = append(items, backends.Item{Key: "load/00007", Value: []byte("last")})
	vers, err := b.PutMany(ctx, items, backends.WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(vers) != len(items) || vers[0] != 1 {
		t.Fatalf("versions %v...", vers[:3])
	}
	st, err := b.Stats(ctx)
	if err != nil || st.Keys != 2000 {
		t.Fatalf("stats %+v %v", st, err)
	}
	if v, err := b.Get(ctx, "load/00007"); err != nil || string(v.Value) != "last" {
		t.Fatalf("duplicate key: %+v %v", v, err)
	}
}

func TestSweep(t *testing.T) {
	ctx := context.Background()
	b := newBackend(t)
	defer b.Close()
	if _, err := b.Put(ctx, "gone", []byte("x"), backends.WriteOptions{TTL: time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Put(ctx, "kept", []byte("x"), backends.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	var total int64
	for total == 0 && time.Now().Before(deadline) {
		n, err := b.Sweep(ctx)
		if err != nil {
			t.Fatal(err)
		}
		total += n
	}
	if total != 1 {
		t.Fatalf("swept %d rows, want 1", total)
	}
}

func TestDown(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cfg := postgres.DefaultConfig("postgres://postgres@127.0.0.1:1/test?sslmode=disable&connect_timeout=1")
	_, err := postgres.New(ctx, cfg)
	if !errors.Is(err, backends.ErrUnavailable) {
		t.Fatalf("New on a down server: %v", err)
	}
	if _, err := postgres.New(ctx, postgres.Config{}); !errors.Is(err, postgres.ErrConfig) {
		t.Fatalf("empty config: %v", err)
	}
}
