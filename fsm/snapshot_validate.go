package fsm

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"math"

	"github.com/hashicorp/raft"
)

// Reading, checking and adapting snapshot streams outside raft: backups
// (GET /v1/snapshot), their inspection, and user restores (POST
// /v1/snapshot), which must refuse a damaged snapshot before anything
// changes, because raft panics when the FSM fails to restore one it has
// accepted.

// SnapshotInfo describes a snapshot stream or a snapshot taken by Snapshot.
type SnapshotInfo struct {
	Version         int    // stream format version
	AppliedIndex    uint64 // raft index of the last entry applied to the state
	Revision        int64  // store revision
	CompactRevision int64  // history is retained from CompactRevision+1
	LastTime        int64  // greatest command time applied, unix nanoseconds
	Keys            int    // current keys
	Events          int    // retained history events
	Members         int    // entries of the member registry
	// Coordination state; zero for a snapshot taken by Snapshot
	// (DescribeSnapshot does not decode it).
	Sessions      int
	Locks         int // locks known (held, waited for, or both)
	Elections     int
	Semaphores    int
	Barriers      int
	Latches       int
	EphemeralKeys int   // keys attached to a session
	Size          int64 // bytes of the stream, trailer included; 0 from DescribeSnapshot
}

func infoOf(st *state, version byte, size int64) SnapshotInfo {
	c := &st.coord
	return SnapshotInfo{
		Version: int(version), AppliedIndex: st.applied, Revision: st.revision,
		CompactRevision: st.compactRev, LastTime: st.lastTime,
		Keys: st.tree.Len(), Events: st.history.len(), Members: len(st.members),
		Sessions: len(c.sessions), Locks: len(c.locks), Elections: len(c.elections),
		Semaphores: len(c.semaphores), Barriers: len(c.barriers), Latches: len(c.latches),
		EphemeralKeys: len(c.ephemeral), Size: size,
	}
}

// DescribeSnapshot returns what a snapshot taken by (*FSM).Snapshot holds,
// without writing it; ok is false for any other raft.FSMSnapshot.
func DescribeSnapshot(s raft.FSMSnapshot) (info SnapshotInfo, ok bool) {
	fs, ok := s.(*fsmSnapshot)
	if !ok {
		return SnapshotInfo{}, false
	}
	return SnapshotInfo{
		Version: int(snapshotVersion), AppliedIndex: fs.applied, Revision: fs.revision,
		CompactRevision: fs.compactRev, LastTime: fs.lastTime,
		Keys: fs.tree.Len(), Events: fs.history.len(), Members: len(fs.members),
	}, true
}

// ValidateSnapshot reads a whole snapshot stream and checks it exactly as
// Restore would (format, every invariant, the CRC-32C trailer, nothing
// after it) without touching any FSM. Errors wrap ErrCorrupt or
// ErrUnsupportedVersion, or are read errors. It holds the decoded state in
// memory while it reads, as Restore does.
func ValidateSnapshot(r io.Reader) (SnapshotInfo, error) {
	cr := &countingReader{r: r}
	st, version, err := readSnapshotVersion(cr)
	if err != nil {
		return SnapshotInfo{}, fmt.Errorf("fsm: invalid snapshot: %w", err)
	}
	return infoOf(&st, version, cr.n), nil
}

// VerifySnapshotChecksum checks the magic and the CRC-32C trailer of a
// snapshot stream in constant memory, without decoding it, and returns its
// size. It proves the bytes are the ones written (no truncation, no flipped
// bit), not that the content is valid: ValidateSnapshot does that.
func VerifySnapshotChecksum(r io.Reader) (int64, error) {
	buf := make([]byte, snapBufSize)
	var (
		crc  uint32
		size int64
		tail []byte // the last (up to) 4 bytes seen, not yet in crc
		head = make([]byte, 0, len(snapshotMagic))
	)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			b := buf[:n]
			size += int64(n)
			if k := min(cap(head)-len(head), len(b)); k > 0 {
				head = append(head, b[:k]...)
			}
			// Everything but the last 4 bytes of the stream so far goes into
			// the checksum.
			all := append(tail, b...)
			keep := min(4, len(all))
			crc = crc32.Update(crc, castagnoli, all[:len(all)-keep])
			tail = append([]byte(nil), all[len(all)-keep:]...)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return size, err
		}
	}
	if !bytes.Equal(head, snapshotMagic) {
		return size, fmt.Errorf("fsm: invalid snapshot: %w: bad magic %q", ErrCorrupt, head)
	}
	if size < int64(len(snapshotMagic))+1+4 {
		return size, fmt.Errorf("fsm: invalid snapshot: %w: snapshot truncated (%d bytes)", ErrCorrupt, size)
	}
	if got := binary.BigEndian.Uint32(tail); got != crc {
		return size, fmt.Errorf("fsm: invalid snapshot: %w: snapshot checksum %#08x, computed %#08x (truncated or damaged)", ErrCorrupt, got, crc)
	}
	return size, nil
}

// RestoreParams adapts a snapshot to the running cluster it is restored
// into; see WriteForRestore.
type RestoreParams struct {
	// AfterIndex is a raft index the restored state must be applied above:
	// the leader's last log index plus room for the entries it may append
	// before raft takes the restore in.
	AfterIndex uint64
	// AfterRevision is the running cluster's store revision: the restored
	// revision is one above it and above the snapshot's.
	AfterRevision int64
	// Members replaces the snapshot's member registry: the registry must
	// name the members of the running cluster, not those of the cluster
	// the snapshot was taken from.
	Members []Member
	// Time is the leader's clock (unix nanoseconds): every session's TTL
	// restarts from it, as when a new leader takes over.
	Time int64
}

// maxRestoreIndex bounds the applied index of a restored state: raft
// indexes above it would overflow coordination indexes (CoordIndex).
const maxRestoreIndex = 1<<(64-coordPosBits) - 1

// LoadedSnapshot is a snapshot decoded and checked by LoadSnapshot, to be
// adapted to the cluster it is restored into by WriteForRestore.
type LoadedSnapshot struct {
	st       state
	info     SnapshotInfo // as read
	maxCoord uint64       // largest coordination index in st
}

// LoadSnapshot reads the whole snapshot stream in src and checks it as
// ValidateSnapshot does, keeping the decoded state for WriteForRestore.
// Errors wrap ErrCorrupt or ErrUnsupportedVersion, or are read errors.
func LoadSnapshot(src io.Reader) (*LoadedSnapshot, error) {
	cr := &countingReader{r: src}
	st, version, err := readSnapshotVersion(cr)
	if err != nil {
		return nil, fmt.Errorf("fsm: invalid snapshot: %w", err)
	}
	return &LoadedSnapshot{st: st, info: infoOf(&st, version, cr.n), maxCoord: maxCoordIndex(&st.coord)}, nil
}

// Info describes the snapshot as it was read.
func (l *LoadedSnapshot) Info() SnapshotInfo { return l.info }

// WriteForRestore writes the snapshot, adapted to the running cluster as p
// says, to dst in the current format, and describes what it wrote
// (to.AppliedIndex is the index raft must restore it at). Everything is
// decided here, by the leader, before raft replicates the bytes, so every
// replica restores the same state: the snapshot's, with
//
//   - applied index: one above the largest of p.AfterIndex, the snapshot's
//     applied index and every coordination index in it (session IDs,
//     fencing tokens, election terms, queue positions), so that the
//     indexes, tokens and terms issued after the restore exceed every one
//     the cluster or the snapshot has used;
//   - revision: one above the larger of p.AfterRevision and the snapshot's,
//     with no history before it (compact revision = revision): revisions
//     never go backwards for clients, and reads or watches at an older
//     revision fail as compacted instead of mixing two histories;
//   - member registry: p.Members;
//   - sessions: deadline = p.Time + TTL; last time = max(its own, p.Time).
//
// Keys keep their values, create and mod revisions and versions; locks,
// elections and the other coordination objects are kept as they are. It
// may be called again with other parameters. An error wraps ErrInvalid if
// the snapshot cannot be adapted (indexes too large); dst may then hold a
// partial stream and must be discarded.
func (l *LoadedSnapshot) WriteForRestore(dst io.Writer, p RestoreParams) (SnapshotInfo, error) {
	st := &l.st
	idx := max(p.AfterIndex, l.info.AppliedIndex, l.maxCoord>>coordPosBits)
	if idx >= maxRestoreIndex {
		return SnapshotInfo{}, fmt.Errorf("%w: restore: the snapshot's applied index %d or a coordination index in it is too large", ErrInvalid, l.info.AppliedIndex)
	}
	rev := max(p.AfterRevision, l.info.Revision)
	if rev >= math.MaxInt64/2 {
		return SnapshotInfo{}, fmt.Errorf("%w: restore: revision %d is too large", ErrInvalid, rev)
	}
	members := make(map[string]Member, len(p.Members))
	for _, m := range p.Members {
		if m.ID == "" {
			return SnapshotInfo{}, fmt.Errorf("%w: restore: a member with an empty ID", ErrInvalid)
		}
		members[m.ID] = m
	}
	st.applied = idx + 1
	st.revision = rev + 1
	st.compactRev = st.revision
	st.history = history{}
	st.members = members
	var changed []string
	st.coord.apply(&CoordRequest{Op: OpSessionRenewAll}, CoordIndex(st.applied, 0), p.Time, &changed)
	st.lastTime = max(l.info.LastTime, p.Time)

	snap := &fsmSnapshot{
		tree: st.tree, history: st.history, members: st.sortedMembers(),
		revision: st.revision, compactRev: st.compactRev, applied: st.applied,
		lastTime: st.lastTime, coord: st.coord.appendTo(nil),
	}
	cw := &countingWriter{w: dst}
	if err := snap.write(cw); err != nil {
		return SnapshotInfo{}, fmt.Errorf("fsm: write snapshot: %w", err)
	}
	return infoOf(st, snapshotVersion, cw.n), nil
}

// maxCoordIndex returns the largest coordination index held in c.
func maxCoordIndex(c *coordState) uint64 {
	var m uint64
	for id := range c.sessions {
		m = max(m, id)
	}
	for _, l := range c.locks {
		m = max(m, l.token)
		for _, w := range l.waiters {
			m = max(m, w.index)
		}
	}
	for _, t := range c.fences {
		m = max(m, t)
	}
	for _, e := range c.elections {
		m = max(m, e.term)
		for _, cd := range e.candidates {
			m = max(m, cd.index)
		}
	}
	for _, s := range c.semaphores {
		for _, w := range s.waiters {
			m = max(m, w.index)
		}
	}
	for _, b := range c.barriers {
		for _, pt := range b.parties {
			m = max(m, pt.index)
		}
	}
	return m
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
