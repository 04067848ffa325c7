package api_test

import (
	"encoding/json"
	"fmt"

	"github.com/statenode/statenode/api"
)

func ExampleKeyValue() {
	text, _ := json.Marshal(api.KeyValue{Key: []byte("config/mode"), Value: []byte("active"), CreateRevision: 4, ModRevision: 7, Version: 2})
	binary, _ := json.Marshal(api.KeyValue{Key: []byte("blob"), Value: []byte{0x00, 0xff}, ModRevision: 8})
	fmt.Println(string(text))
	fmt.Println(string(binary))
	// Output:
	// {"key":"config/mode","value":"active","create_revision":4,"mod_revision":7,"version":2}
	// {"key":"blob","value_base64":"AP8=","create_revision":0,"mod_revision":8,"version":0}
}

func ExampleTxnRequest() {
	// Create "lock" only if it does not exist, else read it.
	req := api.TxnRequest{
		Compare: []api.Compare{api.CompareModRevision("lock", api.ResultEqual, 0)},
		Success: []api.Op{api.PutOp("lock", []byte("owner-1"))},
		Failure: []api.Op{api.GetOp("lock")},
	}
	b, _ := json.Marshal(req)
	fmt.Println(string(b))
	// Output:
	// {"compare":[{"key":"lock","target":"mod_revision","result":"="}],"success":[{"type":"put","key":"lock","value":"owner-1"}],"failure":[{"type":"get","key":"lock"}]}
}
