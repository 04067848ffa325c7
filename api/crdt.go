package api

// CRDT and gossip-membership wire types (docs/API.md, docs/CRDT.md). Cold
// routes: encoded with encoding/json; request bodies are decoded strictly
// by the server.

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
)

// Error codes of the CRDT and gossip routes.
const (
	CodeGossipDisabled     = "gossip_disabled"     // 501: the node runs without gossip (no --gossip-addr)
	CodeInsufficientRights = "insufficient_rights" // 409: a bounded counter decrement or transfer exceeds this node's rights
)

// Raft roles (Member.RaftRole).
const (
	RaftRoleVoter    = "voter"
	RaftRoleNonvoter = "nonvoter"
	RaftRoleNone     = "none" // known to gossip, not in the Raft configuration
)

// Gossip states (Member.Gossip, MemberEvent.State).
const (
	MemberGossipAlive   = "alive"
	MemberGossipSuspect = "suspect"
	MemberGossipDead    = "dead"
	MemberGossipLeft    = "left"
)

// CRDT types in /v1/crdt/{type}/{name}. Responses name the canonical type;
// requests also accept the short aliases.
const (
	CRDTGCounter       = "gcounter"
	CRDTPNCounter      = "pncounter" // alias "counter"
	CRDTBoundedCounter = "boundedcounter"
	CRDTORSet          = "orset"       // alias "set"
	CRDTLWWRegister    = "lwwregister" // alias "register"
	CRDTMVRegister     = "mvregister"
	CRDTLWWMap         = "lwwmap" // alias "map"
)

// CRDT operations (CRDTOp.Op) and the types that accept them.
const (
	CRDTOpInc      = "inc"      // counters: add Delta (pncounter: may be negative)
	CRDTOpDec      = "dec"      // pncounter, boundedcounter: subtract Delta
	CRDTOpTransfer = "transfer" // boundedcounter: give Delta rights to replica To
	CRDTOpAdd      = "add"      // orset: add Value
	CRDTOpRemove   = "remove"   // orset: remove Value (alias "rm")
	CRDTOpSet      = "set"      // lwwregister, mvregister: write Value
	CRDTOpPut      = "put"      // lwwmap: set Key to Value
	CRDTOpDelete   = "delete"   // lwwmap: delete Key
)

// CRDTOp is the body of POST /v1/crdt/{type}/{name}, e.g.
// {"op":"inc","delta":1}, {"op":"add","value":"x"},
// {"op":"put","key":"k","value_base64":"AAE="}. Unknown members are
// rejected.
type CRDTOp struct {
	Op          string `json:"op"`
	Delta       int64  `json:"delta,omitempty"`
	Value       string `json:"value,omitempty"`
	ValueBase64 []byte `json:"value_base64,omitempty"` // instead of Value, for bytes that are not UTF-8
	Key         string `json:"key,omitempty"`
	To          string `json:"to,omitempty"` // transfer: the receiving replica ID
}

// CRDTValue answers GET and POST /v1/crdt/{type}/{name}: one node's view
// of the object (after the update, for POST). Value depends on Type:
// counters a number, orset and mvregister an array of strings, lwwregister
// a string (null if never written), lwwmap an object of strings. Byte
// values are strings, or base64 strings when Encoding is "base64".
type CRDTValue struct {
	Type    string          `json:"type"`
	Name    string          `json:"name"`
	Node    string          `json:"node"`    // ID of the node that served the request
	Replica string          `json:"replica"` // that node's replica ID (ID~incarnation)
	Value   json.RawMessage `json:"value"`
	// Encoding is "base64" when the byte values of Value are base64.
	Encoding string `json:"encoding,omitempty"`
	// Rights is this node's remaining rights (boundedcounter only).
	Rights *int64 `json:"rights,omitempty"`
	// Timestamp is the hybrid logical clock stamp of the value
	// (lwwregister, when written).
	Timestamp *CRDTTimestamp `json:"timestamp,omitempty"`
}

// CRDTTimestamp is a hybrid logical clock reading.
type CRDTTimestamp struct {
	Wall    int64  `json:"wall_ns"` // Unix ns
	Logical uint32 `json:"logical"`
	Replica string `json:"replica"`
}

// CRDTObject names one object (GET /v1/crdt).
type CRDTObject struct {
	Type string `json:"type"`
	Name string `json:"name"`
}

// Int returns a counter's value.
func (v *CRDTValue) Int() (int64, error) {
	var n int64
	if err := json.Unmarshal(v.Value, &n); err != nil {
		return 0, fmt.Errorf("%w: %s value: %w", ErrMalformed, v.Type, err)
	}
	return n, nil
}

// Strings returns the elements of an orset or the values of an mvregister
// (decoded from base64 if Encoding says so).
func (v *CRDTValue) Strings() ([]string, error) {
	var out []string
	if err := json.Unmarshal(v.Value, &out); err != nil {
		return nil, fmt.Errorf("%w: %s value: %w", ErrMalformed, v.Type, err)
	}
	for i, s := range out {
		b, err := v.decode(s)
		if err != nil {
			return nil, err
		}
		out[i] = string(b)
	}
	return out, nil
}

// Bytes returns an lwwregister's value and whether it was ever written.
func (v *CRDTValue) Bytes() ([]byte, bool, error) {
	var s *string
	if err := json.Unmarshal(v.Value, &s); err != nil {
		return nil, false, fmt.Errorf("%w: %s value: %w", ErrMalformed, v.Type, err)
	}
	if s == nil {
		return nil, false, nil
	}
	b, err := v.decode(*s)
	return b, err == nil, err
}

// Map returns an lwwmap's entries.
func (v *CRDTValue) Map() (map[string][]byte, error) {
	var m map[string]string
	if err := json.Unmarshal(v.Value, &m); err != nil {
		return nil, fmt.Errorf("%w: %s value: %w", ErrMalformed, v.Type, err)
	}
	out := make(map[string][]byte, len(m))
	for k, s := range m {
		b, err := v.decode(s)
		if err != nil {
			return nil, err
		}
		out[k] = b
	}
	return out, nil
}

func (v *CRDTValue) decode(s string) ([]byte, error) {
	if v.Encoding != "base64" {
		return []byte(s), nil
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("%w: %s value: %w", ErrMalformed, v.Type, err)
	}
	return b, nil
}

// MemberEvent is one line of the NDJSON stream of GET /v1/members/watch:
// first one line per known gossip member (Previous empty), then one per
// change of a member's gossip state, address or metadata. Lines with
// Heartbeat set carry nothing else; the server writes one after 5s of
// silence.
type MemberEvent struct {
	ID          string `json:"id,omitempty"`
	GossipAddr  string `json:"gossip_addr,omitempty"`
	State       string `json:"state,omitempty"`    // MemberGossip* constants
	Previous    string `json:"previous,omitempty"` // the state before; "" for a member first seen
	RaftAddr    string `json:"raft_addr,omitempty"`
	HTTPAddr    string `json:"http_addr,omitempty"`
	Voter       bool   `json:"voter,omitempty"`         // the member asks for a vote (not a non-voter)
	SinceMillis int64  `json:"since_unix_ms,omitempty"` // when this node saw the member enter State
	Heartbeat   bool   `json:"heartbeat,omitempty"`
}
