package api

// Coordination wire types: sessions, fenced locks, elections, semaphores,
// barriers and latches (docs/API.md, docs/COORDINATION.md). Cold routes: encoded with
// encoding/json; request bodies are decoded strictly by the server.

// Error codes of the coordination routes.
const (
	CodeSessionNotFound = "session_not_found" // 404: the session expired, was destroyed or never existed
	CodeNotOwner        = "not_owner"         // 409: release/resign/proclaim by a non-owner, or a stale token/term
	CodeLocked          = "locked"            // 409: a try-lock found the lock held
	CodeReentrancy      = "reentrancy_limit"  // 409: the session holds the lock as often as allowed
	CodeDeadlock        = "deadlock"          // 409: waiting would close a wait-for cycle; the message names it
	CodeFenced          = "fenced"            // 409: a fenced write carried a stale token; nothing was written
	CodeNotWaiting      = "not_waiting"       // 409: nothing to cancel
	CodeWaitTimeout     = "wait_timeout"      // 408: a blocking acquire or campaign ran out of time; it was withdrawn
	CodeMismatch        = "mismatch"          // 409: the semaphore, barrier or latch exists with another size or kind; nothing changed
	CodeBroken          = "barrier_broken"    // 409: a party's session ended (or the barrier was reset); the message names the session
	CodeNoPermits       = "no_permits"        // 409: a try-acquire found too few permits free
	CodeObjectNotFound  = "object_not_found"  // 404: no such latch
)

// StatusWaitTimeout is the HTTP status of CodeWaitTimeout.
const StatusWaitTimeout = 408

// Fence headers: a PUT or DELETE of /v1/kv/{key} or a POST /v1/txn that
// carries both applies only if FenceToken is the newest token granted for
// lock FenceLock (409 fenced otherwise).
const (
	HeaderFenceLock  = "X-Statenode-Fence-Lock"
	HeaderFenceToken = "X-Statenode-Fence-Token"
)

// Fence names a lock grant: a write fenced with it is refused once a newer
// grant of the lock exists.
type Fence struct {
	Lock  string `json:"lock"`
	Token uint64 `json:"token"`
}

// SessionRequest is the body of POST /v1/session.
type SessionRequest struct {
	TTLMillis int64  `json:"ttl_ms"`         // time to live without keepalives, ms
	Name      string `json:"name,omitempty"` // a label shown by session listings
}

// Session describes a live session (POST /v1/session, GET /v1/session).
type Session struct {
	ID            uint64   `json:"id"`
	Name          string   `json:"name,omitempty"`
	TTLMillis     int64    `json:"ttl_ms"`
	ExpiresMillis int64    `json:"expires_unix_ms,omitempty"` // deadline in the leader's clock, unix ms
	Locks         []string `json:"locks,omitempty"`
	Waiting       []string `json:"waiting,omitempty"`
}

// KeepAliveRequest is the body of POST /v1/session/keepalive: one request
// renews many sessions.
type KeepAliveRequest struct {
	IDs []uint64 `json:"ids"`
}

// KeepAliveResponse lists the sessions that no longer exist.
type KeepAliveResponse struct {
	Missing []uint64 `json:"missing"`
}

// SessionWaitResponse answers GET /v1/session/{id}/wait.
type SessionWaitResponse struct {
	Alive bool `json:"alive"` // false: the session has ended
}

// LockRequest is the body of POST /v1/lock/{name}.
type LockRequest struct {
	Session    uint64 `json:"session"`
	RequestID  uint64 `json:"request_id"`           // client-chosen, unique within the session: retries apply once
	Try        bool   `json:"try,omitempty"`        // fail at once (409 locked) instead of waiting
	Reentrancy int64  `json:"reentrancy,omitempty"` // how many times the session may hold the lock (<=1: once)
}

// LockResponse answers a granted acquire.
type LockResponse struct {
	Token uint64 `json:"token"` // fencing token: strictly increasing across grants of the lock
	Count int64  `json:"count"` // how many times the session now holds the lock
}

// UnlockRequest is the body of POST /v1/lock/{name}/release.
type UnlockRequest struct {
	Session   uint64 `json:"session"`
	RequestID uint64 `json:"request_id"`
	Token     uint64 `json:"token,omitempty"` // if set, must be the current grant
}

// LockInfo answers GET /v1/lock/{name}. Holder 0: free.
type LockInfo struct {
	Name    string   `json:"name"`
	Holder  uint64   `json:"holder"`
	Token   uint64   `json:"token"`
	Count   int64    `json:"count"`
	Fence   uint64   `json:"fence"` // newest token ever granted
	Waiters []uint64 `json:"waiters"`
}

// CampaignRequest is the body of POST /v1/election/{name}/campaign.
type CampaignRequest struct {
	Session   uint64 `json:"session"`
	RequestID uint64 `json:"request_id"`
	Value     string `json:"value"`
}

// ElectionRequest is the body of POST /v1/election/{name}/resign and
// /proclaim.
type ElectionRequest struct {
	Session   uint64 `json:"session"`
	RequestID uint64 `json:"request_id"`
	Term      uint64 `json:"term,omitempty"`  // if set, must be the current term
	Value     string `json:"value,omitempty"` // proclaim: the new value
}

// Election describes an election (GET /v1/election/{name}, campaign
// answers and observe lines). Leader 0: nobody leads.
type Election struct {
	Name   string `json:"name"`
	Leader uint64 `json:"leader"`
	Term   uint64 `json:"term"` // fencing token of the leadership; strictly increasing
	Value  string `json:"value"`
}

// SemaphoreRequest is the body of POST /v1/semaphore/{name} (acquire).
type SemaphoreRequest struct {
	Session   uint64 `json:"session"`
	RequestID uint64 `json:"request_id"`    // client-chosen, unique within the session: retries apply once
	Permits   int64  `json:"permits"`       // N, the semaphore's size: every caller must give the same
	Count     int64  `json:"count"`         // permits wanted, 1 to Permits
	Try       bool   `json:"try,omitempty"` // fail at once (409 no_permits) instead of waiting
}

// SemaphoreResponse answers a granted acquire.
type SemaphoreResponse struct {
	Token uint64 `json:"token"` // log position of the grant
	Count int64  `json:"count"` // permits granted by this acquire
}

// SemaphoreReleaseRequest is the body of DELETE /v1/semaphore/{name}.
type SemaphoreReleaseRequest struct {
	Session   uint64 `json:"session"`
	RequestID uint64 `json:"request_id"`
	Count     int64  `json:"count,omitempty"` // permits to return; 0 = every permit the session holds
}

// SemaphoreHold is a session's permits: held, or wanted by a waiter.
type SemaphoreHold struct {
	Session uint64 `json:"session"`
	Permits int64  `json:"permits"`
}

// SemaphoreInfo answers GET /v1/semaphore/{name}. Permits 0: the semaphore
// is idle (nobody holds or waits), and the next acquire sets its size.
type SemaphoreInfo struct {
	Name    string          `json:"name"`
	Permits int64           `json:"permits"`
	Used    int64           `json:"used"`
	Holders []SemaphoreHold `json:"holders"` // by session ID
	Waiters []SemaphoreHold `json:"waiters"` // in grant order
}

// Barrier actions (BarrierRequest.Action).
const (
	BarrierAwait = "await" // cyclic barrier: wait for Parties parties (the default)
	BarrierEnter = "enter" // double barrier: wait until Parties parties entered
	BarrierLeave = "leave" // double barrier: wait until every party left
	BarrierReset = "reset" // repair a broken barrier (breaks a waiting generation)
)

// BarrierRequest is the body of POST /v1/barrier/{name}.
type BarrierRequest struct {
	Session   uint64 `json:"session"`
	RequestID uint64 `json:"request_id"`
	Action    string `json:"action,omitempty"`  // BarrierAwait (default), BarrierEnter, BarrierLeave, BarrierReset
	Parties   int64  `json:"parties,omitempty"` // N, for await and enter: every party must give the same
}

// BarrierResponse answers a completed await, enter or leave.
type BarrierResponse struct {
	Generation uint64 `json:"generation"` // log position of the trip: strictly increasing across generations
	Arrival    int64  `json:"arrival"`    // await, enter: 0 for the first party to arrive, N-1 for the last
}

// BarrierInfo answers GET /v1/barrier/{name}. Parties 0: the barrier is
// idle.
type BarrierInfo struct {
	Name    string   `json:"name"`
	Double  bool     `json:"double,omitempty"`
	Parties int64    `json:"parties"`
	Arrived []uint64 `json:"arrived"`           // waiting (cyclic) or entered and not left (double), in arrival order
	Left    []uint64 `json:"left,omitempty"`    // double barrier: left, waiting for the rest
	Leaving bool     `json:"leaving,omitempty"` // double barrier: every party entered
	Broken  uint64   `json:"broken,omitempty"`  // the session that broke it; 0: not broken
	Detail  string   `json:"detail,omitempty"`
}

// LatchRequest is the body of PUT /v1/latch/{name} (create; Count is the
// initial count), POST (count down) and DELETE (delete).
type LatchRequest struct {
	Session   uint64 `json:"session"`
	RequestID uint64 `json:"request_id"`
	Count     int64  `json:"count,omitempty"`
}

// LatchInfo describes a latch (GET /v1/latch/{name}, and the answers of
// create, count down and wait).
type LatchInfo struct {
	Name    string `json:"name"`
	Initial int64  `json:"initial"`
	Count   int64  `json:"count"` // 0: open
}
