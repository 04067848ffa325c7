package api

// Coordination wire types: sessions, fenced locks and elections
// (docs/API.md, docs/COORDINATION.md). Cold routes: encoded with
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
