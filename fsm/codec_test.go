package fsm

import (
	"bytes"
	"encoding/hex"
	"errors"
	"testing"

	"github.com/hashicorp/raft"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// sampleCommands covers every command type and every encoded field.
func sampleCommands() map[string]*Command {
	return map[string]*Command{
		"put": {Type: CmdTxn, Time: 1_700_000_000_000_000_000, Txn: &Request{
			Success: []Op{putOp("k", "v")},
		}},
		"full txn": {Type: CmdTxn, Time: 42, Txn: &Request{
			Compare: []Compare{
				{Key: []byte("a"), Target: CompareValue, Result: CompareEqual, Value: []byte("x")},
				{Key: []byte("b"), Target: CompareVersion, Result: CompareGreater, Number: 3},
				{Key: []byte("c"), Target: CompareCreateRevision, Result: CompareLess, Number: -7},
				{Key: []byte("d"), Target: CompareModRevision, Result: CompareNotEqual, Number: 1 << 40},
			},
			Success: []Op{
				{Type: OpPut, Key: []byte("a"), Value: []byte("y"), PrevKV: true},
				{Type: OpRange, Key: []byte("p/"), Prefix: true, Limit: 10},
				{Type: OpDelete, Key: []byte("q/"), Prefix: true, PrevKV: true},
			},
			Failure: []Op{{Type: OpRange, Key: []byte("a")}},
		}},
		"binary key and value": {Type: CmdTxn, Txn: &Request{
			Success: []Op{{Type: OpPut, Key: []byte{0, 0xff, 0x80}, Value: bytes.Repeat([]byte{0xaa}, 300)}},
		}},
		"only compares": {Type: CmdTxn, Txn: &Request{
			Compare: []Compare{{Key: []byte("a"), Target: CompareVersion, Result: CompareEqual}},
		}},
		"put member":        {Type: CmdPutMember, Time: 5, Member: &Member{ID: "n1", RaftAddr: "10.0.0.1:7000", HTTPAddr: "10.0.0.1:8000"}},
		"remove member":     {Type: CmdRemoveMember, Member: &Member{ID: "n1"}},
		"noop":              {Type: CmdNoop, Time: 99},
		"ephemeral put":     {Type: CmdTxn, Txn: &Request{Success: []Op{{Type: OpPut, Key: []byte("e"), Value: []byte("v"), Session: 7 << 16}}}},
		"semaphore acquire": {Type: CmdCoord, Time: 3, Coord: &CoordRequest{Op: OpSemAcquire, Session: 1 << 16, RequestID: 4, Name: "s", N: 3, K: 2}},
		"semaphore release": {Type: CmdCoord, Coord: &CoordRequest{Op: OpSemRelease, Session: 1 << 16, RequestID: 5, Name: "s", K: 1}},
		"barrier await":     {Type: CmdCoord, Coord: &CoordRequest{Op: OpBarrierAwait, Session: 1 << 16, RequestID: 6, Name: "b", N: 3}},
		"barrier enter":     {Type: CmdCoord, Coord: &CoordRequest{Op: OpBarrierEnter, Session: 1 << 16, RequestID: 7, Name: "d", N: 2}},
		"barrier leave":     {Type: CmdCoord, Coord: &CoordRequest{Op: OpBarrierLeave, Session: 1 << 16, RequestID: 8, Name: "d"}},
		"latch count down":  {Type: CmdCoord, Coord: &CoordRequest{Op: OpLatchCountDown, Session: 1 << 16, RequestID: 9, Name: "l"}},
		"negative time":     {Type: CmdNoop, Time: -1},
	}
}

func TestCommandRoundTrip(t *testing.T) {
	for name, c := range sampleCommands() {
		t.Run(name, func(t *testing.T) {
			b := EncodeCommand(c)
			assert.Len(t, b, commandSize(c), "commandSize must be exact")
			assert.Equal(t, len(b), cap(b), "EncodeCommand must size its buffer exactly")

			got, err := DecodeCommand(b)
			require.NoError(t, err)
			assert.Equal(t, c, got)
			assert.Equal(t, b, EncodeCommand(got), "re-encoding must give identical bytes")

			prefix := []byte("prefix")
			assert.Equal(t, append([]byte("prefix"), b...), AppendCommand(prefix, c))
		})
	}
}

func TestDocumentedPutEncoding(t *testing.T) {
	// The example in doc.go.
	got := hex.EncodeToString(putCmd("k", "v"))
	assert.Equal(t, "0101010000010200016b01760000", got)
}

func TestBatchRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		cmds []*Command
	}{
		{"empty", nil},
		{"one", []*Command{{Type: CmdNoop}}},
		{"several", []*Command{
			sampleCommands()["put"], sampleCommands()["full txn"], sampleCommands()["put member"], sampleCommands()["noop"],
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			enc := make([][]byte, len(tt.cmds))
			for i, c := range tt.cmds {
				enc[i] = EncodeCommand(c)
			}
			b := EncodeBatch(enc)
			assert.Equal(t, len(b), cap(b))
			got, err := DecodeBatch(b)
			require.NoError(t, err)
			require.Len(t, got, len(tt.cmds))
			for i := range got {
				assert.Equal(t, tt.cmds[i], got[i])
			}
			_, err = DecodeCommand(b)
			assert.ErrorIs(t, err, ErrCorrupt, "a batch is not a command")
		})
	}
	_, err := DecodeBatch(putCmd("k", "v"))
	assert.ErrorIs(t, err, ErrCorrupt, "a command is not a batch")
}

func sampleResponses() map[string]*Response {
	return map[string]*Response{
		"empty":  {},
		"failed": {Succeeded: false, Revision: 9, Results: []OpResult{{Type: OpRange, Count: 0}}},
		"full": {Succeeded: true, Revision: 1 << 50, Results: []OpResult{
			{Type: OpPut, KVs: []KeyValue{{Key: []byte("a"), Value: []byte("old"), CreateRevision: 2, ModRevision: 3, Version: 2}}},
			{Type: OpRange, More: true, Count: 17, KVs: []KeyValue{
				{Key: []byte("p/1"), Value: []byte("x"), CreateRevision: 1, ModRevision: 1, Version: 1},
				{Key: []byte("p/2"), CreateRevision: 4, ModRevision: 8, Version: 5},
			}},
			{Type: OpDelete, Count: 3},
		}},
		"broken barrier":    {Succeeded: false, Revision: 4, Coord: &CoordResult{Code: CoordBroken, Session: 3 << 16, Index: 9 << 16, Detail: "barrier broken"}},
		"ephemeral refused": {Revision: 4, Coord: &CoordResult{Code: CoordSessionNotFound, Detail: "session 5"}},
	}
}

func TestResponseRoundTrip(t *testing.T) {
	for name, r := range sampleResponses() {
		t.Run(name, func(t *testing.T) {
			b := AppendResponse(nil, r)
			got, err := DecodeResponse(b)
			require.NoError(t, err)
			assert.Equal(t, r, got)
			assert.Equal(t, b, AppendResponse(nil, got))
		})
	}
}

func TestDecodeCommandErrors(t *testing.T) {
	valid := EncodeCommand(sampleCommands()["full txn"])
	tests := []struct {
		name string
		in   []byte
		want error
	}{
		{"nil", nil, ErrCorrupt},
		{"one byte", []byte{1}, ErrCorrupt},
		{"version 0", []byte{0, 1, 4, 0}, ErrUnsupportedVersion},
		{"version 2", []byte{2, 1, 4, 0}, ErrUnsupportedVersion},
		{"unknown kind", []byte{1, 9, 4, 0}, ErrCorrupt},
		{"batch kind", EncodeBatch(nil), ErrCorrupt},
		{"unknown type 0", []byte{1, 1, 0, 0}, ErrUnknownCommand},
		{"unknown type 200", []byte{1, 1, 200, 0}, ErrUnknownCommand},
		{"no time", []byte{1, 1, 4}, ErrCorrupt},
		{"trailing byte", append(EncodeCommand(&Command{Type: CmdNoop}), 0), ErrCorrupt},
		{"non-canonical varint", []byte{1, 1, 4, 0x80, 0x00}, ErrCorrupt},
		{"varint overflow", []byte{1, 1, 4, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02}, ErrCorrupt},
		{"varint too long", []byte{1, 1, 4, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, ErrCorrupt},
		{"forged compare count", []byte{1, 1, 1, 0, 0xff, 0xff, 0xff, 0xff, 0x0f}, ErrCorrupt},
		{"forged op count", []byte{1, 1, 1, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}, ErrCorrupt},
		{"forged key length", []byte{1, 1, 1, 0, 0, 1, 2, 0, 0xff, 0xff, 0xff, 0xff, 0x0f, 0, 0, 0, 0, 0}, ErrCorrupt},
		{"unknown op flags", []byte{1, 1, 1, 0, 0, 1, 2, 4, 1, 'k', 0, 0, 0}, ErrCorrupt},
		{"member truncated", []byte{1, 1, 2, 0, 2, 'n'}, ErrCorrupt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeCommand(tt.in)
			require.Error(t, err)
			assert.ErrorIs(t, err, tt.want)
		})
	}
	t.Run("every truncation", func(t *testing.T) {
		for n := 0; n < len(valid); n++ {
			_, err := DecodeCommand(valid[:n])
			assert.ErrorIs(t, err, ErrCorrupt, "prefix of %d bytes", n)
		}
	})
}

func TestDecodeBatchErrors(t *testing.T) {
	item := putCmd("k", "v")
	valid := EncodeBatch([][]byte{item, item})
	tests := []struct {
		name string
		in   []byte
		want error
	}{
		{"version 3", []byte{3, 2, 0}, ErrUnsupportedVersion},
		{"forged count", []byte{1, 2, 0xff, 0xff, 0xff, 0x7f}, ErrCorrupt},
		{"nested batch", EncodeBatch([][]byte{EncodeBatch(nil)}), ErrCorrupt},
		{"item too short", EncodeBatch([][]byte{{1, 1}}), ErrCorrupt},
		{"item bad version", EncodeBatch([][]byte{{7, 1, 4, 0}}), ErrUnsupportedVersion},
		{"item unknown type", EncodeBatch([][]byte{{1, 1, 77, 0}}), ErrUnknownCommand},
		{"trailing", append(EncodeBatch([][]byte{item}), 0), ErrCorrupt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeBatch(tt.in)
			assert.ErrorIs(t, err, tt.want)
		})
	}
	for n := 0; n < len(valid); n++ {
		_, err := DecodeBatch(valid[:n])
		assert.Error(t, err, "prefix of %d bytes", n)
	}
}

func TestDecodeResponseErrors(t *testing.T) {
	valid := AppendResponse(nil, sampleResponses()["full"])
	tests := []struct {
		name string
		in   []byte
		want error
	}{
		{"nil", nil, ErrCorrupt},
		{"version 2", []byte{2, 0, 0, 0}, ErrUnsupportedVersion},
		{"unknown flags", []byte{1, 2, 0, 0}, ErrCorrupt},
		{"unknown result flags", []byte{1, 1, 0, 1, 1, 2, 0, 0}, ErrCorrupt},
		{"forged result count", []byte{1, 1, 0, 0xff, 0xff, 0x7f}, ErrCorrupt},
		{"forged kv count", []byte{1, 1, 0, 1, 1, 0, 0, 0xff, 0xff, 0x7f}, ErrCorrupt},
		{"trailing", append(AppendResponse(nil, &Response{}), 1), ErrCorrupt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeResponse(tt.in)
			assert.ErrorIs(t, err, tt.want)
		})
	}
	for n := 0; n < len(valid); n++ {
		_, err := DecodeResponse(valid[:n])
		assert.ErrorIs(t, err, ErrCorrupt, "prefix of %d bytes", n)
	}
}

func TestDecodeAliasesInput(t *testing.T) {
	b := putCmd("k", "v")
	c, err := DecodeCommand(b)
	require.NoError(t, err)
	// Documented: the command aliases b. Capacity is clipped so appending
	// to a decoded slice cannot overwrite the rest of b.
	key := c.Txn.Success[0].Key
	assert.Equal(t, len(key), cap(key))
	_ = append(key, 'X')
	assert.Equal(t, putCmd("k", "v"), b)
}

func FuzzDecodeCommand(f *testing.F) {
	for _, c := range sampleCommands() {
		f.Add(EncodeCommand(c))
	}
	f.Add(EncodeBatch([][]byte{putCmd("a", "b")}))
	f.Add([]byte{})
	f.Add([]byte{1, 1, 1, 0, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, b []byte) {
		// Applying garbage must never panic, and must yield a result of
		// the documented shape.
		switch res := New(Config{}).Apply(&raft.Log{Index: 1, Type: raft.LogCommand, Data: b}).(type) {
		case ApplyResult, []ApplyResult:
		default:
			t.Fatalf("Apply returned %T", res)
		}

		c, err := DecodeCommand(b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrUnsupportedVersion) && !errors.Is(err, ErrUnknownCommand) {
				t.Fatalf("unexpected error class: %v", err)
			}
			if c != nil {
				t.Fatal("non-nil command with an error")
			}
			return
		}
		// The encoding is canonical: a valid decode re-encodes identically.
		if re := EncodeCommand(c); !bytes.Equal(re, b) {
			t.Fatalf("re-encoding differs:\n in %x\nout %x", b, re)
		}
		_ = c.Validate(Limits{})
	})
}

func FuzzDecodeResponse(f *testing.F) {
	for _, r := range sampleResponses() {
		f.Add(AppendResponse(nil, r))
	}
	f.Add([]byte{1, 1, 0, 0xff, 0xff, 0x7f})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := DecodeResponse(b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrUnsupportedVersion) {
				t.Fatalf("unexpected error class: %v", err)
			}
			return
		}
		if re := AppendResponse(nil, r); !bytes.Equal(re, b) {
			t.Fatalf("re-encoding differs:\n in %x\nout %x", b, re)
		}
	})
}

func FuzzDecodeBatch(f *testing.F) {
	f.Add(EncodeBatch([][]byte{putCmd("a", "b"), EncodeCommand(&Command{Type: CmdNoop})}))
	f.Add(EncodeBatch(nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		cmds, err := DecodeBatch(b)
		if err != nil {
			return
		}
		enc := make([][]byte, len(cmds))
		for i, c := range cmds {
			enc[i] = EncodeCommand(c)
		}
		if re := EncodeBatch(enc); !bytes.Equal(re, b) {
			t.Fatalf("re-encoding differs:\n in %x\nout %x", b, re)
		}
	})
}
