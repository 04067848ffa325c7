package fsm

import (
	"fmt"
	"slices"
)

// Semaphores, barriers and countdown latches, owned by the state machine
// like locks (coord.go). Every rule here is deterministic: grant order is
// log order, generations are coordination indexes.
//
// Lifetimes. A semaphore or barrier exists while it is in use (permits
// held, waiters queued, parties registered, or broken); an idle one is
// forgotten, and the next request that names it sets its size afresh. A
// latch is a durable object: it lives until OpLatchDelete, whatever
// happens to the sessions that created or counted it down.

// validateSync checks the shape of the semaphore, barrier and latch ops.
func (r *CoordRequest) validateSync() error {
	switch r.Op {
	case OpSemAcquire:
		switch {
		case r.N <= 0:
			return fmt.Errorf("%w: a semaphore needs at least one permit, not %d", ErrInvalid, r.N)
		case r.K <= 0 || r.K > r.N:
			return fmt.Errorf("%w: acquire %d permits of a semaphore of %d (1 to %d)", ErrInvalid, r.K, r.N, r.N)
		case r.Token > 1:
			return fmt.Errorf("%w: %s: token must be 0 (wait) or 1 (try)", ErrInvalid, r.Op)
		case r.Token == 0 && r.RequestID == 0:
			return fmt.Errorf("%w: a blocking %s needs a request ID", ErrInvalid, r.Op)
		}
	case OpSemRelease:
		if r.K < 0 {
			return fmt.Errorf("%w: release %d permits", ErrInvalid, r.K)
		}
	case OpBarrierAwait, OpBarrierEnter:
		if r.N <= 0 {
			return fmt.Errorf("%w: a barrier needs at least one party, not %d", ErrInvalid, r.N)
		}
		fallthrough
	case OpBarrierLeave:
		if r.RequestID == 0 {
			return fmt.Errorf("%w: %s needs a request ID", ErrInvalid, r.Op)
		}
	case OpLatchCreate:
		if r.N < 0 {
			return fmt.Errorf("%w: latch count %d is negative", ErrInvalid, r.N)
		}
	}
	return nil
}

// --- semaphores -------------------------------------------------------------

type semWaiter struct {
	session   uint64
	index     uint64 // coordination index of the acquire: FIFO order
	requestID uint64
	k         int64
}

type semaphore struct {
	n       int64
	used    int64
	held    map[uint64]int64 // session -> permits
	waiters []semWaiter
}

func (m *semaphore) waiterOf(id uint64) int {
	return slices.IndexFunc(m.waiters, func(w semWaiter) bool { return w.session == id })
}

func (m *semaphore) sortedHolders() []uint64 {
	out := make([]uint64, 0, len(m.held))
	for id := range m.held {
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}

// semEdges appends the definite wait-for edges of session id waiting for k
// permits of semaphore name at queue position pos:
//
//   - to each holder h whose release it cannot do without: even if every
//     other session released everything, n - held(id) - held(h) < k (its
//     own permits are never released while it waits);
//   - to each waiter ahead of it: without barging, it is granted only
//     after them.
//
// Cycles over these edges are real deadlocks; the rule may miss a
// deadlock that depends on several holders at once, never invents one.
func (c *coordState) semEdges(out []waitEdge, name string, m *semaphore, id uint64, k int64, pos int) []waitEdge {
	own := m.held[id]
	for _, h := range m.sortedHolders() {
		if h != id && m.n-own-m.held[h] < k {
			out = append(out, waitEdge{to: h, why: fmt.Sprintf("permits of semaphore %q held by session %d", name, h)})
		}
	}
	for _, w := range m.waiters[:pos] {
		if w.session != id {
			out = append(out, waitEdge{to: w.session, why: fmt.Sprintf("semaphore %q queued behind session %d", name, w.session)})
		}
	}
	return out
}

func (c *coordState) gcSemaphore(name string, m *semaphore) {
	if len(m.held) == 0 && len(m.waiters) == 0 {
		delete(c.semaphores, name)
	}
}

func (c *coordState) semAcquire(s *session, r *CoordRequest, idx uint64, changed *[]string) CoordResult {
	m := c.semaphores[r.Name]
	if m == nil {
		m = &semaphore{n: r.N, held: map[uint64]int64{}}
		c.semaphores[r.Name] = m
	} else if m.n != r.N {
		return CoordResult{Code: CoordMismatch, Count: m.n,
			Detail: fmt.Sprintf("semaphore %q has %d permits, not %d", r.Name, m.n, r.N)}
	}
	if _, ok := s.semWaiting[r.Name]; ok {
		return CoordResult{Code: CoordInvalid, Detail: fmt.Sprintf("session %d is already waiting for semaphore %q", s.id, r.Name)}
	}
	free := m.n - m.used
	if len(m.waiters) == 0 && free >= r.K {
		c.semGrant(r.Name, m, s, r.K, changed)
		return CoordResult{Session: s.id, Token: idx, Count: r.K}
	}
	if r.Token == 1 {
		c.gcSemaphore(r.Name, m)
		return CoordResult{Code: CoordNoPermits, Count: free,
			Detail: fmt.Sprintf("semaphore %q: %d of %d permits free, %d waiters, %d wanted", r.Name, free, m.n, len(m.waiters), r.K)}
	}
	if cycle := c.findCycle(s.id, c.semEdges(nil, r.Name, m, s.id, r.K, len(m.waiters))); cycle != "" {
		c.gcSemaphore(r.Name, m)
		return CoordResult{Code: CoordDeadlock, Detail: cycle}
	}
	m.waiters = append(m.waiters, semWaiter{session: s.id, index: idx, requestID: r.RequestID, k: r.K})
	s.semWaiting[r.Name] = struct{}{}
	*changed = append(*changed, semaphoreKey(r.Name))
	return CoordResult{Code: CoordQueued, Count: free}
}

func (c *coordState) semGrant(name string, m *semaphore, s *session, k int64, changed *[]string) {
	m.held[s.id] += k
	m.used += k
	s.sems[name] = struct{}{}
	delete(s.semWaiting, name)
	*changed = append(*changed, semaphoreKey(name))
}

// semHandOff grants waiters from the head of the queue while the head's
// request fits: a large request at the head blocks smaller ones behind it.
// Grants made here are remembered as the waiters' results.
func (c *coordState) semHandOff(name string, m *semaphore, idx uint64, changed *[]string) {
	for len(m.waiters) > 0 && m.waiters[0].k <= m.n-m.used {
		w := m.waiters[0]
		m.waiters = m.waiters[1:]
		ws := c.sessions[w.session]
		if ws == nil {
			continue
		}
		c.semGrant(name, m, ws, w.k, changed)
		ws.remember(w.requestID, CoordResult{Session: ws.id, Token: idx, Count: w.k, Index: idx})
	}
	c.gcSemaphore(name, m)
}

// semReturn takes k permits back from session s.
func (c *coordState) semReturn(name string, m *semaphore, s *session, k int64, idx uint64, changed *[]string) {
	if m.held[s.id] -= k; m.held[s.id] <= 0 {
		delete(m.held, s.id)
		delete(s.sems, name)
	}
	m.used -= k
	*changed = append(*changed, semaphoreKey(name))
	c.semHandOff(name, m, idx, changed)
}

func (c *coordState) semRelease(s *session, name string, k int64, idx uint64, changed *[]string) CoordResult {
	m := c.semaphores[name]
	if m == nil || m.held[s.id] == 0 {
		return CoordResult{Code: CoordNotOwner, Detail: fmt.Sprintf("session %d holds no permits of semaphore %q", s.id, name)}
	}
	held := m.held[s.id]
	if k == 0 {
		k = held
	}
	if k > held {
		return CoordResult{Code: CoordNotOwner, Count: held,
			Detail: fmt.Sprintf("session %d holds %d permits of semaphore %q, not %d", s.id, held, name, k)}
	}
	c.semReturn(name, m, s, k, idx, changed)
	return CoordResult{Session: s.id, Count: held - k}
}

// semCancel withdraws s's waiting acquire of name (reqID: its request ID,
// forgotten so that a retry applies afresh). If that acquire was already
// granted, its permits are returned: either way nothing is held for it.
func (c *coordState) semCancel(s *session, name string, reqID, idx uint64, changed *[]string) CoordResult {
	var prev CoordResult
	var had bool
	if reqID != 0 {
		prev, had = s.results[reqID]
		s.forget(reqID)
	}
	m := c.semaphores[name]
	if m == nil {
		return CoordResult{Code: CoordNotWaiting}
	}
	if i := m.waiterOf(s.id); i >= 0 && (reqID == 0 || m.waiters[i].requestID == reqID) {
		m.waiters = slices.Delete(m.waiters, i, i+1)
		delete(s.semWaiting, name)
		*changed = append(*changed, semaphoreKey(name))
		c.semHandOff(name, m, idx, changed) // the head may have left
		return CoordResult{}
	}
	if had && prev.Code == CoordOK && m.held[s.id] > 0 {
		c.semReturn(name, m, s, min(prev.Count, m.held[s.id]), idx, changed)
		return CoordResult{}
	}
	return CoordResult{Code: CoordNotWaiting}
}

// --- barriers ---------------------------------------------------------------

type party struct {
	session   uint64
	requestID uint64 // the pending await, enter or leave
	index     uint64 // coordination index of its arrival
	left      bool   // double barrier: has called leave
}

type barrier struct {
	double  bool
	n       int64
	leaving bool   // double barrier: all n entered; now they leave
	broken  uint64 // the session whose end broke it; 0: not broken
	detail  string // why it broke
	parties []party
}

func barrierKind(double bool) string {
	if double {
		return "double barrier"
	}
	return "barrier"
}

// waiting reports whether party p has a request pending.
func (b *barrier) waiting(p *party) bool { return !b.double || !b.leaving || p.left }

func (b *barrier) partyOf(id uint64) int {
	return slices.IndexFunc(b.parties, func(p party) bool { return p.session == id && !p.left })
}

func (c *coordState) gcBarrier(name string, b *barrier) {
	if b.broken == 0 && len(b.parties) == 0 {
		delete(c.barriers, name)
	}
}

// openBarrier returns barrier name of the given kind and size, creating
// it, or the result that refuses the request.
func (c *coordState) openBarrier(name string, double bool, n int64) (*barrier, *CoordResult) {
	b := c.barriers[name]
	if b == nil {
		b = &barrier{double: double, n: n}
		c.barriers[name] = b
		return b, nil
	}
	if b.double != double || b.n != n {
		return nil, &CoordResult{Code: CoordMismatch, Count: b.n,
			Detail: fmt.Sprintf("%q is a %s of %d parties, not a %s of %d", name, barrierKind(b.double), b.n, barrierKind(double), n)}
	}
	if b.broken != 0 {
		return nil, b.brokenResult()
	}
	return b, nil
}

func (b *barrier) brokenResult() *CoordResult {
	return &CoordResult{Code: CoordBroken, Session: b.broken, Detail: b.detail}
}

// release answers every party waiting in b (except skip, answered by the
// command itself) with res, at arrival order.
func (c *coordState) releaseParties(name string, b *barrier, skip uint64, res func(i int) CoordResult) {
	for i := range b.parties {
		p := &b.parties[i]
		if p.session == skip || !b.waiting(p) {
			continue
		}
		if ps := c.sessions[p.session]; ps != nil {
			ps.remember(p.requestID, res(i))
		}
	}
}

func (c *coordState) unregister(name string, b *barrier) {
	for _, p := range b.parties {
		if ps := c.sessions[p.session]; ps != nil {
			delete(ps.barriers, name)
		}
	}
	b.parties = nil
	b.leaving = false
}

// arrive registers s as the next party of barrier b. When it completes
// the party (tripped), every waiting party is released with its arrival
// index and the generation, which is this command's coordination index;
// the caller then resets or flips the barrier.
func (c *coordState) arrive(b *barrier, s *session, r *CoordRequest, idx uint64, changed *[]string) (arrival int64, tripped bool) {
	arrival = int64(len(b.parties))
	b.parties = append(b.parties, party{session: s.id, requestID: r.RequestID, index: idx})
	s.barriers[r.Name] = struct{}{}
	*changed = append(*changed, barrierKey(r.Name))
	if arrival+1 < b.n {
		return arrival, false
	}
	c.releaseParties(r.Name, b, s.id, func(i int) CoordResult {
		return CoordResult{Session: b.parties[i].session, Token: idx, Count: int64(i), Index: idx}
	})
	return arrival, true
}

func (c *coordState) barrierAwait(s *session, r *CoordRequest, idx uint64, changed *[]string) CoordResult {
	b, refused := c.openBarrier(r.Name, false, r.N)
	if refused != nil {
		return *refused
	}
	if _, ok := s.barriers[r.Name]; ok {
		return CoordResult{Code: CoordInvalid, Detail: fmt.Sprintf("session %d is already waiting at barrier %q", s.id, r.Name)}
	}
	arrival, tripped := c.arrive(b, s, r, idx, changed)
	if !tripped {
		return CoordResult{Code: CoordQueued, Count: arrival}
	}
	c.unregister(r.Name, b)
	c.gcBarrier(r.Name, b)
	return CoordResult{Session: s.id, Token: idx, Count: arrival}
}

func (c *coordState) barrierEnter(s *session, r *CoordRequest, idx uint64, changed *[]string) CoordResult {
	b, refused := c.openBarrier(r.Name, true, r.N)
	if refused != nil {
		return *refused
	}
	if b.leaving {
		return CoordResult{Code: CoordInvalid, Detail: fmt.Sprintf("double barrier %q: its parties are still leaving", r.Name)}
	}
	if _, ok := s.barriers[r.Name]; ok {
		return CoordResult{Code: CoordInvalid, Detail: fmt.Sprintf("session %d has already entered double barrier %q", s.id, r.Name)}
	}
	arrival, tripped := c.arrive(b, s, r, idx, changed)
	if !tripped {
		return CoordResult{Code: CoordQueued, Count: arrival}
	}
	b.leaving = true
	return CoordResult{Session: s.id, Token: idx, Count: arrival}
}

func (c *coordState) barrierLeave(s *session, r *CoordRequest, idx uint64, changed *[]string) CoordResult {
	b := c.barriers[r.Name]
	switch {
	case b == nil:
		return CoordResult{Code: CoordNotWaiting, Detail: fmt.Sprintf("session %d has not entered double barrier %q", s.id, r.Name)}
	case !b.double:
		return CoordResult{Code: CoordMismatch, Count: b.n, Detail: fmt.Sprintf("%q is a cyclic barrier, not a double barrier", r.Name)}
	case b.broken != 0:
		return *b.brokenResult()
	}
	i := b.partyOf(s.id)
	if i < 0 {
		return CoordResult{Code: CoordNotWaiting, Detail: fmt.Sprintf("session %d has not entered double barrier %q", s.id, r.Name)}
	}
	*changed = append(*changed, barrierKey(r.Name))
	if !b.leaving {
		// Leaving before the barrier filled withdraws the entry.
		delete(s.barriers, r.Name)
		b.parties = slices.Delete(b.parties, i, i+1)
		c.gcBarrier(r.Name, b)
		return CoordResult{Session: s.id}
	}
	b.parties[i].left, b.parties[i].requestID = true, r.RequestID
	for j := range b.parties {
		if !b.parties[j].left {
			return CoordResult{Code: CoordQueued}
		}
	}
	c.releaseParties(r.Name, b, s.id, func(int) CoordResult { return CoordResult{Token: idx, Index: idx} })
	c.unregister(r.Name, b)
	c.gcBarrier(r.Name, b)
	return CoordResult{Session: s.id, Token: idx}
}

// barrierCancel withdraws s's pending await (cyclic) or enter (double,
// before the barrier filled) with request ID reqID. A generation that
// already tripped cannot be withdrawn from.
func (c *coordState) barrierCancel(s *session, name string, reqID uint64, changed *[]string) CoordResult {
	if reqID != 0 {
		if prev, ok := s.results[reqID]; ok && prev.Code != CoordQueued {
			return CoordResult{Code: CoordNotWaiting, Detail: fmt.Sprintf("the request already completed at barrier %q", name)}
		}
		s.forget(reqID)
	}
	b := c.barriers[name]
	if b == nil || b.leaving {
		return CoordResult{Code: CoordNotWaiting}
	}
	i := b.partyOf(s.id)
	if i < 0 || (reqID != 0 && b.parties[i].requestID != reqID) {
		return CoordResult{Code: CoordNotWaiting}
	}
	b.parties = slices.Delete(b.parties, i, i+1)
	delete(s.barriers, name)
	*changed = append(*changed, barrierKey(name))
	c.gcBarrier(name, b)
	return CoordResult{}
}

// breakBarrier marks b broken by culprit: every party with a pending
// request gets ErrBroken naming it, and every party is unregistered.
func (c *coordState) breakBarrier(name string, b *barrier, culprit uint64, detail string, changed *[]string) {
	b.broken, b.detail = culprit, detail
	c.releaseParties(name, b, culprit, func(int) CoordResult { return *b.brokenResult() })
	c.unregister(name, b)
	*changed = append(*changed, barrierKey(name))
}

// barrierReset repairs a broken barrier. Parties waiting at a barrier that
// is not broken are released with ErrBroken naming the resetting session
// (as Java's CyclicBarrier.reset).
func (c *coordState) barrierReset(s *session, name string, idx uint64, changed *[]string) CoordResult {
	b := c.barriers[name]
	if b == nil {
		return CoordResult{Session: s.id}
	}
	if b.broken == 0 {
		c.releaseParties(name, b, 0, func(int) CoordResult {
			return CoordResult{Code: CoordBroken, Session: s.id, Detail: fmt.Sprintf("%s %q was reset by session %d", barrierKind(b.double), name, s.id)}
		})
		c.unregister(name, b)
	}
	b.broken, b.detail = 0, ""
	*changed = append(*changed, barrierKey(name))
	c.gcBarrier(name, b)
	return CoordResult{Session: s.id}
}

// --- latches ----------------------------------------------------------------

type latch struct {
	initial int64
	count   int64
}

func (c *coordState) latchCreate(r *CoordRequest, changed *[]string) CoordResult {
	if l := c.latches[r.Name]; l != nil {
		if l.initial != r.N {
			return CoordResult{Code: CoordMismatch, Count: l.initial,
				Detail: fmt.Sprintf("latch %q was created with count %d, not %d", r.Name, l.initial, r.N)}
		}
		return CoordResult{Count: l.count}
	}
	c.latches[r.Name] = &latch{initial: r.N, count: r.N}
	*changed = append(*changed, latchKey(r.Name))
	return CoordResult{Count: r.N}
}

func (c *coordState) latchCountDown(r *CoordRequest, changed *[]string) CoordResult {
	l := c.latches[r.Name]
	if l == nil {
		return CoordResult{Code: CoordNotFound, Detail: fmt.Sprintf("latch %q", r.Name)}
	}
	if l.count > 0 {
		l.count--
		*changed = append(*changed, latchKey(r.Name))
	}
	// Token carries the initial count: remembered with the result, so a
	// retried count-down answers it too.
	return CoordResult{Count: l.count, Token: uint64(l.initial)}
}

func (c *coordState) latchDelete(r *CoordRequest, changed *[]string) CoordResult {
	l := c.latches[r.Name]
	if l == nil {
		return CoordResult{Code: CoordNotFound, Detail: fmt.Sprintf("latch %q", r.Name)}
	}
	delete(c.latches, r.Name)
	*changed = append(*changed, latchKey(r.Name))
	return CoordResult{Count: l.count}
}

// --- session end --------------------------------------------------------------

// endSessionSync withdraws s's semaphore waits, returns its permits
// (granting waiters), breaks the barriers it is registered in and queues
// its ephemeral keys for deletion, all in the command that ends it.
func (c *coordState) endSessionSync(s *session, idx uint64, changed *[]string) {
	for _, name := range sortedKeys(s.semWaiting) {
		if m := c.semaphores[name]; m != nil {
			m.waiters = slices.DeleteFunc(m.waiters, func(w semWaiter) bool { return w.session == s.id })
			*changed = append(*changed, semaphoreKey(name))
			c.semHandOff(name, m, idx, changed)
		}
	}
	clear(s.semWaiting)
	for _, name := range sortedKeys(s.sems) {
		if m := c.semaphores[name]; m != nil && m.held[s.id] > 0 {
			c.semReturn(name, m, s, m.held[s.id], idx, changed)
		}
	}
	for _, name := range sortedKeys(s.barriers) {
		b := c.barriers[name]
		if b == nil {
			continue
		}
		// A party that has left only waits for the others: its end
		// does not hold them up.
		if i := slices.IndexFunc(b.parties, func(p party) bool { return p.session == s.id }); i >= 0 && b.parties[i].left {
			b.parties = slices.Delete(b.parties, i, i+1)
			*changed = append(*changed, barrierKey(name))
		} else {
			c.breakBarrier(name, b, s.id, fmt.Sprintf("%s %q broken: session %d ended while registered", barrierKind(b.double), name, s.id), changed)
		}
	}
	for _, key := range sortedKeys(s.keys) {
		delete(c.ephemeral, key)
		c.expiredKeys = append(c.expiredKeys, key)
	}
	clear(s.keys)
}

// --- ephemeral keys -------------------------------------------------------------

// attach records that key now belongs to session id (0: to none).
func (c *coordState) attach(key []byte, id uint64) {
	if id == 0 && len(c.ephemeral) == 0 {
		return
	}
	k := string(key)
	if old, ok := c.ephemeral[k]; ok {
		if s := c.sessions[old]; s != nil {
			delete(s.keys, k)
		}
		delete(c.ephemeral, k)
	}
	if id != 0 {
		c.ephemeral[k] = id
		c.sessions[id].keys[k] = struct{}{}
	}
}

// missingSession returns the first session a put of r attaches a key to
// that does not exist, or 0.
func (c *coordState) missingSession(r *Request) uint64 {
	for _, ops := range [2][]Op{r.Success, r.Failure} {
		for i := range ops {
			if id := ops[i].Session; id != 0 && c.sessions[id] == nil {
				return id
			}
		}
	}
	return 0
}

// --- reads ------------------------------------------------------------------------

// SemaphoreHold is one session's share of a semaphore: permits held, or
// wanted by a waiter.
type SemaphoreHold struct {
	Session uint64
	Permits int64
}

// SemaphoreInfo describes a semaphore. Permits 0: it does not exist (idle).
type SemaphoreInfo struct {
	Name    string
	Permits int64           // N
	Used    int64           // permits held
	Holders []SemaphoreHold // by session ID
	Waiters []SemaphoreHold // in grant order
}

// BarrierInfo describes a cyclic or double barrier. Parties 0: it does
// not exist (idle).
type BarrierInfo struct {
	Name    string
	Double  bool
	Parties int64    // N
	Arrived []uint64 // registered sessions that have not left, in arrival order
	Left    []uint64 // double barrier: sessions that left and wait for the rest
	Leaving bool     // double barrier: all parties entered
	Broken  uint64   // the session whose end broke it; 0: not broken
	Detail  string   // why it broke
}

// LatchInfo describes a countdown latch.
type LatchInfo struct {
	Name    string
	Exists  bool
	Initial int64
	Count   int64
}

// Semaphore describes semaphore name.
func (f *FSM) Semaphore(name string) SemaphoreInfo {
	f.mu.RLock()
	defer f.mu.RUnlock()
	info := SemaphoreInfo{Name: name}
	if m := f.st.coord.semaphores[name]; m != nil {
		info.Permits, info.Used = m.n, m.used
		for _, id := range m.sortedHolders() {
			info.Holders = append(info.Holders, SemaphoreHold{Session: id, Permits: m.held[id]})
		}
		for _, w := range m.waiters {
			info.Waiters = append(info.Waiters, SemaphoreHold{Session: w.session, Permits: w.k})
		}
	}
	return info
}

// Barrier describes barrier name.
func (f *FSM) Barrier(name string) BarrierInfo {
	f.mu.RLock()
	defer f.mu.RUnlock()
	info := BarrierInfo{Name: name}
	if b := f.st.coord.barriers[name]; b != nil {
		info.Double, info.Parties, info.Leaving, info.Broken, info.Detail = b.double, b.n, b.leaving, b.broken, b.detail
		for _, p := range b.parties {
			if p.left {
				info.Left = append(info.Left, p.session)
			} else {
				info.Arrived = append(info.Arrived, p.session)
			}
		}
	}
	return info
}

// Latch describes latch name.
func (f *FSM) Latch(name string) LatchInfo {
	f.mu.RLock()
	defer f.mu.RUnlock()
	info := LatchInfo{Name: name}
	if l := f.st.coord.latches[name]; l != nil {
		info.Exists, info.Initial, info.Count = true, l.initial, l.count
	}
	return info
}

// Result returns the remembered result of session's request reqID: the
// outcome of a queued acquire, await, enter or leave once it completed
// (Code CoordQueued while it waits). False if the session or the request
// is unknown.
func (f *FSM) Result(session, reqID uint64) (CoordResult, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	s := f.st.coord.sessions[session]
	if s == nil || reqID == 0 {
		return CoordResult{}, false
	}
	r, ok := s.results[reqID]
	return r, ok
}

// EphemeralSession returns the session key is attached to, or 0.
func (f *FSM) EphemeralSession(key []byte) uint64 {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.st.coord.ephemeral[string(key)]
}

// SemaphoreChanged is LockChanged for semaphore name.
func (f *FSM) SemaphoreChanged(name string) <-chan struct{} {
	return f.objectNotify(semaphoreKey(name))
}

// BarrierChanged is LockChanged for barrier name (either kind).
func (f *FSM) BarrierChanged(name string) <-chan struct{} { return f.objectNotify(barrierKey(name)) }

// LatchChanged is LockChanged for latch name.
func (f *FSM) LatchChanged(name string) <-chan struct{} { return f.objectNotify(latchKey(name)) }
