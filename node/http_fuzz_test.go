package node

import (
	"encoding/json"
	"testing"

	"github.com/statenode/statenode/api"
	"github.com/statenode/statenode/fsm"
)

// FuzzTxnDecode feeds arbitrary bodies through the POST /v1/txn decoding:
// JSON → api.TxnRequest → fsm.Request → Validate. It must never panic, and
// whatever passes must survive the command encoding round trip.
func FuzzTxnDecode(f *testing.F) {
	for _, s := range []string{
		`{"compare":[{"key":"a","target":"mod_revision","result":"=","number":3}],"success":[{"type":"put","key":"a","value":"v"}],"failure":[{"type":"get","key":"a"}]}`,
		`{"success":[{"type":"delete","key":"","prefix":true,"prev_kv":true}]}`,
		`{"success":[{"type":"get","key_base64":"AP8=","limit":5}]}`,
		`{"compare":[{"key":"k","target":"value","result":"!=","value_base64":"/w=="}],"success":[{"type":"put","key":"k","value":""}]}`,
		`{"success":[{"type":"put","key":"k","value":"v"},{"type":"put","key":"k","value":"w"}]}`,
		`{}`, `null`, `[]`, `{"success":null}`, `{"compare":[null]}`,
	} {
		f.Add([]byte(s))
	}
	limits := fsm.DefaultLimits()
	f.Fuzz(func(t *testing.T, body []byte) {
		var tr api.TxnRequest
		if err := json.Unmarshal(body, &tr); err != nil {
			return
		}
		req, err := txnToFSM(&tr)
		if err != nil {
			return
		}
		if err := req.Validate(limits); err != nil {
			return
		}
		enc := fsm.EncodeCommand(&fsm.Command{Type: fsm.CmdTxn, Txn: req})
		if _, err := fsm.DecodeCommand(enc); err != nil {
			t.Fatalf("a valid request does not survive encoding: %v", err)
		}
	})
}

// FuzzParseQuery: query strings never panic the parser, and what it
// accepts only sets allowed parameters.
func FuzzParseQuery(f *testing.F) {
	for _, s := range []string{"raw", "prefix&limit=10&revision=3", "if_mod_revision=0&if_value=a%20b", "stale&consistency=stale", "key=%2F%2F&prev_kv=false", "limit=-1", "%zz", "&&=&"} {
		f.Add(s)
	}
	const allowed = qPrefix | qRaw | qLimit | qRevision | qIfModRevision | qIfValue | qStale | qConsistency | qKey | qPrevKV
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := parseQuery(raw, allowed)
		if err != nil {
			return
		}
		if q.set&^allowed != 0 {
			t.Fatalf("%q set disallowed parameters %b", raw, q.set&^allowed)
		}
		if q.limit < 0 || q.revision < 0 || q.ifModRev < 0 {
			t.Fatalf("%q: negative number accepted", raw)
		}
	})
}
