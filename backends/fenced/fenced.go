package fenced

import (
	"context"
	"errors"
	"sync"

	"github.com/statenode/statenode/backends"
)

var _ backends.Backend = (*Backend)(nil)

// Source returns the fence that writes should carry now: typically the
// lock name and fencing token of the lock the caller holds. It is called
// once per write, from the writing goroutine, and must not block.
type Source func() backends.Fence

// Backend attaches a fence to every write that does not carry one, so code
// holding a lock can use a plain backends.Backend and still be fenced by
// the store. It also remembers, per lock, the newest token the store
// reported in an ErrFenced, and rejects older tokens without a round trip.
// The store remains the authority: the local memory only saves requests.
type Backend struct {
	backends.Backend
	source Source

	mu   sync.Mutex
	seen map[string]uint64 // lock -> newest token known to the store
}

// New wraps inner; writes carry source() unless they set their own Fence.
// Close closes inner.
func New(inner backends.Backend, source Source) *Backend {
	return &Backend{Backend: inner, source: source, seen: map[string]uint64{}}
}

// Static returns a Source that always returns f.
func Static(f backends.Fence) Source { return func() backends.Fence { return f } }

func (b *Backend) fence(opts backends.WriteOptions) (backends.WriteOptions, error) {
	if opts.Fence == nil {
		f := b.source()
		opts.Fence = &f
	}
	b.mu.Lock()
	seen := b.seen[opts.Fence.Lock]
	b.mu.Unlock()
	if seen > opts.Fence.Token {
		return opts, &backends.FencedError{Lock: opts.Fence.Lock, Token: opts.Fence.Token, Seen: seen}
	}
	return opts, nil
}

func (b *Backend) learn(err error) {
	var fe *backends.FencedError
	if errors.As(err, &fe) {
		b.mu.Lock()
		if fe.Seen > b.seen[fe.Lock] {
			b.seen[fe.Lock] = fe.Seen
		}
		b.mu.Unlock()
	}
}

// Put implements backends.Backend.
func (b *Backend) Put(ctx context.Context, key string, value []byte, opts backends.WriteOptions) (uint64, error) {
	opts, err := b.fence(opts)
	if err != nil {
		return 0, err
	}
	v, err := b.Backend.Put(ctx, key, value, opts)
	b.learn(err)
	return v, err
}

// Delete implements backends.Backend.
func (b *Backend) Delete(ctx context.Context, key string, opts backends.WriteOptions) error {
	opts, err := b.fence(opts)
	if err != nil {
		return err
	}
	err = b.Backend.Delete(ctx, key, opts)
	b.learn(err)
	return err
}

// CompareAndSwap implements backends.Backend.
func (b *Backend) CompareAndSwap(ctx context.Context, key string, expected uint64, value []byte, opts backends.WriteOptions) (uint64, error) {
	opts, err := b.fence(opts)
	if err != nil {
		return 0, err
	}
	v, err := b.Backend.CompareAndSwap(ctx, key, expected, value, opts)
	b.learn(err)
	return v, err
}

// PutMany implements backends.Backend.
func (b *Backend) PutMany(ctx context.Context, items []backends.Item, opts backends.WriteOptions) ([]uint64, error) {
	opts, err := b.fence(opts)
	if err != nil {
		return nil, err
	}
	v, err := b.Backend.PutMany(ctx, items, opts)
	b.learn(err)
	return v, err
}

// DeleteMany implements backends.Backend.
func (b *Backend) DeleteMany(ctx context.Context, keys []string, opts backends.WriteOptions) error {
	opts, err := b.fence(opts)
	if err != nil {
		return err
	}
	err = b.Backend.DeleteMany(ctx, keys, opts)
	b.learn(err)
	return err
}

// Stats implements backends.Backend.
func (b *Backend) Stats(ctx context.Context) (backends.Stats, error) {
	st, err := b.Backend.Stats(ctx)
	st.Backend = "fenced(" + st.Backend + ")"
	return st, err
}
