package fsm

import (
	"bytes"
	"cmp"
	"slices"

	"github.com/google/btree"
)

// btreeDegree is the fan-out of the key index: 32 keeps nodes a few cache
// lines wide and the tree shallow (4 levels hold ~10^6 keys).
const btreeDegree = 32

// state is everything the FSM replicates. The FSM holds one behind its
// RWMutex; Snapshot copies it in O(1) (btree Clone plus slice headers).
//
// Invariants, checked again by Restore:
//   - tree items are never modified once inserted: a write replaces the item;
//   - history holds every event with revision in (compactRev, revision], in
//     order, with no revision missing; events are never modified (snapshots
//     share them, see history);
//   - 0 <= compactRev <= revision.
type state struct {
	tree       *btree.BTreeG[*KeyValue]
	history    history
	members    map[string]Member
	revision   int64
	compactRev int64
	applied    uint64
	lastTime   int64
	coord      coordState // sessions, locks, elections (coord.go)
}

func lessKV(a, b *KeyValue) bool { return bytes.Compare(a.Key, b.Key) < 0 }

func newState() state {
	return state{
		tree:    btree.NewG(btreeDegree, lessKV),
		members: make(map[string]Member),
		coord:   newCoordState(),
	}
}

// get returns the current item for key, or nil.
func (s *state) get(key []byte) *KeyValue {
	kv, _ := s.tree.Get(&KeyValue{Key: key})
	return kv
}

// ascend calls fn for every current item matching key/prefix, in key order,
// until fn returns false.
func (s *state) ascend(key []byte, prefix bool, fn func(*KeyValue) bool) {
	if !prefix {
		if kv := s.get(key); kv != nil {
			fn(kv)
		}
		return
	}
	if len(key) == 0 {
		s.tree.Ascend(fn)
		return
	}
	s.tree.AscendGreaterOrEqual(&KeyValue{Key: key}, func(kv *KeyValue) bool {
		return bytes.HasPrefix(kv.Key, key) && fn(kv)
	})
}

// collector gathers range results: it counts every match and keeps the
// first limit of them.
type collector struct {
	kvs       []KeyValue
	count     int64
	limit     int64
	countOnly bool
	keysOnly  bool
	more      bool
}

func (c *collector) add(kv *KeyValue) {
	c.count++
	if c.countOnly {
		return
	}
	if c.limit > 0 && int64(len(c.kvs)) >= c.limit {
		c.more = true
		return
	}
	v := *kv
	if c.keysOnly {
		v.Value = nil
	}
	c.kvs = append(c.kvs, v)
}

// rangeCurrent collects the current items matching key/prefix.
func (s *state) rangeCurrent(key []byte, prefix bool, c *collector) {
	if prefix && len(key) == 0 && c.countOnly {
		c.count = int64(s.tree.Len())
		return
	}
	s.ascend(key, prefix, func(kv *KeyValue) bool {
		c.add(kv)
		return true
	})
}

// rangeAt collects the items matching key/prefix as they were at revision
// rev (compactRev < rev < revision): the current items, with every key
// changed after rev replaced by its value before its first such change.
// Cost: O(events after rev + matching keys).
func (s *state) rangeAt(key []byte, prefix bool, rev int64, c *collector) {
	matches := func(k []byte) bool {
		if prefix {
			return bytes.HasPrefix(k, key)
		}
		return bytes.Equal(k, key)
	}
	// The state at rev of each key changed after rev: the PrevKV of the
	// first event after rev (nil: the key did not exist).
	type undo struct {
		key []byte
		kv  *KeyValue
	}
	var undos []undo
	seen := make(map[string]struct{})
	for i := s.history.index(rev + 1); i < s.history.len(); i++ {
		e := s.history.at(i)
		if !matches(e.KV.Key) {
			continue
		}
		if _, ok := seen[string(e.KV.Key)]; ok {
			continue
		}
		seen[string(e.KV.Key)] = struct{}{}
		undos = append(undos, undo{key: e.KV.Key, kv: e.PrevKV})
	}
	slices.SortFunc(undos, func(a, b undo) int { return bytes.Compare(a.key, b.key) })

	// Merge the current items with the undos, both sorted by key.
	j := 0
	s.ascend(key, prefix, func(kv *KeyValue) bool {
		for j < len(undos) && bytes.Compare(undos[j].key, kv.Key) < 0 {
			if undos[j].kv != nil { // deleted after rev
				c.add(undos[j].kv)
			}
			j++
		}
		if j < len(undos) && bytes.Equal(undos[j].key, kv.Key) {
			if undos[j].kv != nil {
				c.add(undos[j].kv)
			}
			j++
			return true
		}
		c.add(kv)
		return true
	})
	for ; j < len(undos); j++ {
		if undos[j].kv != nil {
			c.add(undos[j].kv)
		}
	}
}

// compact drops history so that compactRev >= revision-retention.
func (s *state) compact(retention int64) {
	target := s.revision - retention
	if target <= s.compactRev {
		return
	}
	s.compactRev = target
	s.history.dropThrough(target)
}

// compareHolds evaluates one Compare against the current state, as etcd
// does: a missing key has version and revisions 0, and any value compare on
// a missing key is false.
func (s *state) compareHolds(c *Compare, kv *KeyValue) bool {
	var res int
	switch c.Target {
	case CompareValue:
		if kv == nil {
			return false
		}
		res = bytes.Compare(kv.Value, c.Value)
	default:
		var n int64
		if kv != nil {
			switch c.Target {
			case CompareVersion:
				n = kv.Version
			case CompareCreateRevision:
				n = kv.CreateRevision
			case CompareModRevision:
				n = kv.ModRevision
			}
		}
		res = cmp.Compare(n, c.Number)
	}
	switch c.Result {
	case CompareEqual:
		return res == 0
	case CompareNotEqual:
		return res != 0
	case CompareGreater:
		return res > 0
	case CompareLess:
		return res < 0
	}
	return false
}

// txn applies a structurally valid request. It cannot fail half-way: every
// op is checked before the first one runs. All writes share revision
// revision+1, which becomes current only if something was written.
func (s *state) txn(r *Request, probe *KeyValue, scratch *[]*KeyValue) *Response {
	succeeded := true
	for i := range r.Compare {
		c := &r.Compare[i]
		probe.Key = c.Key
		kv, _ := s.tree.Get(probe)
		if !s.compareHolds(c, kv) {
			succeeded = false
			break
		}
	}
	ops := r.Success
	if !succeeded {
		ops = r.Failure
	}
	resp := newResponse(len(ops))
	resp.Succeeded = succeeded
	rev := s.revision + 1
	wrote := false
	for i := range ops {
		op, res := &ops[i], &resp.Results[i]
		res.Type = op.Type
		switch op.Type {
		case OpRange:
			c := collector{limit: op.Limit}
			s.rangeCurrent(op.Key, op.Prefix, &c)
			res.KVs, res.More, res.Count = c.kvs, c.more, c.count
		case OpPut:
			s.put(op, rev, res, probe)
			wrote = true
		case OpDelete:
			if s.delete(op, rev, res, probe, scratch) {
				wrote = true
			}
		}
	}
	if wrote {
		s.revision = rev
	}
	resp.Revision = s.revision
	return resp
}

// newResponse returns a Response with n zero Results. The common
// single-op case costs one allocation instead of two.
func newResponse(n int) *Response {
	switch n {
	case 0:
		return &Response{}
	case 1:
		r := &struct {
			resp Response
			res  [1]OpResult
		}{}
		r.resp.Results = r.res[:]
		return &r.resp
	}
	return &Response{Results: make([]OpResult, n)}
}

// put writes op.Value at op.Key as revision rev. The new item gets its own
// copy of the bytes (the op aliases the raft log entry); an existing key
// keeps its key bytes.
func (s *state) put(op *Op, rev int64, res *OpResult, probe *KeyValue) {
	kv := &KeyValue{Key: op.Key, ModRevision: rev, CreateRevision: rev, Version: 1}
	old, replaced := s.tree.ReplaceOrInsert(kv)
	// kv is not visible to readers until the write lock is released, and
	// its key bytes stay equal, so fixing it up after insertion is safe.
	if replaced {
		kv.Key = old.Key
		kv.CreateRevision = old.CreateRevision
		kv.Version = old.Version + 1
		if len(op.Value) > 0 {
			kv.Value = bytes.Clone(op.Value)
		}
	} else {
		buf := make([]byte, len(op.Key)+len(op.Value))
		n := copy(buf, op.Key)
		copy(buf[n:], op.Value)
		kv.Key = buf[:n:n]
		if len(op.Value) > 0 {
			kv.Value = buf[n:]
		}
	}
	s.history.append(Event{Type: EventPut, KV: *kv, PrevKV: old})
	s.coord.attach(kv.Key, op.Session)
	if op.PrevKV && old != nil {
		res.KVs = []KeyValue{*old}
	}
}

// delete removes op.Key (or every key with that prefix) as revision rev and
// reports whether anything was deleted.
func (s *state) delete(op *Op, rev int64, res *OpResult, probe *KeyValue, scratch *[]*KeyValue) bool {
	victims := (*scratch)[:0]
	if op.Prefix {
		s.ascend(op.Key, true, func(kv *KeyValue) bool {
			victims = append(victims, kv)
			return true
		})
	} else {
		probe.Key = op.Key
		if kv, ok := s.tree.Get(probe); ok {
			victims = append(victims, kv)
		}
	}
	if op.PrevKV && len(victims) > 0 {
		res.KVs = make([]KeyValue, len(victims))
	}
	for i, old := range victims {
		s.tree.Delete(old)
		s.coord.attach(old.Key, 0)
		s.history.append(Event{Type: EventDelete, KV: KeyValue{Key: old.Key, ModRevision: rev}, PrevKV: old})
		if op.PrevKV {
			res.KVs[i] = *old
		}
		victims[i] = nil // do not keep deleted items alive through the scratch slice
	}
	res.Count = int64(len(victims))
	*scratch = victims[:0]
	return len(victims) > 0
}

// putMember and removeMember change member metadata; they do not touch the
// KV revision.
func (s *state) putMember(m *Member) { s.members[m.ID] = *m }

func (s *state) removeMember(id string) { delete(s.members, id) }

func (s *state) sortedMembers() []Member {
	out := make([]Member, 0, len(s.members))
	for _, m := range s.members {
		out = append(out, m)
	}
	slices.SortFunc(out, func(a, b Member) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

// deleteExpired deletes the ephemeral keys of the sessions ended by the
// command being applied, as one revision (the command's), so watchers see
// their DELETE events together.
func (s *state) deleteExpired(probe *KeyValue) {
	keys := s.coord.expiredKeys
	s.coord.expiredKeys = nil
	rev := s.revision + 1
	wrote := false
	for _, k := range keys {
		probe.Key = []byte(k)
		old, ok := s.tree.Get(probe)
		if !ok {
			continue
		}
		s.tree.Delete(old)
		s.history.append(Event{Type: EventDelete, KV: KeyValue{Key: old.Key, ModRevision: rev}, PrevKV: old})
		wrote = true
	}
	if wrote {
		s.revision = rev
	}
}
