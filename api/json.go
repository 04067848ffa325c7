package api

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Encoding: reflection-free appenders for the response types. Each
// MarshalJSON is its AppendJSON, so encoding/json and the server's fast path
// write the same bytes.

const hexDigits = "0123456789abcdef"

// AppendString appends s as a JSON string. s must be valid UTF-8 (invalid
// bytes would be copied through); use AppendBytesField for arbitrary bytes.
func AppendString(b []byte, s string) []byte { return appendQuoted(b, s) }

// appendQuoted quotes and escapes s (a string or a []byte) into b.
func appendQuoted[T string | []byte](b []byte, s T) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default:
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		start = i + 1
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// AppendBytesField appends the JSON member for a byte field named name:
// "name":"..." if v is valid UTF-8, otherwise "name_base64":"...".
// No separator is written before it.
func AppendBytesField(b []byte, name string, v []byte) []byte {
	b = append(b, '"')
	b = append(b, name...)
	if utf8.Valid(v) {
		b = append(b, '"', ':')
		return appendQuoted(b, v)
	}
	b = append(b, "_base64\":\""...)
	b = base64.StdEncoding.AppendEncode(b, v)
	return append(b, '"')
}

func appendIntField(b []byte, name string, v int64) []byte {
	b = append(b, '"')
	b = append(b, name...)
	b = append(b, '"', ':')
	return strconv.AppendInt(b, v, 10)
}

func appendBoolField(b []byte, name string, v bool) []byte {
	b = append(b, '"')
	b = append(b, name...)
	b = append(b, '"', ':')
	return strconv.AppendBool(b, v)
}

// AppendJSON appends kv's JSON encoding to b.
func (kv *KeyValue) AppendJSON(b []byte) []byte {
	b = append(b, '{')
	b = kv.appendMembers(b)
	return append(b, '}')
}

// appendMembers appends kv's members without braces, so that callers can add
// their own (GET /v1/kv adds "revision").
func (kv *KeyValue) appendMembers(b []byte) []byte {
	b = AppendBytesField(b, "key", kv.Key)
	b = append(b, ',')
	b = AppendBytesField(b, "value", kv.Value)
	b = append(b, ',')
	b = appendIntField(b, "create_revision", kv.CreateRevision)
	b = append(b, ',')
	b = appendIntField(b, "mod_revision", kv.ModRevision)
	b = append(b, ',')
	b = appendIntField(b, "version", kv.Version)
	return b
}

// AppendJSONWithRevision appends kv's JSON encoding with an extra
// "revision" member (the store revision), as GET /v1/kv/{key} answers.
func (kv *KeyValue) AppendJSONWithRevision(b []byte, revision int64) []byte {
	b = append(b, '{')
	b = kv.appendMembers(b)
	b = append(b, ',')
	b = appendIntField(b, "revision", revision)
	return append(b, '}')
}

// MarshalJSON implements json.Marshaler.
func (kv KeyValue) MarshalJSON() ([]byte, error) { return kv.AppendJSON(nil), nil }

func appendKVs(b []byte, kvs []KeyValue) []byte {
	b = append(b, '[')
	for i := range kvs {
		if i > 0 {
			b = append(b, ',')
		}
		b = kvs[i].AppendJSON(b)
	}
	return append(b, ']')
}

// AppendJSON appends r's JSON encoding to b.
func (r *PutResponse) AppendJSON(b []byte) []byte {
	b = append(b, '{')
	b = appendIntField(b, "revision", r.Revision)
	if r.PrevKV != nil {
		b = append(b, `,"prev_kv":`...)
		b = r.PrevKV.AppendJSON(b)
	}
	return append(b, '}')
}

// MarshalJSON implements json.Marshaler.
func (r PutResponse) MarshalJSON() ([]byte, error) { return r.AppendJSON(nil), nil }

// AppendJSON appends r's JSON encoding to b.
func (r *DeleteResponse) AppendJSON(b []byte) []byte {
	b = append(b, '{')
	b = appendIntField(b, "deleted", r.Deleted)
	b = append(b, ',')
	b = appendIntField(b, "revision", r.Revision)
	if len(r.PrevKVs) > 0 {
		b = append(b, `,"prev_kvs":`...)
		b = appendKVs(b, r.PrevKVs)
	}
	return append(b, '}')
}

// MarshalJSON implements json.Marshaler.
func (r DeleteResponse) MarshalJSON() ([]byte, error) { return r.AppendJSON(nil), nil }

// AppendJSON appends r's JSON encoding to b.
func (r *RangeResponse) AppendJSON(b []byte) []byte {
	b = append(b, `{"kvs":`...)
	b = appendKVs(b, r.KVs)
	b = append(b, ',')
	b = appendBoolField(b, "more", r.More)
	b = append(b, ',')
	b = appendIntField(b, "count", r.Count)
	b = append(b, ',')
	b = appendIntField(b, "revision", r.Revision)
	return append(b, '}')
}

// MarshalJSON implements json.Marshaler.
func (r RangeResponse) MarshalJSON() ([]byte, error) { return r.AppendJSON(nil), nil }

// AppendJSON appends r's JSON encoding to b.
func (r *OpResult) AppendJSON(b []byte) []byte {
	b = append(b, `{"type":`...)
	b = AppendString(b, r.Type)
	if len(r.KVs) > 0 {
		b = append(b, `,"kvs":`...)
		b = appendKVs(b, r.KVs)
	}
	if r.More {
		b = append(b, `,"more":true`...)
	}
	b = append(b, ',')
	b = appendIntField(b, "count", r.Count)
	return append(b, '}')
}

// MarshalJSON implements json.Marshaler.
func (r OpResult) MarshalJSON() ([]byte, error) { return r.AppendJSON(nil), nil }

// AppendJSON appends r's JSON encoding to b.
func (r *TxnResponse) AppendJSON(b []byte) []byte {
	b = append(b, '{')
	b = appendBoolField(b, "succeeded", r.Succeeded)
	b = append(b, ',')
	b = appendIntField(b, "revision", r.Revision)
	b = append(b, `,"results":[`...)
	for i := range r.Results {
		if i > 0 {
			b = append(b, ',')
		}
		b = r.Results[i].AppendJSON(b)
	}
	return append(b, "]}"...)
}

// MarshalJSON implements json.Marshaler.
func (r TxnResponse) MarshalJSON() ([]byte, error) { return r.AppendJSON(nil), nil }

// AppendJSON appends e's JSON encoding to b.
func (e *Event) AppendJSON(b []byte) []byte {
	b = append(b, `{"type":`...)
	b = AppendString(b, e.Type)
	b = append(b, `,"kv":`...)
	b = e.KV.AppendJSON(b)
	if e.PrevKV != nil {
		b = append(b, `,"prev_kv":`...)
		b = e.PrevKV.AppendJSON(b)
	}
	return append(b, '}')
}

// MarshalJSON implements json.Marshaler.
func (e Event) MarshalJSON() ([]byte, error) { return e.AppendJSON(nil), nil }

// AppendJSON appends r's JSON encoding to b (without a newline).
func (r *WatchResponse) AppendJSON(b []byte) []byte {
	b = append(b, '{')
	if r.Created {
		b = append(b, `"created":true,`...)
	}
	if len(r.Events) > 0 {
		b = append(b, `"events":[`...)
		for i := range r.Events {
			if i > 0 {
				b = append(b, ',')
			}
			b = r.Events[i].AppendJSON(b)
		}
		b = append(b, "],"...)
	}
	b = appendIntField(b, "revision", r.Revision)
	if r.Error != nil {
		b = append(b, `,"error":`...)
		b = r.Error.AppendJSON(b)
	}
	return append(b, '}')
}

// MarshalJSON implements json.Marshaler.
func (r WatchResponse) MarshalJSON() ([]byte, error) { return r.AppendJSON(nil), nil }

// AppendJSON appends e's JSON encoding to b.
func (e *Error) AppendJSON(b []byte) []byte {
	b = append(b, `{"error":`...)
	b = AppendString(b, strings.ToValidUTF8(e.Message, "\uFFFD"))
	b = append(b, `,"code":`...)
	b = AppendString(b, strings.ToValidUTF8(e.Code, "\uFFFD"))
	if e.Leader != "" {
		b = append(b, `,"leader":`...)
		b = AppendString(b, strings.ToValidUTF8(e.Leader, "\uFFFD"))
	}
	if e.CompactRevision != 0 {
		b = append(b, ',')
		b = appendIntField(b, "compact_revision", e.CompactRevision)
	}
	if e.KV != nil {
		b = append(b, `,"kv":`...)
		b = e.KV.AppendJSON(b)
	}
	return append(b, '}')
}

// MarshalJSON implements json.Marshaler.
func (e Error) MarshalJSON() ([]byte, error) { return e.AppendJSON(nil), nil }

// Decoding. Byte fields accept "name" (a JSON string) or "name_base64"
// (standard base64), not both; null counts as absent.

// pickBytes chooses between the string and the base64 form of a field.
func pickBytes(name string, s *string, b []byte) ([]byte, error) {
	switch {
	case s != nil && b != nil:
		return nil, fmt.Errorf("%w: both %q and %q given", ErrMalformed, name, name+"_base64")
	case b != nil:
		return b, nil
	case s != nil:
		return []byte(*s), nil
	}
	return nil, nil
}

// unmarshalStrict decodes data into v rejecting unknown members.
func unmarshalStrict(data []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(data))
	d.DisallowUnknownFields()
	return d.Decode(v)
}

// keyValueWire is the key and value members shared by several wire
// types: each as a UTF-8 string or as base64, never both.
type keyValueWire struct {
	Key         *string `json:"key"`
	KeyBase64   []byte  `json:"key_base64"`
	Value       *string `json:"value"`
	ValueBase64 []byte  `json:"value_base64"`
}

// pick returns the key and the value, whichever form each came in.
func (w *keyValueWire) pick() (key, value []byte, err error) {
	if key, err = pickBytes("key", w.Key, w.KeyBase64); err != nil {
		return nil, nil, err
	}
	if value, err = pickBytes("value", w.Value, w.ValueBase64); err != nil {
		return nil, nil, err
	}
	return key, value, nil
}

type kvWire struct {
	keyValueWire
	CreateRevision int64 `json:"create_revision"`
	ModRevision    int64 `json:"mod_revision"`
	Version        int64 `json:"version"`
}

// UnmarshalJSON implements json.Unmarshaler. Unknown members are ignored
// (KeyValue is a response type: newer servers may add members).
func (kv *KeyValue) UnmarshalJSON(data []byte) error {
	var w kvWire
	if err := json.Unmarshal(data, &w); err != nil {
		return err
	}
	key, value, err := w.pick()
	if err != nil {
		return err
	}
	*kv = KeyValue{Key: key, Value: value, CreateRevision: w.CreateRevision, ModRevision: w.ModRevision, Version: w.Version}
	return nil
}

type putWire struct {
	Value       *string `json:"value"`
	ValueBase64 []byte  `json:"value_base64"`
}

// UnmarshalJSON implements json.Unmarshaler; unknown members are an error.
func (r *PutRequest) UnmarshalJSON(data []byte) error {
	var w putWire
	if err := unmarshalStrict(data, &w); err != nil {
		return err
	}
	v, err := pickBytes("value", w.Value, w.ValueBase64)
	if err != nil {
		return err
	}
	if v == nil {
		return fmt.Errorf("%w: missing \"value\" or \"value_base64\"", ErrMalformed)
	}
	r.Value = v
	return nil
}

// MarshalJSON implements json.Marshaler.
func (r PutRequest) MarshalJSON() ([]byte, error) {
	b := append(make([]byte, 0, len(r.Value)+16), '{')
	b = AppendBytesField(b, "value", r.Value)
	return append(b, '}'), nil
}

type compareWire struct {
	keyValueWire
	Target string `json:"target"`
	Result string `json:"result"`
	Number int64  `json:"number"`
}

// UnmarshalJSON implements json.Unmarshaler; unknown members are an error.
func (c *Compare) UnmarshalJSON(data []byte) error {
	var w compareWire
	if err := unmarshalStrict(data, &w); err != nil {
		return err
	}
	key, value, err := w.pick()
	if err != nil {
		return err
	}
	*c = Compare{Key: key, Target: w.Target, Result: w.Result, Value: value, Number: w.Number}
	return nil
}

// MarshalJSON implements json.Marshaler.
func (c Compare) MarshalJSON() ([]byte, error) {
	b := append(make([]byte, 0, 64+len(c.Key)+len(c.Value)), '{')
	b = AppendBytesField(b, "key", c.Key)
	b = append(b, `,"target":`...)
	b = AppendString(b, strings.ToValidUTF8(c.Target, "\uFFFD"))
	b = append(b, `,"result":`...)
	b = AppendString(b, strings.ToValidUTF8(c.Result, "\uFFFD"))
	if c.Value != nil || c.Target == TargetValue {
		b = append(b, ',')
		b = AppendBytesField(b, "value", c.Value)
	}
	if c.Number != 0 {
		b = append(b, ',')
		b = appendIntField(b, "number", c.Number)
	}
	return append(b, '}'), nil
}

type opWire struct {
	keyValueWire
	Type    string `json:"type"`
	Prefix  bool   `json:"prefix"`
	Limit   int64  `json:"limit"`
	PrevKV  bool   `json:"prev_kv"`
	Session uint64 `json:"session"`
}

// UnmarshalJSON implements json.Unmarshaler; unknown members are an error.
func (op *Op) UnmarshalJSON(data []byte) error {
	var w opWire
	if err := unmarshalStrict(data, &w); err != nil {
		return err
	}
	key, value, err := w.pick()
	if err != nil {
		return err
	}
	*op = Op{Type: w.Type, Key: key, Value: value, Prefix: w.Prefix, Limit: w.Limit, PrevKV: w.PrevKV, Session: w.Session}
	return nil
}

// MarshalJSON implements json.Marshaler.
func (op Op) MarshalJSON() ([]byte, error) {
	b := append(make([]byte, 0, 64+len(op.Key)+len(op.Value)), `{"type":`...)
	b = AppendString(b, strings.ToValidUTF8(op.Type, "\uFFFD"))
	b = append(b, ',')
	b = AppendBytesField(b, "key", op.Key)
	if op.Value != nil || op.Type == OpPut {
		b = append(b, ',')
		b = AppendBytesField(b, "value", op.Value)
	}
	if op.Prefix {
		b = append(b, `,"prefix":true`...)
	}
	if op.Limit != 0 {
		b = append(b, ',')
		b = appendIntField(b, "limit", op.Limit)
	}
	if op.PrevKV {
		b = append(b, `,"prev_kv":true`...)
	}
	if op.Session != 0 {
		b = append(b, `,"session":`...)
		b = strconv.AppendUint(b, op.Session, 10)
	}
	return append(b, '}'), nil
}

type txnWire struct {
	Compare []Compare `json:"compare"`
	Success []Op      `json:"success"`
	Failure []Op      `json:"failure"`
}

// UnmarshalJSON implements json.Unmarshaler; unknown members are an error.
func (r *TxnRequest) UnmarshalJSON(data []byte) error {
	var w txnWire
	if err := unmarshalStrict(data, &w); err != nil {
		return err
	}
	*r = TxnRequest(w)
	return nil
}

type addMemberWire AddMemberRequest

// UnmarshalJSON implements json.Unmarshaler; unknown members are an error.
func (r *AddMemberRequest) UnmarshalJSON(data []byte) error {
	var w addMemberWire
	if err := unmarshalStrict(data, &w); err != nil {
		return err
	}
	*r = AddMemberRequest(w)
	return nil
}

type transferWire TransferLeaderRequest

// UnmarshalJSON implements json.Unmarshaler; unknown members are an error.
func (r *TransferLeaderRequest) UnmarshalJSON(data []byte) error {
	var w transferWire
	if err := unmarshalStrict(data, &w); err != nil {
		return err
	}
	*r = TransferLeaderRequest(w)
	return nil
}
