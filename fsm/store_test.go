package fsm

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/hashicorp/raft"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPutGetRevisionsAndVersions(t *testing.T) {
	f := newTestFSM(t, Config{})
	assert.Equal(t, int64(0), f.Revision())
	assert.Nil(t, f.get("a"))

	assert.Equal(t, int64(1), f.put("a", "1").Revision)
	assert.Equal(t, int64(2), f.put("b", "1").Revision)
	assert.Equal(t, int64(3), f.put("a", "2").Revision)

	assert.Equal(t, &KeyValue{Key: []byte("a"), Value: []byte("2"), CreateRevision: 1, ModRevision: 3, Version: 2}, f.get("a"))
	assert.Equal(t, &KeyValue{Key: []byte("b"), Value: []byte("1"), CreateRevision: 2, ModRevision: 2, Version: 1}, f.get("b"))

	// Delete resets the version; a re-create gets a new CreateRevision.
	resp := f.del("a", false)
	assert.Equal(t, int64(4), resp.Revision)
	assert.Equal(t, int64(1), resp.Results[0].Count)
	assert.Equal(t, []string{"a"}, keys(resp.Results[0].KVs))
	assert.Nil(t, f.get("a"))
	f.put("a", "3")
	assert.Equal(t, &KeyValue{Key: []byte("a"), Value: []byte("3"), CreateRevision: 5, ModRevision: 5, Version: 1}, f.get("a"))

	// Empty values are allowed.
	f.put("empty", "")
	kv := f.get("empty")
	require.NotNil(t, kv)
	assert.Empty(t, kv.Value)
}

func TestNoWriteNoRevision(t *testing.T) {
	f := newTestFSM(t, Config{})
	f.put("a", "1")
	tests := []struct {
		name string
		req  Request
	}{
		{"delete missing key", Request{Success: []Op{{Type: OpDelete, Key: []byte("missing")}}}},
		{"delete empty prefix", Request{Success: []Op{{Type: OpDelete, Key: []byte("nothing/"), Prefix: true}}}},
		{"range only", Request{Success: []Op{{Type: OpRange, Key: []byte("a")}}}},
		{"failed compare, empty else", Request{
			Compare: []Compare{{Key: []byte("a"), Target: CompareValue, Result: CompareEqual, Value: []byte("no")}},
			Success: []Op{putOp("a", "2")},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := f.txn(&tt.req)
			assert.Equal(t, int64(1), resp.Revision)
			assert.Equal(t, int64(1), f.Revision())
		})
	}
}

func TestPutPrevKV(t *testing.T) {
	f := newTestFSM(t, Config{})
	op := Op{Type: OpPut, Key: []byte("k"), Value: []byte("1"), PrevKV: true}
	resp := f.txn(&Request{Success: []Op{op}})
	assert.Empty(t, resp.Results[0].KVs, "no previous value")
	op.Value = []byte("2")
	resp = f.txn(&Request{Success: []Op{op}})
	require.Len(t, resp.Results[0].KVs, 1)
	assert.Equal(t, "1", string(resp.Results[0].KVs[0].Value))
	assert.Equal(t, OpPut, resp.Results[0].Type)
}

func TestPrefixDeleteAndRange(t *testing.T) {
	f := newTestFSM(t, Config{})
	for _, k := range []string{"dir/c", "dir/a", "dir/b", "dirx", "a", "z"} {
		f.put(k, "v-"+k)
	}
	rr, err := f.Range(RangeRequest{Key: []byte("dir/"), Prefix: true})
	require.NoError(t, err)
	assert.Equal(t, []string{"dir/a", "dir/b", "dir/c"}, keys(rr.KVs))
	assert.Equal(t, int64(3), rr.Count)
	assert.False(t, rr.More)
	assert.Equal(t, int64(6), rr.Revision)

	rr, err = f.Range(RangeRequest{Prefix: true, Limit: 2})
	require.NoError(t, err)
	assert.Equal(t, []string{"a", "dir/a"}, keys(rr.KVs))
	assert.Equal(t, int64(6), rr.Count)
	assert.True(t, rr.More)

	rr, err = f.Range(RangeRequest{Key: []byte("dir"), Prefix: true, CountOnly: true})
	require.NoError(t, err)
	assert.Empty(t, rr.KVs)
	assert.Equal(t, int64(4), rr.Count)

	rr, err = f.Range(RangeRequest{Prefix: true, CountOnly: true})
	require.NoError(t, err)
	assert.Equal(t, int64(6), rr.Count)

	rr, err = f.Range(RangeRequest{Key: []byte("dir/"), Prefix: true, KeysOnly: true})
	require.NoError(t, err)
	assert.Equal(t, []string{"dir/a", "dir/b", "dir/c"}, keys(rr.KVs))
	for _, kv := range rr.KVs {
		assert.Nil(t, kv.Value)
		assert.NotZero(t, kv.ModRevision)
	}

	resp := f.del("dir/", true)
	assert.Equal(t, int64(7), resp.Revision)
	assert.Equal(t, int64(3), resp.Results[0].Count)
	assert.Equal(t, []string{"dir/a", "dir/b", "dir/c"}, keys(resp.Results[0].KVs))
	rr, err = f.Range(RangeRequest{Prefix: true})
	require.NoError(t, err)
	assert.Equal(t, []string{"a", "dirx", "z"}, keys(rr.KVs))

	// All three deletions share one revision.
	ch, err := f.Watch(t.Context(), WatchRequest{Prefix: true, StartRevision: 7})
	require.NoError(t, err)
	wr := <-ch
	require.Len(t, wr.Events, 3)
	for _, e := range wr.Events {
		assert.Equal(t, EventDelete, e.Type)
		assert.Equal(t, int64(7), e.KV.ModRevision)
	}
}

func TestRangeErrors(t *testing.T) {
	f := newTestFSM(t, Config{HistoryRetention: 2})
	for i := range 5 {
		f.put("k", fmt.Sprint(i))
	}
	tests := []struct {
		name string
		req  RangeRequest
		want error
	}{
		{"empty key", RangeRequest{}, ErrInvalid},
		{"negative limit", RangeRequest{Key: []byte("k"), Limit: -1}, ErrInvalid},
		{"negative revision", RangeRequest{Key: []byte("k"), Revision: -1}, ErrInvalid},
		{"future", RangeRequest{Key: []byte("k"), Revision: 6}, ErrFutureRevision},
		{"compacted", RangeRequest{Key: []byte("k"), Revision: 3}, ErrCompacted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := f.Range(tt.req)
			assert.ErrorIs(t, err, tt.want)
		})
	}
	_, err := f.Range(RangeRequest{Key: []byte("k"), Revision: 1})
	var ce *CompactedError
	require.True(t, errors.As(err, &ce))
	assert.Equal(t, &CompactedError{Requested: 1, Oldest: 4}, ce)
}

func TestTxnCompares(t *testing.T) {
	f := newTestFSM(t, Config{})
	f.put("k", "m")  // rev 1
	f.put("x", "1")  // rev 2
	f.put("k", "m2") // rev 3: k create 1, mod 3, version 2
	cmp := func(key string, target CompareTarget, result CompareResult, value string, n int64) Compare {
		return Compare{Key: []byte(key), Target: target, Result: result, Value: []byte(value), Number: n}
	}
	tests := []struct {
		name string
		cmp  Compare
		want bool
	}{
		{"value equal", cmp("k", CompareValue, CompareEqual, "m2", 0), true},
		{"value equal false", cmp("k", CompareValue, CompareEqual, "m", 0), false},
		{"value not equal", cmp("k", CompareValue, CompareNotEqual, "m", 0), true},
		{"value greater", cmp("k", CompareValue, CompareGreater, "m", 0), true},
		{"value greater false", cmp("k", CompareValue, CompareGreater, "n", 0), false},
		{"value less", cmp("k", CompareValue, CompareLess, "n", 0), true},
		{"value less false", cmp("k", CompareValue, CompareLess, "m2", 0), false},
		{"version equal", cmp("k", CompareVersion, CompareEqual, "", 2), true},
		{"version not equal", cmp("k", CompareVersion, CompareNotEqual, "", 2), false},
		{"version greater", cmp("k", CompareVersion, CompareGreater, "", 1), true},
		{"version less", cmp("k", CompareVersion, CompareLess, "", 2), false},
		{"create equal", cmp("k", CompareCreateRevision, CompareEqual, "", 1), true},
		{"create greater", cmp("k", CompareCreateRevision, CompareGreater, "", 1), false},
		{"create less", cmp("k", CompareCreateRevision, CompareLess, "", 2), true},
		{"mod equal", cmp("k", CompareModRevision, CompareEqual, "", 3), true},
		{"mod not equal", cmp("k", CompareModRevision, CompareNotEqual, "", 3), false},
		{"mod greater", cmp("k", CompareModRevision, CompareGreater, "", 2), true},
		{"mod less", cmp("k", CompareModRevision, CompareLess, "", 3), false},
		// A missing key has version/create/mod 0 and fails every value compare.
		{"missing version equal 0", cmp("nope", CompareVersion, CompareEqual, "", 0), true},
		{"missing create equal 0", cmp("nope", CompareCreateRevision, CompareEqual, "", 0), true},
		{"missing mod less 1", cmp("nope", CompareModRevision, CompareLess, "", 1), true},
		{"missing value equal empty", cmp("nope", CompareValue, CompareEqual, "", 0), false},
		{"missing value not equal", cmp("nope", CompareValue, CompareNotEqual, "x", 0), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := f.txn(&Request{
				Compare: []Compare{tt.cmp},
				Success: []Op{{Type: OpRange, Key: []byte("x")}},
				Failure: []Op{{Type: OpRange, Key: []byte("k")}, {Type: OpRange, Key: []byte("x")}},
			})
			assert.Equal(t, tt.want, resp.Succeeded)
			if tt.want {
				assert.Len(t, resp.Results, 1)
			} else {
				assert.Len(t, resp.Results, 2, "else branch ran")
			}
		})
	}

	t.Run("all compares must hold", func(t *testing.T) {
		resp := f.txn(&Request{Compare: []Compare{
			cmp("k", CompareVersion, CompareEqual, "", 2),
			cmp("x", CompareVersion, CompareEqual, "", 5),
		}})
		assert.False(t, resp.Succeeded)
	})
}

func TestTxnCASAndElseBranch(t *testing.T) {
	f := newTestFSM(t, Config{})
	f.put("lock", "free")
	cas := func(expectMod int64, value string) *Response {
		return f.txn(&Request{
			Compare: []Compare{{Key: []byte("lock"), Target: CompareModRevision, Result: CompareEqual, Number: expectMod}},
			Success: []Op{{Type: OpPut, Key: []byte("lock"), Value: []byte(value), PrevKV: true}},
			Failure: []Op{{Type: OpRange, Key: []byte("lock")}},
		})
	}
	resp := cas(1, "held-by-a")
	assert.True(t, resp.Succeeded)
	assert.Equal(t, int64(2), resp.Revision)
	assert.Equal(t, "free", string(resp.Results[0].KVs[0].Value))

	resp = cas(1, "held-by-b") // stale
	assert.False(t, resp.Succeeded)
	assert.Equal(t, int64(2), resp.Revision)
	require.Len(t, resp.Results, 1)
	assert.Equal(t, OpRange, resp.Results[0].Type)
	assert.Equal(t, "held-by-a", string(resp.Results[0].KVs[0].Value))

	// Create-if-absent via version == 0.
	create := &Request{
		Compare: []Compare{{Key: []byte("new"), Target: CompareVersion, Result: CompareEqual, Number: 0}},
		Success: []Op{putOp("new", "1")},
	}
	assert.True(t, f.txn(create).Succeeded)
	assert.False(t, f.txn(create).Succeeded)

	// CAS on value.
	resp = f.txn(&Request{
		Compare: []Compare{{Key: []byte("new"), Target: CompareValue, Result: CompareEqual, Value: []byte("1")}},
		Success: []Op{putOp("new", "2")},
	})
	assert.True(t, resp.Succeeded)
	assert.Equal(t, "2", string(f.get("new").Value))
}

func TestTxnOpsSeeEarlierOps(t *testing.T) {
	f := newTestFSM(t, Config{})
	f.put("old", "x")
	resp := f.txn(&Request{Success: []Op{
		putOp("a", "1"),
		{Type: OpDelete, Key: []byte("old")},
		putOp("b", "2"),
		{Type: OpRange, Prefix: true},
	}})
	assert.True(t, resp.Succeeded)
	assert.Equal(t, int64(2), resp.Revision, "one txn, one revision")
	rng := resp.Results[3]
	assert.Equal(t, []string{"a", "b"}, keys(rng.KVs))
	for _, kv := range rng.KVs {
		assert.Equal(t, int64(2), kv.ModRevision)
	}
	assert.Equal(t, int64(1), resp.Results[1].Count)
}

func TestHistoricalRange(t *testing.T) {
	f := newTestFSM(t, Config{})
	f.put("a", "a1")                                                   // 1
	f.put("b", "b1")                                                   // 2
	f.put("a", "a2")                                                   // 3
	f.del("b", false)                                                  // 4
	f.put("c", "c1")                                                   // 5
	f.put("b", "b2")                                                   // 6
	f.del("", true)                                                    // 7: everything
	f.put("a", "a3")                                                   // 8
	f.txn(&Request{Success: []Op{putOp("d", "d1"), putOp("e", "e1")}}) // 9

	want := map[int64]map[string]string{
		1: {"a": "a1"},
		2: {"a": "a1", "b": "b1"},
		3: {"a": "a2", "b": "b1"},
		4: {"a": "a2"},
		5: {"a": "a2", "c": "c1"},
		6: {"a": "a2", "b": "b2", "c": "c1"},
		7: {},
		8: {"a": "a3"},
		9: {"a": "a3", "d": "d1", "e": "e1"},
	}
	for rev, kvs := range want {
		rr, err := f.Range(RangeRequest{Prefix: true, Revision: rev})
		require.NoError(t, err)
		got := map[string]string{}
		for _, kv := range rr.KVs {
			got[string(kv.Key)] = string(kv.Value)
			assert.LessOrEqual(t, kv.ModRevision, rev)
		}
		assert.Equal(t, kvs, got, "revision %d", rev)
		assert.Equal(t, int64(len(kvs)), rr.Count)
		assert.Equal(t, int64(9), rr.Revision)
		for k, v := range kvs {
			rr, err := f.Range(RangeRequest{Key: []byte(k), Revision: rev})
			require.NoError(t, err)
			require.Len(t, rr.KVs, 1)
			assert.Equal(t, v, string(rr.KVs[0].Value))
		}
	}
	// Sorted, limited, counted at a past revision.
	rr, err := f.Range(RangeRequest{Prefix: true, Revision: 6, Limit: 2})
	require.NoError(t, err)
	assert.Equal(t, []string{"a", "b"}, keys(rr.KVs))
	assert.True(t, rr.More)
	assert.Equal(t, int64(3), rr.Count)
	// Full metadata is restored, not just values.
	rr, err = f.Range(RangeRequest{Key: []byte("a"), Revision: 5})
	require.NoError(t, err)
	assert.Equal(t, KeyValue{Key: []byte("a"), Value: []byte("a2"), CreateRevision: 1, ModRevision: 3, Version: 2}, rr.KVs[0])
}

func TestCompaction(t *testing.T) {
	f := newTestFSM(t, Config{HistoryRetention: 3})
	for i := 1; i <= 10; i++ {
		f.put(fmt.Sprintf("k%d", i%2), fmt.Sprint(i))
		assert.Equal(t, max(0, int64(i)-3), f.CompactRevision())
	}
	// Revisions 8..10 are readable, 7 is not.
	for rev := int64(8); rev <= 10; rev++ {
		_, err := f.Range(RangeRequest{Prefix: true, Revision: rev})
		assert.NoError(t, err, "revision %d", rev)
	}
	_, err := f.Range(RangeRequest{Prefix: true, Revision: 7})
	assert.ErrorIs(t, err, ErrCompacted)
	f.mu.RLock()
	assert.Equal(t, 3, f.st.history.len())
	assert.Equal(t, int64(8), f.st.history.at(0).KV.ModRevision)
	f.mu.RUnlock()

	// Writes that change nothing do not compact further.
	f.del("missing", false)
	assert.Equal(t, int64(7), f.CompactRevision())
}

func TestMembers(t *testing.T) {
	f := newTestFSM(t, Config{})
	assert.Empty(t, f.Members())
	f.apply(&Command{Type: CmdPutMember, Member: &Member{ID: "n2", RaftAddr: "r2", HTTPAddr: "h2"}})
	f.apply(&Command{Type: CmdPutMember, Member: &Member{ID: "n1", RaftAddr: "r1", HTTPAddr: "h1"}})
	f.apply(&Command{Type: CmdPutMember, Member: &Member{ID: "n3", RaftAddr: "r3"}})
	f.apply(&Command{Type: CmdPutMember, Member: &Member{ID: "n1", RaftAddr: "r1b", HTTPAddr: "h1b"}})
	resp := f.apply(&Command{Type: CmdRemoveMember, Member: &Member{ID: "n3"}})
	assert.True(t, resp.Succeeded)
	assert.Equal(t, []Member{{ID: "n1", RaftAddr: "r1b", HTTPAddr: "h1b"}, {ID: "n2", RaftAddr: "r2", HTTPAddr: "h2"}}, f.Members())
	m, ok := f.Member("n2")
	assert.True(t, ok)
	assert.Equal(t, "h2", m.HTTPAddr)
	_, ok = f.Member("n3")
	assert.False(t, ok)
	assert.Equal(t, int64(0), f.Revision(), "members do not touch the KV revision")
}

func TestApplyRobustness(t *testing.T) {
	f := newTestFSM(t, Config{})
	f.put("k", "v")
	before := f.Hash()
	bad := []struct {
		name string
		data []byte
		want error
	}{
		{"garbage", []byte("garbage"), ErrUnsupportedVersion},
		{"empty", nil, ErrCorrupt},
		{"unknown command", []byte{1, 1, 99, 0}, ErrUnknownCommand},
		{"invalid txn", EncodeCommand(&Command{Type: CmdTxn, Txn: &Request{Success: []Op{putOp("k", "1"), putOp("k", "2")}}}), ErrInvalid},
		{"empty txn", EncodeCommand(&Command{Type: CmdTxn, Time: 77}), ErrInvalid},
		{"member without ID", EncodeCommand(&Command{Type: CmdPutMember, Member: &Member{}}), ErrInvalid},
		{"broken batch framing", append(EncodeBatch([][]byte{putCmd("z", "1")}), 0), ErrCorrupt},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			res := f.Apply(f.nextLog(tt.data))
			ar, ok := res.(ApplyResult)
			require.True(t, ok, "got %T", res)
			assert.ErrorIs(t, ar.Err, tt.want)
			assert.Nil(t, ar.Response)
			assert.Equal(t, before, f.Hash(), "state unchanged")
			assert.Equal(t, f.index, f.AppliedIndex(), "applied index still advances")
			assert.Equal(t, int64(0), f.LastTime())
		})
	}
	// Limits are not enforced at apply time (the proposer's policy).
	big := EncodeCommand(&Command{Type: CmdTxn, Txn: &Request{Success: []Op{putOp(string(make([]byte, 5000)), "")}}})
	ar := f.Apply(f.nextLog(big)).(ApplyResult)
	assert.NoError(t, ar.Err)
}

func TestApplyResultLayout(t *testing.T) {
	f := New(Config{})
	batch := EncodeBatch([][]byte{
		putCmd("a", "1"),
		[]byte{1, 1, 99, 0}, // unknown command: fails alone
		EncodeCommand(&Command{Type: CmdNoop, Time: 10}),
		putCmd("b", "2"),
	})
	logs := []*raft.Log{
		{Index: 1, Type: raft.LogConfiguration, Data: []byte("ignored")},
		{Index: 2, Type: raft.LogCommand, Data: putCmd("x", "0")},
		{Index: 3, Type: raft.LogCommand, Data: batch},
		{Index: 4, Type: raft.LogCommand, Data: EncodeBatch(nil)},
		{Index: 5, Type: raft.LogConfiguration},
	}
	out := f.ApplyBatch(logs)
	require.Len(t, out, 5)
	assert.Nil(t, out[0])
	single, ok := out[1].(ApplyResult)
	require.True(t, ok)
	assert.Equal(t, int64(1), single.Response.Revision)

	multi, ok := out[2].([]ApplyResult)
	require.True(t, ok)
	require.Len(t, multi, 4)
	assert.NoError(t, multi[0].Err)
	assert.Equal(t, int64(2), multi[0].Response.Revision)
	assert.ErrorIs(t, multi[1].Err, ErrUnknownCommand)
	assert.NoError(t, multi[2].Err)
	assert.Equal(t, &Response{Succeeded: true, Revision: 2}, multi[2].Response)
	assert.Equal(t, int64(3), multi[3].Response.Revision)

	empty, ok := out[3].([]ApplyResult)
	require.True(t, ok)
	assert.Empty(t, empty)
	assert.Nil(t, out[4])

	assert.Equal(t, uint64(5), f.AppliedIndex(), "configuration entries advance the applied index")
	assert.Equal(t, int64(10), f.LastTime())
	assert.Equal(t, int64(3), f.Revision())

	// Apply (non-batching path) handles a configuration entry the same way.
	assert.Nil(t, f.Apply(&raft.Log{Index: 6, Type: raft.LogConfiguration}))
	assert.Equal(t, uint64(6), f.AppliedIndex())
}

func TestLastTimeNeverGoesBack(t *testing.T) {
	f := newTestFSM(t, Config{})
	f.apply(&Command{Type: CmdNoop, Time: 100})
	f.apply(&Command{Type: CmdTxn, Time: 50, Txn: &Request{Success: []Op{putOp("k", "v")}}})
	assert.Equal(t, int64(100), f.LastTime())
	f.apply(&Command{Type: CmdNoop, Time: 150})
	f.apply(&Command{Type: CmdNoop})
	assert.Equal(t, int64(150), f.LastTime())
}

func TestWaitApplied(t *testing.T) {
	f := newTestFSM(t, Config{})
	require.NoError(t, f.WaitApplied(t.Context(), 0))

	done := make(chan error, 1)
	go func() { done <- f.WaitApplied(t.Context(), 3) }()
	f.put("a", "1")
	f.put("a", "2")
	select {
	case err := <-done:
		t.Fatalf("returned early: %v", err)
	default:
	}
	f.put("a", "3")
	require.NoError(t, <-done)

	ctx, cancel := contextWithCancel(t)
	go func() { done <- f.WaitApplied(ctx, 100) }()
	cancel()
	assert.ErrorIs(t, <-done, errCanceled)
}

func TestDeterminism(t *testing.T) {
	// Two replicas fed the same entries, one by Apply and one by
	// ApplyBatch in uneven chunks, end up identical.
	var logs []*raft.Log
	idx := uint64(0)
	add := func(data []byte) {
		idx++
		logs = append(logs, &raft.Log{Index: idx, Type: raft.LogCommand, Data: data})
	}
	for i := range 500 {
		k := fmt.Sprintf("key/%03d", i%37)
		switch i % 7 {
		case 0:
			add(EncodeCommand(&Command{Type: CmdTxn, Txn: &Request{Success: []Op{{Type: OpDelete, Key: []byte(k)}}}}))
		case 1:
			add(EncodeBatch([][]byte{putCmd(k, "b1"), putCmd(k+"x", "b2")}))
		case 2:
			add(EncodeCommand(&Command{Type: CmdPutMember, Time: int64(i), Member: &Member{ID: fmt.Sprint(i % 5), RaftAddr: k}}))
		case 3:
			add(EncodeCommand(&Command{Type: CmdTxn, Txn: &Request{
				Compare: []Compare{{Key: []byte(k), Target: CompareVersion, Result: CompareGreater, Number: 2}},
				Success: []Op{{Type: OpDelete, Key: []byte("key/01"), Prefix: true}},
				Failure: []Op{putOp(k, fmt.Sprint(i))},
			}}))
		default:
			add(putCmd(k, fmt.Sprint(i)))
		}
	}
	a, b := New(Config{HistoryRetention: 100}), New(Config{HistoryRetention: 100})
	for _, l := range logs {
		a.Apply(l)
	}
	for i := 0; i < len(logs); {
		n := min(1+i%13, len(logs)-i)
		b.ApplyBatch(logs[i : i+n])
		i += n
	}
	assert.Equal(t, a.Hash(), b.Hash())
	assert.Equal(t, a.Revision(), b.Revision())
	assert.Equal(t, a.CompactRevision(), b.CompactRevision())
	assert.Equal(t, a.AppliedIndex(), b.AppliedIndex())
	assert.Equal(t, a.LastTime(), b.LastTime())
	for rev := a.CompactRevision() + 1; rev <= a.Revision(); rev++ {
		ra, err := a.Range(RangeRequest{Prefix: true, Revision: rev})
		require.NoError(t, err)
		rb, err := b.Range(RangeRequest{Prefix: true, Revision: rev})
		require.NoError(t, err)
		require.Equal(t, ra, rb, "revision %d", rev)
	}

	// And the hash does see differences.
	c := New(Config{HistoryRetention: 100})
	c.ApplyBatch(logs[:len(logs)-1])
	assert.NotEqual(t, a.Hash(), c.Hash())
}

func TestConcurrentReadsDuringApply(t *testing.T) {
	f := newTestFSM(t, Config{HistoryRetention: 50})
	stop := make(chan struct{})
	var wg sync.WaitGroup
	reader := func(fn func()) {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
					fn()
				}
			}
		})
	}
	reader(func() {
		rev := f.Revision()
		rr, err := f.Range(RangeRequest{Prefix: true, Revision: rev})
		if err != nil {
			assert.ErrorIs(t, err, ErrCompacted) // compacted meanwhile
			return
		}
		assert.GreaterOrEqual(t, rr.Revision, rev)
	})
	reader(func() { f.Hash(); f.Members(); f.LastTime(); f.CompactRevision() })
	reader(func() {
		snap, err := f.Snapshot()
		assert.NoError(t, err)
		assert.NoError(t, snap.Persist(&memSink{}))
		snap.Release()
	})
	wg.Go(func() {
		defer close(stop)
		for i := range 2000 {
			if i%10 == 0 {
				f.del("k/", true)
			} else {
				f.put(fmt.Sprintf("k/%d", i%17), "v")
			}
		}
	})
	wg.Wait()
	require.NoError(t, f.WaitApplied(t.Context(), 2000))
}
