package fsm

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// recv returns the next response or fails after a timeout.
func recv(t *testing.T, ch <-chan WatchResponse) WatchResponse {
	t.Helper()
	select {
	case wr, ok := <-ch:
		require.True(t, ok, "channel closed")
		return wr
	case <-time.After(10 * time.Second):
		t.Fatal("no watch response")
	}
	return WatchResponse{}
}

// drainClosed waits for ch to be closed, discarding responses.
func drainClosed(t *testing.T, ch <-chan WatchResponse) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-timeout:
			t.Fatal("watch channel not closed")
		}
	}
}

func TestWatchFromPastRevisionThenLive(t *testing.T) {
	f := newTestFSM(t, Config{})
	f.put("a", "1")                                                      // 1
	f.put("b", "1")                                                      // 2
	f.put("a", "2")                                                      // 3
	f.txn(&Request{Success: []Op{putOp("a/x", "1"), putOp("a/y", "1")}}) // 4

	ctx, cancel := context.WithCancel(t.Context())
	ch, err := f.Watch(ctx, WatchRequest{Key: []byte("a"), Prefix: true, StartRevision: 2, PrevKV: true})
	require.NoError(t, err)
	wr := recv(t, ch)
	require.Len(t, wr.Events, 3)
	assert.Equal(t, int64(4), wr.Revision)
	assert.Equal(t, "a", string(wr.Events[0].KV.Key))
	assert.Equal(t, int64(3), wr.Events[0].KV.ModRevision)
	require.NotNil(t, wr.Events[0].PrevKV)
	assert.Equal(t, "1", string(wr.Events[0].PrevKV.Value))
	assert.Equal(t, []string{"a/x", "a/y"}, []string{string(wr.Events[1].KV.Key), string(wr.Events[2].KV.Key)})
	assert.Nil(t, wr.Events[1].PrevKV)

	f.put("b", "2") // not matched
	f.del("a", false)
	wr = recv(t, ch)
	require.Len(t, wr.Events, 1)
	e := wr.Events[0]
	assert.Equal(t, EventDelete, e.Type)
	assert.Equal(t, KeyValue{Key: []byte("a"), ModRevision: 6}, e.KV)
	require.NotNil(t, e.PrevKV)
	assert.Equal(t, "2", string(e.PrevKV.Value))

	// Mutating a delivered PrevKV must not reach the store.
	e.PrevKV.Version = 999
	rr, err := f.Range(RangeRequest{Key: []byte("a"), Revision: 5})
	require.NoError(t, err)
	assert.Equal(t, int64(2), rr.KVs[0].Version)

	cancel()
	drainClosed(t, ch)
	f.wg.Wait()
}

func TestWatchStartZeroAndFilters(t *testing.T) {
	f := newTestFSM(t, Config{})
	f.put("k", "old")
	tests := []struct {
		name string
		req  WatchRequest
		want []string // keys of the events, in order
	}{
		{"exact key", WatchRequest{Key: []byte("k")}, []string{"k"}},
		{"prefix", WatchRequest{Key: []byte("k"), Prefix: true}, []string{"k", "k2"}},
		{"all keys", WatchRequest{Prefix: true}, []string{"j", "k", "k2"}},
	}
	var chans []<-chan WatchResponse
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	for _, tt := range tests {
		ch, err := f.Watch(ctx, tt.req)
		require.NoError(t, err)
		chans = append(chans, ch)
	}
	f.put("j", "1")
	f.put("k", "new")
	f.put("k2", "1")
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for len(got) < len(tt.want) {
				for _, e := range recv(t, chans[i]).Events {
					got = append(got, string(e.KV.Key))
					assert.Nil(t, e.PrevKV, "PrevKV not requested")
					assert.Greater(t, e.KV.ModRevision, int64(1), "start 0 skips existing history")
				}
			}
			assert.Equal(t, tt.want, got)
		})
	}
	cancel()
	for _, ch := range chans {
		drainClosed(t, ch)
	}
}

func TestWatchErrors(t *testing.T) {
	f := newTestFSM(t, Config{HistoryRetention: 2})
	for i := range 5 {
		f.put("k", fmt.Sprint(i))
	}
	_, err := f.Watch(t.Context(), WatchRequest{})
	assert.ErrorIs(t, err, ErrInvalid)
	_, err = f.Watch(t.Context(), WatchRequest{Key: []byte("k"), StartRevision: -1})
	assert.ErrorIs(t, err, ErrInvalid)
	_, err = f.Watch(t.Context(), WatchRequest{Key: []byte("k"), StartRevision: 3})
	assert.Equal(t, &CompactedError{Requested: 3, Oldest: 4}, err)
	assert.ErrorIs(t, err, ErrCompacted)

	ctx, cancel := context.WithCancel(t.Context())
	ch, err := f.Watch(ctx, WatchRequest{Key: []byte("k"), StartRevision: 4})
	require.NoError(t, err)
	wr := recv(t, ch)
	assert.Len(t, wr.Events, 2)
	cancel()
	drainClosed(t, ch)
}

func TestWatchFutureStart(t *testing.T) {
	f := newTestFSM(t, Config{})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	ch, err := f.Watch(ctx, WatchRequest{Prefix: true, StartRevision: 3})
	require.NoError(t, err)
	f.put("a", "1")
	f.put("a", "2")
	f.put("a", "3")
	wr := recv(t, ch)
	require.Len(t, wr.Events, 1)
	assert.Equal(t, int64(3), wr.Events[0].KV.ModRevision)
	cancel()
	drainClosed(t, ch)
}

func TestWatchNoGapsUnderConcurrentApply(t *testing.T) {
	const writes = 5000
	f := newTestFSM(t, Config{HistoryRetention: writes * 2})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	all, err := f.Watch(ctx, WatchRequest{Prefix: true, StartRevision: 1})
	require.NoError(t, err)
	even, err := f.Watch(ctx, WatchRequest{Key: []byte("even/"), Prefix: true, StartRevision: 1})
	require.NoError(t, err)

	var wg sync.WaitGroup
	wg.Go(func() {
		// Mix single applies and batches, as raft does.
		for i := 0; i < writes; {
			n := 1 + i%5
			logs := make([]*raft.Log, 0, n)
			for j := 0; j < n && i < writes; j++ {
				k := fmt.Sprintf("odd/%d", i)
				if i%2 == 0 {
					k = fmt.Sprintf("even/%d", i)
				}
				logs = append(logs, f.nextLog(putCmd(k, "v")))
				i++
			}
			f.ApplyBatch(logs)
		}
	})

	check := func(ch <-chan WatchResponse, step int64, total int) {
		next := int64(1)
		for n := 0; n < total; {
			wr := recv(t, ch)
			require.NoError(t, wr.Err)
			require.NotEmpty(t, wr.Events)
			for _, e := range wr.Events {
				require.Equal(t, next, e.KV.ModRevision, "gap or duplicate")
				next += step
				n++
			}
		}
	}
	wg.Go(func() { check(all, 1, writes) })
	wg.Go(func() { check(even, 2, writes/2) })
	wg.Wait()
	cancel()
	drainClosed(t, all)
	drainClosed(t, even)
}

func TestWatchSlowConsumerGetsEverything(t *testing.T) {
	const writes = 3000
	f := newTestFSM(t, Config{})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	ch, err := f.Watch(ctx, WatchRequest{Prefix: true})
	require.NoError(t, err)
	// Apply everything while nobody reads: Apply must not block.
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range writes {
			f.Apply(&raft.Log{Index: uint64(i + 1), Type: raft.LogCommand, Data: putCmd(fmt.Sprint(i), "v")})
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Apply blocked on a slow watcher")
	}
	next, responses := int64(1), 0
	for next <= writes {
		wr := recv(t, ch)
		responses++
		assert.LessOrEqual(t, len(wr.Events), watchBatchEvents)
		for _, e := range wr.Events {
			require.Equal(t, next, e.KV.ModRevision)
			next++
		}
	}
	assert.GreaterOrEqual(t, responses, writes/watchBatchEvents, "responses are batched")
	cancel()
	drainClosed(t, ch)
}

func TestWatchRevisionNotSplit(t *testing.T) {
	f := newTestFSM(t, Config{})
	// One txn writing more keys than a response's batch size.
	ops := make([]Op, 0, 1500)
	for i := range cap(ops) {
		ops = append(ops, putOp(fmt.Sprintf("k%05d", i), "v"))
	}
	f.put("first", "v")
	f.txn(&Request{Success: ops[:999]})
	f.txn(&Request{Success: ops[999:]})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	ch, err := f.Watch(ctx, WatchRequest{Prefix: true, StartRevision: 1})
	require.NoError(t, err)
	wr := recv(t, ch)
	assert.Len(t, wr.Events, 1000, "revision 2 is completed in the first response")
	wr = recv(t, ch)
	assert.Len(t, wr.Events, 501)
	for _, e := range wr.Events {
		assert.Equal(t, int64(3), e.KV.ModRevision)
	}
	cancel()
	drainClosed(t, ch)
}

func TestWatchFallsBehindCompaction(t *testing.T) {
	f := newTestFSM(t, Config{HistoryRetention: 10})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	ch, err := f.Watch(ctx, WatchRequest{Prefix: true, StartRevision: 1})
	require.NoError(t, err)
	// Nobody reads, so the watcher is stuck offering its first response
	// (or not even scheduled yet) while the history it needs next is
	// compacted away.
	for i := range 100 {
		f.put("k", fmt.Sprint(i))
	}
	next := int64(1)
	var last WatchResponse
	for wr := range ch {
		for _, e := range wr.Events {
			require.Equal(t, next, e.KV.ModRevision, "no gaps before the error")
			next++
		}
		last = wr
	}
	var ce *CompactedError
	require.ErrorAs(t, last.Err, &ce)
	assert.Empty(t, last.Events)
	assert.Equal(t, next, ce.Requested, "the error names the first revision not delivered")
	assert.Equal(t, last.Revision-10+1, ce.Oldest)
	assert.Less(t, ce.Requested, ce.Oldest)
}

func TestWatchAfterRestoreSkippingHistory(t *testing.T) {
	leader := newTestFSM(t, Config{HistoryRetention: 5})
	for i := range 20 {
		leader.put("k", fmt.Sprint(i))
	}
	snap := persist(t, leader.FSM)

	follower := newTestFSM(t, Config{HistoryRetention: 5})
	follower.put("k", "0")
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	ch, err := follower.Watch(ctx, WatchRequest{Key: []byte("k")})
	require.NoError(t, err) // next revision: 2
	require.NoError(t, follower.Restore(snap.reader()))
	wr := recv(t, ch)
	assert.ErrorIs(t, wr.Err, ErrCompacted)
	drainClosed(t, ch)

	// A watcher whose next revision the snapshot still covers continues
	// seamlessly.
	follower2 := newTestFSM(t, Config{HistoryRetention: 5})
	for i := range 17 {
		follower2.put("k", fmt.Sprint(i))
	}
	ch, err = follower2.Watch(ctx, WatchRequest{Key: []byte("k")})
	require.NoError(t, err) // next revision: 18
	require.NoError(t, follower2.Restore(snap.reader()))
	var revs []int64
	for len(revs) < 3 {
		for _, e := range recv(t, ch).Events {
			revs = append(revs, e.KV.ModRevision)
		}
	}
	assert.Equal(t, []int64{18, 19, 20}, revs)
	cancel()
	drainClosed(t, ch)
}
