package fsm

import (
	"bytes"
	"fmt"
)

// CommandType is the kind of a Command, byte 2 of its envelope. Values are
// part of the log format: never renumber them.
type CommandType uint8

const (
	CmdTxn          CommandType = 1 // Txn: a Request
	CmdPutMember    CommandType = 2 // Member: add/update a member's addresses
	CmdRemoveMember CommandType = 3 // Member.ID: remove member metadata
	CmdNoop         CommandType = 4 // nothing; advances applied index only (used as a barrier)
	CmdCoord        CommandType = 5 // Coord: a coordination request (sessions, locks, elections)
	CmdFencedTxn    CommandType = 6 // Fence + Txn: a Request that applies only if Fence is current
)

func (t CommandType) String() string {
	switch t {
	case CmdTxn:
		return "txn"
	case CmdPutMember:
		return "put-member"
	case CmdRemoveMember:
		return "remove-member"
	case CmdNoop:
		return "noop"
	case CmdCoord:
		return "coord"
	case CmdFencedTxn:
		return "fenced-txn"
	}
	return fmt.Sprintf("CommandType(%d)", uint8(t))
}

// Command is one entry of the replicated log, as proposed by the leader.
type Command struct {
	Type CommandType
	// Time is the leader's wall clock when it proposed the command, in unix
	// nanoseconds; 0 if unset. The FSM records the greatest one it has
	// applied (LastTime) and never reads a clock itself.
	Time   int64
	Txn    *Request      // CmdTxn, CmdFencedTxn
	Member *Member       // CmdPutMember (all fields), CmdRemoveMember (ID only)
	Coord  *CoordRequest // CmdCoord
	Fence  *Fence        // CmdFencedTxn
}

// ApplyResult is what FSM.Apply returns for a command log entry (and, in a
// slice, for each command of a batch entry); raft hands it back through
// ApplyFuture.Response. Err is an application error (a command that failed
// to decode or validate), never a raft error; when it is set nothing changed.
type ApplyResult struct {
	// Response is the txn result. For member and noop commands it carries
	// only Succeeded=true and the current Revision; for coordination
	// commands also Coord. A fenced txn whose fence is stale has
	// Succeeded=false and Coord.Code=CoordFenced, and wrote nothing.
	Response *Response
	Err      error
}

// withDefaults fills zero fields of l with DefaultLimits values.
func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	if l.MaxKeySize <= 0 {
		l.MaxKeySize = d.MaxKeySize
	}
	if l.MaxValueSize <= 0 {
		l.MaxValueSize = d.MaxValueSize
	}
	if l.MaxTxnOps <= 0 {
		l.MaxTxnOps = d.MaxTxnOps
	}
	if l.MaxRequestSize <= 0 {
		l.MaxRequestSize = d.MaxRequestSize
	}
	return l
}

// Validate checks c before it is proposed: a known type with the fields that
// type needs, and a Txn or Member within l (zero fields of l mean
// DefaultLimits). Errors wrap ErrInvalid, ErrTooLarge or ErrUnknownCommand.
func (c *Command) Validate(l Limits) error {
	l = l.withDefaults()
	if c.Time < 0 {
		return fmt.Errorf("%w: negative time %d", ErrInvalid, c.Time)
	}
	switch c.Type {
	case CmdCoord:
		if c.Txn != nil || c.Member != nil || c.Fence != nil || c.Coord == nil {
			return fmt.Errorf("%w: coord command needs exactly a coordination request", ErrInvalid)
		}
		if err := c.Coord.Validate(l); err != nil {
			return err
		}
	case CmdFencedTxn:
		if c.Member != nil || c.Coord != nil || c.Txn == nil || c.Fence == nil {
			return fmt.Errorf("%w: fenced txn command needs a request and a fence", ErrInvalid)
		}
		if c.Fence.Lock == "" || c.Fence.Token == 0 {
			return fmt.Errorf("%w: fence needs a lock name and a token", ErrInvalid)
		}
		if len(c.Fence.Lock) > l.MaxKeySize {
			return fmt.Errorf("%w: fence lock name is %d bytes, limit %d", ErrTooLarge, len(c.Fence.Lock), l.MaxKeySize)
		}
		if err := validateRequest(c.Txn, l, true); err != nil {
			return err
		}
	case CmdTxn:
		if c.Member != nil || c.Coord != nil || c.Fence != nil {
			return fmt.Errorf("%w: member, coordination request or fence set on a txn command", ErrInvalid)
		}
		if c.Txn == nil {
			return fmt.Errorf("%w: txn command without a request", ErrInvalid)
		}
		if err := validateRequest(c.Txn, l, true); err != nil {
			return err
		}
	case CmdPutMember, CmdRemoveMember:
		if c.Txn != nil || c.Coord != nil || c.Fence != nil {
			return fmt.Errorf("%w: txn set on a %s command", ErrInvalid, c.Type)
		}
		if c.Member == nil || c.Member.ID == "" {
			return fmt.Errorf("%w: %s command without a member ID", ErrInvalid, c.Type)
		}
		m := c.Member
		if len(m.ID) > l.MaxKeySize || len(m.RaftAddr) > l.MaxKeySize || len(m.HTTPAddr) > l.MaxKeySize {
			return fmt.Errorf("%w: member field longer than %d bytes", ErrTooLarge, l.MaxKeySize)
		}
	case CmdNoop:
		if c.Txn != nil || c.Member != nil || c.Coord != nil || c.Fence != nil {
			return fmt.Errorf("%w: noop command carries a payload", ErrInvalid)
		}
	default:
		return fmt.Errorf("%w: %w: %d", ErrInvalid, ErrUnknownCommand, c.Type)
	}
	if n := commandSize(c); n > l.MaxRequestSize {
		return fmt.Errorf("%w: encoded command is %d bytes, limit %d", ErrTooLarge, n, l.MaxRequestSize)
	}
	return nil
}

// Validate checks r before it is proposed, against l (zero fields of l mean
// DefaultLimits). Errors wrap ErrInvalid (malformed: no operations, empty
// key, unknown op type, compare target or result, negative limit, value on a
// non-put, prefix on a put, the same key written twice in one branch) or
// ErrTooLarge (too many operations, key, value or encoded request too large),
// and name the offending operation, e.g. "success[2]".
func (r *Request) Validate(l Limits) error {
	l = l.withDefaults()
	if err := validateRequest(r, l, true); err != nil {
		return err
	}
	if n := commandSize(&Command{Type: CmdTxn, Txn: r}); n > l.MaxRequestSize {
		return fmt.Errorf("%w: encoded request is %d bytes, limit %d", ErrTooLarge, n, l.MaxRequestSize)
	}
	return nil
}

// validateRequest checks the structure of r and, if sizes is set, the
// limits in l. The apply path calls it with sizes unset: limits are the
// proposer's policy and may differ between builds, but structural rules are
// what keep apply simple and must hold on every replica.
func validateRequest(r *Request, l Limits, sizes bool) error {
	total := len(r.Compare) + len(r.Success) + len(r.Failure)
	if total == 0 {
		return fmt.Errorf("%w: txn has no compares and no operations", ErrInvalid)
	}
	if sizes && total > l.MaxTxnOps {
		return fmt.Errorf("%w: too many operations in txn request: %d, limit %d", ErrTooLarge, total, l.MaxTxnOps)
	}
	for i := range r.Compare {
		c := &r.Compare[i]
		switch {
		case len(c.Key) == 0:
			return fmt.Errorf("%w: compare[%d]: key is empty", ErrInvalid, i)
		case c.Target < CompareValue || c.Target > CompareModRevision:
			return fmt.Errorf("%w: compare[%d]: unknown target %d", ErrInvalid, i, c.Target)
		case c.Result < CompareEqual || c.Result > CompareLess:
			return fmt.Errorf("%w: compare[%d]: unknown result %d", ErrInvalid, i, c.Result)
		case sizes && len(c.Key) > l.MaxKeySize:
			return fmt.Errorf("%w: compare[%d]: key is %d bytes, limit %d", ErrTooLarge, i, len(c.Key), l.MaxKeySize)
		case sizes && len(c.Value) > l.MaxValueSize:
			return fmt.Errorf("%w: compare[%d]: value is %d bytes, limit %d", ErrTooLarge, i, len(c.Value), l.MaxValueSize)
		}
	}
	if err := validateOps("success", r.Success, l, sizes); err != nil {
		return err
	}
	return validateOps("failure", r.Failure, l, sizes)
}

func validateOps(branch string, ops []Op, l Limits, sizes bool) error {
	for i := range ops {
		op := &ops[i]
		switch {
		case op.Type < OpRange || op.Type > OpDelete:
			return fmt.Errorf("%w: %s[%d]: unknown op type %d", ErrInvalid, branch, i, op.Type)
		case len(op.Key) == 0 && !op.Prefix:
			return fmt.Errorf("%w: %s[%d]: key is empty", ErrInvalid, branch, i)
		case op.Limit < 0:
			return fmt.Errorf("%w: %s[%d]: negative limit %d", ErrInvalid, branch, i, op.Limit)
		case op.Type != OpPut && len(op.Value) > 0:
			return fmt.Errorf("%w: %s[%d]: value set on a non-put op", ErrInvalid, branch, i)
		case op.Type == OpPut && op.Prefix:
			return fmt.Errorf("%w: %s[%d]: prefix set on a put op", ErrInvalid, branch, i)
		case op.Type != OpPut && op.Session != 0:
			return fmt.Errorf("%w: %s[%d]: session set on a non-put op", ErrInvalid, branch, i)
		case sizes && len(op.Key) > l.MaxKeySize:
			return fmt.Errorf("%w: %s[%d]: key is %d bytes, limit %d", ErrTooLarge, branch, i, len(op.Key), l.MaxKeySize)
		case sizes && len(op.Value) > l.MaxValueSize:
			return fmt.Errorf("%w: %s[%d]: value is %d bytes, limit %d", ErrTooLarge, branch, i, len(op.Value), l.MaxValueSize)
		}
		if op.Type == OpRange {
			continue
		}
		// The same key written twice in one branch is ambiguous (which
		// write wins, what does the event stream show?); etcd rejects it
		// too. Quadratic, but branches hold at most MaxTxnOps ops.
		for j := 0; j < i; j++ {
			if prev := &ops[j]; prev.Type != OpRange && writesOverlap(prev, op) {
				return fmt.Errorf("%w: %s[%d]: duplicate key given in txn request (also written by %s[%d])", ErrInvalid, branch, i, branch, j)
			}
		}
	}
	return nil
}

// writesOverlap reports whether two put/delete ops touch a common key. Two
// prefix deletes may overlap (deleting a key twice is harmless, as in etcd);
// any other overlap is a duplicate.
func writesOverlap(a, b *Op) bool {
	switch {
	case a.Prefix && b.Prefix:
		return false
	case a.Prefix:
		return bytes.HasPrefix(b.Key, a.Key)
	case b.Prefix:
		return bytes.HasPrefix(a.Key, b.Key)
	}
	return bytes.Equal(a.Key, b.Key)
}
