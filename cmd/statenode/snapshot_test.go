package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestSnapshotCommands runs save, inspect and restore against a dev node:
// the saved file is complete and checked, inspect reports it, restore
// without --yes (even with STATENODE_YES set) refuses and changes nothing,
// and restore --yes brings back exactly the saved keys.
func TestSnapshotCommands(t *testing.T) {
	_, addr := startDev(t)
	putRev(t, addr, "keep/a", "1")
	rev := putRev(t, addr, "keep/b", "2")
	dir := t.TempDir()
	file := filepath.Join(dir, "backup.snap")

	out := ok(t, "--addr", addr, "snapshot", "save", file)
	m := regexp.MustCompile(`^OK saved (.+) index=(\d+) revision=(\d+) size=(\d+)\n$`).FindStringSubmatch(out)
	require.NotNilf(t, m, "snapshot save output %q", out)
	assert.Equal(t, file, m[1])
	assert.Equal(t, strconv.FormatInt(rev, 10), m[3], "the save holds the last acknowledged write")
	st, err := os.Stat(file)
	require.NoError(t, err)
	assert.Equal(t, strconv.FormatInt(st.Size(), 10), m[4])
	assert.Equal(t, os.FileMode(0o600), st.Mode().Perm())
	_, err = os.Stat(file + ".part")
	assert.True(t, os.IsNotExist(err), "no .part file is left behind")

	out = ok(t, "snapshot", "inspect", file)
	assert.Contains(t, out, " revision="+m[3]+" ")
	assert.Contains(t, out, " keys=2 ")
	assert.Contains(t, out, " size="+m[4]+"\n")
	var ins struct {
		Index    uint64 `json:"index"`
		Revision int64  `json:"revision"`
		Keys     int    `json:"keys"`
		Members  int    `json:"members"`
		Sessions int    `json:"sessions"`
		Size     int64  `json:"size"`
	}
	require.NoError(t, json.Unmarshal([]byte(ok(t, "-o", "json", "snapshot", "inspect", file)), &ins))
	assert.Equal(t, rev, ins.Revision)
	assert.Equal(t, m[2], strconv.FormatUint(ins.Index, 10))
	assert.Equal(t, 2, ins.Keys)
	assert.Equal(t, 1, ins.Members)
	assert.Equal(t, st.Size(), ins.Size)

	// Change the state after the save.
	putRev(t, addr, "keep/a", "changed")
	putRev(t, addr, "extra", "x")
	ok(t, "--addr", addr, "kv", "del", "keep/b")

	// Without --yes nothing is sent; the environment cannot confirm.
	for _, env := range [][]string{nil, {"STATENODE_YES=true"}} {
		line := fails(t, runOpts{env: env}, "--addr", addr, "snapshot", "restore", file)
		assert.Contains(t, line, "replaces the state of the whole cluster")
		assert.Contains(t, line, "--yes")
	}
	assert.Equal(t, "changed\n", ok(t, "--addr", addr, "kv", "get", "keep/a"))

	// A damaged file is refused before anything is sent or changed.
	bad := filepath.Join(dir, "bad.snap")
	data, err := os.ReadFile(file)
	require.NoError(t, err)
	data[len(data)/2] ^= 0x10
	require.NoError(t, os.WriteFile(bad, data, 0o600))
	assert.Contains(t, fails(t, runOpts{}, "snapshot", "inspect", bad), "invalid snapshot")
	assert.Contains(t, fails(t, runOpts{}, "--addr", addr, "snapshot", "restore", "--yes", bad), "checksum")
	assert.Equal(t, "changed\n", ok(t, "--addr", addr, "kv", "get", "keep/a"))

	out = ok(t, "--addr", addr, "snapshot", "restore", "--yes", file)
	m2 := regexp.MustCompile(`^OK restored (.+) revision=(\d+) keys=2\n$`).FindStringSubmatch(out)
	require.NotNilf(t, m2, "snapshot restore output %q", out)
	restored, err := strconv.ParseInt(m2[2], 10, 64)
	require.NoError(t, err)
	assert.Greater(t, restored, rev+3, "the revision moves forward past the changes")
	assert.Equal(t, "1\n", ok(t, "--addr", addr, "kv", "get", "keep/a"))
	assert.Equal(t, "2\n", ok(t, "--addr", addr, "kv", "get", "keep/b"))
	assert.Equal(t, "statenode: key not found: extra", fails(t, runOpts{}, "--addr", addr, "kv", "get", "extra"))
}
