package compressed

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/zstd"

	"github.com/statenode/statenode/backends"
)

var _ backends.Backend = (*Backend)(nil)

// Sentinel errors of this package.
var (
	// ErrCorrupt is returned when a stored value has an unknown header or
	// does not decompress.
	ErrCorrupt = errors.New("compressed: corrupt value")
)

// Algorithm selects the compressor used for new writes. Reads understand
// every algorithm whatever is configured.
type Algorithm byte

// Header bytes. Every stored value starts with one.
const (
	// None stores the value as is (after the header byte).
	None Algorithm = 0
	// Zstd is zstandard: the better ratio, the default.
	Zstd Algorithm = 1
	// Snappy is faster with a lower ratio.
	Snappy Algorithm = 2
)

// Config configures compression.
type Config struct {
	// Algorithm compresses new values (default Zstd).
	Algorithm Algorithm
	// Threshold is the smallest value compressed, in bytes (default 128:
	// below it the frame overhead eats the gain).
	Threshold int
	// Level is the zstd level (default zstd.SpeedDefault).
	Level zstd.EncoderLevel
}

// DefaultConfig returns zstd at the default level above 128 bytes.
func DefaultConfig() Config {
	return Config{Algorithm: Zstd, Threshold: 128, Level: zstd.SpeedDefault}
}

// Backend compresses values before they reach the inner store. A value is
// stored as one header byte (None, Zstd, Snappy) followed by the payload;
// a value is kept uncompressed when compression does not make it smaller.
// Keys, versions, TTLs and fences pass through unchanged.
type Backend struct {
	backends.Backend
	cfg  Config
	enc  *zstd.Encoder
	dec  *zstd.Decoder
	once sync.Once
}

// New wraps inner. Close closes inner.
func New(inner backends.Backend, cfg Config) (*Backend, error) {
	if inner == nil {
		return nil, errors.New("compressed: nil inner backend")
	}
	if cfg.Algorithm > Snappy {
		return nil, fmt.Errorf("compressed: unknown algorithm %d", cfg.Algorithm)
	}
	if cfg.Threshold <= 0 {
		cfg.Threshold = 128
	}
	if cfg.Level == 0 {
		cfg.Level = zstd.SpeedDefault
	}
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(cfg.Level), zstd.WithEncoderConcurrency(1))
	if err != nil {
		return nil, fmt.Errorf("compressed: %w", err)
	}
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderMaxMemory(backends.MaxValueSize+backends.ValueOverhead))
	if err != nil {
		return nil, fmt.Errorf("compressed: %w", err)
	}
	return &Backend{Backend: inner, cfg: cfg, enc: enc, dec: dec}, nil
}

// Encode returns the stored form of value.
func (b *Backend) Encode(value []byte) []byte {
	if len(value) >= b.cfg.Threshold {
		var out []byte
		switch b.cfg.Algorithm {
		case Zstd:
			out = b.enc.EncodeAll(value, []byte{byte(Zstd)})
		case Snappy:
			out = append([]byte{byte(Snappy)}, snappy.Encode(nil, value)...)
		}
		if out != nil && len(out) < len(value)+1 {
			return out
		}
	}
	out := make([]byte, 0, len(value)+1)
	return append(append(out, byte(None)), value...)
}

// Decode returns the value a stored form holds, or ErrCorrupt.
func (b *Backend) Decode(stored []byte) ([]byte, error) {
	if len(stored) == 0 {
		return nil, fmt.Errorf("%w: no header", ErrCorrupt)
	}
	payload := stored[1:]
	switch Algorithm(stored[0]) {
	case None:
		return append([]byte{}, payload...), nil
	case Zstd:
		out, err := b.dec.DecodeAll(payload, []byte{})
		if err != nil {
			return nil, fmt.Errorf("%w: zstd: %v", ErrCorrupt, err)
		}
		return out, nil
	case Snappy:
		n, err := snappy.DecodedLen(payload)
		if err != nil || n > backends.MaxValueSize+backends.ValueOverhead {
			return nil, fmt.Errorf("%w: snappy length %d: %v", ErrCorrupt, n, err)
		}
		out, err := snappy.Decode(make([]byte, n), payload)
		if err != nil {
			return nil, fmt.Errorf("%w: snappy: %v", ErrCorrupt, err)
		}
		return out, nil
	}
	return nil, fmt.Errorf("%w: unknown header %#x", ErrCorrupt, stored[0])
}

func (b *Backend) decodeVV(key string, v backends.VersionedValue) (backends.VersionedValue, error) {
	if !v.Found() || v.Value == nil {
		return v, nil
	}
	val, err := b.Decode(v.Value)
	if err != nil {
		return v, fmt.Errorf("compressed: key %q: %w", key, err)
	}
	v.Value = val
	return v, nil
}

// Get implements backends.Backend.
func (b *Backend) Get(ctx context.Context, key string) (backends.VersionedValue, error) {
	v, err := b.Backend.Get(ctx, key)
	if err != nil {
		return v, err
	}
	return b.decodeVV(key, v)
}

// Put implements backends.Backend.
func (b *Backend) Put(ctx context.Context, key string, value []byte, opts backends.WriteOptions) (uint64, error) {
	if err := backends.ValidateValue(value); err != nil {
		return 0, err
	}
	return b.Backend.Put(ctx, key, b.Encode(value), opts)
}

// CompareAndSwap implements backends.Backend.
func (b *Backend) CompareAndSwap(ctx context.Context, key string, expected uint64, value []byte, opts backends.WriteOptions) (uint64, error) {
	if err := backends.ValidateValue(value); err != nil {
		return 0, err
	}
	return b.Backend.CompareAndSwap(ctx, key, expected, b.Encode(value), opts)
}

// GetMany implements backends.Backend.
func (b *Backend) GetMany(ctx context.Context, keys []string) ([]backends.VersionedValue, error) {
	vs, err := b.Backend.GetMany(ctx, keys)
	if err != nil {
		return nil, err
	}
	for i := range vs {
		if vs[i], err = b.decodeVV(keys[i], vs[i]); err != nil {
			return nil, err
		}
	}
	return vs, nil
}

// PutMany implements backends.Backend.
func (b *Backend) PutMany(ctx context.Context, items []backends.Item, opts backends.WriteOptions) ([]uint64, error) {
	enc := make([]backends.Item, len(items))
	for i, it := range items {
		if err := backends.ValidateValue(it.Value); err != nil {
			return nil, fmt.Errorf("key %q: %w", it.Key, err)
		}
		enc[i] = backends.Item{Key: it.Key, Value: b.Encode(it.Value)}
	}
	return b.Backend.PutMany(ctx, enc, opts)
}

// List implements backends.Backend.
func (b *Backend) List(ctx context.Context, prefix string, opts backends.ListOptions) (backends.ListPage, error) {
	page, err := b.Backend.List(ctx, prefix, opts)
	if err != nil {
		return page, err
	}
	for i := range page.Entries {
		e := &page.Entries[i]
		if e.VersionedValue, err = b.decodeVV(e.Key, e.VersionedValue); err != nil {
			return backends.ListPage{}, err
		}
	}
	return page, nil
}

// Stats implements backends.Backend.
func (b *Backend) Stats(ctx context.Context) (backends.Stats, error) {
	st, err := b.Backend.Stats(ctx)
	st.Backend = "compressed(" + st.Backend + ")"
	return st, err
}

// Close implements backends.Backend: it closes inner.
func (b *Backend) Close() error {
	b.once.Do(func() {
		_ = b.enc.Close()
		b.dec.Close()
	})
	return b.Backend.Close()
}
