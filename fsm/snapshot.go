package fsm

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"

	"github.com/google/btree"
	"github.com/hashicorp/raft"
)

// Snapshot stream format, version 1 (all integers varints, see DESIGN.md):
//
//	magic "SNFSM" | version 1
//	uvarint applied index | varint revision | varint compact revision | varint last time
//	uvarint #events | uvarint #keys | uvarint #members
//	events, oldest first:
//	    type (1 put, 2 delete) | key | put: value, create, mod, version; delete: mod
//	    prev tag: 0 none | 1 inline (value, create, mod, version of the same key)
//	              | 2 same as the KV of the previous event for this key
//	keys, in key order:
//	    key | tag: 0 inline (value, create, mod, version) | 1 same as the KV of the last event for this key
//	members, in ID order: id | raft address | HTTP address
//	version 2 and 3: bytes coordination state (sessions, locks, fences,
//	    elections; version 3 also semaphores, barriers, latches and
//	    ephemeral keys; see coordState.appendTo)
//	trailer: CRC-32C (Castagnoli) of every byte before it, 4 bytes big-endian
//
// The back-references (tags 2 and 1) let a restored store share memory
// between history and current keys exactly as the live store does, instead
// of holding every value up to three times.
var snapshotMagic = []byte("SNFSM")

const (
	// snapshotVersion is written; Restore also reads version 1 (written
	// before coordination state existed: it restores with none) and 2
	// (coordination state without semaphores, barriers, latches and
	// ephemeral keys).
	snapshotVersion   byte = 3
	snapshotVersionV2 byte = 2
	snapshotVersionV1 byte = 1

	snapPrevNone   byte = 0
	snapPrevInline byte = 1
	snapPrevRef    byte = 2

	snapKVInline byte = 0
	snapKVRef    byte = 1

	// snapBufSize is the I/O buffer size of Persist and Restore.
	snapBufSize = 64 << 10
	// snapMaxPrealloc caps allocations sized from counts and lengths read
	// from a snapshot: larger ones grow as data actually arrives, so a
	// forged length cannot make Restore allocate absurd amounts.
	snapMaxPrealloc = 1 << 16
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Snapshot captures the state in O(1) (a copy-on-write clone of the key
// index and the history slice header) for raft to persist while Apply goes
// on. Raft calls it from its FSM goroutine.
func (f *FSM) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.Lock() // Clone writes to the tree's copy-on-write context
	defer f.mu.Unlock()
	st := &f.st
	return &fsmSnapshot{
		tree:       st.tree.Clone(),
		history:    st.history.clone(),
		members:    st.sortedMembers(),
		revision:   st.revision,
		compactRev: st.compactRev,
		applied:    st.applied,
		lastTime:   st.lastTime,
		coord:      st.coord.appendTo(nil),
	}, nil
}

type fsmSnapshot struct {
	tree       *btree.BTreeG[*KeyValue]
	history    history
	members    []Member
	revision   int64
	compactRev int64
	applied    uint64
	lastTime   int64
	coord      []byte // encoded coordination state
}

// Persist streams the snapshot to sink, closing it on success and
// cancelling it on error. It runs concurrently with Apply.
func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	if err := s.write(sink); err != nil {
		_ = sink.Cancel()
		return fmt.Errorf("fsm: persist snapshot: %w", err)
	}
	return sink.Close()
}

// Release does nothing: the snapshot holds only garbage-collected memory.
func (s *fsmSnapshot) Release() {}

func (s *fsmSnapshot) write(out io.Writer) error {
	w := &snapWriter{w: out, buf: make([]byte, 0, snapBufSize)}
	w.buf = append(w.buf, snapshotMagic...)
	w.buf = append(w.buf, snapshotVersion)
	w.buf = binary.AppendUvarint(w.buf, s.applied)
	w.buf = binary.AppendVarint(w.buf, s.revision)
	w.buf = binary.AppendVarint(w.buf, s.compactRev)
	w.buf = binary.AppendVarint(w.buf, s.lastTime)
	w.buf = binary.AppendUvarint(w.buf, uint64(s.history.len()))
	w.buf = binary.AppendUvarint(w.buf, uint64(s.tree.Len()))
	w.buf = binary.AppendUvarint(w.buf, uint64(len(s.members)))

	// lastPut[key] indexes putRev, the ModRevision of the key's latest put
	// event so far (0 after a delete), to emit back-references. Indirection
	// through a slice lets updates look keys up without allocating.
	lastPut := make(map[string]int)
	var putRev []int64
	for i := range s.history.len() {
		e := s.history.at(i)
		w.buf = append(w.buf, byte(e.Type))
		w.bytes(e.KV.Key)
		if e.Type == EventPut {
			w.kvFields(&e.KV)
		} else {
			w.buf = binary.AppendVarint(w.buf, e.KV.ModRevision)
		}
		j, seen := lastPut[string(e.KV.Key)]
		switch {
		case e.PrevKV == nil:
			w.buf = append(w.buf, snapPrevNone)
		case seen && putRev[j] != 0 && putRev[j] == e.PrevKV.ModRevision:
			w.buf = append(w.buf, snapPrevRef)
		default:
			w.buf = append(w.buf, snapPrevInline)
			w.kvFields(e.PrevKV)
		}
		if !seen {
			j = len(putRev)
			lastPut[string(e.KV.Key)] = j
			putRev = append(putRev, 0)
		}
		putRev[j] = 0
		if e.Type == EventPut {
			putRev[j] = e.KV.ModRevision
		}
		if err := w.maybeFlush(); err != nil {
			return err
		}
	}

	s.tree.Ascend(func(kv *KeyValue) bool {
		w.bytes(kv.Key)
		if j, ok := lastPut[string(kv.Key)]; ok && putRev[j] != 0 && putRev[j] == kv.ModRevision {
			w.buf = append(w.buf, snapKVRef)
		} else {
			w.buf = append(w.buf, snapKVInline)
			w.kvFields(kv)
		}
		return w.maybeFlush() == nil
	})

	for _, m := range s.members {
		w.buf = appendString(w.buf, m.ID)
		w.buf = appendString(w.buf, m.RaftAddr)
		w.buf = appendString(w.buf, m.HTTPAddr)
	}
	w.bytes(s.coord)
	if err := w.flush(); err != nil {
		return err
	}
	w.buf = binary.BigEndian.AppendUint32(w.buf, w.crc)
	_, err := out.Write(w.buf)
	return err
}

// snapWriter accumulates encoded fields in buf and writes them out in
// snapBufSize chunks, computing the CRC of everything written. Its error is
// sticky: after a failed write nothing more is written.
type snapWriter struct {
	w   io.Writer
	buf []byte
	crc uint32
	err error
}

func (w *snapWriter) bytes(b []byte) {
	w.buf = binary.AppendUvarint(w.buf, uint64(len(b)))
	if len(b) < snapBufSize/2 {
		w.buf = append(w.buf, b...)
		return
	}
	// Large values bypass the buffer.
	if w.flush() == nil {
		w.crc = crc32.Update(w.crc, castagnoli, b)
		_, w.err = w.w.Write(b)
	}
}

// kvFields writes value, create, mod and version (not the key).
func (w *snapWriter) kvFields(kv *KeyValue) {
	w.bytes(kv.Value)
	w.buf = binary.AppendVarint(w.buf, kv.CreateRevision)
	w.buf = binary.AppendVarint(w.buf, kv.ModRevision)
	w.buf = binary.AppendVarint(w.buf, kv.Version)
}

func (w *snapWriter) maybeFlush() error {
	if len(w.buf) < snapBufSize {
		return w.err
	}
	return w.flush()
}

func (w *snapWriter) flush() error {
	if w.err != nil || len(w.buf) == 0 {
		return w.err
	}
	w.crc = crc32.Update(w.crc, castagnoli, w.buf)
	_, w.err = w.w.Write(w.buf)
	w.buf = w.buf[:0]
	return w.err
}

// Restore replaces the state with the snapshot read from rc, which it
// closes. It builds the new state aside while streaming, checks its
// invariants and trailer, and swaps it in only if everything holds: on
// error (wrapping ErrCorrupt or ErrUnsupportedVersion, or a read error) the
// old state is untouched.
//
// Open watches go on only if the new state continues the history they have
// seen: its revision is ahead of the old one and it retains every revision
// after the old one (a follower catching up by snapshot from its own
// cluster). Those whose next revision it no longer retains end with a
// *CompactedError. Any other restore (a user restore, see
// LoadedSnapshot.WriteForRestore, or one whose revision is not ahead) ends
// every open watch with a *RestoredError: the events it would deliver next
// are not changes to the state the watcher saw. Which watches end is local
// to this replica; the state is not.
func (f *FSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	st, err := readSnapshot(rc)
	if err != nil {
		return fmt.Errorf("fsm: restore snapshot: %w", err)
	}
	f.mu.Lock()
	if old := &f.st; st.revision <= old.revision || st.compactRev > old.revision {
		f.watchEpoch++
	}
	f.st = st
	f.publishLocked()
	f.mu.Unlock()
	f.broadcast()
	f.wakeObjects(nil, true)
	return nil
}

// RestoredError ends a watch when Restore replaced the state with one that
// does not continue the history the watch had seen. errors.Is(err,
// ErrCompacted) holds: as after a compaction, the watcher must read the
// state again and watch from the revision of that read.
type RestoredError struct {
	Revision        int64 // store revision after the restore
	CompactRevision int64 // its compact revision; reads and watches need a greater one
}

func (e *RestoredError) Error() string {
	return fmt.Sprintf("fsm: watch ended: the state was replaced by a snapshot restore (now at revision %d, history from revision %d); read it again and watch from there",
		e.Revision, e.CompactRevision+1)
}

// Is makes errors.Is(err, ErrCompacted) hold.
func (e *RestoredError) Is(target error) bool { return target == ErrCompacted }

// lastEvent is what Restore remembers of the latest event of a key.
type lastEvent struct {
	key []byte    // the key's bytes, shared by all its events and its item
	kv  *KeyValue // the KV of its latest event if a put, nil after a delete
}

func readSnapshot(rd io.Reader) (state, error) {
	st, _, err := readSnapshotVersion(rd)
	return st, err
}

// readSnapshotVersion decodes and checks a whole snapshot stream and
// returns the state and the stream's format version.
func readSnapshotVersion(rd io.Reader) (st state, version byte, err error) {
	r := &snapReader{r: rd, buf: make([]byte, snapBufSize)}
	st = newState()

	magic := r.read(len(snapshotMagic))
	if r.err == nil && !bytes.Equal(magic, snapshotMagic) {
		return st, version, fmt.Errorf("%w: bad magic %q", ErrCorrupt, magic)
	}
	version = r.byte()
	if r.err == nil && version != snapshotVersion && version != snapshotVersionV2 && version != snapshotVersionV1 {
		return st, version, fmt.Errorf("%w: snapshot version %d", ErrUnsupportedVersion, version)
	}
	st.applied = r.uvarint()
	st.revision = r.varint()
	st.compactRev = r.varint()
	st.lastTime = r.varint()
	nEvents, nKeys, nMembers := r.uvarint(), r.uvarint(), r.uvarint()
	if r.err != nil {
		return st, version, r.err
	}
	if st.compactRev < 0 || st.revision < st.compactRev {
		return st, version, fmt.Errorf("%w: revision %d, compact revision %d", ErrCorrupt, st.revision, st.compactRev)
	}

	// History: revisions must run contiguously from compactRev+1 to revision.
	last := make(map[string]*lastEvent)
	rev := st.compactRev
	for i := uint64(0); i < nEvents && r.err == nil; i++ {
		var e Event
		e.Type = EventType(r.byte())
		key := r.key(last)
		switch e.Type {
		case EventPut:
			e.KV = r.kvFields(key)
		case EventDelete:
			e.KV = KeyValue{Key: key, ModRevision: r.varint()}
		default:
			r.fail("event %d: unknown type %d", i, e.Type)
		}
		le := last[string(key)]
		switch tag := r.byte(); tag {
		case snapPrevNone:
		case snapPrevInline:
			kv := r.kvFields(key)
			e.PrevKV = &kv
		case snapPrevRef:
			if le == nil || le.kv == nil {
				r.fail("event %d: back-reference to a missing put", i)
			} else {
				e.PrevKV = le.kv
			}
		default:
			r.fail("event %d: unknown prev tag %d", i, tag)
		}
		if r.err != nil {
			break
		}
		if er := e.KV.ModRevision; er != rev && er != rev+1 || er <= st.compactRev {
			return st, version, fmt.Errorf("%w: event %d has revision %d after revision %d", ErrCorrupt, i, er, rev)
		}
		rev = e.KV.ModRevision
		if e.Type == EventPut && !validKV(&e.KV, rev) || e.PrevKV != nil && !validKV(e.PrevKV, rev-1) {
			return st, version, fmt.Errorf("%w: event %d: inconsistent key-value", ErrCorrupt, i)
		}
		if le == nil {
			le = &lastEvent{key: key}
			last[string(key)] = le
		}
		le.kv = nil
		if e.Type == EventPut {
			kv := e.KV
			le.kv = &kv
		}
		st.history.append(e)
	}
	if r.err != nil {
		return st, version, r.err
	}
	if rev != st.revision {
		return st, version, fmt.Errorf("%w: history ends at revision %d, store revision is %d", ErrCorrupt, rev, st.revision)
	}

	// Keys, strictly ascending.
	var prevKey []byte
	for i := uint64(0); i < nKeys && r.err == nil; i++ {
		key := r.key(last)
		var kv *KeyValue
		switch tag := r.byte(); tag {
		case snapKVInline:
			v := r.kvFields(key)
			kv = &v
		case snapKVRef:
			if le := last[string(key)]; le == nil || le.kv == nil {
				r.fail("key %d: back-reference to a missing put", i)
			} else {
				kv = le.kv
			}
		default:
			r.fail("key %d: unknown tag %d", i, tag)
		}
		if r.err != nil {
			break
		}
		if len(key) == 0 || (i > 0 && bytes.Compare(prevKey, key) >= 0) {
			return st, version, fmt.Errorf("%w: key %d out of order", ErrCorrupt, i)
		}
		if !validKV(kv, st.revision) {
			return st, version, fmt.Errorf("%w: key %d: inconsistent key-value", ErrCorrupt, i)
		}
		prevKey = key
		st.tree.ReplaceOrInsert(kv)
	}

	var prevID string
	for i := uint64(0); i < nMembers && r.err == nil; i++ {
		m := Member{ID: string(r.readBytes())}
		m.RaftAddr = string(r.readBytes())
		m.HTTPAddr = string(r.readBytes())
		if r.err != nil {
			break
		}
		if m.ID == "" || (i > 0 && m.ID <= prevID) {
			return st, version, fmt.Errorf("%w: member %d out of order", ErrCorrupt, i)
		}
		prevID = m.ID
		st.members[m.ID] = m
	}
	if r.err != nil {
		return st, version, r.err
	}
	if version >= 2 {
		blob := r.readBytes()
		if r.err != nil {
			return st, version, r.err
		}
		coord, err := decodeCoordState(blob, version >= 3)
		if err != nil {
			return st, version, fmt.Errorf("coordination state: %w", err)
		}
		st.coord = coord
	}

	sum := r.sum()
	trailer := r.read(4)
	if r.err != nil {
		return st, version, r.err
	}
	if got := binary.BigEndian.Uint32(trailer); got != sum {
		return st, version, fmt.Errorf("%w: snapshot checksum %#08x, computed %#08x", ErrCorrupt, got, sum)
	}
	return st, version, r.expectEOF()
}

// validKV checks the invariants of a stored key-value.
func validKV(kv *KeyValue, revision int64) bool {
	return len(kv.Key) > 0 && kv.Version >= 1 && kv.CreateRevision >= 1 &&
		kv.CreateRevision <= kv.ModRevision && kv.ModRevision <= revision
}

// snapReader is a buffered reader with a sticky error that computes the
// CRC-32C of every byte consumed (not merely buffered).
type snapReader struct {
	r        io.Reader
	buf      []byte
	pos, end int
	crcPos   int // buf[crcPos:pos] is consumed but not yet in crc
	crc      uint32
	err      error // sticky; wraps ErrCorrupt, or is a read error
	ioErr    error // the error that ended the input, io.EOF at its end
}

func (r *snapReader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: "+format, append([]any{ErrCorrupt}, args...)...)
	}
}

// fill makes at least one more byte available, or sets r.err.
func (r *snapReader) fill() bool {
	if r.err != nil {
		return false
	}
	r.crc = crc32.Update(r.crc, castagnoli, r.buf[r.crcPos:r.pos])
	n := copy(r.buf, r.buf[r.pos:r.end])
	r.pos, r.end, r.crcPos = 0, n, 0
	for r.end == n {
		if r.ioErr != nil {
			if r.ioErr == io.EOF {
				r.fail("snapshot truncated")
			} else {
				r.err = r.ioErr
			}
			return false
		}
		m, err := r.r.Read(r.buf[r.end:])
		r.end += m
		r.ioErr = err
	}
	return true
}

// expectEOF checks that the input ends here.
func (r *snapReader) expectEOF() error {
	for r.pos == r.end && r.ioErr == nil {
		r.pos, r.end = 0, 0
		var n int
		n, r.ioErr = r.r.Read(r.buf)
		r.end = n
	}
	switch {
	case r.pos < r.end:
		return fmt.Errorf("%w: trailing data after the snapshot trailer", ErrCorrupt)
	case r.ioErr != io.EOF:
		return r.ioErr
	}
	return nil
}

// sum returns the CRC of every byte consumed so far.
func (r *snapReader) sum() uint32 {
	r.crc = crc32.Update(r.crc, castagnoli, r.buf[r.crcPos:r.pos])
	r.crcPos = r.pos
	return r.crc
}

func (r *snapReader) byte() byte {
	if r.pos == r.end && !r.fill() {
		return 0
	}
	c := r.buf[r.pos]
	r.pos++
	return c
}

func (r *snapReader) uvarint() uint64 {
	var x uint64
	for i, shift := 0, uint(0); i < binary.MaxVarintLen64; i, shift = i+1, shift+7 {
		c := r.byte()
		if r.err != nil {
			return 0
		}
		if c < 0x80 {
			if i == binary.MaxVarintLen64-1 && c > 1 {
				break
			}
			return x | uint64(c)<<shift
		}
		x |= uint64(c&0x7f) << shift
	}
	r.fail("varint overflows 64 bits")
	return 0
}

func (r *snapReader) varint() int64 {
	ux := r.uvarint()
	x := int64(ux >> 1)
	if ux&1 != 0 {
		x = ^x
	}
	return x
}

// read returns the next n bytes in a new slice (nil for n == 0). The slice
// grows as data arrives, so a forged n fails at the end of the input
// instead of allocating n bytes up front.
func (r *snapReader) read(n int) []byte {
	if r.err != nil || n <= 0 {
		return nil
	}
	out := make([]byte, 0, min(n, snapMaxPrealloc))
	for len(out) < n {
		if r.pos == r.end && !r.fill() {
			return nil
		}
		k := min(n-len(out), r.end-r.pos)
		out = append(out, r.buf[r.pos:r.pos+k]...)
		r.pos += k
	}
	return out
}

// readBytes reads a length-prefixed byte string.
func (r *snapReader) readBytes() []byte {
	n := r.uvarint()
	if n > 1<<40 {
		r.fail("length %d is absurd", n)
		return nil
	}
	return r.read(int(n))
}

// key reads a key and returns the copy already held for it in last, if
// any, so that all events and the item of a key share one key slice.
func (r *snapReader) key(last map[string]*lastEvent) []byte {
	k := r.readBytes()
	if le := last[string(k)]; le != nil {
		return le.key
	}
	return k
}

// kvFields reads value, create, mod and version for key.
func (r *snapReader) kvFields(key []byte) KeyValue {
	return KeyValue{Key: key, Value: r.readBytes(), CreateRevision: r.varint(), ModRevision: r.varint(), Version: r.varint()}
}
