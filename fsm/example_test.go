package fsm_test

import (
	"context"
	"fmt"

	"github.com/hashicorp/raft"

	"github.com/statenode/statenode/fsm"
)

// Raft normally calls Apply; here the log entries are built by hand.
func Example() {
	f := fsm.New(fsm.DefaultConfig())
	index := uint64(0)
	apply := func(c *fsm.Command) *fsm.Response {
		index++
		res := f.Apply(&raft.Log{Index: index, Type: raft.LogCommand, Data: fsm.EncodeCommand(c)}).(fsm.ApplyResult)
		if res.Err != nil {
			panic(res.Err)
		}
		return res.Response
	}
	put := func(key, value string) *fsm.Command {
		return &fsm.Command{Type: fsm.CmdTxn, Txn: &fsm.Request{
			Success: []fsm.Op{{Type: fsm.OpPut, Key: []byte(key), Value: []byte(value)}},
		}}
	}

	apply(put("config/color", "red"))
	apply(put("config/size", "L"))
	apply(put("config/color", "blue"))

	// Compare-and-swap: only if config/color is still at revision 1.
	resp := apply(&fsm.Command{Type: fsm.CmdTxn, Txn: &fsm.Request{
		Compare: []fsm.Compare{{Key: []byte("config/color"), Target: fsm.CompareModRevision, Result: fsm.CompareEqual, Number: 1}},
		Success: []fsm.Op{{Type: fsm.OpPut, Key: []byte("config/color"), Value: []byte("green")}},
	}})
	fmt.Println("cas succeeded:", resp.Succeeded, "revision:", resp.Revision)

	rr, _ := f.Range(fsm.RangeRequest{Key: []byte("config/"), Prefix: true})
	for _, kv := range rr.KVs {
		fmt.Printf("%s=%s (version %d)\n", kv.Key, kv.Value, kv.Version)
	}
	old, _ := f.Range(fsm.RangeRequest{Key: []byte("config/color"), Revision: 1})
	fmt.Printf("at revision 1: %s\n", old.KVs[0].Value)

	// Replay history from revision 2.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, _ := f.Watch(ctx, fsm.WatchRequest{Key: []byte("config/"), Prefix: true, StartRevision: 2})
	for _, e := range (<-ch).Events {
		fmt.Printf("event rev %d: %s=%s\n", e.KV.ModRevision, e.KV.Key, e.KV.Value)
	}
	cancel()
	for range ch { // wait for the watch to end
	}

	// Output:
	// cas succeeded: false revision: 3
	// config/color=blue (version 2)
	// config/size=L (version 1)
	// at revision 1: red
	// event rev 2: config/size=L
	// event rev 3: config/color=blue
}

func ExampleEncodeBatch() {
	f := fsm.New(fsm.Config{})
	batch := fsm.EncodeBatch([][]byte{
		fsm.EncodeCommand(&fsm.Command{Type: fsm.CmdTxn, Txn: &fsm.Request{
			Success: []fsm.Op{{Type: fsm.OpPut, Key: []byte("a"), Value: []byte("1")}},
		}}),
		fsm.EncodeCommand(&fsm.Command{Type: fsm.CmdPutMember, Member: &fsm.Member{ID: "n1", HTTPAddr: "127.0.0.1:8000"}}),
	})
	results := f.Apply(&raft.Log{Index: 1, Type: raft.LogCommand, Data: batch}).([]fsm.ApplyResult)
	for _, r := range results {
		fmt.Println(r.Response.Revision, r.Err)
	}
	fmt.Println(f.Members())
	// Output:
	// 1 <nil>
	// 1 <nil>
	// [{n1  127.0.0.1:8000}]
}

func ExampleDecodeResponse() {
	b := fsm.AppendResponse(nil, &fsm.Response{Succeeded: true, Revision: 7, Results: []fsm.OpResult{{Type: fsm.OpDelete, Count: 2}}})
	r, err := fsm.DecodeResponse(b)
	fmt.Println(len(b), r.Succeeded, r.Revision, r.Results[0].Count, err)
	// Output:
	// 8 true 7 2 <nil>
}
