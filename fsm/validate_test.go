package fsm

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRequestValidate(t *testing.T) {
	small := Limits{MaxKeySize: 8, MaxValueSize: 16, MaxTxnOps: 4, MaxRequestSize: 64}
	key := []byte("k")
	tests := []struct {
		name    string
		req     Request
		limits  Limits
		want    error  // nil: valid
		message string // substring of the error
	}{
		{name: "plain put", req: Request{Success: []Op{putOp("k", "v")}}},
		{name: "prefix range all keys", req: Request{Success: []Op{{Type: OpRange, Prefix: true}}}},
		{name: "prefix delete all keys", req: Request{Success: []Op{{Type: OpDelete, Prefix: true}}}},
		{name: "compares only", req: Request{Compare: []Compare{{Key: key, Target: CompareVersion, Result: CompareEqual}}}},
		{name: "same key in both branches", req: Request{Success: []Op{putOp("k", "1")}, Failure: []Op{putOp("k", "2")}}},
		{name: "range and put of one key", req: Request{Success: []Op{{Type: OpRange, Key: key}, putOp("k", "v")}}},
		{name: "overlapping prefix deletes", req: Request{Success: []Op{{Type: OpDelete, Key: []byte("a"), Prefix: true}, {Type: OpDelete, Key: []byte("ab"), Prefix: true}}}},
		{name: "zero limits mean defaults", req: Request{Success: []Op{putOp("k", string(make([]byte, 4096)))}}},

		{name: "no ops", req: Request{}, want: ErrInvalid, message: "no compares and no operations"},
		{name: "too many ops", req: Request{Success: []Op{putOp("a", ""), putOp("b", ""), putOp("c", "")}, Failure: []Op{putOp("d", ""), putOp("e", "")}}, limits: small, want: ErrTooLarge, message: "too many operations"},
		{name: "default op limit", req: Request{Success: make([]Op, 129)}, want: ErrTooLarge, message: "limit 128"},
		{name: "empty put key", req: Request{Success: []Op{{Type: OpPut}}}, want: ErrInvalid, message: "success[0]: key is empty"},
		{name: "empty range key", req: Request{Failure: []Op{{Type: OpRange}}}, want: ErrInvalid, message: "failure[0]: key is empty"},
		{name: "empty delete key", req: Request{Success: []Op{putOp("a", ""), {Type: OpDelete}}}, want: ErrInvalid, message: "success[1]: key is empty"},
		{name: "empty compare key", req: Request{Compare: []Compare{{Target: CompareValue, Result: CompareEqual}}}, want: ErrInvalid, message: "compare[0]: key is empty"},
		{name: "key too large", req: Request{Success: []Op{putOp("123456789", "")}}, limits: small, want: ErrTooLarge, message: "key is 9 bytes, limit 8"},
		{name: "default key limit", req: Request{Success: []Op{putOp(string(make([]byte, 4097)), "")}}, want: ErrTooLarge, message: "limit 4096"},
		{name: "compare key too large", req: Request{Compare: []Compare{{Key: []byte("123456789"), Target: CompareValue, Result: CompareEqual}}}, limits: small, want: ErrTooLarge},
		{name: "value too large", req: Request{Success: []Op{putOp("k", "12345678901234567")}}, limits: small, want: ErrTooLarge, message: "value is 17 bytes, limit 16"},
		{name: "compare value too large", req: Request{Compare: []Compare{{Key: key, Target: CompareValue, Result: CompareEqual, Value: make([]byte, 17)}}}, limits: small, want: ErrTooLarge},
		{name: "unknown op type 0", req: Request{Success: []Op{{Key: key}}}, want: ErrInvalid, message: "unknown op type 0"},
		{name: "unknown op type 4", req: Request{Success: []Op{{Type: 4, Key: key}}}, want: ErrInvalid, message: "unknown op type 4"},
		{name: "unknown compare target", req: Request{Compare: []Compare{{Key: key, Target: 5, Result: CompareEqual}}}, want: ErrInvalid, message: "unknown target 5"},
		{name: "zero compare target", req: Request{Compare: []Compare{{Key: key, Result: CompareEqual}}}, want: ErrInvalid, message: "unknown target 0"},
		{name: "unknown compare result", req: Request{Compare: []Compare{{Key: key, Target: CompareValue, Result: 5}}}, want: ErrInvalid, message: "unknown result 5"},
		{name: "negative limit", req: Request{Success: []Op{{Type: OpRange, Key: key, Limit: -1}}}, want: ErrInvalid, message: "negative limit"},
		{name: "value on range", req: Request{Success: []Op{{Type: OpRange, Key: key, Value: []byte("x")}}}, want: ErrInvalid, message: "value set on a non-put"},
		{name: "value on delete", req: Request{Success: []Op{{Type: OpDelete, Key: key, Value: []byte("x")}}}, want: ErrInvalid, message: "value set on a non-put"},
		{name: "prefix on put", req: Request{Success: []Op{{Type: OpPut, Key: key, Prefix: true}}}, want: ErrInvalid, message: "prefix set on a put"},
		{name: "duplicate put", req: Request{Success: []Op{putOp("k", "1"), putOp("k", "2")}}, want: ErrInvalid, message: "duplicate key given in txn request"},
		{name: "put then delete", req: Request{Failure: []Op{putOp("k", "1"), {Type: OpDelete, Key: key}}}, want: ErrInvalid, message: "failure[1]: duplicate key"},
		{name: "delete twice", req: Request{Success: []Op{{Type: OpDelete, Key: key}, {Type: OpDelete, Key: key}}}, want: ErrInvalid, message: "duplicate key"},
		{name: "prefix delete covers put", req: Request{Success: []Op{putOp("dir/a", "1"), {Type: OpDelete, Key: []byte("dir/"), Prefix: true}}}, want: ErrInvalid, message: "duplicate key"},
		{name: "put under earlier prefix delete", req: Request{Success: []Op{{Type: OpDelete, Prefix: true}, putOp("x", "1")}}, want: ErrInvalid, message: "duplicate key"},
		{name: "request too large", req: Request{Success: []Op{putOp("k1", string(make([]byte, 16))), putOp("k2", string(make([]byte, 16))), putOp("k3", string(make([]byte, 16)))}}, limits: small, want: ErrTooLarge, message: "encoded request is"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.req.Validate(tt.limits)
			if tt.want == nil {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.ErrorIs(t, err, tt.want)
			assert.Contains(t, err.Error(), tt.message)
		})
	}
}

func TestCommandValidate(t *testing.T) {
	put := &Request{Success: []Op{putOp("k", "v")}}
	tests := []struct {
		name string
		cmd  Command
		want error
	}{
		{"txn", Command{Type: CmdTxn, Time: 1, Txn: put}, nil},
		{"put member", Command{Type: CmdPutMember, Member: &Member{ID: "n1", RaftAddr: "a"}}, nil},
		{"remove member", Command{Type: CmdRemoveMember, Member: &Member{ID: "n1"}}, nil},
		{"noop", Command{Type: CmdNoop}, nil},
		{"unknown type", Command{Type: 9}, ErrUnknownCommand},
		{"unknown type is invalid", Command{Type: 0}, ErrInvalid},
		{"negative time", Command{Type: CmdNoop, Time: -1}, ErrInvalid},
		{"txn without request", Command{Type: CmdTxn}, ErrInvalid},
		{"txn with member", Command{Type: CmdTxn, Txn: put, Member: &Member{ID: "x"}}, ErrInvalid},
		{"txn invalid request", Command{Type: CmdTxn, Txn: &Request{}}, ErrInvalid},
		{"member without ID", Command{Type: CmdPutMember, Member: &Member{RaftAddr: "a"}}, ErrInvalid},
		{"member nil", Command{Type: CmdRemoveMember}, ErrInvalid},
		{"member with txn", Command{Type: CmdPutMember, Member: &Member{ID: "x"}, Txn: put}, ErrInvalid},
		{"member address too long", Command{Type: CmdPutMember, Member: &Member{ID: "x", HTTPAddr: string(bytes.Repeat([]byte("a"), 5000))}}, ErrTooLarge},
		{"noop with payload", Command{Type: CmdNoop, Txn: put}, ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cmd.Validate(Limits{})
			if tt.want == nil {
				assert.NoError(t, err)
				return
			}
			assert.ErrorIs(t, err, tt.want)
		})
	}
}
