package backends

import (
	"context"
	"time"
)

// Limits on keys and values, the same for every store so that data can move
// between them.
const (
	// MaxKeySize is the longest key accepted, in bytes. 512 bytes keeps
	// keys indexable in PostgreSQL's btree and cheap in Redis.
	MaxKeySize = 512

	// MaxValueSize is the largest value accepted from a caller, in bytes
	// (1 MiB). Bulk state is many small values; larger blobs belong in an
	// object store.
	MaxValueSize = 1 << 20

	// ValueOverhead is the room, in bytes, stores allow beyond MaxValueSize
	// so that wrappers (compressed, cached) can add a header to a value a
	// caller was allowed to write.
	ValueOverhead = 64

	// DefaultListLimit is the page size of List when ListOptions.Limit is 0.
	DefaultListLimit = 1000
)

// Backend is a key-value store for the bulk of an application's state.
//
// Every method may be called from any goroutine, concurrently; every method
// blocks for at most one round trip to the store (batches included) or
// until ctx ends, whichever comes first. Keys are UTF-8 strings (see
// ValidateKey); values are opaque bytes of at most MaxValueSize.
//
// Each key carries a Version: 1 when it is created, incremented by every
// write to it, and reset when the key is deleted or expires (as etcd's
// per-key version). Version 0 means "absent".
//
// Every write accepts WriteOptions: a TTL and an optional Fence. A write
// carrying a Fence is rejected with ErrFenced (and applies nothing) when the
// store has seen a higher token for the same lock; see Fence.
type Backend interface {
	// Get returns the current value of key, or ErrNotFound.
	Get(ctx context.Context, key string) (VersionedValue, error)

	// Put stores value under key, replacing any previous value, and
	// returns the new version. opts.TTL > 0 makes the key expire; a Put
	// without a TTL removes an earlier one.
	Put(ctx context.Context, key string, value []byte, opts WriteOptions) (version uint64, err error)

	// Delete removes key. Deleting a missing key is not an error.
	Delete(ctx context.Context, key string, opts WriteOptions) error

	// List returns the live keys starting with prefix, in byte order,
	// one page at a time; see ListOptions and ListPage.
	List(ctx context.Context, prefix string, opts ListOptions) (ListPage, error)

	// CompareAndSwap stores value under key only if the key's current
	// version is expected (0: only if the key is absent), and returns the
	// new version, or ErrVersionMismatch.
	CompareAndSwap(ctx context.Context, key string, expected uint64, value []byte, opts WriteOptions) (version uint64, err error)

	// GetMany reads keys in one round trip. The result is aligned with
	// keys; a missing key has the zero VersionedValue (Found is false).
	GetMany(ctx context.Context, keys []string) ([]VersionedValue, error)

	// PutMany writes items in one round trip and returns their new
	// versions, aligned with items. opts applies to every item. Whether
	// the batch is atomic depends on the store (see docs/BACKENDS.md); a
	// fenced batch is rejected as a whole.
	PutMany(ctx context.Context, items []Item, opts WriteOptions) (versions []uint64, err error)

	// DeleteMany removes keys in one round trip. Missing keys are ignored.
	DeleteMany(ctx context.Context, keys []string, opts WriteOptions) error

	// Stats reports the store's size and connection-pool counters.
	Stats(ctx context.Context) (Stats, error)

	// Close releases the store's resources. It is safe to call twice;
	// every later call returns ErrClosed.
	Close() error
}

// VersionedValue is a value with its version.
type VersionedValue struct {
	// Value is the stored bytes (never nil when Found).
	Value []byte
	// Version is the key's version (see Backend); 0 means absent.
	Version uint64
	// ExpiresAt is when the key expires; zero for no TTL.
	ExpiresAt time.Time
}

// Found reports whether the value exists.
func (v VersionedValue) Found() bool { return v.Version != 0 }

// Item is one key-value pair of a PutMany batch.
type Item struct {
	Key   string
	Value []byte
}

// Entry is one key of a List page.
type Entry struct {
	Key string
	VersionedValue
}

// WriteOptions modifies a write. The zero value is a plain write.
type WriteOptions struct {
	// TTL makes the written keys expire after this duration; 0 means
	// never. Stores keep millisecond precision.
	TTL time.Duration

	// Fence, when set, makes the write conditional on the fencing token:
	// see Fence.
	Fence *Fence
}

// Fence is a fencing token issued with a lock (for example by statenode's
// coordination locks, whose tokens grow with every acquisition).
//
// The store keeps, per lock name, the highest token a write has carried. A
// write carrying Fence{Lock, Token} is applied only if Token >= that highest
// token, and then raises it to Token, atomically with the write itself; a
// write with an older token fails with a *FencedError (ErrFenced) and
// changes nothing. A client that lost its lock (paused, partitioned) and
// comes back after a newer holder wrote can therefore no longer write.
type Fence struct {
	Lock  string // lock name; same rules as keys
	Token uint64 // fencing token; higher is newer
}

// ListOptions pages through List.
type ListOptions struct {
	// After resumes listing after this key (exclusive); use the previous
	// page's Next.
	After string
	// Limit is the most entries a page holds; 0 means DefaultListLimit.
	Limit int
	// KeysOnly skips reading values (Entry.Value is nil).
	KeysOnly bool
}

// ListPage is one page of List.
type ListPage struct {
	Entries []Entry
	// Next is the key to pass as ListOptions.After for the next page; it
	// is empty when this was the last page.
	Next string
}

// Stats describes a store. Counters a store cannot compute cheaply are -1.
type Stats struct {
	// Backend names the store ("memory", "boltdb", "redis", "postgres")
	// and the wrappers around it ("cached(postgres)").
	Backend string
	// Keys is the number of live keys, or -1 when unknown.
	Keys int64
	// Pool holds connection-pool counters for networked stores.
	Pool PoolStats
	// Extra holds wrapper and store specific counters (cache hits,
	// breaker state, ...), keyed by snake_case names.
	Extra map[string]float64
}

// PoolStats are connection-pool counters.
type PoolStats struct {
	TotalConns int // open connections
	IdleConns  int // idle connections
	InUseConns int // connections in use (TotalConns - IdleConns)
	// WaitCount is how many times a caller had to wait for a connection.
	WaitCount int64
	// Timeouts is how many times waiting for a connection timed out.
	Timeouts int64
}
