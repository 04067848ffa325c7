package node_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/statenode/statenode/api"
	"github.com/statenode/statenode/fsm"
	"github.com/statenode/statenode/node"
	"github.com/statenode/statenode/node/nodetest"
)

// httpT sends requests to one node's client API.
type httpT struct {
	t    testing.TB
	base string
	hc   *http.Client
}

func newHTTPT(t testing.TB, n *node.Node) *httpT {
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	t.Cleanup(tr.CloseIdleConnections)
	return &httpT{t: t, base: "http://" + n.HTTPAddr(), hc: &http.Client{Transport: tr}}
}

type httpAnswer struct {
	status int
	header http.Header
	body   []byte
}

func (a httpAnswer) json(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(a.body, &m), "body %q", a.body)
	return m
}

// code returns the error code of an error answer.
func (a httpAnswer) code(t testing.TB) string {
	t.Helper()
	var e api.Error
	require.NoError(t, json.Unmarshal(a.body, &e), "body %q", a.body)
	return e.Code
}

func (h *httpT) do(method, path string, body []byte) httpAnswer {
	h.t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, h.base+path, rd)
	require.NoError(h.t, err)
	resp, err := h.hc.Do(req)
	require.NoError(h.t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(h.t, err)
	return httpAnswer{status: resp.StatusCode, header: resp.Header, body: b}
}

func (h *httpT) str(method, path, body string) httpAnswer {
	h.t.Helper()
	var b []byte
	if body != "" {
		b = []byte(body)
	}
	return h.do(method, path, b)
}

// revision is the node's store revision: on a single node, it moves iff
// something was written.
func revision(n *node.Node) int64 { return n.FSM().Revision() }

func smallLimits(i int, c *node.Config) {
	c.Limits = fsm.Limits{MaxKeySize: 64, MaxValueSize: 1024, MaxTxnOps: 8, MaxRequestSize: 4096}
}

func TestHTTPKeyValue(t *testing.T) {
	c := nodetest.MakeCluster(t, 1)
	n := c.Leader(t)
	h := newHTTPT(t, n)

	// PUT with a JSON body, then GET.
	a := h.str("PUT", "/v1/kv/greeting", `{"value":"hello \"world\"\n"}`)
	require.Equal(t, 200, a.status, "%s", a.body)
	rev1 := int64(a.json(t)["revision"].(float64))
	assert.Equal(t, "application/json", a.header.Get("Content-Type"))

	a = h.str("GET", "/v1/kv/greeting", "")
	require.Equal(t, 200, a.status, "%s", a.body)
	var kv api.KeyValue
	require.NoError(t, json.Unmarshal(a.body, &kv))
	assert.Equal(t, api.KeyValue{Key: []byte("greeting"), Value: []byte("hello \"world\"\n"), CreateRevision: rev1, ModRevision: rev1, Version: 1}, kv)
	assert.EqualValues(t, rev1, a.json(t)["revision"])

	// value_base64 in, prev_kv out.
	a = h.str("PUT", "/v1/kv/greeting?prev_kv", `{"value_base64":"`+base64.StdEncoding.EncodeToString([]byte("bye"))+`"}`)
	require.Equal(t, 200, a.status, "%s", a.body)
	var pr api.PutResponse
	require.NoError(t, json.Unmarshal(a.body, &pr))
	assert.Equal(t, rev1+1, pr.Revision)
	require.NotNil(t, pr.PrevKV)
	assert.Equal(t, "hello \"world\"\n", string(pr.PrevKV.Value))

	// Historical read.
	a = h.str("GET", "/v1/kv/greeting?revision="+fmt.Sprint(rev1), "")
	require.Equal(t, 200, a.status, "%s", a.body)
	assert.Equal(t, "hello \"world\"\n", a.json(t)["value"])

	// Stale read, both spellings.
	for _, q := range []string{"?stale", "?consistency=stale", "?consistency=linearizable"} {
		a = h.str("GET", "/v1/kv/greeting"+q, "")
		require.Equal(t, 200, a.status, "%s: %s", q, a.body)
		assert.Equal(t, "bye", a.json(t)["value"], q)
	}

	// Missing key.
	a = h.str("GET", "/v1/kv/nope", "")
	require.Equal(t, 404, a.status)
	assert.Equal(t, api.CodeNotFound, a.code(t))
	a = h.str("GET", "/v1/kv/nope?raw", "")
	require.Equal(t, 404, a.status)

	// Keys with characters that need escaping, and ones net/http would clean.
	for _, k := range []struct{ path, key string }{
		{"/v1/kv/a%20b%3Fc%23d", "a b?c#d"},
		{"/v1/kv/%2Fleading", "/leading"},
		{"/v1/kv/a%2F%2Fb", "a//b"},
		{"/v1/kv/%2E", "."},
		{"/v1/kv/dir/sub/", "dir/sub/"},
		{"/v1/kv/?key=%2F%2Fvia-query", "//via-query"},
	} {
		a = h.str("PUT", k.path, `{"value":"x"}`)
		require.Equal(t, 200, a.status, "%s: %s", k.path, a.body)
		got, err := n.Get(context.Background(), []byte(k.key), node.Stale)
		require.NoError(t, err, k.key)
		assert.Equal(t, "x", string(got.Value))
		a = h.str("GET", k.path, "")
		require.Equal(t, 200, a.status, "%s: %s", k.path, a.body)
		assert.Equal(t, k.key, a.json(t)["key"])
	}

	// Delete one key, then a missing one.
	a = h.str("DELETE", "/v1/kv/greeting?prev_kv", "")
	require.Equal(t, 200, a.status, "%s", a.body)
	var dr api.DeleteResponse
	require.NoError(t, json.Unmarshal(a.body, &dr))
	assert.EqualValues(t, 1, dr.Deleted)
	require.Len(t, dr.PrevKVs, 1)
	assert.Equal(t, "bye", string(dr.PrevKVs[0].Value))
	before := revision(n)
	a = h.str("DELETE", "/v1/kv/greeting", "")
	require.Equal(t, 200, a.status, "%s", a.body)
	assert.EqualValues(t, 0, a.json(t)["deleted"])
	assert.Equal(t, before, revision(n), "deleting nothing writes nothing")
}

func TestHTTPRawBinary(t *testing.T) {
	c := nodetest.MakeCluster(t, 1)
	n := c.Leader(t)
	h := newHTTPT(t, n)

	value := []byte{0, 0xff, 0xfe, '\n', '"', 0x80, 'x', 0}
	a := h.do("PUT", "/v1/kv/bin%00key?raw", value)
	require.Equal(t, 200, a.status, "%s", a.body)
	rev := int64(a.json(t)["revision"].(float64))

	a = h.str("GET", "/v1/kv/bin%00key?raw", "")
	require.Equal(t, 200, a.status)
	assert.Equal(t, value, a.body, "raw GET returns the exact bytes")
	assert.Equal(t, "application/octet-stream", a.header.Get("Content-Type"))
	assert.Equal(t, fmt.Sprint(rev), a.header.Get(api.HeaderRevision))
	assert.Equal(t, fmt.Sprint(rev), a.header.Get(api.HeaderModRevision))
	assert.Equal(t, fmt.Sprint(rev), a.header.Get(api.HeaderCreateRevision))
	assert.Equal(t, "1", a.header.Get(api.HeaderVersion))

	// JSON reads use value_base64 for bytes that are not UTF-8.
	a = h.str("GET", "/v1/kv/bin%00key", "")
	require.Equal(t, 200, a.status)
	m := a.json(t)
	assert.Equal(t, "bin\x00key", m["key"])
	assert.Equal(t, base64.StdEncoding.EncodeToString(value), m["value_base64"])
	assert.NotContains(t, m, "value")

	// An empty raw value is a value.
	a = h.do("PUT", "/v1/kv/empty?raw", []byte{})
	require.Equal(t, 200, a.status, "%s", a.body)
	a = h.str("GET", "/v1/kv/empty?raw", "")
	require.Equal(t, 200, a.status)
	assert.Empty(t, a.body)
	assert.Equal(t, "1", a.header.Get(api.HeaderVersion))

	// A chunked raw body (no Content-Length) works too.
	req, err := http.NewRequest("PUT", h.base+"/v1/kv/chunked?raw", io.MultiReader(bytes.NewReader(value), strings.NewReader("tail")))
	require.NoError(t, err)
	resp, err := h.hc.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode)
	got, err := n.Get(context.Background(), []byte("chunked"), node.Stale)
	require.NoError(t, err)
	assert.Equal(t, append(append([]byte{}, value...), "tail"...), got.Value)
}

func TestHTTPRange(t *testing.T) {
	c := nodetest.MakeCluster(t, 1)
	n := c.Leader(t)
	h := newHTTPT(t, n)
	for i := range 5 {
		require.Equal(t, 200, h.str("PUT", fmt.Sprintf("/v1/kv/p/%d", i), fmt.Sprintf(`{"value":"v%d"}`, i)).status)
	}
	require.Equal(t, 200, h.str("PUT", "/v1/kv/q", `{"value":"other"}`).status)

	var rr api.RangeResponse
	a := h.str("GET", "/v1/kv/p/?prefix&limit=3", "")
	require.Equal(t, 200, a.status, "%s", a.body)
	require.NoError(t, json.Unmarshal(a.body, &rr))
	require.Len(t, rr.KVs, 3)
	assert.Equal(t, "p/0", string(rr.KVs[0].Key))
	assert.Equal(t, "v2", string(rr.KVs[2].Value))
	assert.True(t, rr.More)
	assert.EqualValues(t, 5, rr.Count)
	assert.Equal(t, revision(n), rr.Revision)

	a = h.str("GET", "/v1/kv/p/?prefix&keys_only", "")
	require.Equal(t, 200, a.status)
	require.NoError(t, json.Unmarshal(a.body, &rr))
	require.Len(t, rr.KVs, 5)
	assert.Empty(t, rr.KVs[0].Value)

	a = h.str("GET", "/v1/kv/p/?prefix&count_only", "")
	require.Equal(t, 200, a.status)
	rr = api.RangeResponse{}
	require.NoError(t, json.Unmarshal(a.body, &rr))
	assert.Empty(t, rr.KVs)
	assert.EqualValues(t, 5, rr.Count)

	// All keys.
	a = h.str("GET", "/v1/kv/?prefix", "")
	require.Equal(t, 200, a.status)
	require.NoError(t, json.Unmarshal(a.body, &rr))
	assert.Len(t, rr.KVs, 6)

	// No match: an empty list, not null.
	a = h.str("GET", "/v1/kv/zzz?prefix", "")
	require.Equal(t, 200, a.status)
	assert.Contains(t, string(a.body), `"kvs":[]`)

	// Delete a prefix.
	a = h.str("DELETE", "/v1/kv/p/?prefix&prev_kv", "")
	require.Equal(t, 200, a.status, "%s", a.body)
	var dr api.DeleteResponse
	require.NoError(t, json.Unmarshal(a.body, &dr))
	assert.EqualValues(t, 5, dr.Deleted)
	assert.Len(t, dr.PrevKVs, 5)
	a = h.str("GET", "/v1/kv/?prefix&count_only", "")
	assert.EqualValues(t, 1, a.json(t)["count"])
}

func TestHTTPCompareAndSwap(t *testing.T) {
	c := nodetest.MakeCluster(t, 1)
	n := c.Leader(t)
	h := newHTTPT(t, n)

	// if_mod_revision=0: create only if absent.
	a := h.str("PUT", "/v1/kv/lock?if_mod_revision=0", `{"value":"me"}`)
	require.Equal(t, 200, a.status, "%s", a.body)
	rev := int64(a.json(t)["revision"].(float64))

	before := revision(n)
	a = h.str("PUT", "/v1/kv/lock?if_mod_revision=0", `{"value":"you"}`)
	require.Equal(t, 409, a.status, "%s", a.body)
	var e api.Error
	require.NoError(t, json.Unmarshal(a.body, &e))
	assert.Equal(t, api.CodeCASFailed, e.Code)
	require.NotNil(t, e.KV, "the current value comes with the 409")
	assert.Equal(t, "me", string(e.KV.Value))
	assert.Equal(t, rev, e.KV.ModRevision)
	assert.Equal(t, before, revision(n), "a failed CAS writes nothing")

	for _, q := range []string{
		fmt.Sprintf("if_mod_revision=%d", rev+5),
		"if_version=2",
		"if_value=nope",
		fmt.Sprintf("if_mod_revision=%d&if_value=nope", rev),
	} {
		a = h.str("PUT", "/v1/kv/lock?"+q, `{"value":"x"}`)
		require.Equal(t, 409, a.status, "%s: %s", q, a.body)
		a = h.str("DELETE", "/v1/kv/lock?"+q, "")
		require.Equal(t, 409, a.status, "%s: %s", q, a.body)
		assert.Equal(t, before, revision(n), q)
	}
	// A missing key has no value: if_value fails, 409 without kv.
	a = h.str("PUT", "/v1/kv/missing?if_value=", `{"value":"x"}`)
	require.Equal(t, 409, a.status)
	e = api.Error{}
	require.NoError(t, json.Unmarshal(a.body, &e))
	assert.Nil(t, e.KV)

	a = h.str("PUT", fmt.Sprintf("/v1/kv/lock?if_mod_revision=%d&if_version=1&if_value=me&prev_kv", rev), `{"value":"next"}`)
	require.Equal(t, 200, a.status, "%s", a.body)
	rev2 := int64(a.json(t)["revision"].(float64))
	a = h.str("DELETE", fmt.Sprintf("/v1/kv/lock?if_mod_revision=%d", rev2), "")
	require.Equal(t, 200, a.status, "%s", a.body)
	assert.EqualValues(t, 1, a.json(t)["deleted"])
}

func TestHTTPTxn(t *testing.T) {
	c := nodetest.MakeCluster(t, 1)
	n := c.Leader(t)
	h := newHTTPT(t, n)
	rev := int64(h.str("PUT", "/v1/kv/a", `{"value":"1"}`).json(t)["revision"].(float64))

	body := fmt.Sprintf(`{
		"compare": [{"key":"a","target":"mod_revision","result":"=","number":%d},
		            {"key":"a","target":"value","result":"=","value":"1"}],
		"success": [{"type":"put","key":"b","value_base64":"AP8="},
		            {"type":"put","key":"a","value":"2","prev_kv":true},
		            {"type":"get","key":"","prefix":true}],
		"failure": [{"type":"get","key":"a"}]
	}`, rev)
	a := h.str("POST", "/v1/txn", body)
	require.Equal(t, 200, a.status, "%s", a.body)
	var tr api.TxnResponse
	require.NoError(t, json.Unmarshal(a.body, &tr))
	assert.True(t, tr.Succeeded)
	assert.Equal(t, rev+1, tr.Revision, "one txn, one revision")
	require.Len(t, tr.Results, 3)
	assert.Equal(t, api.OpPut, tr.Results[1].Type)
	require.Len(t, tr.Results[1].KVs, 1)
	assert.Equal(t, "1", string(tr.Results[1].KVs[0].Value))
	assert.Equal(t, api.OpGet, tr.Results[2].Type)
	require.Len(t, tr.Results[2].KVs, 2)
	assert.Equal(t, []byte{0, 0xff}, tr.Results[2].KVs[1].Value)

	// The same txn again fails its compares and runs the failure branch.
	a = h.str("POST", "/v1/txn", body)
	require.Equal(t, 200, a.status, "%s", a.body)
	require.NoError(t, json.Unmarshal(a.body, &tr))
	assert.False(t, tr.Succeeded)
	assert.Equal(t, rev+1, tr.Revision)
	require.Len(t, tr.Results, 1)
	assert.Equal(t, "2", string(tr.Results[0].KVs[0].Value))

	// Delete in a txn.
	a = h.str("POST", "/v1/txn", `{"success":[{"type":"delete","key":"","prefix":true,"prev_kv":true}]}`)
	require.Equal(t, 200, a.status, "%s", a.body)
	require.NoError(t, json.Unmarshal(a.body, &tr))
	assert.EqualValues(t, 2, tr.Results[0].Count)
	assert.Len(t, tr.Results[0].KVs, 2)
}

// TestHTTPBadInput checks that every malformed or oversize request gets
// the right status and code, and that nothing is written.
func TestHTTPBadInput(t *testing.T) {
	c := nodetest.MakeCluster(t, 1, nodetest.WithConfig(smallLimits))
	n := c.Leader(t)
	h := newHTTPT(t, n)
	require.Equal(t, 200, h.str("PUT", "/v1/kv/exists", `{"value":"x"}`).status)

	long := strings.Repeat("k", 65)
	ops := make([]string, 9)
	for i := range ops {
		ops[i] = fmt.Sprintf(`{"type":"put","key":"k%d","value":"v"}`, i)
	}
	tooManyOps := `{"success":[` + strings.Join(ops, ",") + `]}`

	cases := []struct {
		name, method, path string
		body               []byte
		status             int
		code               string
	}{
		{"empty key", "PUT", "/v1/kv/", []byte(`{"value":"x"}`), 400, api.CodeInvalid},
		{"empty key raw", "PUT", "/v1/kv/?raw", []byte("x"), 400, api.CodeInvalid},
		{"oversize key", "PUT", "/v1/kv/" + long, []byte(`{"value":"x"}`), 413, api.CodeTooLarge},
		{"oversize value", "PUT", "/v1/kv/k?raw", bytes.Repeat([]byte("v"), 1025), 413, api.CodeTooLarge},
		{"oversize value json", "PUT", "/v1/kv/k", []byte(`{"value":"` + strings.Repeat("v", 1025) + `"}`), 413, api.CodeTooLarge},
		{"raw body over limit", "PUT", "/v1/kv/k?raw", bytes.Repeat([]byte("v"), 4097), 413, api.CodeTooLarge},
		{"json body over limit", "PUT", "/v1/kv/k", []byte(`{"value":"` + strings.Repeat("v", 2*4096+64<<10) + `"}`), 413, api.CodeTooLarge},
		{"malformed json", "PUT", "/v1/kv/k", []byte(`{"value":`), 400, api.CodeBadRequest},
		{"not an object", "PUT", "/v1/kv/k", []byte(`"x"`), 400, api.CodeBadRequest},
		{"empty body", "PUT", "/v1/kv/k", nil, 400, api.CodeBadRequest},
		{"no value", "PUT", "/v1/kv/k", []byte(`{}`), 400, api.CodeBadRequest},
		{"unknown member", "PUT", "/v1/kv/k", []byte(`{"value":"x","ttl":5}`), 400, api.CodeBadRequest},
		{"both value forms", "PUT", "/v1/kv/k", []byte(`{"value":"x","value_base64":"eA=="}`), 400, api.CodeBadRequest},
		{"bad base64", "PUT", "/v1/kv/k", []byte(`{"value_base64":"not base64!"}`), 400, api.CodeBadRequest},
		{"trailing garbage", "PUT", "/v1/kv/k", []byte(`{"value":"x"} {}`), 400, api.CodeBadRequest},
		{"bad number", "PUT", "/v1/kv/k?if_mod_revision=abc", []byte(`{"value":"x"}`), 400, api.CodeBadRequest},
		{"negative number", "PUT", "/v1/kv/k?if_version=-1", []byte(`{"value":"x"}`), 400, api.CodeBadRequest},
		{"number overflow", "PUT", "/v1/kv/k?if_mod_revision=99999999999999999999", []byte(`{"value":"x"}`), 400, api.CodeBadRequest},
		{"bad bool", "PUT", "/v1/kv/k?prev_kv=yes", []byte(`{"value":"x"}`), 400, api.CodeBadRequest},
		{"unknown param", "PUT", "/v1/kv/k?prefx", []byte(`{"value":"x"}`), 400, api.CodeBadRequest},
		{"param twice", "PUT", "/v1/kv/k?raw&raw", []byte("x"), 400, api.CodeBadRequest},
		{"bad escape", "PUT", "/v1/kv/k?if_value=%zz", []byte(`{"value":"x"}`), 400, api.CodeBadRequest},
		{"key twice", "PUT", "/v1/kv/k?key=j", []byte(`{"value":"x"}`), 400, api.CodeBadRequest},
		{"prefix on put", "PUT", "/v1/kv/k?prefix", []byte(`{"value":"x"}`), 400, api.CodeBadRequest},
		{"delete empty key", "DELETE", "/v1/kv/", nil, 400, api.CodeInvalid},
		{"delete prefix with condition", "DELETE", "/v1/kv/e?prefix&if_version=1", nil, 400, api.CodeBadRequest},
		{"delete bad number", "DELETE", "/v1/kv/exists?if_mod_revision=1e3", nil, 400, api.CodeBadRequest},
		{"txn malformed", "POST", "/v1/txn", []byte(`{"success":[`), 400, api.CodeBadRequest},
		{"txn empty", "POST", "/v1/txn", []byte(`{}`), 400, api.CodeInvalid},
		{"txn no body", "POST", "/v1/txn", nil, 400, api.CodeBadRequest},
		{"txn unknown member", "POST", "/v1/txn", []byte(`{"succes":[]}`), 400, api.CodeBadRequest},
		{"txn unknown op member", "POST", "/v1/txn", []byte(`{"success":[{"type":"put","key":"k","value":"v","lease":1}]}`), 400, api.CodeBadRequest},
		{"txn too many ops", "POST", "/v1/txn", []byte(tooManyOps), 413, api.CodeTooLarge},
		{"txn unknown target", "POST", "/v1/txn", []byte(`{"compare":[{"key":"k","target":"lease","result":"=","number":1}],"success":[{"type":"put","key":"k","value":"v"}]}`), 400, api.CodeInvalid},
		{"txn unknown result", "POST", "/v1/txn", []byte(`{"compare":[{"key":"k","target":"version","result":"~","number":1}],"success":[{"type":"put","key":"k","value":"v"}]}`), 400, api.CodeInvalid},
		{"txn unknown op", "POST", "/v1/txn", []byte(`{"success":[{"type":"increment","key":"k"}]}`), 400, api.CodeInvalid},
		{"txn put without value", "POST", "/v1/txn", []byte(`{"success":[{"type":"put","key":"k"}]}`), 400, api.CodeInvalid},
		{"txn value on delete", "POST", "/v1/txn", []byte(`{"success":[{"type":"delete","key":"k","value":"v"}]}`), 400, api.CodeInvalid},
		{"txn number on value compare", "POST", "/v1/txn", []byte(`{"compare":[{"key":"k","target":"value","result":"=","number":3}],"success":[{"type":"put","key":"k","value":"v"}]}`), 400, api.CodeInvalid},
		{"txn bad number type", "POST", "/v1/txn", []byte(`{"compare":[{"key":"k","target":"version","result":"=","number":"3"}],"success":[{"type":"put","key":"k","value":"v"}]}`), 400, api.CodeBadRequest},
		{"txn fractional limit", "POST", "/v1/txn", []byte(`{"success":[{"type":"get","key":"k","limit":1.5}]}`), 400, api.CodeBadRequest},
		{"txn negative limit", "POST", "/v1/txn", []byte(`{"success":[{"type":"get","key":"k","limit":-1}]}`), 400, api.CodeInvalid},
		{"txn bad base64 key", "POST", "/v1/txn", []byte(`{"success":[{"type":"put","key_base64":"@@","value":"v"}]}`), 400, api.CodeBadRequest},
		{"txn empty key", "POST", "/v1/txn", []byte(`{"success":[{"type":"put","key":"","value":"v"}]}`), 400, api.CodeInvalid},
		{"txn oversize key", "POST", "/v1/txn", []byte(`{"success":[{"type":"put","key":"` + long + `","value":"v"}]}`), 413, api.CodeTooLarge},
		{"txn duplicate write", "POST", "/v1/txn", []byte(`{"success":[{"type":"put","key":"k","value":"v"},{"type":"delete","key":"k"}]}`), 400, api.CodeInvalid},
		{"txn query param", "POST", "/v1/txn?raw", []byte(`{"success":[{"type":"put","key":"k","value":"v"}]}`), 400, api.CodeBadRequest},
		{"get empty key", "GET", "/v1/kv/", nil, 400, api.CodeInvalid},
		{"get future revision", "GET", "/v1/kv/exists?revision=1000", nil, 400, api.CodeFutureRevision},
		{"get bad limit", "GET", "/v1/kv/e?prefix&limit=ten", nil, 400, api.CodeBadRequest},
		{"get limit without prefix", "GET", "/v1/kv/exists?limit=1", nil, 400, api.CodeBadRequest},
		{"get raw prefix", "GET", "/v1/kv/e?prefix&raw", nil, 400, api.CodeBadRequest},
		{"get bad consistency", "GET", "/v1/kv/exists?consistency=eventual", nil, 400, api.CodeBadRequest},
		{"get contradicting consistency", "GET", "/v1/kv/exists?stale&consistency=linearizable", nil, 400, api.CodeBadRequest},
		{"get oversize key", "GET", "/v1/kv/" + long, nil, 413, api.CodeTooLarge},
		{"watch without key", "GET", "/v1/watch", nil, 400, api.CodeBadRequest},
		{"watch bad start", "GET", "/v1/watch?key=a&start_revision=x", nil, 400, api.CodeBadRequest},
		{"watch empty key", "GET", "/v1/watch?key=", nil, 400, api.CodeInvalid},
		{"add member malformed", "POST", "/v1/members", []byte(`{"id":`), 400, api.CodeBadRequest},
		{"add member without address", "POST", "/v1/members", []byte(`{"id":"n9"}`), 400, api.CodeInvalid},
		{"add member with a bad id", "POST", "/v1/members", []byte(`{"id":"n 9","raft_addr":"127.0.0.1:1"}`), 400, api.CodeInvalid},
		{"add member with a bad address", "POST", "/v1/members", []byte(`{"id":"n9","raft_addr":"nowhere"}`), 400, api.CodeInvalid},
		{"add member unknown field", "POST", "/v1/members", []byte(`{"id":"n9","raft_addr":"x:1","role":"voter"}`), 400, api.CodeBadRequest},
		{"remove unknown member", "DELETE", "/v1/members/n9", nil, 404, api.CodeUnknownMember},
		{"transfer malformed", "POST", "/v1/leader/transfer", []byte(`{"to":"n2"}`), 400, api.CodeBadRequest},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := revision(n)
			h := newHTTPT(t, n)
			a := h.do(tc.method, tc.path, tc.body)
			assert.Equal(t, tc.status, a.status, "body %s", a.body)
			assert.Equal(t, tc.code, a.code(t), "body %s", a.body)
			assert.Equal(t, "application/json", a.header.Get("Content-Type"))
			assert.Equal(t, before, revision(n), "nothing may be written")
		})
	}

	// A chunked body over the limit (no Content-Length to check up front).
	before := revision(n)
	req, err := http.NewRequest("PUT", h.base+"/v1/kv/k?raw", io.MultiReader(strings.NewReader(strings.Repeat("v", 4000)), strings.NewReader(strings.Repeat("v", 4000))))
	require.NoError(t, err)
	resp, err := h.hc.Do(req)
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, 413, resp.StatusCode, "%s", b)
	assert.Equal(t, before, revision(n))

	// Unknown routes and methods are plain net/http answers.
	assert.Equal(t, 404, h.str("GET", "/v1/nothing", "").status)
	assert.Equal(t, 405, h.str("POST", "/v1/kv/k", "").status)
	assert.Equal(t, before, revision(n))
}

// watchStream reads NDJSON lines of one watch.
type watchStream struct {
	t      testing.TB
	resp   *http.Response
	sc     *bufio.Scanner
	cancel context.CancelFunc
}

func (h *httpT) watch(query string) (*watchStream, httpAnswer) {
	h.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, "GET", h.base+"/v1/watch?"+query, nil)
	require.NoError(h.t, err)
	resp, err := h.hc.Do(req)
	require.NoError(h.t, err)
	if resp.StatusCode != 200 {
		defer cancel()
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return nil, httpAnswer{status: resp.StatusCode, header: resp.Header, body: b}
	}
	ws := &watchStream{t: h.t, resp: resp, sc: bufio.NewScanner(resp.Body), cancel: cancel}
	h.t.Cleanup(ws.close)
	return ws, httpAnswer{status: 200, header: resp.Header}
}

func (ws *watchStream) next() api.WatchResponse {
	ws.t.Helper()
	done := make(chan struct{})
	timer := time.AfterFunc(10*time.Second, func() { ws.cancel() })
	defer func() { timer.Stop(); close(done) }()
	for ws.sc.Scan() {
		var r api.WatchResponse
		require.NoError(ws.t, json.Unmarshal(ws.sc.Bytes(), &r), "line %q", ws.sc.Bytes())
		if !r.Created && len(r.Events) == 0 && r.Error == nil {
			continue // progress
		}
		return r
	}
	ws.t.Fatalf("watch stream ended: %v", ws.sc.Err())
	return api.WatchResponse{}
}

func (ws *watchStream) close() {
	ws.cancel()
	ws.resp.Body.Close()
}

func TestHTTPWatch(t *testing.T) {
	c := nodetest.MakeCluster(t, 1)
	n := c.Leader(t)
	h := newHTTPT(t, n)

	rev1 := int64(h.str("PUT", "/v1/kv/w/a", `{"value":"1"}`).json(t)["revision"].(float64))

	ws, a := h.watch("key=w/&prefix&prev_kv")
	require.Equal(t, 200, a.status)
	assert.Equal(t, "application/x-ndjson", a.header.Get("Content-Type"))
	created := ws.next()
	assert.True(t, created.Created)
	assert.Equal(t, rev1, created.Revision)

	h.do("PUT", "/v1/kv/w/a?raw", []byte{0xff})
	h.str("PUT", "/v1/kv/other", `{"value":"x"}`) // not under the prefix
	h.str("DELETE", "/v1/kv/w/a", "")
	var events []api.Event
	for len(events) < 2 {
		events = append(events, ws.next().Events...)
	}
	require.Len(t, events, 2)
	assert.Equal(t, api.EventPut, events[0].Type)
	assert.Equal(t, []byte{0xff}, events[0].KV.Value)
	require.NotNil(t, events[0].PrevKV)
	assert.Equal(t, "1", string(events[0].PrevKV.Value))
	assert.Equal(t, api.EventDelete, events[1].Type)
	assert.Equal(t, "w/a", string(events[1].KV.Key))
	assert.Equal(t, rev1+3, events[1].KV.ModRevision)

	// From a start revision: history first.
	ws2, a := h.watch(fmt.Sprintf("key=w/a&start_revision=%d", rev1))
	require.Equal(t, 200, a.status)
	assert.True(t, ws2.next().Created)
	events = nil
	for len(events) < 3 {
		events = append(events, ws2.next().Events...)
	}
	assert.Equal(t, rev1, events[0].KV.ModRevision)
	assert.Equal(t, "1", string(events[0].KV.Value))
	assert.Equal(t, api.EventDelete, events[2].Type)

	// The client going away ends the stream on the server.
	ws.close()
	ws2.close()
}

func TestHTTPWatchCompacted(t *testing.T) {
	c := nodetest.MakeCluster(t, 1, nodetest.WithConfig(func(i int, cfg *node.Config) { cfg.HistoryRetention = 5 }))
	n := c.Leader(t)
	h := newHTTPT(t, n)
	for i := range 20 {
		require.Equal(t, 200, h.str("PUT", "/v1/kv/c", fmt.Sprintf(`{"value":"%d"}`, i)).status)
	}
	compact := n.FSM().CompactRevision()
	require.Positive(t, compact)

	_, a := h.watch("key=c&start_revision=1")
	require.Equal(t, 410, a.status, "%s", a.body)
	var e api.Error
	require.NoError(t, json.Unmarshal(a.body, &e))
	assert.Equal(t, api.CodeCompacted, e.Code)
	assert.Equal(t, compact, e.CompactRevision)

	// The oldest retained revision works.
	ws, a := h.watch(fmt.Sprintf("key=c&start_revision=%d", compact+1))
	require.Equal(t, 200, a.status)
	assert.True(t, ws.next().Created)
	r := ws.next()
	require.NotEmpty(t, r.Events)
	assert.Equal(t, compact+1, r.Events[0].KV.ModRevision)

	// Reads at a compacted revision: 410 too.
	a = h.str("GET", "/v1/kv/c?revision=1", "")
	assert.Equal(t, 410, a.status, "%s", a.body)
	assert.Equal(t, api.CodeCompacted, a.code(t))
}

func TestHTTPFollower(t *testing.T) {
	c := nodetest.MakeCluster(t, 3)
	leader := c.Leader(t)
	f := c.Followers(t)[0]
	hf := newHTTPT(t, f)

	// Writes on a follower are forwarded to the leader.
	a := hf.str("PUT", "/v1/kv/fw", `{"value":"via follower"}`)
	require.Equal(t, 200, a.status, "%s", a.body)
	a = hf.do("PUT", "/v1/kv/fw2?raw&if_mod_revision=0", []byte{1, 2, 3})
	require.Equal(t, 200, a.status, "%s", a.body)
	a = hf.str("POST", "/v1/txn", `{"success":[{"type":"put","key":"fw3","value":"t"}]}`)
	require.Equal(t, 200, a.status, "%s", a.body)

	kv, err := leader.Get(context.Background(), []byte("fw"), node.Stale)
	require.NoError(t, err)
	assert.Equal(t, "via follower", string(kv.Value))

	// A linearizable read on the follower sees the write at once.
	a = hf.str("GET", "/v1/kv/fw2?raw", "")
	require.Equal(t, 200, a.status)
	assert.Equal(t, []byte{1, 2, 3}, a.body)

	// Status and members from a follower name the leader.
	var st api.Status
	require.NoError(t, json.Unmarshal(hf.str("GET", "/v1/status", "").body, &st))
	assert.Equal(t, f.ID(), st.ID)
	assert.Equal(t, "Follower", st.State)
	assert.Equal(t, leader.ID(), st.Leader.ID)
	assert.Equal(t, leader.HTTPAddr(), st.Leader.HTTPAddr)
	assert.Equal(t, "wal", st.LogEngine, "a new data directory gets the wal engine")
	var ms []api.Member
	require.NoError(t, json.Unmarshal(hf.str("GET", "/v1/members", "").body, &ms))
	require.Len(t, ms, 3)
	leaders := 0
	for _, m := range ms {
		assert.NotEmpty(t, m.HTTPAddr)
		assert.True(t, m.Voter)
		if m.Leader {
			leaders++
			assert.Equal(t, leader.ID(), m.ID)
		}
	}
	assert.Equal(t, 1, leaders)
}

func TestHTTPCluster(t *testing.T) {
	c := nodetest.MakeCluster(t, 3)
	li := c.LeaderIndex(t)
	h := newHTTPT(t, c.Node(li))

	assert.Equal(t, 200, h.str("GET", "/livez", "").status)
	assert.Equal(t, 200, h.str("GET", "/readyz", "").status)

	// Hand leadership to a given follower, from a follower.
	target := c.Followers(t)[0]
	hf := newHTTPT(t, c.Followers(t)[1])
	a := hf.str("POST", "/v1/leader/transfer", fmt.Sprintf(`{"id":%q}`, target.ID()))
	require.Equal(t, 200, a.status, "%s", a.body)
	require.Eventually(t, func() bool { return c.Leader(t) == target }, 10*time.Second, 20*time.Millisecond)

	// Remove a follower, then add it back.
	var victim int
	for _, i := range c.Running() {
		if c.Node(i) != target {
			victim = i
			break
		}
	}
	vid := c.Node(victim).ID()
	ht := newHTTPT(t, target)
	a = ht.str("DELETE", "/v1/members/"+vid, "")
	require.Equal(t, 200, a.status, "%s", a.body)
	c.WaitForMembers(t, 2)
	body := fmt.Sprintf(`{"id":%q,"raft_addr":%q,"http_addr":%q}`, vid, c.Node(victim).RaftAddr(), c.Node(victim).HTTPAddr())
	a = ht.str("POST", "/v1/members", body)
	require.Equal(t, 200, a.status, "%s", a.body)
	c.WaitForMembers(t, 3)

	// Transfer to anyone.
	a = ht.str("POST", "/v1/leader/transfer", "")
	require.Equal(t, 200, a.status, "%s", a.body)
	require.Eventually(t, func() bool { return c.Leader(t) != target }, 10*time.Second, 20*time.Millisecond)

	// Metrics name the route pattern, not the path.
	a = h.str("GET", "/metrics", "")
	require.Equal(t, 200, a.status)
	assert.Contains(t, string(a.body), `statenode_http_requests_total{code="200",method="GET",route="/livez"} 1`)
	assert.Contains(t, string(a.body), `statenode_http_request_duration_seconds_bucket{method="GET",route="/readyz"`)
	hm := newHTTPT(t, target)
	assert.Contains(t, string(hm.str("GET", "/metrics", "").body), `statenode_http_requests_total{code="200",method="DELETE",route="/v1/members/{id}"} 1`)
}

func TestHTTPReadyz(t *testing.T) {
	c := nodetest.MakeCluster(t, 3, nodetest.WithConfig(func(i int, cfg *node.Config) { cfg.ApplyTimeout = time.Second }))
	li := c.LeaderIndex(t)
	fi := (li + 1) % 3
	h := newHTTPT(t, c.Node(fi))
	// A follower is ready once it knows the leader's client address.
	require.Eventually(t, func() bool { return h.str("GET", "/readyz", "").status == 200 }, 10*time.Second, 20*time.Millisecond)

	// Without the other two, the follower loses its leader.
	c.Isolate(t, fi)
	require.Eventually(t, func() bool { return h.str("GET", "/readyz", "").status == 503 }, 10*time.Second, 20*time.Millisecond)
	assert.Equal(t, 200, h.str("GET", "/livez", "").status)
	before := revision(c.Node(fi))
	a := h.str("PUT", "/v1/kv/x", `{"value":"x"}`)
	assert.Equal(t, 503, a.status, "%s", a.body)
	assert.Contains(t, []string{api.CodeNoLeader, api.CodeNotLeader}, a.code(t))
	assert.Equal(t, before, revision(c.Node(fi)))
	c.Heal(t)
	require.Eventually(t, func() bool { return h.str("GET", "/readyz", "").status == 200 }, 10*time.Second, 20*time.Millisecond)
}

// Benchmarks: one node, a keep-alive HTTP client in the same process.

func benchNode(b *testing.B) (*node.Node, *httpT) {
	c := nodetest.MakeCluster(b, 1)
	n := c.Leader(b)
	return n, newHTTPT(b, n)
}

func BenchmarkHTTPPut(b *testing.B) {
	_, h := benchNode(b)
	value := bytes.Repeat([]byte("v"), 100)
	b.ReportAllocs()
	b.SetParallelism(32) // concurrent clients per CPU: writes and reads share commits
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			i++
			req, _ := http.NewRequest("PUT", h.base+fmt.Sprintf("/v1/kv/bench/%d?raw", i%1000), bytes.NewReader(value))
			resp, err := h.hc.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
}

func BenchmarkHTTPGet(b *testing.B) {
	n, h := benchNode(b)
	value := bytes.Repeat([]byte("v"), 100)
	for i := range 1000 {
		_, err := n.Put(context.Background(), []byte(fmt.Sprintf("bench/%d", i)), value)
		require.NoError(b, err)
	}
	for _, mode := range []string{"linearizable", "stale"} {
		b.Run(mode, func(b *testing.B) {
			b.ReportAllocs()
			b.SetParallelism(32)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					i++
					req, _ := http.NewRequest("GET", h.base+fmt.Sprintf("/v1/kv/bench/%d?raw&consistency=%s", i%1000, mode), nil)
					resp, err := h.hc.Do(req)
					if err != nil {
						b.Error(err)
						return
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 {
						b.Errorf("status %d", resp.StatusCode)
						return
					}
				}
			})
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
		})
	}
}
