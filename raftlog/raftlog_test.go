package raftlog

import (
	"testing"

	"github.com/hashicorp/raft"
	"github.com/stretchr/testify/require"
)

func TestOpenRecordsIdentityAndState(t *testing.T) {
	dir := t.TempDir()
	st, err := Open(Config{Dir: dir, NodeID: "n1"})
	require.NoError(t, err)
	has, err := st.HasState()
	require.NoError(t, err)
	require.False(t, has)
	require.NoError(t, st.Log.StoreLog(&raft.Log{Index: 1, Term: 1, Type: raft.LogCommand, Data: []byte("x")}))
	require.NoError(t, st.Stable.SetUint64([]byte("CurrentTerm"), 1))
	require.NoError(t, st.Close())

	// Reopened: the entry is there and the directory knows it has state.
	st, err = Open(Config{Dir: dir, NodeID: "n1"})
	require.NoError(t, err)
	has, err = st.HasState()
	require.NoError(t, err)
	require.True(t, has)
	var l raft.Log
	require.NoError(t, st.Log.GetLog(1, &l))
	require.Equal(t, "x", string(l.Data))

	// A second process (here: a second Open) cannot take the directory.
	_, err = Open(Config{Dir: dir, NodeID: "n1"})
	require.ErrorIs(t, err, ErrLocked)
	require.NoError(t, st.Close())

	// Another node ID is refused.
	_, err = Open(Config{Dir: dir, NodeID: "n2"})
	require.ErrorIs(t, err, ErrIdentityMismatch)
}

func TestOpenNeedsDir(t *testing.T) {
	_, err := Open(Config{})
	require.Error(t, err)
}

// TestStableWritesAfterCloseDoNotFail: raft panics on a failed stable-store
// write, and a heartbeat in flight at shutdown may write after Close.
func TestStableWritesAfterCloseDoNotFail(t *testing.T) {
	st, err := Open(Config{Dir: t.TempDir(), NodeID: "n1"})
	require.NoError(t, err)
	require.NoError(t, st.Close())
	require.NoError(t, st.Stable.SetUint64([]byte("CurrentTerm"), 9))
	require.NoError(t, st.Stable.Set([]byte("k"), []byte("v")))
	_, err = st.Stable.GetUint64([]byte("CurrentTerm"))
	require.Error(t, err)
}
