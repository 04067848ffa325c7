package fsm

import (
	"errors"
	"fmt"
)

// Errors returned by the state machine. Application errors (a failed
// validation, a compacted revision) travel in the apply result or are returned
// by the read methods; they are never raft errors.
var (
	// ErrCompacted is matched (errors.Is) by *CompactedError.
	ErrCompacted = errors.New("fsm: required revision has been compacted")
	// ErrFutureRevision: a read asked for a revision newer than the store's.
	ErrFutureRevision = errors.New("fsm: required revision is a future revision")
	// ErrCorrupt: a command, result or snapshot could not be decoded.
	ErrCorrupt = errors.New("fsm: malformed encoding")
	// ErrUnsupportedVersion: an envelope carries a format version this build does not know.
	ErrUnsupportedVersion = errors.New("fsm: unsupported format version")
	// ErrUnknownCommand: an envelope carries a command type this build does not know.
	ErrUnknownCommand = errors.New("fsm: unknown command type")
	// ErrInvalid: a request failed validation (empty key, too many ops, ...).
	// Validation errors wrap it: fmt.Errorf("%w: key is empty", ErrInvalid).
	ErrInvalid = errors.New("fsm: invalid request")
	// ErrTooLarge: a key, value or request exceeds a configured limit. Wraps like ErrInvalid.
	ErrTooLarge = errors.New("fsm: request too large")
)

// CompactedError reports a read or watch at a revision older than the
// retained history.
type CompactedError struct {
	Requested int64 // the revision asked for
	Oldest    int64 // the oldest revision still available (CompactRevision+1)
}

func (e *CompactedError) Error() string {
	return fmt.Sprintf("fsm: revision %d has been compacted; oldest available revision is %d", e.Requested, e.Oldest)
}

// Is makes errors.Is(err, ErrCompacted) hold.
func (e *CompactedError) Is(target error) bool { return target == ErrCompacted }

// KeyValue is one key at one revision, as in etcd's mvccpb.KeyValue.
type KeyValue struct {
	Key            []byte
	Value          []byte
	CreateRevision int64 // revision of the put that created the key (since its last delete)
	ModRevision    int64 // revision of the last put to the key
	Version        int64 // number of puts since creation; 1 after the first put
}

// EventType is the kind of a watch event.
type EventType uint8

const (
	EventPut    EventType = 1
	EventDelete EventType = 2
)

// Event is one change to one key. A txn that changes several keys produces
// several events that share one revision. For a delete, KV.Key is the key,
// KV.ModRevision the revision of the delete, and the other fields are zero.
type Event struct {
	Type   EventType
	KV     KeyValue
	PrevKV *KeyValue // the key before the change; nil if it did not exist
}

// CompareTarget selects what a Compare looks at.
type CompareTarget uint8

const (
	CompareValue          CompareTarget = 1
	CompareVersion        CompareTarget = 2
	CompareCreateRevision CompareTarget = 3
	CompareModRevision    CompareTarget = 4
)

// CompareResult is the relation a Compare asserts: <key's target> <Result> <operand>.
type CompareResult uint8

const (
	CompareEqual    CompareResult = 1
	CompareNotEqual CompareResult = 2
	CompareGreater  CompareResult = 3
	CompareLess     CompareResult = 4
)

// Compare is one condition of a transaction. A missing key has version,
// create and mod revision 0; a value compare against a missing key is false
// (as in etcd).
type Compare struct {
	Key    []byte
	Target CompareTarget
	Result CompareResult
	Value  []byte // operand for CompareValue
	Number int64  // operand for CompareVersion, CompareCreateRevision, CompareModRevision
}

// OpType is the kind of an Op.
type OpType uint8

const (
	OpRange  OpType = 1
	OpPut    OpType = 2
	OpDelete OpType = 3
)

// Op is one operation of a transaction.
type Op struct {
	Type   OpType
	Key    []byte
	Value  []byte // OpPut only
	Prefix bool   // OpRange, OpDelete: every key that starts with Key (Key may be empty = all keys)
	Limit  int64  // OpRange: at most this many keys; 0 = no limit
	PrevKV bool   // OpPut, OpDelete: return the previous key-values in the result
	// Session (OpPut only) makes the key ephemeral: it is attached to that
	// session and deleted in the command that ends the session. A put
	// without a session detaches the key (as a put without a lease in
	// etcd). A txn naming a session that does not exist is refused as a
	// whole (Response.Coord.Code CoordSessionNotFound) and writes nothing.
	Session uint64
}

// Request is a single write: a transaction. A plain put is a Request with
// no Compare and one OpPut in Success; a delete is one OpDelete.
type Request struct {
	Compare []Compare
	Success []Op
	Failure []Op
}

// OpResult is the result of one Op, at the same position as the Op.
type OpResult struct {
	Type  OpType
	KVs   []KeyValue // OpRange: the keys found; OpPut/OpDelete with PrevKV: the previous values
	More  bool       // OpRange: more keys matched than Limit
	Count int64      // OpRange: number of keys matched; OpDelete: number deleted
}

// Response is the result of applying a Request.
type Response struct {
	Succeeded bool  // true if every Compare held and Success ran
	Revision  int64 // store revision after the txn (unchanged if it wrote nothing)
	Results   []OpResult
	// Coord is the result of a coordination command, or the refusal of a
	// fenced txn; nil otherwise.
	Coord *CoordResult
}

// RangeRequest is a local read.
type RangeRequest struct {
	Key       []byte
	Prefix    bool  // every key starting with Key
	Limit     int64 // 0 = no limit
	Revision  int64 // 0 = current; otherwise the store as of that revision (within retained history)
	CountOnly bool  // fill Count only
	KeysOnly  bool  // leave Value empty
}

// RangeResponse is the result of a RangeRequest.
type RangeResponse struct {
	KVs      []KeyValue // sorted by key (bytewise)
	More     bool
	Count    int64 // number of keys that matched (before Limit)
	Revision int64 // the store revision the read saw (the current one, even for historical reads)
}

// Member is the replicated metadata of a cluster member: how to reach its
// client API. Raft's configuration holds the voter set; this holds addresses.
type Member struct {
	ID       string
	RaftAddr string
	HTTPAddr string
}

// Limits bound what a Request may carry. Validate enforces them before a
// command reaches the log; zero fields mean the defaults below.
type Limits struct {
	MaxKeySize     int // bytes; default 4096
	MaxValueSize   int // bytes; default 1.5 MiB (etcd's request limit)
	MaxTxnOps      int // Compare+Success+Failure; default 128 (etcd's default)
	MaxRequestSize int // encoded command bytes; default 2 MiB
}

// DefaultLimits returns the default limits.
func DefaultLimits() Limits {
	return Limits{MaxKeySize: 4096, MaxValueSize: 1536 * 1024, MaxTxnOps: 128, MaxRequestSize: 2 << 20}
}
