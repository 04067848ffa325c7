package raftlog

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/hashicorp/raft"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestOpenRecordsIdentityAndState(t *testing.T) {
	for _, engine := range []string{EngineBolt, EngineWAL} {
		t.Run(engine, func(t *testing.T) {
			dir := t.TempDir()
			cfg := Config{Dir: dir, NodeID: "n1", Engine: engine}
			st, err := Open(cfg)
			require.NoError(t, err)
			require.Equal(t, engine, st.Engine())
			has, err := st.HasState()
			require.NoError(t, err)
			require.False(t, has)
			require.NoError(t, st.Log.StoreLog(&raft.Log{Index: 1, Term: 1, Type: raft.LogCommand, Data: []byte("x")}))
			require.NoError(t, st.Stable.SetUint64([]byte("CurrentTerm"), 1))
			require.NoError(t, st.Close())

			// Reopened: the entry is there and the directory knows it has state.
			st, err = Open(cfg)
			require.NoError(t, err)
			has, err = st.HasState()
			require.NoError(t, err)
			require.True(t, has)
			var l raft.Log
			require.NoError(t, st.Log.GetLog(1, &l))
			require.Equal(t, "x", string(l.Data))
			term, err := st.Stable.GetUint64([]byte("CurrentTerm"))
			require.NoError(t, err)
			require.EqualValues(t, 1, term)

			// A second process (here: a second Open) cannot take the directory.
			_, err = Open(cfg)
			require.ErrorIs(t, err, ErrLocked)
			require.NoError(t, st.Close())

			// Another node ID is refused.
			_, err = Open(Config{Dir: dir, NodeID: "n2", Engine: engine})
			require.ErrorIs(t, err, ErrIdentityMismatch)

			// Another engine is refused, and the directory still opens
			// with its own afterwards.
			other := EngineWAL
			if engine == EngineWAL {
				other = EngineBolt
			}
			_, err = Open(Config{Dir: dir, NodeID: "n1", Engine: other})
			require.ErrorIs(t, err, ErrEngineMismatch)
			st, err = Open(cfg)
			require.NoError(t, err)
			require.NoError(t, st.Log.GetLog(1, &l))
			require.NoError(t, st.Close())
		})
	}
}

// A directory created before engines were selectable (node.json without
// "engine") is a bolt directory.
func TestIdentityWithoutEngineIsBolt(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "node.json"), []byte(`{"id":"n1"}`), 0o640))
	_, err := Open(Config{Dir: dir, NodeID: "n1", Engine: EngineWAL})
	require.ErrorIs(t, err, ErrEngineMismatch)
	st, err := Open(Config{Dir: dir, NodeID: "n1"})
	require.NoError(t, err)
	assert.Equal(t, EngineBolt, st.Engine())
	require.NoError(t, st.Close())
}

// An empty Engine keeps the engine a directory uses and picks wal for a
// new one; a bolt log without node.json stays bolt.
func TestOpenWithoutEngine(t *testing.T) {
	for _, engine := range []string{EngineBolt, EngineWAL} {
		dir := t.TempDir()
		st, err := Open(Config{Dir: dir, NodeID: "n1", Engine: engine})
		require.NoError(t, err)
		require.NoError(t, st.Close())
		st, err = Open(Config{Dir: dir, NodeID: "n1"})
		require.NoError(t, err)
		assert.Equal(t, engine, st.Engine(), "a %s directory", engine)
		require.NoError(t, st.Close())
	}

	dir := t.TempDir()
	st, err := Open(Config{Dir: dir, NodeID: "n1"})
	require.NoError(t, err)
	assert.Equal(t, EngineWAL, st.Engine(), "a new directory")
	require.NoError(t, st.Close())
	_, err = Open(Config{Dir: dir, NodeID: "n1", Engine: EngineBolt})
	require.ErrorIs(t, err, ErrEngineMismatch, "node.json recorded the engine picked")

	dir = t.TempDir()
	st, err = Open(Config{Dir: dir, NodeID: "n1", Engine: EngineBolt})
	require.NoError(t, err)
	require.NoError(t, st.Close())
	require.NoError(t, os.Remove(filepath.Join(dir, "node.json")))
	_, err = Open(Config{Dir: dir, NodeID: "n1", Engine: EngineWAL})
	require.ErrorIs(t, err, ErrEngineMismatch, "a wal log would hide the bolt log's term, vote and entries")
	st, err = Open(Config{Dir: dir, NodeID: "n1"})
	require.NoError(t, err)
	assert.Equal(t, EngineBolt, st.Engine(), "raft/raft.db without node.json")
	require.NoError(t, st.Close())

	dir = t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "node.json"), []byte(`{"id":"n1","engine":"rocks"}`), 0o640))
	_, err = Open(Config{Dir: dir, NodeID: "n1"})
	require.ErrorContains(t, err, `unknown log engine "rocks"`)
}

func TestOpenRejectsUnknownEngine(t *testing.T) {
	dir := t.TempDir()
	_, err := Open(Config{Dir: dir, NodeID: "n1", Engine: "rocks"})
	require.ErrorContains(t, err, `unknown log engine "rocks"`)
	_, statErr := os.Stat(filepath.Join(dir, "node.json"))
	require.ErrorIs(t, statErr, os.ErrNotExist, "a refused Open changes nothing")
}

func TestOpenNeedsDir(t *testing.T) {
	_, err := Open(Config{})
	require.Error(t, err)
}

// TestStableWritesAfterCloseDoNotFail: raft panics on a failed stable-store
// write, and a heartbeat in flight at shutdown may write after Close.
func TestStableWritesAfterCloseDoNotFail(t *testing.T) {
	for _, engine := range []string{EngineBolt, EngineWAL} {
		st, err := Open(Config{Dir: t.TempDir(), NodeID: "n1", Engine: engine})
		require.NoError(t, err)
		require.NoError(t, st.Close())
		require.NoError(t, st.Stable.SetUint64([]byte("CurrentTerm"), 9))
		require.NoError(t, st.Stable.Set([]byte("k"), []byte("v")))
		_, err = st.Stable.GetUint64([]byte("CurrentTerm"))
		require.Error(t, err)
	}
}

// A follower whose uncommitted tail conflicts with a new leader deletes
// that tail (DeleteRange up to the last index) and appends the leader's
// entries in its place. After a restart the log must read back exactly:
// the kept prefix and the new entries. (raft-wal v0.4.0 marked the
// truncated segment sealed without writing its index: reading the
// reopened log hung, and this test ran into its timeout.)
func TestTailTruncationSurvivesRestart(t *testing.T) {
	for _, engine := range []string{EngineBolt, EngineWAL} {
		t.Run(engine, func(t *testing.T) {
			cfg := Config{Dir: t.TempDir(), NodeID: "n1", Engine: engine}
			st, err := Open(cfg)
			require.NoError(t, err)
			entry := func(i uint64, term uint64) *raft.Log {
				return &raft.Log{Index: i, Term: term, Type: raft.LogCommand, Data: []byte(fmt.Sprintf("t%d-%d", term, i))}
			}
			var logs []*raft.Log
			for i := uint64(1); i <= 10; i++ {
				logs = append(logs, entry(i, 1))
			}
			require.NoError(t, st.Log.StoreLogs(logs))
			require.NoError(t, st.Log.DeleteRange(6, 10))
			require.NoError(t, st.Log.StoreLogs([]*raft.Log{entry(6, 2), entry(7, 2), entry(8, 2)}))
			require.NoError(t, st.Close())

			st, err = Open(cfg)
			require.NoError(t, err)
			defer st.Close()
			last, err := st.Log.LastIndex()
			require.NoError(t, err)
			require.EqualValues(t, 8, last)
			for i := uint64(1); i <= 8; i++ {
				want := entry(i, 1)
				if i >= 6 {
					want = entry(i, 2)
				}
				var l raft.Log
				require.NoError(t, st.Log.GetLog(i, &l), "index %d", i)
				require.Equal(t, string(want.Data), string(l.Data), "index %d", i)
			}
		})
	}
}
