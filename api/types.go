package api

import (
	"errors"
	"fmt"
	"time"
)

// Errors returned by the decoders of this package. Errors of encoding/json
// itself (syntax, wrong types, unknown fields of a request type) are passed
// through unchanged.
var (
	// ErrMalformed: a message is well-formed JSON but not a valid wire
	// value, e.g. both "key" and "key_base64" are given.
	ErrMalformed = errors.New("api: malformed message")
)

// Error codes: the "code" member of every error body. They are part of the
// API; clients switch on them, never on the message text.
const (
	CodeBadRequest     = "bad_request"     // 400: malformed JSON, query parameter or body
	CodeInvalid        = "invalid"         // 400: the request failed validation (empty key, bad op, ...)
	CodeFutureRevision = "future_revision" // 400: a read at a revision the store has not reached
	CodeNotFound       = "not_found"       // 404: no such key
	CodeUnknownMember  = "unknown_member"  // 404: no such cluster member
	CodeCASFailed      = "cas_failed"      // 409: a condition (if_mod_revision, if_version, if_value) did not hold
	CodeCompacted      = "compacted"       // 410: the revision asked for has been compacted
	CodeTooLarge       = "too_large"       // 413: key, value, body or txn over a limit
	CodeCanceled       = "canceled"        // 499: the client went away
	CodeInternal       = "internal"        // 500
	CodeNoLeader       = "no_leader"       // 503: no leader at the moment; nothing was proposed
	CodeNotLeader      = "not_leader"      // 503: this node is not the leader; "leader" names it if known; nothing was proposed
	CodeStopped        = "stopped"         // 503: the node is shutting down; nothing was proposed
	CodeTimeout        = "timeout"         // 504: a write timed out; its outcome is unknown
	CodeUnavailable    = "unavailable"     // a watch stream broke (client side only)
)

// Headers.
const (
	// HeaderRevision, HeaderModRevision, HeaderCreateRevision and
	// HeaderVersion carry the metadata of GET /v1/kv/{key}?raw (decimal).
	HeaderRevision       = "X-Statenode-Revision"
	HeaderModRevision    = "X-Statenode-Mod-Revision"
	HeaderCreateRevision = "X-Statenode-Create-Revision"
	HeaderVersion        = "X-Statenode-Version"
	// HeaderTimeout, on a request, is how long the server may work on it,
	// in milliseconds (decimal). A client sets it a little below its own
	// deadline so that it receives the server's verdict (503: nothing was
	// proposed, 504: outcome unknown) instead of timing out itself.
	HeaderTimeout = "X-Statenode-Timeout"
)

// StatusCanceled is the HTTP status sent when the client canceled its request
// (nginx's non-standard 499).
const StatusCanceled = 499

// Compare targets (Compare.Target).
const (
	TargetValue          = "value"
	TargetVersion        = "version"
	TargetCreateRevision = "create_revision"
	TargetModRevision    = "mod_revision"
)

// Compare results (Compare.Result): <key's target> <result> <operand>.
const (
	ResultEqual    = "="
	ResultNotEqual = "!="
	ResultGreater  = ">"
	ResultLess     = "<"
)

// Op types (Op.Type, OpResult.Type).
const (
	OpPut    = "put"
	OpGet    = "get"
	OpDelete = "delete"
)

// Event types (Event.Type).
const (
	EventPut    = "PUT"
	EventDelete = "DELETE"
)

// KeyValue is one key at one revision.
//
// JSON: {"key":"k","value":"v","create_revision":1,"mod_revision":1,"version":1};
// key and value use "key_base64"/"value_base64" when they are not valid UTF-8.
type KeyValue struct {
	Key            []byte
	Value          []byte
	CreateRevision int64 // revision of the put that created the key (since its last delete)
	ModRevision    int64 // revision of the last put to the key
	Version        int64 // number of puts since creation; 1 after the first put
}

// PutRequest is the JSON body of PUT /v1/kv/{key}: {"value":"..."} or
// {"value_base64":"..."}. Unknown members are rejected.
type PutRequest struct {
	Value []byte
}

// PutResponse answers PUT /v1/kv/{key}.
// JSON: {"revision":N} plus "prev_kv" when ?prev_kv was asked and the key existed.
type PutResponse struct {
	Revision int64     `json:"revision"`          // store revision after the put
	PrevKV   *KeyValue `json:"prev_kv,omitempty"` // the key before the put
}

// DeleteResponse answers DELETE /v1/kv/{key}.
type DeleteResponse struct {
	Deleted  int64      `json:"deleted"`            // number of keys deleted
	Revision int64      `json:"revision"`           // store revision after the delete (unchanged if nothing was deleted)
	PrevKVs  []KeyValue `json:"prev_kvs,omitempty"` // the deleted keys, with ?prev_kv
}

// RangeResponse answers GET /v1/kv/{prefix}?prefix.
type RangeResponse struct {
	KVs      []KeyValue `json:"kvs"`      // sorted by key, bytewise
	More     bool       `json:"more"`     // more keys matched than the limit
	Count    int64      `json:"count"`    // keys that matched, before the limit
	Revision int64      `json:"revision"` // store revision the read saw
}

// Compare is one condition of a transaction:
// <key's Target> <Result> <Value or Number>. A missing key has version,
// create and mod revision 0; a value compare against a missing key is false.
//
// JSON: {"key":"k","target":"mod_revision","result":"=","number":5} or
// {"key":"k","target":"value","result":"=","value":"v"}.
type Compare struct {
	Key    []byte
	Target string // TargetValue, TargetVersion, TargetCreateRevision, TargetModRevision
	Result string // ResultEqual, ResultNotEqual, ResultGreater, ResultLess
	Value  []byte // operand for TargetValue
	Number int64  // operand for the other targets
}

// Op is one operation of a transaction.
//
// JSON: {"type":"put","key":"k","value":"v","prev_kv":true},
// {"type":"put","key":"k","value":"v","session":1179648} (ephemeral),
// {"type":"get","key":"p/","prefix":true,"limit":10}, {"type":"delete","key":"k"}.
type Op struct {
	Type    string // OpPut, OpGet, OpDelete
	Key     []byte
	Value   []byte // OpPut only
	Prefix  bool   // OpGet, OpDelete: every key starting with Key (Key may be empty: all keys)
	Limit   int64  // OpGet: at most this many keys; 0 = no limit
	PrevKV  bool   // OpPut, OpDelete: return the previous key-values in the result
	Session uint64 // OpPut: attach the key to this session (deleted when it ends); 0 = none
}

// TxnRequest is the body of POST /v1/txn: if every Compare holds, Success
// runs, otherwise Failure; atomically, as one revision.
type TxnRequest struct {
	Compare []Compare `json:"compare,omitempty"`
	Success []Op      `json:"success,omitempty"`
	Failure []Op      `json:"failure,omitempty"`
}

// OpResult is the result of one Op, at the same position as the Op.
type OpResult struct {
	Type  string     `json:"type"`           // OpPut, OpGet, OpDelete
	KVs   []KeyValue `json:"kvs,omitempty"`  // get: the keys found; put/delete with prev_kv: the previous values
	More  bool       `json:"more,omitempty"` // get: more keys matched than the limit
	Count int64      `json:"count"`          // get: keys matched; delete: keys deleted
}

// TxnResponse answers POST /v1/txn.
type TxnResponse struct {
	Succeeded bool       `json:"succeeded"` // every Compare held and Success ran
	Revision  int64      `json:"revision"`  // store revision after the txn
	Results   []OpResult `json:"results"`   // one per op of the branch that ran
}

// Event is one change to one key. For a delete KV carries the key and the
// delete's revision as ModRevision.
type Event struct {
	Type   string    `json:"type"` // EventPut, EventDelete
	KV     KeyValue  `json:"kv"`
	PrevKV *KeyValue `json:"prev_kv,omitempty"` // with ?prev_kv, if the key existed
}

// WatchResponse is one line of the NDJSON stream of GET /v1/watch. The first
// line has Created set and the store revision when the watch started; later
// lines carry events (all of one or more revisions) or, as the last line, an
// Error.
type WatchResponse struct {
	Created  bool    `json:"created,omitempty"`
	Events   []Event `json:"events,omitempty"`
	Revision int64   `json:"revision"` // the revision of the last event (or the store's, on the created line)
	Error    *Error  `json:"error,omitempty"`
}

// LeaderInfo names a leader.
type LeaderInfo struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raft_addr"`
	HTTPAddr string `json:"http_addr"`
}

// Status answers GET /v1/status: one node's view of itself and the cluster.
type Status struct {
	ID              string        `json:"id"`
	State           string        `json:"state"` // Leader, Follower, Candidate, Shutdown
	Term            uint64        `json:"term"`
	Leader          LeaderInfo    `json:"leader"`
	CommitIndex     uint64        `json:"commit_index"`
	AppliedIndex    uint64        `json:"applied_index"`
	LastIndex       uint64        `json:"last_index"`
	Revision        int64         `json:"revision"`
	CompactRevision int64         `json:"compact_revision"`
	LastContact     time.Duration `json:"last_contact_ns"` // since the last contact with the leader, nanoseconds
	Members         int           `json:"members"`
	Version         string        `json:"version"`
	LogEngine       string        `json:"log_engine"` // "wal" or "bolt": where this member keeps its Raft log
}

// Member is one member of the cluster (GET /v1/members).
type Member struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raft_addr"`
	HTTPAddr string `json:"http_addr"`
	Voter    bool   `json:"voter"`
	Leader   bool   `json:"leader"`
	// The fields below are set only by nodes that run gossip
	// (--gossip-addr); see MemberGossip*.
	RaftRole   string `json:"raft_role,omitempty"`   // RaftRoleVoter, RaftRoleNonvoter, or RaftRoleNone: alive in gossip, not (yet) in Raft
	Gossip     string `json:"gossip,omitempty"`      // gossip state: alive, suspect, dead, left; "" if gossip does not know the member
	GossipAddr string `json:"gossip_addr,omitempty"` // gossip host:port
}

// AddMemberRequest is the body of POST /v1/members. Unknown members are rejected.
type AddMemberRequest struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raft_addr"`
	HTTPAddr string `json:"http_addr"`
	// NonVoter adds a member that replicates and serves stale reads but
	// does not vote.
	NonVoter bool `json:"non_voter,omitempty"`
}

// TransferLeaderRequest is the body of POST /v1/leader/transfer; an empty ID
// lets the leader pick an up-to-date voter.
type TransferLeaderRequest struct {
	ID string `json:"id"`
}

// Error is the body of every error response:
// {"error":"message","code":"not_found"}.
type Error struct {
	Message string `json:"error"`
	Code    string `json:"code"` // one of the Code constants
	// Leader is the leader's client API address, on 503 not_leader/no_leader
	// when it is known.
	Leader string `json:"leader,omitempty"`
	// CompactRevision is set with code "compacted": the store's compaction
	// revision; the oldest revision still readable is CompactRevision+1.
	CompactRevision int64 `json:"compact_revision,omitempty"`
	// KV is the key's current value on a 409 cas_failed, if the key exists.
	KV *KeyValue `json:"kv,omitempty"`
}

func (e *Error) Error() string {
	if e.Message == "" {
		return "api: " + e.Code
	}
	return fmt.Sprintf("%s (%s)", e.Message, e.Code)
}

// PutOp returns a put op.
func PutOp(key string, value []byte) Op { return Op{Type: OpPut, Key: []byte(key), Value: value} }

// GetOp returns a get op of one key.
func GetOp(key string) Op { return Op{Type: OpGet, Key: []byte(key)} }

// DeleteOp returns a delete op of one key.
func DeleteOp(key string) Op { return Op{Type: OpDelete, Key: []byte(key)} }

// CompareModRevision returns the condition "mod_revision of key <result> rev".
func CompareModRevision(key, result string, rev int64) Compare {
	return Compare{Key: []byte(key), Target: TargetModRevision, Result: result, Number: rev}
}

// CompareCreateRevision returns the condition "create_revision of key <result> rev".
func CompareCreateRevision(key, result string, rev int64) Compare {
	return Compare{Key: []byte(key), Target: TargetCreateRevision, Result: result, Number: rev}
}

// CompareVersion returns the condition "version of key <result> v".
func CompareVersion(key, result string, v int64) Compare {
	return Compare{Key: []byte(key), Target: TargetVersion, Result: result, Number: v}
}

// CompareValue returns the condition "value of key <result> value".
func CompareValue(key, result string, value []byte) Compare {
	return Compare{Key: []byte(key), Target: TargetValue, Result: result, Value: value}
}
