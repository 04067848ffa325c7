package fsm

import (
	"fmt"
	"testing"

	"github.com/hashicorp/raft"
)

// benchKeys is the working set of the apply benchmarks: puts overwrite a
// 100k-key store, as in steady state.
const benchKeys = 100_000

func benchPutCmds(n int) [][]byte {
	cmds := make([][]byte, n)
	value := make([]byte, 100)
	for i := range cmds {
		cmds[i] = EncodeCommand(&Command{Type: CmdTxn, Time: 1_700_000_000_000_000_000, Txn: &Request{
			Success: []Op{{Type: OpPut, Key: fmt.Appendf(nil, "bench/key/%08d", i%benchKeys), Value: value}},
		}})
	}
	return cmds
}

func BenchmarkApplyPut(b *testing.B) {
	cmds := benchPutCmds(benchKeys)
	f := New(Config{})
	for i, c := range cmds { // preload
		f.Apply(&raft.Log{Index: uint64(i + 1), Type: raft.LogCommand, Data: c})
	}
	idx := uint64(len(cmds))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		idx++
		f.Apply(&raft.Log{Index: idx, Type: raft.LogCommand, Data: cmds[i%len(cmds)]})
	}
}

func BenchmarkApplyBatch(b *testing.B) {
	const batch = 64
	cmds := benchPutCmds(benchKeys)
	f := New(Config{})
	idx := uint64(0)
	logs := make([]*raft.Log, batch)
	for i := range logs {
		logs[i] = &raft.Log{Type: raft.LogCommand}
	}
	next := 0
	fill := func() {
		for i := range logs {
			idx++
			logs[i].Index = idx
			logs[i].Data = cmds[next%len(cmds)]
			next++
		}
	}
	for range benchKeys / batch { // preload
		fill()
		f.ApplyBatch(logs)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		fill()
		f.ApplyBatch(logs)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batch), "ns/put")
}

func BenchmarkEncodeCommand(b *testing.B) {
	c := &Command{Type: CmdTxn, Time: 1_700_000_000_000_000_000, Txn: &Request{
		Compare: []Compare{{Key: []byte("bench/key/00000001"), Target: CompareModRevision, Result: CompareEqual, Number: 12345}},
		Success: []Op{{Type: OpPut, Key: []byte("bench/key/00000001"), Value: make([]byte, 100), PrevKV: true}},
		Failure: []Op{{Type: OpRange, Key: []byte("bench/key/00000001")}},
	}}
	buf := make([]byte, 0, 512)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendCommand(buf[:0], c)
	}
	b.SetBytes(int64(len(buf)))
}

func BenchmarkDecodeCommand(b *testing.B) {
	data := EncodeCommand(&Command{Type: CmdTxn, Time: 1_700_000_000_000_000_000, Txn: &Request{
		Compare: []Compare{{Key: []byte("bench/key/00000001"), Target: CompareModRevision, Result: CompareEqual, Number: 12345}},
		Success: []Op{{Type: OpPut, Key: []byte("bench/key/00000001"), Value: make([]byte, 100), PrevKV: true}},
		Failure: []Op{{Type: OpRange, Key: []byte("bench/key/00000001")}},
	}})
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeCommand(data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRange(b *testing.B) {
	f := New(Config{})
	for i, c := range benchPutCmds(benchKeys) {
		f.Apply(&raft.Log{Index: uint64(i + 1), Type: raft.LogCommand, Data: c})
	}
	b.Run("key", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			key := fmt.Appendf(nil, "bench/key/%08d", i%benchKeys)
			if rr, err := f.Range(RangeRequest{Key: key}); err != nil || len(rr.KVs) != 1 {
				b.Fatal(err)
			}
		}
	})
	b.Run("prefix-limit-10", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := f.Range(RangeRequest{Key: []byte("bench/key/0000"), Prefix: true, Limit: 10}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("historical-key", func(b *testing.B) {
		b.ReportAllocs()
		rev := f.Revision() - 1000
		for b.Loop() {
			if _, err := f.Range(RangeRequest{Key: []byte("bench/key/00000001"), Revision: rev}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkSnapshotPersist(b *testing.B) {
	f := New(Config{})
	for i, c := range benchPutCmds(benchKeys) {
		f.Apply(&raft.Log{Index: uint64(i + 1), Type: raft.LogCommand, Data: c})
	}
	b.ReportAllocs()
	for b.Loop() {
		snap, _ := f.Snapshot()
		sink := &memSink{}
		if err := snap.Persist(sink); err != nil {
			b.Fatal(err)
		}
		b.SetBytes(int64(sink.Len()))
	}
}
