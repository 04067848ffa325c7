package node

import (
	"errors"
	"fmt"
	"time"

	"github.com/statenode/statenode/fsm"
)

// Errors returned by the node. Raft's own errors are translated into these at
// this boundary; compare with errors.Is.
var (
	// ErrNotLeader: the operation must run on the leader and this node is not
	// it. Matched by *NotLeaderError, which names the leader when known.
	ErrNotLeader = errors.New("node: not the leader")
	// ErrNoLeader: the cluster has no leader at the moment (election under
	// way, or this node is cut off from a quorum). Retry later.
	ErrNoLeader = errors.New("node: no leader")
	// ErrKeyNotFound: Get found no such key.
	ErrKeyNotFound = errors.New("node: key not found")
	// ErrStopped: the node has been shut down (or not started).
	ErrStopped = errors.New("node: stopped")
	// ErrTimeout: the operation did not complete in time; for a write the
	// outcome is unknown (it may still commit).
	ErrTimeout = errors.New("node: timed out")
	// ErrUnknownMember: the member ID is not part of the cluster.
	ErrUnknownMember = errors.New("node: unknown member")
)

// NotLeaderError says who the leader is, so that a caller can redirect.
type NotLeaderError struct {
	LeaderID   string // empty if unknown
	LeaderHTTP string // the leader's client API address, empty if unknown
}

func (e *NotLeaderError) Error() string {
	if e.LeaderID == "" {
		return ErrNotLeader.Error()
	}
	return fmt.Sprintf("%s (leader is %s at %s)", ErrNotLeader, e.LeaderID, e.LeaderHTTP)
}

// Is makes errors.Is(err, ErrNotLeader) hold.
func (e *NotLeaderError) Is(target error) bool { return target == ErrNotLeader }

// Consistency chooses how a read is served.
type Consistency int

const (
	// Linearizable reads reflect every write that completed before the read
	// began: read-index confirmed with a quorum. The default.
	Linearizable Consistency = iota
	// Stale reads are served from this node's local state without contacting
	// the leader; they may lag behind.
	Stale
)

// LeaderInfo names the current leader.
type LeaderInfo struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raft_addr"`
	HTTPAddr string `json:"http_addr"`
}

// MemberInfo describes one member of the Raft configuration.
type MemberInfo struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raft_addr"`
	HTTPAddr string `json:"http_addr"`
	Voter    bool   `json:"voter"`
	Leader   bool   `json:"leader"`
}

// Status is a point-in-time view of this node.
type Status struct {
	ID              string        `json:"id"`
	State           string        `json:"state"` // Leader, Follower, Candidate, Shutdown
	Term            uint64        `json:"term"`
	Leader          LeaderInfo    `json:"leader"`
	CommitIndex     uint64        `json:"commit_index"`
	AppliedIndex    uint64        `json:"applied_index"`
	LastIndex       uint64        `json:"last_index"`
	Revision        int64         `json:"revision"`
	CompactRevision int64         `json:"compact_revision"`
	LastContact     time.Duration `json:"last_contact_ns"`
	Members         int           `json:"members"`
	Version         string        `json:"version"`
	LogEngine       string        `json:"log_engine"` // raftlog.EngineWAL or raftlog.EngineBolt
}

var _ = fsm.ErrInvalid
