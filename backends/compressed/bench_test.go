package compressed_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/statenode/statenode/backends"
	"github.com/statenode/statenode/backends/compressed"
	"github.com/statenode/statenode/backends/memory"
	"github.com/statenode/statenode/backends/postgres"
	"github.com/statenode/statenode/backends/redis"
)

// sampleText is application state as it is usually stored: JSON records
// with repeated field names and mixed values, ~8 KiB.
func sampleText() []byte {
	r := rand.New(rand.NewPCG(1, 2))
	words := strings.Fields("alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november oscar papa quebec romeo sierra tango")
	var sb strings.Builder
	sb.WriteString("[")
	for i := 0; sb.Len() < 8<<10; i++ {
		if i > 0 {
			sb.WriteString(",")
		}
		fmt.Fprintf(&sb, `{"id":%d,"name":"%s %s","email":"%s.%d@example.com","active":%t,"score":%.3f,"tags":["%s","%s"]}`,
			r.IntN(1e6), words[r.IntN(len(words))], words[r.IntN(len(words))], words[r.IntN(len(words))], r.IntN(1000),
			r.IntN(2) == 0, r.Float64()*100, words[r.IntN(len(words))], words[r.IntN(len(words))])
	}
	sb.WriteString("]")
	return []byte(sb.String())
}

// BenchmarkCompression reports the stored size ratio (stored/raw; lower is
// better) and the latency of a Put+Get round trip on the shared Redis,
// raw and through each algorithm:
//
//	go test -run ^$ -bench Compression ./backends/compressed
func BenchmarkCompression(b *testing.B) {
	text := sampleText()
	ctx := context.Background()
	for _, alg := range []struct {
		name  string
		alg   compressed.Algorithm
		level zstd.EncoderLevel
		raw   bool
	}{{"raw", 0, 0, true}, {"zstd", compressed.Zstd, zstd.SpeedDefault, false}, {"zstd-fastest", compressed.Zstd, zstd.SpeedFastest, false}, {"snappy", compressed.Snappy, 0, false}} {
		b.Run(alg.name, func(b *testing.B) {
			cfg := redis.DefaultConfig("127.0.0.1:6379")
			cfg.Prefix = "statenode-bench:" + alg.name + ":"
			inner, err := redis.New(cfg)
			if err != nil {
				b.Fatal(err)
			}
			var store backends.Backend = inner
			stored := len(text)
			if !alg.raw {
				z, err := compressed.New(inner, compressed.Config{Algorithm: alg.alg, Level: alg.level})
				if err != nil {
					b.Fatal(err)
				}
				store = z
				stored = len(z.Encode(text))
			}
			defer store.Close()
			defer inner.Client().Del(ctx, cfg.Prefix+"d:k")
			b.SetBytes(int64(len(text)))
			for b.Loop() {
				if _, err := store.Put(ctx, "k", text, backends.WriteOptions{}); err != nil {
					b.Fatal(err)
				}
				if _, err := store.Get(ctx, "k"); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(stored)/float64(len(text)), "stored/raw")
		})
	}
}

// BenchmarkCodec measures encode and decode alone, in memory.
func BenchmarkCodec(b *testing.B) {
	text := sampleText()
	for _, alg := range []compressed.Algorithm{compressed.Zstd, compressed.Snappy} {
		z := wrap(b, memory.New(), alg)
		enc := z.Encode(text)
		b.Run(fmt.Sprintf("encode/%d", alg), func(b *testing.B) {
			b.SetBytes(int64(len(text)))
			for b.Loop() {
				z.Encode(text)
			}
		})
		b.Run(fmt.Sprintf("decode/%d", alg), func(b *testing.B) {
			b.SetBytes(int64(len(text)))
			for b.Loop() {
				if _, err := z.Decode(enc); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Cleanup(func() { z.Close() })
	}
}

// BenchmarkCompressionPostgres is BenchmarkCompression on the shared
// PostgreSQL (a durable store: each Put commits a transaction):
//
//	go test -run ^$ -bench CompressionPostgres ./backends/compressed
func BenchmarkCompressionPostgres(b *testing.B) {
	text := sampleText()
	ctx := context.Background()
	for _, alg := range []struct {
		name string
		alg  compressed.Algorithm
		raw  bool
	}{{"raw", 0, true}, {"zstd", compressed.Zstd, false}, {"snappy", compressed.Snappy, false}} {
		b.Run(alg.name, func(b *testing.B) {
			cfg := postgres.DefaultConfig("postgres://postgres@127.0.0.1:5432/test?sslmode=disable")
			cfg.Schema = "statenode_bench_compressed"
			inner, err := postgres.New(ctx, cfg)
			if err != nil {
				b.Skipf("postgres: %v", err)
			}
			var store backends.Backend = inner
			stored := len(text)
			if !alg.raw {
				z, err := compressed.New(inner, compressed.Config{Algorithm: alg.alg})
				if err != nil {
					b.Fatal(err)
				}
				store = z
				stored = len(z.Encode(text))
			}
			defer store.Close()
			defer func() { _, _ = inner.Pool().Exec(ctx, `DROP SCHEMA IF EXISTS statenode_bench_compressed CASCADE`) }()
			b.SetBytes(int64(len(text)))
			for b.Loop() {
				if _, err := store.Put(ctx, "k", text, backends.WriteOptions{}); err != nil {
					b.Fatal(err)
				}
				if _, err := store.Get(ctx, "k"); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(stored)/float64(len(text)), "stored/raw")
		})
	}
}
