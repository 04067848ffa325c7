package fsm

import (
	"context"
	"testing"

	"github.com/hashicorp/raft"
	"github.com/stretchr/testify/require"
)

// testFSM wraps an FSM with helpers that propose through the real codec and
// Apply path, numbering log entries.
type testFSM struct {
	*FSM
	t     testing.TB
	index uint64
}

func newTestFSM(t testing.TB, cfg Config) *testFSM {
	return &testFSM{FSM: New(cfg), t: t}
}

func (tf *testFSM) nextLog(data []byte) *raft.Log {
	tf.index++
	return &raft.Log{Index: tf.index, Term: 1, Type: raft.LogCommand, Data: data}
}

// apply applies c and fails the test on an application error.
func (tf *testFSM) apply(c *Command) *Response {
	tf.t.Helper()
	res, ok := tf.Apply(tf.nextLog(EncodeCommand(c))).(ApplyResult)
	require.True(tf.t, ok)
	require.NoError(tf.t, res.Err)
	return res.Response
}

func (tf *testFSM) txn(r *Request) *Response {
	tf.t.Helper()
	return tf.apply(&Command{Type: CmdTxn, Txn: r})
}

func (tf *testFSM) put(key, value string) *Response {
	tf.t.Helper()
	return tf.txn(&Request{Success: []Op{putOp(key, value)}})
}

func (tf *testFSM) del(key string, prefix bool) *Response {
	tf.t.Helper()
	return tf.txn(&Request{Success: []Op{{Type: OpDelete, Key: []byte(key), Prefix: prefix, PrevKV: true}}})
}

func (tf *testFSM) get(key string) *KeyValue {
	tf.t.Helper()
	rr, err := tf.Range(RangeRequest{Key: []byte(key)})
	require.NoError(tf.t, err)
	if len(rr.KVs) == 0 {
		return nil
	}
	return &rr.KVs[0]
}

func putOp(key, value string) Op {
	return Op{Type: OpPut, Key: []byte(key), Value: []byte(value)}
}

func putCmd(key, value string) []byte {
	return EncodeCommand(&Command{Type: CmdTxn, Txn: &Request{Success: []Op{putOp(key, value)}}})
}

// keys returns the keys of kvs as strings.
func keys(kvs []KeyValue) []string {
	out := make([]string, len(kvs))
	for i := range kvs {
		out[i] = string(kvs[i].Key)
	}
	return out
}

var errCanceled = context.Canceled

func contextWithCancel(t testing.TB) (context.Context, context.CancelFunc) {
	return context.WithCancel(t.Context())
}
