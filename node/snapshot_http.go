package node

// Backup and restore: Snapshot (GET /v1/snapshot) streams a consistent copy
// of the replicated state from any member; Restore (POST /v1/snapshot)
// replaces the state of the whole cluster with one, through the leader.
// docs/OPERATIONS.md ("Backup and restore") is the operator's view.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"

	"github.com/hashicorp/raft"

	"github.com/statenode/statenode/api"
	"github.com/statenode/statenode/fsm"
)

const (
	// DefaultMaxRestoreSize is the default Config.MaxRestoreSize: 4 GiB.
	DefaultMaxRestoreSize = 4 << 30

	// restoreIndexGap is how far above the leader's last log index a
	// restored state is applied, so that the entries the leader appends
	// while the restore is on its way to raft do not reach that index and
	// raft restores at exactly the index written into the state. Were they
	// to reach it, raft would pick a higher index: still safe (reads wait
	// for the entry Restore commits afterwards), only not exact.
	restoreIndexGap = 1 << 12
	// restoreTempPattern names the spool files of a restore in DataDir.
	restoreTempPattern = "restore-*.tmp"
)

// ErrRestoreInProgress: Restore was called while another restore is
// running on this member; nothing changed.
var ErrRestoreInProgress = errors.New("node: a restore is already in progress on this member")

// Snapshot writes a consistent point-in-time copy of the replicated state
// to w in the fsm snapshot format (CRC-32C trailer included) and describes
// it. The copy includes every write acknowledged before the call: it first
// waits, as a linearizable read does, until this member has applied the
// leader's commit index. It works on any member and streams: memory grows
// only with the writes applied while it runs (the state is copy-on-write).
// ctx bounds the wait for the read barrier; the copy ends early only if w
// fails.
func (n *Node) Snapshot(ctx context.Context, w io.Writer) (fsm.SnapshotInfo, error) {
	snap, info, err := n.takeSnapshot(ctx)
	if err != nil {
		return info, err
	}
	defer snap.Release()
	sink := &writerSink{w: w}
	if err := snap.Persist(sink); err != nil {
		return info, err
	}
	info.Size = sink.n
	return info, nil
}

// takeSnapshot is the read barrier plus an O(1) copy of the state.
func (n *Node) takeSnapshot(ctx context.Context) (raft.FSMSnapshot, fsm.SnapshotInfo, error) {
	if n.raft == nil || n.stopped() {
		return nil, fsm.SnapshotInfo{}, ErrStopped
	}
	if err := n.linearize(ctx); err != nil {
		return nil, fsm.SnapshotInfo{}, err
	}
	snap, err := n.fsm.Snapshot()
	if err != nil {
		return nil, fsm.SnapshotInfo{}, fmt.Errorf("node: snapshot: %w", err)
	}
	info, _ := fsm.DescribeSnapshot(snap)
	return snap, info, nil
}

// writerSink lets an FSM snapshot persist into any writer.
type writerSink struct {
	w io.Writer
	n int64
}

func (s *writerSink) Write(p []byte) (int, error) {
	n, err := s.w.Write(p)
	s.n += int64(n)
	return n, err
}
func (s *writerSink) Close() error  { return nil }
func (s *writerSink) Cancel() error { return nil }
func (s *writerSink) ID() string    { return "api" }

// RestoreResult describes a completed Restore.
type RestoreResult struct {
	From fsm.SnapshotInfo // the snapshot as received
	To   fsm.SnapshotInfo // the state the cluster now holds (index, revision, members, ...)
}

// Restore replaces the state of the whole cluster with the snapshot read
// from r (in the format Snapshot writes), through raft's user restore: the
// leader takes the new state and the followers catch up by installing it
// as a snapshot. It runs on the leader only (ErrNotLeader, naming the
// leader, or ErrNoLeader otherwise), one at a time (ErrRestoreInProgress).
//
// Nothing changes unless the whole snapshot is valid: r is spooled to a
// file in DataDir (at most Config.MaxRestoreSize bytes, else an error
// wrapping fsm.ErrTooLarge), then decoded and checked completely (CRC-32C
// trailer, format, every invariant; else an error wrapping fsm.ErrInvalid).
// Only then does raft restore it. The restored state is the snapshot's,
// adapted to the running cluster as fsm.LoadedSnapshot.WriteForRestore
// describes: the member registry stays the running cluster's, the index
// and the revision move above both the cluster's and the snapshot's (with
// no history before that revision), and sessions start a fresh TTL. Open
// watches on every member end with a compacted error (fsm.RestoredError).
// Just before raft takes the restore in, the leader pauses its writes:
// those in flight are applied first (to the old state), those that
// arrive wait and apply to the restored state after the entry that
// renews its sessions. So no client ever sees a revision that the
// restore takes back, and no session expiry decided on the old state
// applies to the restored one before its TTLs restart.
//
// An error wrapping ErrTimeout after raft took the snapshot in means the
// outcome is unknown (leadership lost before a quorum confirmed it): check
// the state. The memory of the leader holds the current state and the
// decoded snapshot at once while it prepares the restore.
func (n *Node) Restore(ctx context.Context, r io.Reader) (*RestoreResult, error) {
	if err := n.restoreLeader(); err != nil {
		return nil, err
	}
	if !n.restoring.CompareAndSwap(false, true) {
		return nil, ErrRestoreInProgress
	}
	defer n.restoring.Store(false)
	n.removeRestoreFiles()

	upload, size, err := n.spoolRestore(ctx, r, n.maxRestoreSize())
	if err != nil {
		return nil, err
	}
	defer removeFile(upload)
	prepared, err := os.CreateTemp(n.cfg.DataDir, restoreTempPattern)
	if err != nil {
		return nil, fmt.Errorf("node: restore: %w", err)
	}
	defer removeFile(prepared)
	loaded, err := fsm.LoadSnapshot(bufio.NewReaderSize(upload, 256<<10))
	if err != nil {
		return nil, fmt.Errorf("%w: snapshot refused, nothing changed: %w", fsm.ErrInvalid, err)
	}
	removeFile(upload) // free the disk before raft copies the prepared file
	from := loaded.Info()
	from.Size = size
	// Adapt the snapshot while writes go on, then pause this leader's
	// writes; if anything was applied meanwhile (the revision, the member
	// registry or the index it chose may have moved), adapt it again,
	// paused. From the pause until the entry that follows the restore has
	// committed, nothing else reaches raft from this leader: no client can
	// see a revision the restore takes back, and no write or session
	// expiry queued against the old state applies before the restored
	// sessions' TTLs restart.
	applied := n.fsm.AppliedIndex()
	to, err := n.adaptRestore(loaded, prepared)
	if err != nil {
		return nil, err
	}
	resume, err := n.pauseWrites(ctx)
	if err != nil {
		return nil, err
	}
	defer resume()
	if n.fsm.AppliedIndex() != applied || n.raft.LastIndex() >= to.AppliedIndex-1 || n.fsm.Revision() >= to.Revision {
		if to, err = n.adaptRestore(loaded, prepared); err != nil {
			return nil, err
		}
	}
	loaded = nil // garbage from here: raft decodes the prepared file again
	if err := n.restoreLeader(); err != nil {
		return nil, err
	}
	n.log.Warn("restoring the cluster's state from a snapshot",
		"snapshot_index", from.AppliedIndex, "snapshot_revision", from.Revision, "bytes", size,
		"index", to.AppliedIndex, "revision", to.Revision)
	// Raft restores at max(its last index, meta.Index)+1: to.AppliedIndex
	// unless the leader appended restoreIndexGap entries meanwhile. No
	// timeout: raft's would also cover copying and restoring a large
	// snapshot, and a member that stops leading answers ErrNotLeader.
	meta := &raft.SnapshotMeta{Version: raft.SnapshotVersionMax, Index: to.AppliedIndex - 1, Size: to.Size}
	err = n.raft.Restore(meta, bufio.NewReaderSize(prepared, 256<<10), 0)
	if err != nil {
		switch {
		case n.fsm.AppliedIndex() >= to.AppliedIndex:
			return nil, fmt.Errorf("%w: the leader restored the snapshot but a quorum did not confirm it: %w; check the state", ErrTimeout, err)
		case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipTransferInProgress),
			errors.Is(err, raft.ErrRaftShutdown), errors.Is(err, raft.ErrEnqueueTimeout):
			return nil, n.translate(err) // raft never took the snapshot in
		default:
			return nil, fmt.Errorf("node: raft refused the restore; nothing changed: %w", err)
		}
	}
	// Commit an entry through the state machine: raft's own entry after a
	// restore never reaches it, and until one does read-index waits for
	// it. Renewing every session again is that entry: TTLs restart from
	// now, after the snapshot's transfer, on the leader's clock. It goes to
	// raft directly, still paused, so that it is the first entry applied
	// to the restored state.
	err = n.renewAfterRestore()
	resume()
	if err != nil {
		return nil, fmt.Errorf("%w: the snapshot was restored (index %d, revision %d), but the entry that follows it did not commit: %w",
			ErrTimeout, to.AppliedIndex, to.Revision, err)
	}
	n.log.Warn("restored the cluster's state from a snapshot", "index", to.AppliedIndex, "revision", to.Revision)
	return &RestoreResult{From: from, To: to}, nil
}

// renewAfterRestore commits OpSessionRenewAll straight through raft, for
// Restore while this node's proposer is paused.
func (n *Node) renewAfterRestore() error {
	cmd := &fsm.Command{Type: fsm.CmdCoord, Coord: &fsm.CoordRequest{Op: fsm.OpSessionRenewAll}, Time: n.wallClock().UnixNano()}
	f := n.raft.Apply(fsm.EncodeCommand(cmd), n.cfg.ApplyTimeout)
	if err := f.Error(); err != nil {
		return n.translate(err)
	}
	if r, ok := f.Response().(fsm.ApplyResult); ok && r.Err != nil {
		return r.Err
	}
	return nil
}

func (n *Node) maxRestoreSize() int64 {
	if n.cfg.MaxRestoreSize > 0 {
		return n.cfg.MaxRestoreSize
	}
	return DefaultMaxRestoreSize
}

// restoreLeader checks that this node may start a restore: it leads and
// has committed its barrier (its state holds every committed entry).
func (n *Node) restoreLeader() error {
	switch {
	case n.raft == nil || n.stopped():
		return ErrStopped
	case n.raft.State() != raft.Leader:
		return n.translate(raft.ErrNotLeader)
	case !n.isReadyLeader():
		return fmt.Errorf("%w: this member was just elected and is not ready yet; retry", ErrNoLeader)
	}
	return nil
}

// spoolRestore copies r to a new file in DataDir, at most limit bytes, and
// returns it positioned at its start.
func (n *Node) spoolRestore(ctx context.Context, r io.Reader, limit int64) (*os.File, int64, error) {
	f, err := os.CreateTemp(n.cfg.DataDir, restoreTempPattern)
	if err != nil {
		return nil, 0, fmt.Errorf("node: restore: %w", err)
	}
	size, err := io.Copy(f, io.LimitReader(ctxReader{ctx: ctx, r: r}, limit+1))
	if err == nil && size > limit {
		err = fmt.Errorf("%w: snapshot is larger than the limit of %d bytes (Config.MaxRestoreSize); nothing changed", fsm.ErrTooLarge, limit)
	}
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil {
		removeFile(f)
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) || errors.Is(err, fsm.ErrTooLarge) || ctx.Err() != nil {
			return nil, 0, err
		}
		return nil, 0, fmt.Errorf("%w: receiving the snapshot: %w; nothing changed", fsm.ErrInvalid, err)
	}
	return f, size, nil
}

// adaptRestore writes loaded, adapted to the running cluster (its index
// and revision, a gap above its last log index, its members, the leader's
// clock), over f and leaves f at its start.
func (n *Node) adaptRestore(loaded *fsm.LoadedSnapshot, f *os.File) (fsm.SnapshotInfo, error) {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return fsm.SnapshotInfo{}, fmt.Errorf("node: restore: %w", err)
	}
	if err := f.Truncate(0); err != nil {
		return fsm.SnapshotInfo{}, fmt.Errorf("node: restore: %w", err)
	}
	p := fsm.RestoreParams{
		AfterIndex:    n.raft.LastIndex() + restoreIndexGap,
		AfterRevision: n.fsm.Revision(),
		Members:       n.fsm.Members(),
		Time:          n.wallClock().UnixNano(),
	}
	bw := bufio.NewWriterSize(f, 256<<10)
	to, err := loaded.WriteForRestore(bw, p)
	if err == nil {
		err = bw.Flush()
	}
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	switch {
	case errors.Is(err, fsm.ErrInvalid):
		return to, fmt.Errorf("snapshot refused, nothing changed: %w", err)
	case err != nil:
		return to, fmt.Errorf("node: restore: %w", err)
	}
	return to, nil
}

// removeRestoreFiles deletes spool files a crashed restore left behind.
// Restore calls it while it holds this node's restore slot.
func (n *Node) removeRestoreFiles() {
	old, _ := filepath.Glob(filepath.Join(n.cfg.DataDir, restoreTempPattern))
	for _, p := range old {
		_ = os.Remove(p)
	}
}

func removeFile(f *os.File) {
	_ = f.Close()
	_ = os.Remove(f.Name())
}

// ctxReader ends a read of r when ctx ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// --- HTTP ----------------------------------------------------------------------

// registerSnapshot registers the backup and restore routes.
func (n *Node) registerSnapshot(handle func(pattern string, h apiHandler)) {
	handle("GET /v1/snapshot", n.handleSnapshotSave)
	handle("POST /v1/snapshot", n.handleSnapshotRestore)
}

// handleSnapshotSave serves GET /v1/snapshot: the snapshot stream, with its
// applied index and revision in headers. A failure after the stream began
// aborts the connection, so a client never mistakes a cut stream for a
// complete one (the CRC trailer would catch it too).
func (n *Node) handleSnapshotSave(w http.ResponseWriter, r *http.Request) int {
	ctx, cancel, err := requestContext(r)
	if err != nil {
		return n.writeError(w, err)
	}
	defer cancel()
	snap, info, err := n.takeSnapshot(ctx)
	if err != nil {
		return n.writeError(w, err)
	}
	defer snap.Release()
	h := w.Header()
	h["Content-Type"] = hdrOctetStream
	h["Cache-Control"] = []string{"no-store"}
	h["X-Content-Type-Options"] = hdrNoSniff
	h["Content-Disposition"] = []string{fmt.Sprintf("attachment; filename=\"statenode-%d.snap\"", info.Revision)}
	h[api.HeaderSnapshotIndex] = []string{strconv.FormatUint(info.AppliedIndex, 10)}
	h[api.HeaderSnapshotRevision] = []string{strconv.FormatInt(info.Revision, 10)}
	w.WriteHeader(http.StatusOK)
	if err := snap.Persist(&writerSink{w: w}); err != nil {
		if r.Context().Err() == nil {
			n.log.Warn("snapshot stream failed", "err", err)
		}
		panic(http.ErrAbortHandler) // net/http closes the connection mid-body
	}
	return http.StatusOK
}

// handleSnapshotRestore serves POST /v1/snapshot (body: a snapshot). A
// member that does not lead answers not_leader (naming the leader) before
// it reads the body.
func (n *Node) handleSnapshotRestore(w http.ResponseWriter, r *http.Request) int {
	ctx, cancel, err := requestContext(r)
	if err != nil {
		return n.writeError(w, err)
	}
	defer cancel()
	if err := n.restoreLeader(); err != nil {
		return n.writeError(w, err)
	}
	if limit := n.maxRestoreSize(); r.ContentLength > limit {
		return n.writeError(w, fmt.Errorf("%w: a snapshot of %d bytes is larger than the limit of %d bytes (Config.MaxRestoreSize); nothing changed",
			fsm.ErrTooLarge, r.ContentLength, limit))
	}
	res, err := n.Restore(ctx, r.Body)
	switch {
	case errors.Is(err, ErrRestoreInProgress):
		return writeAPIError(w, &api.Error{Code: api.CodeRestoreInProgress, Message: err.Error()}, http.StatusConflict)
	case err != nil:
		return n.writeError(w, err)
	}
	return writeJSONValue(w, http.StatusOK, api.RestoreResponse{
		Index: res.To.AppliedIndex, Revision: res.To.Revision,
		SnapshotIndex: res.From.AppliedIndex, SnapshotRevision: res.From.Revision,
		Keys: res.To.Keys, Sessions: res.To.Sessions, Size: res.From.Size,
	})
}
