// Package api holds the JSON wire types of statenode's HTTP API v1, shared by
// the server (package node) and the Go client (package client). It depends
// on the standard library only: no Raft, no state machine.
//
// Keys and values are bytes. On the wire a key or value that is valid UTF-8
// is a JSON string ("key":"a/b"); anything else is sent base64 (standard
// encoding, padded) under the same name with a "_base64" suffix
// ("value_base64":"AP8="). Decoders accept either form for every byte field.
//
// The hot response types (KeyValue, PutResponse, DeleteResponse,
// RangeResponse, TxnResponse, WatchResponse, Error) have AppendJSON methods
// that encode without reflection into a caller's buffer; MarshalJSON uses
// them (encoding/json then only adds its HTML escaping of <, > and &).
//
//	kv := api.KeyValue{Key: []byte("a"), Value: []byte{0, 1}, ModRevision: 7}
//	b, _ := json.Marshal(kv)
//	// {"key":"a","value_base64":"AAE=","create_revision":0,"mod_revision":7,"version":0}
//
// See docs/API.md for the routes that carry these types.
package api
