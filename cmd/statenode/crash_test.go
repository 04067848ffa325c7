package main

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/statenode/statenode/client"
)

// TestKill9RecoversEveryAcknowledgedWrite kills every member of a 3-node
// cluster with SIGKILL in the middle of a write load, restarts them on the
// same data directories, and checks that every acknowledged write is there.
func TestKill9RecoversEveryAcknowledgedWrite(t *testing.T) {
	ids := []string{"a", "b", "c"}
	raftAddrs := []string{freeAddr(t), freeAddr(t), freeAddr(t)}
	httpAddrs := []string{freeAddr(t), freeAddr(t), freeAddr(t)}
	dirs := []string{t.TempDir(), t.TempDir(), t.TempDir()}
	var peers []string
	for i, id := range ids {
		peers = append(peers, id+"="+raftAddrs[i])
	}
	run := func(i int) *proc {
		return start(t, ids[i], nil, "agent", "--id", ids[i], "--data-dir", dirs[i],
			"--http-addr", httpAddrs[i], "--raft-addr", raftAddrs[i],
			"--heartbeat-timeout", "200ms", "--election-timeout", "200ms", "--leader-lease-timeout", "100ms",
			"--initial-cluster", strings.Join(peers, ","))
	}
	procs := make([]*proc, 3)
	for i := range ids {
		procs[i] = run(i)
	}
	c, err := client.New(client.Config{Endpoints: httpAddrs, RequestTimeout: 2 * time.Second})
	require.NoError(t, err)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	require.Eventually(t, func() bool {
		_, err := c.Put(ctx, "ready", []byte("1"))
		return err == nil
	}, 30*time.Second, 50*time.Millisecond)

	var (
		mu    sync.Mutex
		acked []string
		wg    sync.WaitGroup
	)
	loadCtx, stopLoad := context.WithCancel(ctx)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; loadCtx.Err() == nil; i++ {
				key := fmt.Sprintf("crash/%d/%d", w, i)
				if _, err := c.Put(loadCtx, key, []byte("v")); err == nil {
					mu.Lock()
					acked = append(acked, key)
					mu.Unlock()
				}
			}
		}()
	}
	require.Eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(acked) >= 200 }, 30*time.Second, 10*time.Millisecond)
	for _, p := range procs {
		require.NoError(t, p.cmd.Process.Signal(syscall.SIGKILL))
	}
	for _, p := range procs {
		<-p.done
	}
	stopLoad()
	wg.Wait()

	for i := range ids {
		procs[i] = run(i)
	}
	mu.Lock()
	keys := append([]string(nil), acked...)
	mu.Unlock()
	require.Eventually(t, func() bool {
		_, err := c.Put(ctx, "after", []byte("restart"))
		return err == nil
	}, 30*time.Second, 50*time.Millisecond)
	r, err := c.Range(ctx, "crash/")
	require.NoError(t, err)
	have := map[string]bool{}
	for _, kv := range r.KVs {
		have[string(kv.Key)] = true
	}
	for _, k := range keys {
		require.True(t, have[k], "acknowledged write %s lost after kill -9 of every node", k)
	}
	t.Logf("%d acknowledged writes, all present after kill -9 and restart (%d keys stored)", len(keys), len(have))
}
