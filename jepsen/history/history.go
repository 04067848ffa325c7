package history

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
)

// Errors returned by this package.
var (
	// ErrMalformed: a history file line is not a valid operation.
	ErrMalformed = errors.New("history: malformed operation")
)

// Operation types, in Jepsen's terms.
const (
	// TypeOK: the operation completed and its result is known.
	TypeOK = "ok"
	// TypeFail: the operation certainly did not take effect.
	TypeFail = "fail"
	// TypeInfo: indeterminate; it may or may not have taken effect. A
	// checker must never drop an indeterminate write nor assume it failed.
	TypeInfo = "info"
)

// Functions (Op.F).
const (
	FGet  = "get"  // kv register read: Key → Found, Out, Rev (mod revision)
	FPut  = "put"  // kv register write: Key, Value → Rev (store revision)
	FCAS  = "cas"  // Key, Value, ExpectRev → Rev; on fail Found/Out/Rev are the current key
	FAdd  = "add"  // set: add Value
	FRead = "read" // set: final read → Values

	// Coordination (lock, counter and election workloads). Key names the
	// lock or election, Session the client's session.
	FAcquire   = "acquire"    // lock Key for Session → Token
	FRelease   = "release"    // lock Key, Session, Token
	FFencedPut = "fenced-put" // Key, Value with the fence Lock, Token → Rev
	FPause     = "pause"      // the client stopped keeping Session alive and slept past its TTL
	FStream    = "stream"     // final: every write of Key in revision order → Values, Revs
	FCampaign  = "campaign"   // election Key, Session, Value → Token (the term)
	FProclaim  = "proclaim"   // election Key, Session, Token (term), Value
	FResign    = "resign"     // election Key, Session, Token (term)
	FObserve   = "observe"    // one state an observer saw: Key, Session (leader, 0: none), Token (term), Value

	// CRDTs over gossip. Node is the member that served the operation.
	FCounterInc  = "counter-inc" // counter Key += N
	FSetAddElem  = "orset-add"   // add Value to the OR-set Key
	FSetRemove   = "orset-remove"
	FCounterRead = "counter-read" // final: Node's value of counter Key → N
	FSetRead     = "orset-read"   // final: Node's elements of OR-set Key → Values

	// Semaphores, latches and barriers. Key names the object, Session the
	// client's session, Size its size (permits, initial count, parties).
	FSemAcquire  = "sem-acquire"  // Key, Session, Size, N permits wanted, Value "try" for a try → Token, Count granted
	FSemRelease  = "sem-release"  // Key, Session, N permits returned
	FSemWitness  = "sem-witness"  // a holder's linearizable read of the witness keys → Values ("session:permits"), N their sum
	FLatchCreate = "latch-create" // Key, Session, Size → Count
	FCountDown   = "count-down"   // Key, Session, ReqID → Count after it
	FLatchAwait  = "latch-await"  // Key → Count (0 when it returned ok)
	FLatchRead   = "latch-read"   // final: Key → Count (LatchAbsent: no such latch)
	FBarrier     = "barrier"      // cyclic barrier await: Key, Session, Size → Token (generation), Arrival; Culprit when broken
	FSessionEnd  = "session-end"  // the client ended Session on purpose: Value "destroy" or "orphan"
	FSessions    = "sessions"     // final: the IDs of the sessions alive at the end of the workload → Values
)

// Op is one completed operation of one client, one line of a history file.
// Times are nanoseconds on the run's monotonic time base (Clock).
type Op struct {
	Client    int      `json:"client"`
	Node      string   `json:"node,omitempty"` // the member the client was bound to
	F         string   `json:"f"`
	Key       string   `json:"key,omitempty"`
	Value     string   `json:"value,omitempty"`      // written value
	ExpectRev int64    `json:"expect_rev,omitempty"` // cas: expected mod revision (0 = absent)
	Type      string   `json:"type"`
	Found     bool     `json:"found,omitempty"`
	Out       string   `json:"out,omitempty"` // value read
	Rev       int64    `json:"rev,omitempty"` // mod revision read or revision written
	Values    []string `json:"values,omitempty"`
	Revs      []int64  `json:"revs,omitempty"`    // stream: the revision of each of Values
	Session   uint64   `json:"session,omitempty"` // coordination: the session (observe: the leader's)
	Lock      string   `json:"lock,omitempty"`    // fenced-put: the lock of the fence
	Token     uint64   `json:"token,omitempty"`   // fencing token, or election term
	N         int64    `json:"n,omitempty"`       // counter delta or value read; permits wanted or read
	Size      int64    `json:"size,omitempty"`    // semaphore permits, latch initial count, barrier parties
	Count     int64    `json:"count,omitempty"`   // permits granted; a latch's count answered
	ReqID     uint64   `json:"req_id,omitempty"`  // the request ID, where the workload chose it (latch count-down)
	Arrival   int64    `json:"arrival,omitempty"` // barrier: arrival index in the generation (0 first)
	Culprit   uint64   `json:"culprit,omitempty"` // barrier: the session a broken answer names
	Call      int64    `json:"call"`
	Return    int64    `json:"return"`
	Err       string   `json:"error,omitempty"`
}

func (o Op) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "c%d %s %s", o.Client, o.Type, o.F)
	if o.Key != "" {
		fmt.Fprintf(&b, " %s", o.Key)
	}
	if o.Value != "" {
		fmt.Fprintf(&b, " %s", o.Value)
	}
	if o.F == FCAS {
		fmt.Fprintf(&b, " if-rev=%d", o.ExpectRev)
	}
	if o.F == FGet || (o.F == FCAS && o.Type == TypeFail) {
		if o.Found {
			fmt.Fprintf(&b, " → %s@%d", o.Out, o.Rev)
		} else if o.Type == TypeOK || o.F == FCAS {
			b.WriteString(" → absent")
		}
	} else if o.Token != 0 {
		fmt.Fprintf(&b, " s%d t%d", o.Session, o.Token)
	} else if o.Rev != 0 {
		fmt.Fprintf(&b, " → rev %d", o.Rev)
	}
	if o.Err != "" {
		fmt.Fprintf(&b, " (%s)", o.Err)
	}
	fmt.Fprintf(&b, " [%s, %s]", time.Duration(o.Call), time.Duration(o.Return))
	return b.String()
}

// Clock is the run's one monotonic time base, shared by every client and
// the nemesis so that their timestamps compare.
type Clock struct{ start time.Time }

// NewClock starts a time base at zero now.
func NewClock() *Clock { return &Clock{start: time.Now()} }

// Now is the time since the clock started, in nanoseconds (monotonic).
func (c *Clock) Now() int64 { return int64(time.Since(c.start)) }

// Start is the wall-clock time the clock started.
func (c *Clock) Start() time.Time { return c.start }

// Recorder appends one client's operations to a JSONL file and keeps them
// in memory. Safe for concurrent use.
type Recorder struct {
	mu  sync.Mutex
	f   *os.File
	w   *bufio.Writer
	ops []Op
	err error
}

// NewRecorder creates (truncates) path.
func NewRecorder(path string) (*Recorder, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("history: %w", err)
	}
	return &Recorder{f: f, w: bufio.NewWriter(f)}, nil
}

// Add records a completed operation.
func (r *Recorder) Add(op Op) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ops = append(r.ops, op)
	if r.err != nil {
		return
	}
	b, err := json.Marshal(op)
	if err == nil {
		b = append(b, '\n')
		_, err = r.w.Write(b)
	}
	r.err = err
}

// Ops returns a copy of the recorded operations.
func (r *Recorder) Ops() []Op {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Op(nil), r.ops...)
}

// Close flushes and closes the file.
func (r *Recorder) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.f == nil {
		return r.err
	}
	err := errors.Join(r.err, r.w.Flush(), r.f.Close())
	r.f = nil
	if err != nil {
		return fmt.Errorf("history: %w", err)
	}
	return nil
}

// Read decodes a JSONL history.
func Read(rd io.Reader) ([]Op, error) {
	var ops []Op
	sc := bufio.NewScanner(rd)
	sc.Buffer(make([]byte, 0, 64<<10), 64<<20)
	line := 0
	for sc.Scan() {
		line++
		t := strings.TrimSpace(sc.Text())
		if t == "" {
			continue
		}
		var op Op
		if err := json.Unmarshal([]byte(t), &op); err != nil {
			return nil, fmt.Errorf("%w: line %d: %w", ErrMalformed, line, err)
		}
		if op.F == "" || (op.Type != TypeOK && op.Type != TypeFail && op.Type != TypeInfo) {
			return nil, fmt.Errorf("%w: line %d: missing f or bad type %q", ErrMalformed, line, op.Type)
		}
		ops = append(ops, op)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("history: %w", err)
	}
	return ops, nil
}

// ReadDir reads every "client-*.jsonl" file of dir, sorted by call time.
func ReadDir(dir string) ([]Op, error) {
	files, err := filepath.Glob(filepath.Join(dir, "client-*.jsonl"))
	if err != nil {
		return nil, fmt.Errorf("history: %w", err)
	}
	var all []Op
	for _, p := range files {
		f, err := os.Open(p)
		if err != nil {
			return nil, fmt.Errorf("history: %w", err)
		}
		ops, err := Read(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		all = append(all, ops...)
	}
	Sort(all)
	return all, nil
}

// Sort orders ops by call time (then client).
func Sort(ops []Op) {
	sort.SliceStable(ops, func(i, j int) bool {
		if ops[i].Call != ops[j].Call {
			return ops[i].Call < ops[j].Call
		}
		return ops[i].Client < ops[j].Client
	})
}

// Event is one nemesis or harness event, one line of nemesis.jsonl: a fault
// window is a "start" and an "end" event with the same ID.
type Event struct {
	ID     int    `json:"id"`
	Phase  string `json:"phase"` // "start", "end" or "info"
	Fault  string `json:"fault"` // e.g. "partition-leader"
	Detail string `json:"detail,omitempty"`
	Time   int64  `json:"time"` // on the run's Clock, nanoseconds
}

// Window is a fault's time span.
type Window struct {
	ID         int
	Fault      string
	Detail     string
	Start, End int64
}

// Windows pairs start and end events; a fault never ended gets End = end.
func Windows(evs []Event, end int64) []Window {
	open := map[int]*Window{}
	var out []*Window
	for _, e := range evs {
		switch e.Phase {
		case "start":
			w := &Window{ID: e.ID, Fault: e.Fault, Detail: e.Detail, Start: e.Time, End: end}
			open[e.ID] = w
			out = append(out, w)
		case "end":
			if w, ok := open[e.ID]; ok {
				w.End = e.Time
				delete(open, e.ID)
			}
		}
	}
	res := make([]Window, len(out))
	for i, w := range out {
		res[i] = *w
	}
	return res
}

// ReadEvents decodes a nemesis.jsonl file.
func ReadEvents(path string) ([]Event, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("history: %w", err)
	}
	defer f.Close()
	var evs []Event
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		var e Event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrMalformed, path, err)
		}
		evs = append(evs, e)
	}
	return evs, sc.Err()
}

// LatchAbsent is the Count of a final latch read that found no such latch.
const LatchAbsent = -1
