package api_test

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/statenode/statenode/api"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestKeyValueJSON(t *testing.T) {
	cases := []struct {
		name string
		kv   api.KeyValue
		json string
	}{
		{"utf8", api.KeyValue{Key: []byte("k"), Value: []byte("v"), CreateRevision: 1, ModRevision: 2, Version: 3},
			`{"key":"k","value":"v","create_revision":1,"mod_revision":2,"version":3}`},
		{"escapes", api.KeyValue{Key: []byte("a\"b\\c"), Value: []byte("line\n\ttab\x00\x1f<>&é")},
			`{"key":"a\"b\\c","value":"line\n\ttab\u0000\u001f<>&é","create_revision":0,"mod_revision":0,"version":0}`},
		{"binary value", api.KeyValue{Key: []byte("k"), Value: []byte{0xff, 0}},
			`{"key":"k","value_base64":"/wA=","create_revision":0,"mod_revision":0,"version":0}`},
		{"binary key", api.KeyValue{Key: []byte{0x80}, Value: []byte{}},
			`{"key_base64":"gA==","value":"","create_revision":0,"mod_revision":0,"version":0}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.kv.AppendJSON(nil)
			assert.Equal(t, tc.json, string(b))
			var back api.KeyValue
			require.NoError(t, json.Unmarshal(b, &back))
			assert.Equal(t, tc.kv.Key, back.Key)
			assert.Equal(t, string(tc.kv.Value), string(back.Value))
			assert.Equal(t, tc.kv.ModRevision, back.ModRevision)
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	var kv api.KeyValue
	require.ErrorIs(t, json.Unmarshal([]byte(`{"key":"a","key_base64":"YQ=="}`), &kv), api.ErrMalformed)
	require.Error(t, json.Unmarshal([]byte(`{"value_base64":"!!"}`), &kv))
	require.NoError(t, json.Unmarshal([]byte(`{"key":"a","future_field":1}`), &kv), "responses tolerate new members")

	var op api.Op
	require.Error(t, json.Unmarshal([]byte(`{"type":"put","key":"a","value":"v","ttl":1}`), &op), "requests reject unknown members")
	var pr api.PutRequest
	require.ErrorIs(t, json.Unmarshal([]byte(`{}`), &pr), api.ErrMalformed)
	require.ErrorIs(t, json.Unmarshal([]byte(`{"value":"a","value_base64":"YQ=="}`), &pr), api.ErrMalformed)
	require.NoError(t, json.Unmarshal([]byte(`{"value_base64":"AAE="}`), &pr))
	assert.Equal(t, []byte{0, 1}, pr.Value)
	var tr api.TxnRequest
	require.Error(t, json.Unmarshal([]byte(`{"succes":[]}`), &tr))
}

func TestTxnRoundTrip(t *testing.T) {
	req := api.TxnRequest{
		Compare: []api.Compare{api.CompareModRevision("a", api.ResultEqual, 0), api.CompareValue("b", api.ResultNotEqual, []byte{0xfe}), api.CompareVersion("c", api.ResultGreater, 2), api.CompareCreateRevision("d", api.ResultLess, 9)},
		Success: []api.Op{api.PutOp("a", []byte("v")), api.PutOp("e", nil), {Type: api.OpPut, Key: []byte("eph"), Value: []byte("v"), Session: 1 << 20}, {Type: api.OpGet, Key: []byte("p"), Prefix: true, Limit: 3}},
		Failure: []api.Op{api.DeleteOp("a"), {Type: api.OpDelete, Key: []byte{0xff}, Prefix: true, PrevKV: true}},
	}
	b, err := json.Marshal(req)
	require.NoError(t, err)
	var back api.TxnRequest
	require.NoError(t, json.Unmarshal(b, &back))
	req.Success[1].Value = []byte{} // a put of nil is a put of the empty value
	assert.Equal(t, req, back)
}

func TestResponsesMatchEncodingJSON(t *testing.T) {
	// The appenders must produce what the struct tags describe.
	prev := &api.KeyValue{Key: []byte("k"), Value: []byte{1, 2}, Version: 1}
	for _, v := range []any{
		api.PutResponse{Revision: 5, PrevKV: prev},
		api.DeleteResponse{Deleted: 1, Revision: 6, PrevKVs: []api.KeyValue{*prev}},
		api.RangeResponse{KVs: []api.KeyValue{*prev}, More: true, Count: 9, Revision: 7},
		api.TxnResponse{Succeeded: true, Revision: 8, Results: []api.OpResult{{Type: api.OpGet, KVs: []api.KeyValue{*prev}, More: true, Count: 1}, {Type: api.OpPut}}},
		api.WatchResponse{Events: []api.Event{{Type: api.EventPut, KV: *prev, PrevKV: prev}, {Type: api.EventDelete, KV: api.KeyValue{Key: []byte("k"), ModRevision: 9}}}, Revision: 9},
		api.WatchResponse{Created: true, Revision: 3},
		api.WatchResponse{Revision: 3, Error: &api.Error{Message: "gone", Code: api.CodeCompacted, CompactRevision: 2}},
		api.Error{Message: "x", Code: api.CodeCASFailed, Leader: "h:1", KV: prev},
	} {
		b, err := json.Marshal(v)
		require.NoError(t, err)
		require.True(t, json.Valid(b), "%s", b)
		// Decode into the same type and encode again: identical bytes.
		ptr := newOf(v)
		require.NoError(t, json.Unmarshal(b, ptr), "%s", b)
		b2, err := json.Marshal(ptr)
		require.NoError(t, err)
		assert.Equal(t, string(b), string(b2))
	}
}

func newOf(v any) any {
	switch v.(type) {
	case api.PutResponse:
		return &api.PutResponse{}
	case api.DeleteResponse:
		return &api.DeleteResponse{}
	case api.RangeResponse:
		return &api.RangeResponse{}
	case api.TxnResponse:
		return &api.TxnResponse{}
	case api.WatchResponse:
		return &api.WatchResponse{}
	case api.Error:
		return &api.Error{}
	}
	panic("unknown type")
}

func FuzzKeyValueJSON(f *testing.F) {
	f.Add([]byte("k"), []byte("v"), int64(1))
	f.Add([]byte{0xff}, []byte("\x00\"\\\n"), int64(-1))
	f.Add([]byte("é\u2028"), []byte{0xed, 0xa0, 0x80}, int64(1<<62))
	f.Fuzz(func(t *testing.T, key, value []byte, rev int64) {
		kv := api.KeyValue{Key: key, Value: value, CreateRevision: rev, ModRevision: rev, Version: rev}
		b, err := json.Marshal(kv)
		if err != nil {
			t.Fatal(err)
		}
		if !json.Valid(b) {
			t.Fatalf("invalid JSON %q", b)
		}
		var back api.KeyValue
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("%q: %v", b, err)
		}
		if !bytes.Equal(back.Key, key) || !bytes.Equal(back.Value, value) || back.ModRevision != rev {
			t.Fatalf("round trip: %+v -> %s -> %+v", kv, b, back)
		}
		// Arbitrary input never panics the decoders.
		_ = json.Unmarshal(key, &back)
		var tr api.TxnRequest
		_ = json.Unmarshal(value, &tr)
	})
}
