package fsm

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Coordination: sessions, fenced locks and named elections, owned by the
// state machine. Everything here is deterministic: time is the leader's
// stamp in Command.Time, tokens and session IDs are raft indexes.

// coordPosBits is how many low bits of a coordination index hold the
// command's position within its raft log entry.
const coordPosBits = 16

// CoordIndex is the position of a command in the log: its raft index
// shifted left by 16 bits, plus its position within a batch entry. Session
// IDs, fencing tokens and election terms are coordination indexes: they
// order exactly as the commands were applied and are unique per command,
// even when group commit packs several commands into one raft entry.
func CoordIndex(raftIndex uint64, pos int) uint64 { return raftIndex<<coordPosBits | uint64(pos) }

// Errors of the coordination commands. They travel in CoordResult (Code and
// Detail) so that a forwarded command keeps them; CoordResult.Err turns them
// back into these.
var (
	// ErrSessionNotFound: the session does not exist (expired, destroyed or
	// never created).
	ErrSessionNotFound = errors.New("fsm: session not found")
	// ErrNotOwner: a release, resign or proclaim by a session that does not
	// hold the lock or lead the election, or with a stale token.
	ErrNotOwner = errors.New("fsm: not the owner")
	// ErrLocked: a TryLock found the lock held.
	ErrLocked = errors.New("fsm: lock is held")
	// ErrReentrancyLimit: the session already holds the lock as many times
	// as its reentrancy limit allows (1 when reentrancy is off).
	ErrReentrancyLimit = errors.New("fsm: reentrancy limit reached")
	// ErrDeadlock: waiting would close a cycle in the wait-for graph; the
	// message names the cycle.
	ErrDeadlock = errors.New("fsm: deadlock")
	// ErrFenced: a fenced write carried a token older than the newest one
	// granted for its lock (or one never granted).
	ErrFenced = errors.New("fsm: fencing token is stale")
	// ErrNotWaiting: a cancel found nothing to cancel.
	ErrNotWaiting = errors.New("fsm: not waiting")
	// ErrMismatch: a semaphore, barrier or latch exists with another size
	// (permits, parties, count) or kind than the request gave; nothing
	// changed.
	ErrMismatch = errors.New("fsm: size or kind mismatch")
	// ErrBroken: a barrier is broken (a registered party's session ended);
	// the message names the culprit session. It stays broken until reset.
	ErrBroken = errors.New("fsm: barrier is broken")
	// ErrNoPermits: a try-acquire of a semaphore found too few permits free
	// (or waiters ahead of it).
	ErrNoPermits = errors.New("fsm: not enough permits")
	// ErrNotFound: the latch does not exist (never created, or deleted).
	ErrNotFound = errors.New("fsm: no such object")
)

// CoordOp is the operation of a CmdCoord command. Values are part of the log
// format: never renumber them.
type CoordOp uint8

const (
	OpSessionCreate    CoordOp = 1  // N = TTL (ns), Name = a label; result Session = new ID (the raft index)
	OpSessionKeepAlive CoordOp = 2  // IDs; result IDs = the ones that do not exist
	OpSessionDestroy   CoordOp = 3  // Session
	OpSessionExpire    CoordOp = 4  // IDs: each is destroyed if its deadline <= Command.Time (leader only)
	OpSessionRenewAll  CoordOp = 5  // every session's deadline = Command.Time + TTL (new leader)
	OpLockAcquire      CoordOp = 6  // Session, RequestID, Name, N = reentrancy limit (<=1: none), K = 1 try
	OpLockRelease      CoordOp = 7  // Session, RequestID, Name, Token (0 = any)
	OpLockCancel       CoordOp = 8  // Session, Name, Token = the acquire's RequestID: withdraw a waiting acquire
	OpElectCampaign    CoordOp = 9  // Session, RequestID, Name, Value
	OpElectResign      CoordOp = 10 // Session, RequestID, Name, Token = term (0 = any)
	OpElectProclaim    CoordOp = 11 // Session, RequestID, Name, Token = term, Value
	OpSemAcquire       CoordOp = 12 // Session, RequestID, Name, N = permits of the semaphore, K = permits wanted, Token = 1 try
	OpSemRelease       CoordOp = 13 // Session, RequestID, Name, K = permits to release (0 = every permit the session holds)
	OpSemCancel        CoordOp = 14 // Session, Name, Token = the acquire's RequestID: withdraw a waiting acquire
	OpBarrierAwait     CoordOp = 15 // Session, RequestID, Name, N = parties: cyclic barrier
	OpBarrierEnter     CoordOp = 16 // Session, RequestID, Name, N = parties: double barrier, enter
	OpBarrierLeave     CoordOp = 17 // Session, RequestID, Name: double barrier, leave
	OpBarrierCancel    CoordOp = 18 // Session, Name, Token = the await's or enter's RequestID: withdraw it
	OpBarrierReset     CoordOp = 19 // Session, RequestID, Name: repair a broken barrier (breaks a waiting generation)
	OpLatchCreate      CoordOp = 20 // Session, RequestID, Name, N = count
	OpLatchCountDown   CoordOp = 21 // Session, RequestID, Name; result Count = new count, Token = initial count
	OpLatchDelete      CoordOp = 22 // Session, RequestID, Name
	opCoordMax                 = OpLatchDelete
)

func (o CoordOp) String() string {
	names := [...]string{"", "session-create", "session-keepalive", "session-destroy", "session-expire",
		"session-renew-all", "lock-acquire", "lock-release", "lock-cancel", "campaign", "resign", "proclaim",
		"semaphore-acquire", "semaphore-release", "semaphore-cancel", "barrier-await", "barrier-enter",
		"barrier-leave", "barrier-cancel", "barrier-reset", "latch-create", "latch-count-down", "latch-delete"}
	if int(o) < len(names) && o != 0 {
		return names[o]
	}
	return "CoordOp(" + strconv.Itoa(int(o)) + ")"
}

// CoordRequest is the payload of a CmdCoord command.
type CoordRequest struct {
	Op        CoordOp
	Session   uint64 // the session the request acts for
	RequestID uint64 // client-chosen, unique per session; 0 = not deduplicated
	Name      string // lock or election name; session label on create
	Value     []byte // election value
	Token     uint64 // fencing token / term / request ID (see the ops)
	N         int64
	K         int64
	IDs       []uint64 // sessions (keepalive, expire)
}

// CoordCode is the outcome of a coordination command.
type CoordCode uint8

const (
	CoordOK              CoordCode = 0
	CoordQueued          CoordCode = 1 // waiting: granted later by the apply that frees the object
	CoordSessionNotFound CoordCode = 2
	CoordNotOwner        CoordCode = 3
	CoordLocked          CoordCode = 4
	CoordReentrancy      CoordCode = 5
	CoordDeadlock        CoordCode = 6
	CoordFenced          CoordCode = 7
	CoordInvalid         CoordCode = 8
	CoordNotWaiting      CoordCode = 9
	CoordMismatch        CoordCode = 10
	CoordBroken          CoordCode = 11 // Session = the culprit
	CoordNoPermits       CoordCode = 12
	CoordNotFound        CoordCode = 13
	coordCodeMax                   = CoordNotFound
)

var coordErrs = [...]error{
	CoordSessionNotFound: ErrSessionNotFound,
	CoordNotOwner:        ErrNotOwner,
	CoordLocked:          ErrLocked,
	CoordReentrancy:      ErrReentrancyLimit,
	CoordDeadlock:        ErrDeadlock,
	CoordFenced:          ErrFenced,
	CoordInvalid:         ErrInvalid,
	CoordNotWaiting:      ErrNotWaiting,
	CoordMismatch:        ErrMismatch,
	CoordBroken:          ErrBroken,
	CoordNoPermits:       ErrNoPermits,
	CoordNotFound:        ErrNotFound,
}

// CoordResult is the result of a coordination command (Response.Coord) and
// of a fenced txn that was refused.
type CoordResult struct {
	Code    CoordCode
	Session uint64   // create: the new session; lock/election: the holder/leader
	Token   uint64   // fencing token of the grant, or election term
	Count   int64    // hold count (reentrancy); sessions renewed; TTL on create
	Index   uint64   // raft index at which the command applied (queue position when queued)
	Detail  string   // error detail: the deadlock cycle, the holder, ...
	IDs     []uint64 // keepalive: sessions that do not exist
}

// Err returns nil for CoordOK and CoordQueued, otherwise the error of Code
// with Detail.
func (r *CoordResult) Err() error {
	if r == nil || r.Code == CoordOK || r.Code == CoordQueued {
		return nil
	}
	base := ErrInvalid
	if int(r.Code) < len(coordErrs) && coordErrs[r.Code] != nil {
		base = coordErrs[r.Code]
	}
	if r.Detail == "" {
		return base
	}
	return fmt.Errorf("%w: %s", base, r.Detail)
}

// Fence names a lock grant. A fenced write applies only if Token is the
// newest token granted for Lock.
type Fence struct {
	Lock  string
	Token uint64
}

// Validate checks r before it is proposed. Errors wrap ErrInvalid or
// ErrTooLarge.
func (r *CoordRequest) Validate(l Limits) error {
	l = l.withDefaults()
	if len(r.Name) > l.MaxKeySize {
		return fmt.Errorf("%w: name is %d bytes, limit %d", ErrTooLarge, len(r.Name), l.MaxKeySize)
	}
	if len(r.Value) > l.MaxValueSize {
		return fmt.Errorf("%w: value is %d bytes, limit %d", ErrTooLarge, len(r.Value), l.MaxValueSize)
	}
	if len(r.IDs) > maxCoordIDs {
		return fmt.Errorf("%w: %d session IDs, limit %d", ErrTooLarge, len(r.IDs), maxCoordIDs)
	}
	return r.validateShape()
}

// maxCoordIDs bounds the sessions of one keepalive or expire command.
const maxCoordIDs = 4096

// validateShape checks what apply relies on (no limits: those are the
// proposer's policy).
func (r *CoordRequest) validateShape() error {
	if r.Op == 0 || r.Op > opCoordMax {
		return fmt.Errorf("%w: unknown coordination op %d", ErrInvalid, r.Op)
	}
	switch r.Op {
	case OpSessionCreate:
		if r.N <= 0 {
			return fmt.Errorf("%w: session TTL must be positive", ErrInvalid)
		}
	case OpSessionKeepAlive, OpSessionExpire:
		if len(r.IDs) == 0 {
			return fmt.Errorf("%w: %s without session IDs", ErrInvalid, r.Op)
		}
	case OpSessionRenewAll:
	default:
		if r.Session == 0 {
			return fmt.Errorf("%w: %s without a session", ErrInvalid, r.Op)
		}
		if r.Op != OpSessionDestroy && r.Name == "" {
			return fmt.Errorf("%w: %s without a name", ErrInvalid, r.Op)
		}
	}
	return r.validateSync()
}

// --- state -------------------------------------------------------------------

// maxRemembered is how many request IDs a session remembers: a retry must
// arrive before this many newer requests of the same session.
const maxRemembered = 256

type session struct {
	id      uint64
	ttl     int64 // ns
	expires int64 // leader time, unix ns
	name    string
	// remembered results of requests, by request ID; order is FIFO for
	// eviction.
	results map[uint64]CoordResult
	order   []uint64
	// derived (not snapshotted, rebuilt on restore): what it holds and waits on.
	locks      map[string]struct{}
	waiting    map[string]struct{} // lock names
	campaigns  map[string]struct{} // election names (leader or candidate)
	sems       map[string]struct{} // semaphores it holds permits of
	semWaiting map[string]struct{} // semaphores it waits for
	barriers   map[string]struct{} // barriers it is registered in (arrived, entered, or left and waiting)
	keys       map[string]struct{} // ephemeral keys attached to it
}

type lockWaiter struct {
	session   uint64
	index     uint64 // raft index of the acquire: FIFO order
	requestID uint64
	limit     int64
}

type lockState struct {
	holder  uint64
	token   uint64
	count   int64
	limit   int64
	reqID   uint64 // request that got the grant
	waiters []lockWaiter
}

type candidate struct {
	session uint64
	index   uint64
	value   []byte
}

type election struct {
	leader     uint64
	term       uint64
	value      []byte
	candidates []candidate
}

type coordState struct {
	sessions   map[uint64]*session
	locks      map[string]*lockState
	fences     map[string]uint64 // newest token granted per lock, kept after release
	elections  map[string]*election
	semaphores map[string]*semaphore
	barriers   map[string]*barrier
	latches    map[string]*latch
	ephemeral  map[string]uint64 // key -> the session it is attached to

	// expiredKeys collects the ephemeral keys of sessions ended by the
	// command being applied; the apply deletes them as one revision.
	expiredKeys []string
}

func newCoordState() coordState {
	return coordState{
		sessions:   make(map[uint64]*session),
		locks:      make(map[string]*lockState),
		fences:     make(map[string]uint64),
		elections:  make(map[string]*election),
		semaphores: make(map[string]*semaphore),
		barriers:   make(map[string]*barrier),
		latches:    make(map[string]*latch),
		ephemeral:  make(map[string]uint64),
	}
}

func newSession(id uint64, ttl, expires int64, name string) *session {
	return &session{id: id, ttl: ttl, expires: expires, name: name,
		results: make(map[uint64]CoordResult), locks: map[string]struct{}{},
		waiting: map[string]struct{}{}, campaigns: map[string]struct{}{},
		sems: map[string]struct{}{}, semWaiting: map[string]struct{}{},
		barriers: map[string]struct{}{}, keys: map[string]struct{}{}}
}

func (s *session) remember(reqID uint64, r CoordResult) {
	if reqID == 0 {
		return
	}
	if _, ok := s.results[reqID]; !ok {
		s.order = append(s.order, reqID)
	}
	s.results[reqID] = r
	for len(s.order) > maxRemembered {
		delete(s.results, s.order[0])
		s.order = s.order[1:]
	}
}

func (s *session) forget(reqID uint64) {
	if _, ok := s.results[reqID]; !ok {
		return
	}
	delete(s.results, reqID)
	if i := slices.Index(s.order, reqID); i >= 0 {
		s.order = slices.Delete(s.order, i, i+1)
	}
}

// Coordination object keys for change notifications.
func lockKey(name string) string      { return "l\x00" + name }
func electionKey(name string) string  { return "e\x00" + name }
func sessionKey(id uint64) string     { return "s\x00" + strconv.FormatUint(id, 10) }
func semaphoreKey(name string) string { return "m\x00" + name }
func barrierKey(name string) string   { return "b\x00" + name }
func latchKey(name string) string     { return "c\x00" + name }

// coordApply applies one coordination command at raft index idx and leader
// time now. changed collects the keys of objects whose state changed.
func (c *coordState) apply(r *CoordRequest, idx uint64, now int64, changed *[]string) CoordResult {
	res := c.apply1(r, idx, now, changed)
	res.Index = idx
	return res
}

func (c *coordState) apply1(r *CoordRequest, idx uint64, now int64, changed *[]string) CoordResult {
	if err := r.validateShape(); err != nil {
		return CoordResult{Code: CoordInvalid, Detail: err.Error()}
	}
	switch r.Op {
	case OpSessionCreate:
		if r.N <= 0 {
			return CoordResult{Code: CoordInvalid, Detail: "session TTL must be positive"}
		}
		c.sessions[idx] = newSession(idx, r.N, now+r.N, r.Name)
		*changed = append(*changed, sessionKey(idx))
		return CoordResult{Session: idx, Count: r.N}
	case OpSessionKeepAlive:
		var missing []uint64
		var n int64
		for _, id := range r.IDs {
			if s := c.sessions[id]; s != nil {
				s.expires = max(s.expires, now+s.ttl)
				n++
			} else {
				missing = append(missing, id)
			}
		}
		return CoordResult{Count: n, IDs: missing}
	case OpSessionExpire:
		var n int64
		for _, id := range r.IDs {
			if s := c.sessions[id]; s != nil && s.expires <= now {
				c.endSession(s, idx, changed)
				n++
			}
		}
		return CoordResult{Count: n}
	case OpSessionRenewAll:
		for _, s := range c.sessions {
			s.expires = now + s.ttl
		}
		return CoordResult{Count: int64(len(c.sessions))}
	}
	s := c.sessions[r.Session]
	if s == nil {
		return CoordResult{Code: CoordSessionNotFound, Detail: "session " + strconv.FormatUint(r.Session, 10)}
	}
	if r.RequestID != 0 {
		if prev, ok := s.results[r.RequestID]; ok {
			return prev
		}
	}
	var res CoordResult
	switch r.Op {
	case OpSessionDestroy:
		c.endSession(s, idx, changed)
		return CoordResult{Session: s.id}
	case OpLockAcquire:
		res = c.acquire(s, r, idx, changed)
	case OpLockRelease:
		res = c.release(s, r.Name, r.Token, idx, changed)
	case OpLockCancel:
		res = c.cancel(s, r.Name, r.Token, idx, changed)
	case OpElectCampaign:
		res = c.campaign(s, r, idx, changed)
	case OpElectResign:
		res = c.resign(s, r.Name, r.Token, idx, changed)
	case OpElectProclaim:
		res = c.proclaim(s, r, changed)
	case OpSemAcquire:
		res = c.semAcquire(s, r, idx, changed)
	case OpSemRelease:
		res = c.semRelease(s, r.Name, r.K, idx, changed)
	case OpSemCancel:
		res = c.semCancel(s, r.Name, r.Token, idx, changed)
	case OpBarrierAwait:
		res = c.barrierAwait(s, r, idx, changed)
	case OpBarrierEnter:
		res = c.barrierEnter(s, r, idx, changed)
	case OpBarrierLeave:
		res = c.barrierLeave(s, r, idx, changed)
	case OpBarrierCancel:
		res = c.barrierCancel(s, r.Name, r.Token, changed)
	case OpBarrierReset:
		res = c.barrierReset(s, r.Name, idx, changed)
	case OpLatchCreate:
		res = c.latchCreate(r, changed)
	case OpLatchCountDown:
		res = c.latchCountDown(r, changed)
	case OpLatchDelete:
		res = c.latchDelete(r, changed)
	default:
		return CoordResult{Code: CoordInvalid, Detail: "unknown op " + r.Op.String()}
	}
	res.Index = idx
	s.remember(r.RequestID, res)
	return res
}

// endSession releases everything s holds and deletes it.
func (c *coordState) endSession(s *session, idx uint64, changed *[]string) {
	for _, name := range sortedKeys(s.waiting) {
		if l := c.locks[name]; l != nil {
			l.waiters = slices.DeleteFunc(l.waiters, func(w lockWaiter) bool { return w.session == s.id })
			c.gcLock(name, l)
			*changed = append(*changed, lockKey(name))
		}
	}
	for _, name := range sortedKeys(s.locks) {
		if l := c.locks[name]; l != nil && l.holder == s.id {
			l.count = 0
			c.handOff(name, l, idx, changed)
		}
	}
	for _, name := range sortedKeys(s.campaigns) {
		c.leaveElection(s, name, idx, changed)
	}
	c.endSessionSync(s, idx, changed)
	delete(c.sessions, s.id)
	*changed = append(*changed, sessionKey(s.id))
}

func sortedKeys(m map[string]struct{}) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func (c *coordState) acquire(s *session, r *CoordRequest, idx uint64, changed *[]string) CoordResult {
	l := c.locks[r.Name]
	if l == nil {
		l = &lockState{}
		c.locks[r.Name] = l
	}
	limit := max(r.N, 1)
	switch {
	case l.holder == s.id:
		if l.count >= l.limit {
			c.gcLock(r.Name, l)
			return CoordResult{Code: CoordReentrancy, Session: l.holder, Token: l.token, Count: l.count,
				Detail: fmt.Sprintf("lock %q held %d times, limit %d", r.Name, l.count, l.limit)}
		}
		l.count++
		return CoordResult{Session: s.id, Token: l.token, Count: l.count}
	case l.holder == 0:
		c.grant(r.Name, l, s, idx, r.RequestID, limit, changed)
		return CoordResult{Session: s.id, Token: l.token, Count: 1}
	case r.K != 0:
		return CoordResult{Code: CoordLocked, Session: l.holder, Token: l.token,
			Detail: fmt.Sprintf("lock %q is held by session %d", r.Name, l.holder)}
	}
	if _, ok := s.waiting[r.Name]; ok {
		return CoordResult{Code: CoordInvalid, Detail: fmt.Sprintf("session %d is already waiting for lock %q", s.id, r.Name)}
	}
	if cycle := c.findCycle(s.id, []waitEdge{lockEdge(r.Name, l.holder)}); cycle != "" {
		return CoordResult{Code: CoordDeadlock, Session: l.holder, Detail: cycle}
	}
	l.waiters = append(l.waiters, lockWaiter{session: s.id, index: idx, requestID: r.RequestID, limit: limit})
	s.waiting[r.Name] = struct{}{}
	*changed = append(*changed, lockKey(r.Name))
	return CoordResult{Code: CoordQueued, Session: l.holder, Token: l.token}
}

func (c *coordState) grant(name string, l *lockState, s *session, idx, reqID uint64, limit int64, changed *[]string) {
	l.holder, l.token, l.count, l.limit, l.reqID = s.id, idx, 1, limit, reqID
	c.fences[name] = idx
	s.locks[name] = struct{}{}
	delete(s.waiting, name)
	*changed = append(*changed, lockKey(name))
}

// handOff frees l (count already 0) and grants it to the first waiter: the
// grant's token is idx, the index of the command that freed it.
func (c *coordState) handOff(name string, l *lockState, idx uint64, changed *[]string) {
	if prev := c.sessions[l.holder]; prev != nil {
		delete(prev.locks, name)
	}
	l.holder, l.count, l.reqID = 0, 0, 0
	*changed = append(*changed, lockKey(name))
	for len(l.waiters) > 0 {
		w := l.waiters[0]
		l.waiters = l.waiters[1:]
		if ws := c.sessions[w.session]; ws != nil {
			c.grant(name, l, ws, idx, w.requestID, w.limit, changed)
			// The waiter's remembered result becomes the grant, so that a
			// retried acquire reports it.
			ws.remember(w.requestID, CoordResult{Session: ws.id, Token: idx, Count: 1, Index: idx})
			return
		}
	}
	c.gcLock(name, l)
}

func (c *coordState) gcLock(name string, l *lockState) {
	if l.holder == 0 && len(l.waiters) == 0 {
		delete(c.locks, name)
	}
}

func (c *coordState) release(s *session, name string, token, idx uint64, changed *[]string) CoordResult {
	l := c.locks[name]
	if l == nil || l.holder != s.id {
		return CoordResult{Code: CoordNotOwner, Detail: fmt.Sprintf("session %d does not hold lock %q", s.id, name)}
	}
	if token != 0 && token != l.token {
		return CoordResult{Code: CoordNotOwner, Detail: fmt.Sprintf("token %d is not the current grant %d of lock %q", token, l.token, name)}
	}
	l.count--
	if l.count > 0 {
		return CoordResult{Session: s.id, Token: l.token, Count: l.count}
	}
	old := l.token
	c.handOff(name, l, idx, changed)
	return CoordResult{Session: s.id, Token: old}
}

// cancel withdraws s's waiting acquire of name (reqID: the acquire's
// request ID, forgotten so that a retry of it applies afresh). If that
// acquire was already granted, the grant is released.
func (c *coordState) cancel(s *session, name string, reqID, idx uint64, changed *[]string) CoordResult {
	if reqID != 0 {
		s.forget(reqID)
	}
	l := c.locks[name]
	if l == nil {
		return CoordResult{Code: CoordNotWaiting}
	}
	if _, ok := s.waiting[name]; ok {
		l.waiters = slices.DeleteFunc(l.waiters, func(w lockWaiter) bool { return w.session == s.id })
		delete(s.waiting, name)
		c.gcLock(name, l)
		*changed = append(*changed, lockKey(name))
		return CoordResult{}
	}
	if l.holder == s.id && reqID != 0 && l.reqID == reqID && l.count == 1 {
		l.count = 0
		c.handOff(name, l, idx, changed)
		return CoordResult{Token: l.token}
	}
	return CoordResult{Code: CoordNotWaiting}
}

// waitEdge is an edge of the wait-for graph: the session it starts from
// cannot proceed until session to acts (releases, or is granted first).
type waitEdge struct {
	to  uint64
	why string // "lock "x" held by session 7", ...
}

// waitsFor returns the definite wait-for edges of session x: for each lock
// it waits for, the holder; for each semaphore it waits for, see semEdges.
func (c *coordState) waitsFor(x *session) []waitEdge {
	var out []waitEdge
	for _, name := range sortedKeys(x.waiting) {
		if l := c.locks[name]; l != nil && l.holder != 0 && l.holder != x.id {
			out = append(out, lockEdge(name, l.holder))
		}
	}
	for _, name := range sortedKeys(x.semWaiting) {
		if m := c.semaphores[name]; m != nil {
			if i := m.waiterOf(x.id); i >= 0 {
				out = c.semEdges(out, name, m, x.id, m.waiters[i].k, i)
			}
		}
	}
	return out
}

func lockEdge(name string, holder uint64) waitEdge {
	return waitEdge{to: holder, why: fmt.Sprintf("lock %q held by session %d", name, holder)}
}

// findCycle reports the wait-for cycle that start would close by waiting
// along the edges first, or "". Only definite edges are followed (see
// waitsFor), so every cycle reported is a real deadlock.
func (c *coordState) findCycle(start uint64, first []waitEdge) string {
	seen := map[uint64]bool{}
	var path []waitEdge
	var dfs func(edges []waitEdge) bool
	dfs = func(edges []waitEdge) bool {
		for _, e := range edges {
			path = append(path, e)
			if e.to == start {
				return true
			}
			if !seen[e.to] {
				seen[e.to] = true
				if h := c.sessions[e.to]; h != nil && dfs(c.waitsFor(h)) {
					return true
				}
			}
			path = path[:len(path)-1]
		}
		return false
	}
	if !dfs(first) {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "session %d", start)
	for _, e := range path {
		fmt.Fprintf(&b, " waits for %s", e.why)
		if e.to != start {
			fmt.Fprintf(&b, ", which")
		}
	}
	return b.String()
}

// --- elections ----------------------------------------------------------------

func (c *coordState) campaign(s *session, r *CoordRequest, idx uint64, changed *[]string) CoordResult {
	e := c.elections[r.Name]
	if e == nil {
		e = &election{}
		c.elections[r.Name] = e
	}
	if e.leader == s.id {
		return CoordResult{Session: s.id, Token: e.term}
	}
	if _, ok := s.campaigns[r.Name]; ok {
		return CoordResult{Code: CoordQueued, Session: e.leader, Token: e.term}
	}
	s.campaigns[r.Name] = struct{}{}
	value := slices.Clone(r.Value)
	*changed = append(*changed, electionKey(r.Name))
	if e.leader == 0 {
		e.leader, e.term, e.value = s.id, idx, value
		return CoordResult{Session: s.id, Token: idx}
	}
	e.candidates = append(e.candidates, candidate{session: s.id, index: idx, value: value})
	return CoordResult{Code: CoordQueued, Session: e.leader, Token: e.term}
}

func (c *coordState) resign(s *session, name string, term, idx uint64, changed *[]string) CoordResult {
	e := c.elections[name]
	if _, ok := s.campaigns[name]; !ok || e == nil {
		return CoordResult{Code: CoordNotOwner, Detail: fmt.Sprintf("session %d is not campaigning in %q", s.id, name)}
	}
	if e.leader == s.id && term != 0 && term != e.term {
		return CoordResult{Code: CoordNotOwner, Detail: fmt.Sprintf("term %d is not the current term %d of %q", term, e.term, name)}
	}
	old := e.term
	c.leaveElection(s, name, idx, changed)
	return CoordResult{Session: s.id, Token: old}
}

func (c *coordState) leaveElection(s *session, name string, idx uint64, changed *[]string) {
	delete(s.campaigns, name)
	e := c.elections[name]
	if e == nil {
		return
	}
	*changed = append(*changed, electionKey(name))
	if e.leader != s.id {
		e.candidates = slices.DeleteFunc(e.candidates, func(cd candidate) bool { return cd.session == s.id })
		return
	}
	e.leader, e.value = 0, nil
	for len(e.candidates) > 0 {
		cd := e.candidates[0]
		e.candidates = e.candidates[1:]
		if c.sessions[cd.session] != nil {
			e.leader, e.term, e.value = cd.session, idx, cd.value
			return
		}
	}
	// The term stays: it is what Observe and fencing compare against, and
	// the next leader's term (a later raft index) is greater.
}

func (c *coordState) proclaim(s *session, r *CoordRequest, changed *[]string) CoordResult {
	e := c.elections[r.Name]
	if e == nil || e.leader != s.id || (r.Token != 0 && r.Token != e.term) {
		return CoordResult{Code: CoordNotOwner, Detail: fmt.Sprintf("session %d does not lead %q", s.id, r.Name)}
	}
	e.value = slices.Clone(r.Value)
	*changed = append(*changed, electionKey(r.Name))
	return CoordResult{Session: s.id, Token: e.term}
}

// checkFence reports why f does not pass, or "".
func (c *coordState) checkFence(f *Fence) string {
	newest, ok := c.fences[f.Lock]
	switch {
	case !ok:
		return fmt.Sprintf("lock %q was never granted", f.Lock)
	case f.Token < newest:
		return fmt.Sprintf("token %d of lock %q is older than the newest grant %d", f.Token, f.Lock, newest)
	case f.Token > newest:
		return fmt.Sprintf("token %d of lock %q was never granted (newest %d)", f.Token, f.Lock, newest)
	}
	return ""
}

// --- reads --------------------------------------------------------------------

// SessionInfo describes a live session.
type SessionInfo struct {
	ID      uint64
	Name    string
	TTL     int64    // ns
	Expires int64    // leader time, unix ns; renewed by keepalives and leader changes
	Locks   []string // held, sorted
	Waiting []string // locks waited for, sorted
}

// LockInfo describes a lock. Holder 0: free.
type LockInfo struct {
	Name    string
	Holder  uint64
	Token   uint64 // token of the current grant (0 if free)
	Count   int64
	Fence   uint64   // newest token ever granted (0: never)
	Waiters []uint64 // sessions, in grant order
}

// ElectionInfo describes a named election. Leader 0: nobody leads.
type ElectionInfo struct {
	Name       string
	Leader     uint64
	Term       uint64 // raft index at which the current (or last) leader was elected
	Value      []byte
	Candidates []uint64
}

func (s *session) info() SessionInfo {
	return SessionInfo{ID: s.id, Name: s.name, TTL: s.ttl, Expires: s.expires,
		Locks: sortedKeys(s.locks), Waiting: sortedKeys(s.waiting)}
}

// Sessions returns every live session, by ID.
func (f *FSM) Sessions() []SessionInfo {
	f.mu.RLock()
	defer f.mu.RUnlock()
	out := make([]SessionInfo, 0, len(f.st.coord.sessions))
	for _, s := range f.st.coord.sessions {
		out = append(out, s.info())
	}
	slices.SortFunc(out, func(a, b SessionInfo) int { return cmpU64(a.ID, b.ID) })
	return out
}

// Session returns session id, if it is alive.
func (f *FSM) Session(id uint64) (SessionInfo, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	s := f.st.coord.sessions[id]
	if s == nil {
		return SessionInfo{}, false
	}
	return s.info(), true
}

// ExpiredSessions returns the sessions whose deadline is <= now (leader
// time, unix ns), at most limit of them. The leader proposes their expiry.
func (f *FSM) ExpiredSessions(now int64, limit int) []uint64 {
	f.mu.RLock()
	defer f.mu.RUnlock()
	var out []uint64
	for _, s := range f.st.coord.sessions {
		if s.expires <= now {
			out = append(out, s.id)
			if len(out) >= limit {
				break
			}
		}
	}
	slices.Sort(out)
	return out
}

// NextSessionDeadline returns the earliest session deadline (unix ns), or
// 0 if there are no sessions.
func (f *FSM) NextSessionDeadline() int64 {
	f.mu.RLock()
	defer f.mu.RUnlock()
	var next int64
	for _, s := range f.st.coord.sessions {
		if next == 0 || s.expires < next {
			next = s.expires
		}
	}
	return next
}

// Lock describes lock name.
func (f *FSM) Lock(name string) LockInfo {
	f.mu.RLock()
	defer f.mu.RUnlock()
	info := LockInfo{Name: name, Fence: f.st.coord.fences[name]}
	if l := f.st.coord.locks[name]; l != nil {
		info.Holder, info.Count = l.holder, l.count
		if l.holder != 0 {
			info.Token = l.token
		}
		for _, w := range l.waiters {
			info.Waiters = append(info.Waiters, w.session)
		}
	}
	return info
}

// Election describes election name.
func (f *FSM) Election(name string) ElectionInfo {
	f.mu.RLock()
	defer f.mu.RUnlock()
	info := ElectionInfo{Name: name}
	if e := f.st.coord.elections[name]; e != nil {
		info.Leader, info.Term, info.Value = e.leader, e.term, e.value
		for _, cd := range e.candidates {
			info.Candidates = append(info.Candidates, cd.session)
		}
	}
	return info
}

// LockChanged returns a channel closed at the next apply that changes lock
// name (grant, release, queue change). Take it before reading the lock's
// state, then wait on it: no change is missed and nothing polls.
func (f *FSM) LockChanged(name string) <-chan struct{} { return f.objectNotify(lockKey(name)) }

// ElectionChanged is LockChanged for election name.
func (f *FSM) ElectionChanged(name string) <-chan struct{} {
	return f.objectNotify(electionKey(name))
}

// SessionChanged returns a channel closed when session id is created or ends.
func (f *FSM) SessionChanged(id uint64) <-chan struct{} { return f.objectNotify(sessionKey(id)) }

func (f *FSM) objectNotify(key string) <-chan struct{} {
	f.notifyMu.Lock()
	defer f.notifyMu.Unlock()
	if f.objCh == nil {
		f.objCh = make(map[string]chan struct{})
	}
	ch := f.objCh[key]
	if ch == nil {
		ch = make(chan struct{})
		f.objCh[key] = ch
	}
	return ch
}

// wakeObjects closes the channels of the changed objects (all of them if
// all is set).
func (f *FSM) wakeObjects(keys []string, all bool) {
	f.notifyMu.Lock()
	defer f.notifyMu.Unlock()
	if len(f.objCh) == 0 {
		return
	}
	if all {
		for k, ch := range f.objCh {
			close(ch)
			delete(f.objCh, k)
		}
		return
	}
	for _, k := range keys {
		if ch := f.objCh[k]; ch != nil {
			close(ch)
			delete(f.objCh, k)
		}
	}
}

func cmpU64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
