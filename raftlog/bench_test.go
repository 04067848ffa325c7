package raftlog

import (
	"testing"

	"github.com/hashicorp/raft"
)

// BenchmarkStoreLog measures one durable append of a 300-byte entry with
// each engine: the floor of a write's latency on this disk, paid once on
// the leader and once on a follower.
func BenchmarkStoreLog(b *testing.B) {
	for _, engine := range []string{EngineBolt, EngineWAL} {
		b.Run(engine, func(b *testing.B) { benchStoreLog(b, engine) })
	}
}

func benchStoreLog(b *testing.B, engine string) {
	st, err := Open(Config{Dir: b.TempDir(), NodeID: "b", Engine: engine})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	data := make([]byte, 300)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := st.Log.StoreLog(&raft.Log{Index: uint64(i + 1), Term: 1, Data: data}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStoreLogReused is BenchmarkStoreLog on a database whose pages
// were allocated and freed before (the steady state after log compaction).
func BenchmarkStoreLogReused(b *testing.B) {
	st, err := Open(Config{Dir: b.TempDir(), NodeID: "b"})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	data := make([]byte, 300)
	var batch []*raft.Log
	for i := 1; i <= 30000; i++ {
		batch = append(batch, &raft.Log{Index: uint64(i), Term: 1, Data: data})
		if len(batch) == 1000 {
			if err := st.Log.StoreLogs(batch); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	if err := st.Log.DeleteRange(1, 30000); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := st.Log.StoreLog(&raft.Log{Index: uint64(30001 + i), Term: 1, Data: data}); err != nil {
			b.Fatal(err)
		}
	}
}
