package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"github.com/statenode/statenode/client"
	"github.com/statenode/statenode/fsm"
)

// snapCmd groups backup and restore (GET and POST /v1/snapshot).
type snapCmd struct {
	Save    snapshotSaveCmd    `cmd:"" help:"Save a consistent copy of the cluster's state to FILE (any member serves it)."`
	Inspect snapshotInspectCmd `cmd:"" help:"Check a snapshot file completely and print what it holds (no cluster needed)."`
	Restore snapshotRestoreCmd `cmd:"" help:"Replace the state of the WHOLE cluster with a snapshot file (needs --yes)."`
}

type snapshotSaveCmd struct {
	File string `arg:"" help:"File to write; FILE.part is written first and renamed once complete and checked."`
}

// savedSnapshot is the -o json output of snapshot save.
type savedSnapshot struct {
	File     string `json:"file"`
	Index    uint64 `json:"index"`
	Revision int64  `json:"revision"`
	Size     int64  `json:"size"`
}

// Run streams the snapshot into FILE.part, fsyncs it, reads it back to
// check its CRC-32C trailer, renames it to FILE and fsyncs the directory:
// FILE exists only if it is complete. It prints "OK saved FILE index=I
// revision=R size=N". --timeout bounds reaching a member and the start of
// its answer, not the transfer; Ctrl-C stops it (FILE.part is removed).
func (c *snapshotSaveCmd) Run(rc *runContext) (err error) {
	cl, ctx, done, err := rc.connectUntilSignal()
	if err != nil {
		return err
	}
	defer done()

	part := c.File + ".part"
	f, err := os.OpenFile(part, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(part)
		}
	}()
	bw := bufio.NewWriterSize(f, 256<<10)
	info, err := cl.Snapshot(ctx, bw)
	if err != nil {
		return fmt.Errorf("snapshot save: %w", err)
	}
	if err = bw.Flush(); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	size, err := verifyFile(part)
	if err != nil {
		return fmt.Errorf("snapshot save: %s as written: %w", part, err)
	}
	if size != info.Size {
		err = fmt.Errorf("snapshot save: %s holds %d bytes, %d were received", part, size, info.Size)
		return err
	}
	if err = os.Rename(part, c.File); err != nil {
		return err
	}
	if err = syncDir(filepath.Dir(c.File)); err != nil {
		return err
	}
	if rc.g.Output == "json" {
		return writeJSON(rc.stdout, savedSnapshot{File: c.File, Index: info.Index, Revision: info.Revision, Size: info.Size})
	}
	_, err = fmt.Fprintf(rc.stdout, "OK saved %s index=%d revision=%d size=%d\n", c.File, info.Index, info.Revision, info.Size)
	return err
}

// verifyFile checks the magic and the CRC-32C trailer of a snapshot file.
func verifyFile(path string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	return fsm.VerifySnapshotChecksum(bufio.NewReaderSize(f, 256<<10))
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) {
		return err
	}
	return nil
}

type snapshotInspectCmd struct {
	File string `arg:"" help:"Snapshot file."`
}

// inspectedSnapshot is the -o json output of snapshot inspect.
type inspectedSnapshot struct {
	File            string `json:"file"`
	Version         int    `json:"version"`
	Index           uint64 `json:"index"`
	Revision        int64  `json:"revision"`
	CompactRevision int64  `json:"compact_revision"`
	Keys            int    `json:"keys"`
	Events          int    `json:"events"`
	Members         int    `json:"members"`
	Sessions        int    `json:"sessions"`
	Locks           int    `json:"locks"`
	Elections       int    `json:"elections"`
	Semaphores      int    `json:"semaphores"`
	Barriers        int    `json:"barriers"`
	Latches         int    `json:"latches"`
	EphemeralKeys   int    `json:"ephemeral_keys"`
	Size            int64  `json:"size"`
}

// Run decodes the whole file as a restore would (format, invariants, CRC
// trailer) and prints one line: "version=V index=I revision=R
// compact_revision=C keys=K events=E members=M sessions=S locks=L
// elections=N semaphores=N barriers=N latches=N ephemeral_keys=N size=B".
// It holds the decoded state in memory.
func (c *snapshotInspectCmd) Run(rc *runContext) error {
	f, err := os.Open(c.File)
	if err != nil {
		return err
	}
	defer f.Close()
	info, err := fsm.ValidateSnapshot(bufio.NewReaderSize(f, 256<<10))
	if err != nil {
		return fmt.Errorf("%s: %w", c.File, err)
	}
	out := inspectedSnapshot{File: c.File, Version: info.Version, Index: info.AppliedIndex, Revision: info.Revision,
		CompactRevision: info.CompactRevision, Keys: info.Keys, Events: info.Events, Members: info.Members,
		Sessions: info.Sessions, Locks: info.Locks, Elections: info.Elections, Semaphores: info.Semaphores,
		Barriers: info.Barriers, Latches: info.Latches, EphemeralKeys: info.EphemeralKeys, Size: info.Size}
	if rc.g.Output == "json" {
		return writeJSON(rc.stdout, out)
	}
	_, err = fmt.Fprintf(rc.stdout, "version=%d index=%d revision=%d compact_revision=%d keys=%d events=%d members=%d sessions=%d locks=%d elections=%d semaphores=%d barriers=%d latches=%d ephemeral_keys=%d size=%d\n",
		out.Version, out.Index, out.Revision, out.CompactRevision, out.Keys, out.Events, out.Members, out.Sessions,
		out.Locks, out.Elections, out.Semaphores, out.Barriers, out.Latches, out.EphemeralKeys, out.Size)
	return err
}

type snapshotRestoreCmd struct {
	File string `arg:"" help:"Snapshot file (from snapshot save)."`
	Yes  bool   `name:"yes" env:"-" config:"-" help:"Confirm that the state of the whole cluster is to be replaced."`
}

// restoredSnapshot is the -o json output of snapshot restore.
type restoredSnapshot struct {
	File     string `json:"file"`
	Revision int64  `json:"revision"`
	Keys     int64  `json:"keys"`
}

// Run sends FILE to the leader, which checks it completely before anything
// changes, then prints "OK restored FILE revision=R keys=K" (a
// linearizable count of the keys now in the cluster). Without --yes it
// refuses; --yes is never read from the environment or a --config file.
// The file's trailer is checked locally first. --timeout bounds the
// read that follows, not the transfer; Ctrl-C before the whole file was
// sent changes nothing.
func (c *snapshotRestoreCmd) Run(rc *runContext) error {
	if !c.Yes {
		return fmt.Errorf("%w: snapshot restore replaces the state of the whole cluster (every key, session, lock and election) with the snapshot's; run it again with --yes to confirm", errUsage)
	}
	if _, err := verifyFile(c.File); err != nil {
		return fmt.Errorf("%s: %w", c.File, err)
	}
	f, err := os.Open(c.File)
	if err != nil {
		return err
	}
	defer f.Close()
	cl, ctx, done, err := rc.connectUntilSignal()
	if err != nil {
		return err
	}
	defer done()
	if err := cl.Restore(ctx, f); err != nil {
		return fmt.Errorf("snapshot restore: %w", err)
	}
	rctx, cancel := rc.requestContext()
	defer cancel()
	rr, err := cl.Range(rctx, "", client.WithCountOnly())
	if err != nil {
		return fmt.Errorf("snapshot restored, but reading the cluster's revision failed: %w", err)
	}
	if rc.g.Output == "json" {
		return writeJSON(rc.stdout, restoredSnapshot{File: c.File, Revision: rr.Revision, Keys: rr.Count})
	}
	_, err = fmt.Fprintf(rc.stdout, "OK restored %s revision=%d keys=%d\n", c.File, rr.Revision, rr.Count)
	return err
}
