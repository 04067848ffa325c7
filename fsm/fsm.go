package fsm

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/raft"
)

// DefaultHistoryRetention is the default Config.HistoryRetention.
const DefaultHistoryRetention = 100_000

// Config configures an FSM. Every replica of a cluster must use the same
// Config: compaction is part of the replicated state.
type Config struct {
	// HistoryRetention is how many revisions of history (events) are kept
	// for historical reads and for watches that resume from a past
	// revision; after every apply CompactRevision >= Revision -
	// HistoryRetention. Zero or negative means DefaultHistoryRetention:
	// 100000 revisions cover minutes of history at thousands of writes per
	// second (long enough for a client to reconnect and resume its watch)
	// while costing on the order of 100 bytes of index per event plus the
	// values they keep alive.
	HistoryRetention int64
}

// DefaultConfig returns the default configuration.
func DefaultConfig() Config {
	return Config{HistoryRetention: DefaultHistoryRetention}
}

// FSM is the replicated state machine: a revisioned key-value store plus
// member metadata, driven by hashicorp/raft. Raft calls Apply, ApplyBatch,
// Snapshot and Restore from its FSM goroutine; every other method may be
// called from any goroutine, concurrently with them.
type FSM struct {
	retention int64

	mu sync.RWMutex
	st state // guarded by mu

	// Scratch space of the apply path, used only by raft's FSM goroutine
	// while it holds mu: applying a put allocates only what it stores.
	cmd     Command
	req     Request
	member  Member
	probe   KeyValue
	victims []*KeyValue
	items   [][]byte
	item    int // position of the command being applied within its entry

	// Lock-free copies of st's counters, published when mu is released.
	revision   atomic.Int64
	compactRev atomic.Int64
	applied    atomic.Uint64
	lastTime   atomic.Int64

	// notifyCh is closed (and cleared) after every apply and restore; it is
	// created only when someone waits, so applies without waiters pay
	// nothing for it.
	notifyMu sync.Mutex
	notifyCh chan struct{}
	// objCh: per-object channels (locks, elections, sessions) closed by the
	// apply that changes the object; changed collects their keys during
	// an apply pass (under mu).
	objCh   map[string]chan struct{}
	changed []string

	wg sync.WaitGroup // watch goroutines
	// watchEpoch (guarded by mu) changes when Restore installs a state that
	// does not continue this one's history: every open watch ends (snapshot.go).
	watchEpoch uint64
}

var (
	_ raft.FSM         = (*FSM)(nil)
	_ raft.BatchingFSM = (*FSM)(nil)
)

// New returns an empty FSM: revision 0, no keys, no members.
func New(cfg Config) *FSM {
	if cfg.HistoryRetention <= 0 {
		cfg.HistoryRetention = DefaultHistoryRetention
	}
	return &FSM{retention: cfg.HistoryRetention, st: newState()}
}

// Apply applies one committed log entry; raft calls it from its FSM
// goroutine. A command entry returns an ApplyResult, a batch entry an
// []ApplyResult (one per command, in order), any other entry nil. Every entry
// advances AppliedIndex. Apply never panics on bad data: a command that does
// not decode or is malformed yields an ApplyResult with Err set and changes
// nothing.
func (f *FSM) Apply(l *raft.Log) interface{} {
	f.mu.Lock()
	res := f.applyLocked(l)
	f.finishLocked()
	changed := f.takeChanged()
	f.mu.Unlock()
	f.broadcast()
	f.wakeObjects(changed, false)
	return res
}

// ApplyBatch applies consecutive committed entries in one pass: one lock
// acquisition and one wake-up of waiters and watchers for the whole batch.
// Results are as for Apply, one per entry.
func (f *FSM) ApplyBatch(logs []*raft.Log) []interface{} {
	out := make([]interface{}, len(logs))
	f.mu.Lock()
	for i, l := range logs {
		out[i] = f.applyLocked(l)
	}
	f.finishLocked()
	changed := f.takeChanged()
	f.mu.Unlock()
	f.broadcast()
	f.wakeObjects(changed, false)
	return out
}

// takeChanged returns the keys of objects changed by this apply pass.
func (f *FSM) takeChanged() []string {
	if len(f.changed) == 0 {
		return nil
	}
	out := f.changed
	f.changed = nil
	return out
}

func (f *FSM) applyLocked(l *raft.Log) interface{} {
	f.st.applied = l.Index
	if l.Type != raft.LogCommand {
		return nil
	}
	if !isBatch(l.Data) {
		return f.applyCommand(l.Data)
	}
	// Check the framing of the whole batch before applying any of it, so
	// that a damaged entry is rejected as a unit.
	items, err := splitBatch(l.Data, f.items[:0])
	if err != nil {
		return ApplyResult{Err: err}
	}
	results := make([]ApplyResult, len(items))
	for i, it := range items {
		f.item = i
		results[i] = f.applyCommand(it)
		items[i] = nil
	}
	f.item = 0
	f.items = items[:0]
	return results
}

// applyCommand decodes and applies one command envelope.
func (f *FSM) applyCommand(b []byte) ApplyResult {
	c := &f.cmd
	if err := decodeCommandInto(b, c, &f.req, &f.member); err != nil {
		return ApplyResult{Err: err}
	}
	st := &f.st
	var resp *Response
	switch c.Type {
	case CmdTxn:
		// Limits are the proposer's policy; only structure is re-checked.
		if err := validateRequest(c.Txn, Limits{}, false); err != nil {
			return ApplyResult{Err: err}
		}
		if id := st.coord.missingSession(c.Txn); id != 0 {
			resp = ephemeralRefused(st, id)
			break
		}
		resp = st.txn(c.Txn, &f.probe, &f.victims)
	case CmdPutMember, CmdRemoveMember:
		if c.Member.ID == "" {
			return ApplyResult{Err: fmt.Errorf("%w: member ID is empty", ErrInvalid)}
		}
		if c.Type == CmdPutMember {
			st.putMember(c.Member)
		} else {
			st.removeMember(c.Member.ID)
		}
	case CmdCoord:
		if f.item >= 1<<coordPosBits {
			return ApplyResult{Err: fmt.Errorf("%w: coordination command at position %d of a batch (limit %d)", ErrInvalid, f.item, 1<<coordPosBits)}
		}
		cr := st.coord.apply(c.Coord, CoordIndex(st.applied, f.item), c.Time, &f.changed)
		if len(st.coord.expiredKeys) > 0 {
			st.deleteExpired(&f.probe)
		}
		resp = &Response{Succeeded: cr.Code == CoordOK || cr.Code == CoordQueued, Revision: st.revision, Coord: &cr}
	case CmdFencedTxn:
		if err := validateRequest(c.Txn, Limits{}, false); err != nil {
			return ApplyResult{Err: err}
		}
		if why := st.coord.checkFence(c.Fence); why != "" {
			resp = &Response{Revision: st.revision, Coord: &CoordResult{Code: CoordFenced, Token: st.coord.fences[c.Fence.Lock], Index: CoordIndex(st.applied, f.item), Detail: why}}
		} else if id := st.coord.missingSession(c.Txn); id != 0 {
			resp = ephemeralRefused(st, id)
		} else {
			resp = st.txn(c.Txn, &f.probe, &f.victims)
		}
	case CmdNoop:
	}
	if c.Time > st.lastTime {
		st.lastTime = c.Time
	}
	if resp == nil {
		resp = &Response{Succeeded: true, Revision: st.revision}
	}
	f.probe.Key = nil
	return ApplyResult{Response: resp}
}

// ephemeralRefused is the response to a txn that attaches a key to a
// session that does not exist: nothing was written.
func ephemeralRefused(st *state, id uint64) *Response {
	return &Response{Revision: st.revision, Coord: &CoordResult{Code: CoordSessionNotFound,
		Detail: fmt.Sprintf("ephemeral put: session %d does not exist", id)}}
}

// finishLocked compacts history and publishes the counters.
func (f *FSM) finishLocked() {
	f.st.compact(f.retention)
	f.publishLocked()
}

func (f *FSM) publishLocked() {
	f.revision.Store(f.st.revision)
	f.compactRev.Store(f.st.compactRev)
	f.applied.Store(f.st.applied)
	f.lastTime.Store(f.st.lastTime)
}

// notify returns a channel that is closed at the next apply or restore.
// Callers take it before checking their condition, so no wake-up is missed.
func (f *FSM) notify() <-chan struct{} {
	f.notifyMu.Lock()
	defer f.notifyMu.Unlock()
	if f.notifyCh == nil {
		f.notifyCh = make(chan struct{})
	}
	return f.notifyCh
}

func (f *FSM) broadcast() {
	f.notifyMu.Lock()
	if f.notifyCh != nil {
		close(f.notifyCh)
		f.notifyCh = nil
	}
	f.notifyMu.Unlock()
}

// Revision returns the current store revision: the number of writing
// transactions applied since the store was created.
func (f *FSM) Revision() int64 { return f.revision.Load() }

// CompactRevision returns the newest revision that has been compacted away;
// reads and watches need a revision greater than it.
func (f *FSM) CompactRevision() int64 { return f.compactRev.Load() }

// AppliedIndex returns the raft index of the last applied entry.
func (f *FSM) AppliedIndex() uint64 { return f.applied.Load() }

// LastTime returns the greatest Command.Time applied so far (unix
// nanoseconds; 0 if none was set). It never goes backwards, even when a new
// leader's clock is behind the old one's.
func (f *FSM) LastTime() int64 { return f.lastTime.Load() }

// WaitApplied blocks until AppliedIndex() >= index or ctx ends, in which
// case it returns ctx.Err(). It does not poll: it sleeps until an apply.
func (f *FSM) WaitApplied(ctx context.Context, index uint64) error {
	for {
		if f.applied.Load() >= index {
			return nil
		}
		ch := f.notify()
		if f.applied.Load() >= index {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Range reads keys at the current revision or, with req.Revision > 0, as
// they were at that revision (which must be within retained history: a
// *CompactedError or ErrFutureRevision otherwise). Errors for a malformed
// request wrap ErrInvalid.
//
// The returned KeyValues share their Key and Value bytes with the store;
// they are immutable and must not be modified.
func (f *FSM) Range(req RangeRequest) (*RangeResponse, error) {
	if len(req.Key) == 0 && !req.Prefix {
		return nil, fmt.Errorf("%w: range key is empty", ErrInvalid)
	}
	if req.Limit < 0 {
		return nil, fmt.Errorf("%w: negative limit %d", ErrInvalid, req.Limit)
	}
	if req.Revision < 0 {
		return nil, fmt.Errorf("%w: negative revision %d", ErrInvalid, req.Revision)
	}
	c := collector{limit: req.Limit, countOnly: req.CountOnly, keysOnly: req.KeysOnly}
	f.mu.RLock()
	defer f.mu.RUnlock()
	st := &f.st
	switch rev := req.Revision; {
	case rev == 0 || rev == st.revision:
		st.rangeCurrent(req.Key, req.Prefix, &c)
	case rev > st.revision:
		return nil, fmt.Errorf("%w: requested %d, current %d", ErrFutureRevision, rev, st.revision)
	case rev <= st.compactRev:
		return nil, &CompactedError{Requested: rev, Oldest: st.compactRev + 1}
	default:
		st.rangeAt(req.Key, req.Prefix, rev, &c)
	}
	return &RangeResponse{KVs: c.kvs, More: c.more, Count: c.count, Revision: st.revision}, nil
}

// Members returns the member metadata, sorted by ID.
func (f *FSM) Members() []Member {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.st.sortedMembers()
}

// Member returns the metadata of member id, if known.
func (f *FSM) Member(id string) (Member, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	m, ok := f.st.members[id]
	return m, ok
}

// Hash returns a 64-bit FNV-1a hash of the replicated state: revision,
// compact revision, every current key-value (all fields) and every member.
// Two replicas that applied the same log have the same hash. It costs a full
// scan under the read lock; it is meant for tests and consistency checks.
func (f *FSM) Hash() uint64 {
	f.mu.RLock()
	defer f.mu.RUnlock()
	st := &f.st
	h := fnv.New64a()
	buf := make([]byte, 0, 4096)
	flush := func() {
		h.Write(buf)
		buf = buf[:0]
	}
	buf = binary.AppendVarint(buf, st.revision)
	buf = binary.AppendVarint(buf, st.compactRev)
	buf = binary.AppendUvarint(buf, uint64(st.tree.Len()))
	st.tree.Ascend(func(kv *KeyValue) bool {
		buf = appendKV(buf, kv)
		if len(buf) >= 4096 {
			flush()
		}
		return true
	})
	ms := st.sortedMembers()
	buf = binary.AppendUvarint(buf, uint64(len(ms)))
	for _, m := range ms {
		buf = appendString(buf, m.ID)
		buf = appendString(buf, m.RaftAddr)
		buf = appendString(buf, m.HTTPAddr)
	}
	buf = st.coord.appendTo(buf)
	flush()
	return h.Sum64()
}

// goFunc runs fn in a goroutine tracked by f.wg.
func (f *FSM) goFunc(fn func()) {
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		fn()
	}()
}
