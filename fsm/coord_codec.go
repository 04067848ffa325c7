package fsm

import (
	"encoding/binary"
	"slices"
)

// Encodings of the coordination payloads (see doc.go for the envelope):
//
//	CmdCoord:     op | uvarint session | uvarint request ID | bytes name | bytes value
//	              | uvarint token | varint n | varint k | uvarint #ids, uvarint id...
//	CmdFencedTxn: bytes lock | uvarint token | request (as CmdTxn)
//	response, flag 2 (coord): code | uvarint session | uvarint token | varint count
//	              | uvarint index | bytes detail | uvarint #ids, uvarint id...

const respFlagCoord byte = 1 << 1

const minCoordIDSize = 1

func appendCoordRequest(dst []byte, r *CoordRequest) []byte {
	if r == nil {
		r = &CoordRequest{}
	}
	dst = append(dst, byte(r.Op))
	dst = binary.AppendUvarint(dst, r.Session)
	dst = binary.AppendUvarint(dst, r.RequestID)
	dst = appendString(dst, r.Name)
	dst = appendBytes(dst, r.Value)
	dst = binary.AppendUvarint(dst, r.Token)
	dst = binary.AppendVarint(dst, r.N)
	dst = binary.AppendVarint(dst, r.K)
	dst = binary.AppendUvarint(dst, uint64(len(r.IDs)))
	for _, id := range r.IDs {
		dst = binary.AppendUvarint(dst, id)
	}
	return dst
}

func coordRequestSize(r *CoordRequest) int {
	if r == nil {
		r = &CoordRequest{}
	}
	n := 1 + uvarintLen(r.Session) + uvarintLen(r.RequestID) + bytesLen(len(r.Name)) + bytesLen(len(r.Value)) +
		uvarintLen(r.Token) + varintLen(r.N) + varintLen(r.K) + uvarintLen(uint64(len(r.IDs)))
	for _, id := range r.IDs {
		n += uvarintLen(id)
	}
	return n
}

func (d *decoder) coordRequest(r *CoordRequest) {
	r.Op = CoordOp(d.byte())
	r.Session = d.uvarint()
	r.RequestID = d.uvarint()
	r.Name = d.string()
	r.Value = d.bytes()
	r.Token = d.uvarint()
	r.N = d.varint()
	r.K = d.varint()
	if n := d.count(minCoordIDSize); n > 0 {
		r.IDs = make([]uint64, n)
		for i := range r.IDs {
			r.IDs[i] = d.uvarint()
		}
	}
}

func appendFence(dst []byte, f *Fence) []byte {
	if f == nil {
		f = &Fence{}
	}
	dst = appendString(dst, f.Lock)
	return binary.AppendUvarint(dst, f.Token)
}

func fenceSize(f *Fence) int {
	if f == nil {
		return 2
	}
	return bytesLen(len(f.Lock)) + uvarintLen(f.Token)
}

func appendCoordResult(dst []byte, r *CoordResult) []byte {
	dst = append(dst, byte(r.Code))
	dst = binary.AppendUvarint(dst, r.Session)
	dst = binary.AppendUvarint(dst, r.Token)
	dst = binary.AppendVarint(dst, r.Count)
	dst = binary.AppendUvarint(dst, r.Index)
	dst = appendString(dst, r.Detail)
	dst = binary.AppendUvarint(dst, uint64(len(r.IDs)))
	for _, id := range r.IDs {
		dst = binary.AppendUvarint(dst, id)
	}
	return dst
}

func (d *decoder) coordResult(r *CoordResult) {
	r.Code = CoordCode(d.byte())
	if d.err == nil && r.Code > coordCodeMax {
		d.fail("unknown coordination code %d", r.Code)
	}
	r.Session = d.uvarint()
	r.Token = d.uvarint()
	r.Count = d.varint()
	r.Index = d.uvarint()
	r.Detail = d.string()
	if n := d.count(minCoordIDSize); n > 0 {
		r.IDs = make([]uint64, n)
		for i := range r.IDs {
			r.IDs[i] = d.uvarint()
		}
	}
}

// appendTo appends the deterministic encoding of the coordination state:
// used by Hash and by snapshots (format version 2).
//
//	uvarint #sessions, by ID: uvarint id | varint ttl | varint expires | bytes name
//	    | uvarint #remembered, oldest first: uvarint request ID | coord result
//	uvarint #locks, by name: bytes name | uvarint holder | uvarint token | varint count
//	    | varint limit | uvarint request ID | uvarint #waiters: uvarint session | uvarint index | uvarint request ID | varint limit
//	uvarint #fences, by name: bytes name | uvarint token
//	uvarint #elections, by name: bytes name | uvarint leader | uvarint term | bytes value
//	    | uvarint #candidates: uvarint session | uvarint index | bytes value
//
// Snapshot format version 3 appends:
//
//	uvarint #semaphores, by name: bytes name | varint permits
//	    | uvarint #holders, by session: uvarint session | varint permits
//	    | uvarint #waiters: uvarint session | uvarint index | uvarint request ID | varint permits
//	uvarint #barriers, by name: bytes name | byte flags (1 double, 2 leaving) | varint parties
//	    | uvarint broken | bytes detail
//	    | uvarint #parties: uvarint session | uvarint request ID | uvarint index | byte left
//	uvarint #latches, by name: bytes name | varint initial | varint count
//	uvarint #ephemeral keys, by key: bytes key | uvarint session
func (c *coordState) appendTo(dst []byte) []byte {
	ids := make([]uint64, 0, len(c.sessions))
	for id := range c.sessions {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	dst = binary.AppendUvarint(dst, uint64(len(ids)))
	for _, id := range ids {
		s := c.sessions[id]
		dst = binary.AppendUvarint(dst, s.id)
		dst = binary.AppendVarint(dst, s.ttl)
		dst = binary.AppendVarint(dst, s.expires)
		dst = appendString(dst, s.name)
		dst = binary.AppendUvarint(dst, uint64(len(s.order)))
		for _, rid := range s.order {
			r := s.results[rid]
			dst = binary.AppendUvarint(dst, rid)
			dst = appendCoordResult(dst, &r)
		}
	}
	names := mapKeys(c.locks)
	dst = binary.AppendUvarint(dst, uint64(len(names)))
	for _, name := range names {
		l := c.locks[name]
		dst = appendString(dst, name)
		dst = binary.AppendUvarint(dst, l.holder)
		dst = binary.AppendUvarint(dst, l.token)
		dst = binary.AppendVarint(dst, l.count)
		dst = binary.AppendVarint(dst, l.limit)
		dst = binary.AppendUvarint(dst, l.reqID)
		dst = binary.AppendUvarint(dst, uint64(len(l.waiters)))
		for _, w := range l.waiters {
			dst = binary.AppendUvarint(dst, w.session)
			dst = binary.AppendUvarint(dst, w.index)
			dst = binary.AppendUvarint(dst, w.requestID)
			dst = binary.AppendVarint(dst, w.limit)
		}
	}
	names = mapKeys(c.fences)
	dst = binary.AppendUvarint(dst, uint64(len(names)))
	for _, name := range names {
		dst = appendString(dst, name)
		dst = binary.AppendUvarint(dst, c.fences[name])
	}
	names = mapKeys(c.elections)
	dst = binary.AppendUvarint(dst, uint64(len(names)))
	for _, name := range names {
		e := c.elections[name]
		dst = appendString(dst, name)
		dst = binary.AppendUvarint(dst, e.leader)
		dst = binary.AppendUvarint(dst, e.term)
		dst = appendBytes(dst, e.value)
		dst = binary.AppendUvarint(dst, uint64(len(e.candidates)))
		for _, cd := range e.candidates {
			dst = binary.AppendUvarint(dst, cd.session)
			dst = binary.AppendUvarint(dst, cd.index)
			dst = appendBytes(dst, cd.value)
		}
	}
	return c.appendSyncTo(dst)
}

func (c *coordState) appendSyncTo(dst []byte) []byte {
	names := mapKeys(c.semaphores)
	dst = binary.AppendUvarint(dst, uint64(len(names)))
	for _, name := range names {
		m := c.semaphores[name]
		dst = appendString(dst, name)
		dst = binary.AppendVarint(dst, m.n)
		holders := m.sortedHolders()
		dst = binary.AppendUvarint(dst, uint64(len(holders)))
		for _, id := range holders {
			dst = binary.AppendUvarint(dst, id)
			dst = binary.AppendVarint(dst, m.held[id])
		}
		dst = binary.AppendUvarint(dst, uint64(len(m.waiters)))
		for _, w := range m.waiters {
			dst = binary.AppendUvarint(dst, w.session)
			dst = binary.AppendUvarint(dst, w.index)
			dst = binary.AppendUvarint(dst, w.requestID)
			dst = binary.AppendVarint(dst, w.k)
		}
	}
	names = mapKeys(c.barriers)
	dst = binary.AppendUvarint(dst, uint64(len(names)))
	for _, name := range names {
		b := c.barriers[name]
		dst = appendString(dst, name)
		var flags byte
		if b.double {
			flags |= 1
		}
		if b.leaving {
			flags |= 2
		}
		dst = append(dst, flags)
		dst = binary.AppendVarint(dst, b.n)
		dst = binary.AppendUvarint(dst, b.broken)
		dst = appendString(dst, b.detail)
		dst = binary.AppendUvarint(dst, uint64(len(b.parties)))
		for _, p := range b.parties {
			dst = binary.AppendUvarint(dst, p.session)
			dst = binary.AppendUvarint(dst, p.requestID)
			dst = binary.AppendUvarint(dst, p.index)
			var left byte
			if p.left {
				left = 1
			}
			dst = append(dst, left)
		}
	}
	names = mapKeys(c.latches)
	dst = binary.AppendUvarint(dst, uint64(len(names)))
	for _, name := range names {
		l := c.latches[name]
		dst = appendString(dst, name)
		dst = binary.AppendVarint(dst, l.initial)
		dst = binary.AppendVarint(dst, l.count)
	}
	names = mapKeys(c.ephemeral)
	dst = binary.AppendUvarint(dst, uint64(len(names)))
	for _, key := range names {
		dst = appendString(dst, key)
		dst = binary.AppendUvarint(dst, c.ephemeral[key])
	}
	return dst
}

// decodeSync decodes appendSyncTo's sections into c, checking references
// and rebuilding the derived per-session sets.
func (d *decoder) decodeSync(c *coordState, ref func(uint64, string) *session) {
	n := d.count(5)
	for i := uint64(0); i < n && d.err == nil; i++ {
		name := d.string()
		m := &semaphore{n: d.varint(), held: map[uint64]int64{}}
		h := d.count(2)
		for j := uint64(0); j < h && d.err == nil; j++ {
			id, k := d.uvarint(), d.varint()
			if s := ref(id, "semaphore holder"); s != nil {
				s.sems[name] = struct{}{}
			}
			if d.err == nil && (k <= 0 || m.held[id] != 0) {
				d.fail("semaphore %q: holder %d invalid", name, id)
			}
			m.held[id] = k
			m.used += k
		}
		w := d.count(4)
		for j := uint64(0); j < w && d.err == nil; j++ {
			sw := semWaiter{session: d.uvarint(), index: d.uvarint(), requestID: d.uvarint(), k: d.varint()}
			if s := ref(sw.session, "semaphore waiter"); s != nil {
				s.semWaiting[name] = struct{}{}
			}
			if d.err == nil && (sw.k <= 0 || sw.k > m.n) {
				d.fail("semaphore %q: waiter %d wants %d permits", name, sw.session, sw.k)
			}
			m.waiters = append(m.waiters, sw)
		}
		if d.err == nil && (name == "" || m.n <= 0 || m.used > m.n || c.semaphores[name] != nil) {
			d.fail("semaphore %q duplicated or invalid", name)
		}
		c.semaphores[name] = m
	}
	n = d.count(6)
	for i := uint64(0); i < n && d.err == nil; i++ {
		name := d.string()
		flags := d.byte()
		b := &barrier{double: flags&1 != 0, leaving: flags&2 != 0, n: d.varint(), broken: d.uvarint(), detail: d.string()}
		p := d.count(4)
		for j := uint64(0); j < p && d.err == nil; j++ {
			pt := party{session: d.uvarint(), requestID: d.uvarint(), index: d.uvarint(), left: d.byte() != 0}
			if s := ref(pt.session, "barrier party"); s != nil {
				s.barriers[name] = struct{}{}
			}
			b.parties = append(b.parties, pt)
		}
		if d.err == nil && (name == "" || flags&^3 != 0 || b.n <= 0 || c.barriers[name] != nil) {
			d.fail("barrier %q duplicated or invalid", name)
		}
		c.barriers[name] = b
	}
	n = d.count(3)
	for i := uint64(0); i < n && d.err == nil; i++ {
		name := d.string()
		l := &latch{initial: d.varint(), count: d.varint()}
		if d.err == nil && (name == "" || l.count < 0 || l.count > l.initial || c.latches[name] != nil) {
			d.fail("latch %q duplicated or invalid", name)
		}
		c.latches[name] = l
	}
	n = d.count(2)
	for i := uint64(0); i < n && d.err == nil; i++ {
		key := d.string()
		id := d.uvarint()
		if s := ref(id, "ephemeral key"); s != nil {
			s.keys[key] = struct{}{}
		}
		if _, dup := c.ephemeral[key]; d.err == nil && (key == "" || dup) {
			d.fail("ephemeral key %q duplicated or empty", key)
		}
		c.ephemeral[key] = id
	}
}

func mapKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// decodeCoordState decodes appendTo's encoding, checks its references and
// rebuilds the derived per-session sets. Byte slices are copied. withSync
// is false for snapshots of format version 2, written before semaphores,
// barriers, latches and ephemeral keys existed.
func decodeCoordState(b []byte, withSync bool) (coordState, error) {
	b = slices.Clone(b)
	c := newCoordState()
	d := decoder{b: b}
	n := d.count(4)
	for i := uint64(0); i < n && d.err == nil; i++ {
		id := d.uvarint()
		s := newSession(id, d.varint(), d.varint(), d.string())
		m := d.count(2)
		for j := uint64(0); j < m && d.err == nil; j++ {
			rid := d.uvarint()
			var r CoordResult
			d.coordResult(&r)
			s.remember(rid, r)
		}
		if d.err == nil && (id == 0 || c.sessions[id] != nil || s.ttl <= 0) {
			d.fail("session %d duplicated or invalid", id)
		}
		c.sessions[id] = s
	}
	ref := func(id uint64, what string) *session {
		s := c.sessions[id]
		if s == nil && d.err == nil {
			d.fail("%s refers to missing session %d", what, id)
		}
		return s
	}
	n = d.count(7)
	for i := uint64(0); i < n && d.err == nil; i++ {
		name := d.string()
		l := &lockState{holder: d.uvarint(), token: d.uvarint(), count: d.varint(), limit: d.varint(), reqID: d.uvarint()}
		m := d.count(4)
		for j := uint64(0); j < m && d.err == nil; j++ {
			w := lockWaiter{session: d.uvarint(), index: d.uvarint(), requestID: d.uvarint(), limit: d.varint()}
			if s := ref(w.session, "lock waiter"); s != nil {
				s.waiting[name] = struct{}{}
			}
			l.waiters = append(l.waiters, w)
		}
		if l.holder != 0 {
			if s := ref(l.holder, "lock holder"); s != nil {
				s.locks[name] = struct{}{}
			}
		}
		if d.err == nil && (name == "" || c.locks[name] != nil) {
			d.fail("lock %q duplicated or unnamed", name)
		}
		c.locks[name] = l
	}
	n = d.count(2)
	for i := uint64(0); i < n && d.err == nil; i++ {
		name := d.string()
		c.fences[name] = d.uvarint()
	}
	n = d.count(5)
	for i := uint64(0); i < n && d.err == nil; i++ {
		name := d.string()
		e := &election{leader: d.uvarint(), term: d.uvarint()}
		e.value = d.bytes()
		if e.leader != 0 {
			if s := ref(e.leader, "election leader"); s != nil {
				s.campaigns[name] = struct{}{}
			}
		}
		m := d.count(3)
		for j := uint64(0); j < m && d.err == nil; j++ {
			cd := candidate{session: d.uvarint(), index: d.uvarint(), value: d.bytes()}
			if s := ref(cd.session, "candidate"); s != nil {
				s.campaigns[name] = struct{}{}
			}
			e.candidates = append(e.candidates, cd)
		}
		c.elections[name] = e
	}
	if withSync {
		d.decodeSync(&c, ref)
	}
	if err := d.finish(); err != nil {
		return newCoordState(), err
	}
	return c, nil
}
