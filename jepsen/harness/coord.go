package harness

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/statenode/statenode/api"
	"github.com/statenode/statenode/client"
	"github.com/statenode/statenode/coordination"
	"github.com/statenode/statenode/jepsen/checker"
	"github.com/statenode/statenode/jepsen/history"
)

// Settings of the coordination workloads (lock, counter, election).
const (
	// CoordTTL is the TTL of every workload session: short, so that
	// partitions, pauses and clock jumps expire sessions within a fault
	// window and locks change hands under the clients' feet.
	CoordTTL = 3 * time.Second
	// coordWait bounds a blocking acquire or campaign; the server gets a
	// budget a little below it and answers wait_timeout (certainly not
	// granted) in time.
	coordWait     = 4 * time.Second
	lockNames     = 3 // lock workload: lock/0..2, each with a register fenced/lock/i
	counterNames  = 2 // counter workload: counter-lock/i protects counter/i
	electionNames = 2 // election workload: election/0..1
	// counterPauseOneIn: one critical section in this many pauses (stops
	// keeping its session alive and sleeps past the TTL) before its write.
	counterPauseOneIn = 8
)

// classifyCoord classifies the outcome of a coordination call (acquire,
// release, campaign, proclaim, resign). These calls carry request IDs and
// the client retries them after a broken connection, so a final
// "unavailable" may follow an attempt that applied: only the server's
// definite answers are failures; everything else is indeterminate.
func classifyCoord(err error) (typ, msg string) {
	switch {
	case err == nil:
		return history.TypeOK, ""
	case strings.Contains(err.Error(), withdrawFailed):
		// A wait_timeout whose withdrawal was not applied: the waiter may
		// still be queued, or granted.
		return history.TypeInfo, err.Error()
	case errors.Is(err, client.ErrNotOwner), errors.Is(err, client.ErrSessionNotFound),
		errors.Is(err, client.ErrWaitTimeout), errors.Is(err, client.ErrLocked),
		errors.Is(err, client.ErrDeadlock), errors.Is(err, client.ErrReentrancyLimit),
		errors.Is(err, client.ErrFenced), errors.Is(err, client.ErrMismatch), errors.Is(err, client.ErrBroken),
		errors.Is(err, client.ErrNoPermits), errors.Is(err, client.ErrObjectNotFound):
		return history.TypeFail, err.Error()
	default:
		return history.TypeInfo, err.Error()
	}
}

// withdrawFailed is how the server's wait_timeout says that withdrawing
// the wait failed (node.withdraw).
const withdrawFailed = "withdrawing the wait failed"

// classifyFenced classifies a fenced write (not retried once sent): a
// refused fence is a failure, the rest as for plain writes.
func classifyFenced(err error) (typ, msg string) {
	if errors.Is(err, client.ErrFenced) {
		return history.TypeFail, err.Error()
	}
	return classify(err)
}

// coordClient is one workload client with its current session. It is
// used only by its own goroutine.
type coordClient struct {
	e   *Env
	c   *boundClient
	id  int
	rec *history.Recorder
	s   *coordination.Session
	wg  *sync.WaitGroup // sessions being closed in the background

	req     uint64          // the last request ID this client chose itself
	latches map[string]bool // latch workload: latches this client created
	epoch   int             // barrier workload: the barrier in use (a broken one is never reset)
}

// nextReq returns a request ID for a call the workload makes on the
// client directly. They lie far above the IDs the session's own
// primitives draw (from 1), so that the two never meet.
func (cc *coordClient) nextReq() uint64 {
	if cc.req == 0 {
		cc.req = 1 << 40
	}
	cc.req++
	return cc.req
}

// session returns the client's live session, creating one if needed (nil
// if that failed).
func (cc *coordClient) session() *coordination.Session {
	if cc.s != nil && cc.s.Err() == nil {
		return cc.s
	}
	cc.drop()
	ctx, cancel := context.WithTimeout(context.Background(), cc.e.OpTimeout)
	defer cancel()
	s, err := coordination.NewSession(cc.c.Client, coordination.WithTTL(CoordTTL),
		coordination.WithName(fmt.Sprintf("jepsen-c%d", cc.id)), coordination.WithContext(ctx))
	if err != nil {
		return nil
	}
	cc.s = s
	return s
}

// drop abandons the current session: it is destroyed in the background
// (releasing whatever an indeterminate acquire may have granted it), or
// expires if that fails.
func (cc *coordClient) drop() {
	if s := cc.s; s != nil {
		cc.s = nil
		cc.wg.Add(1)
		go func() {
			defer cc.wg.Done()
			_ = s.Close()
		}()
	}
}

func (cc *coordClient) op(f, key string) history.Op {
	op := history.Op{Client: cc.id, Node: cc.e.Cluster.Nodes[cc.c.node].ID, F: f, Key: key}
	if cc.s != nil {
		op.Session = cc.s.ID()
	}
	return op
}

// call runs fn with a fresh operation context, times it into op,
// classifies the error with cls and records op.
func (cc *coordClient) call(op *history.Op, timeout time.Duration, cls func(error) (string, string), fn func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	op.Call = cc.e.Clock.Now()
	err := fn(ctx)
	op.Return = cc.e.Clock.Now()
	op.Type, op.Err = cls(err)
	return err
}

// runCoord runs the coordination clients, each with its own session, and
// closes every session at the end.
func (e *Env) runCoord(ctx context.Context, step func(cc *coordClient, rng *rand.Rand, seq int)) error {
	var wg sync.WaitGroup
	var mu sync.Mutex
	clients := map[int]*coordClient{}
	err := e.runClients(ctx, func(_ context.Context, c *boundClient, id int, rec *history.Recorder, rng *rand.Rand, seq int) {
		mu.Lock()
		cc := clients[id]
		if cc == nil {
			cc = &coordClient{e: e, c: c, id: id, rec: rec, wg: &wg}
			clients[id] = cc
		}
		mu.Unlock()
		if cc.session() == nil {
			sleepCtx(ctx, 200*time.Millisecond)
			return
		}
		step(cc, rng, seq)
	})
	for _, cc := range clients {
		cc.drop()
	}
	wg.Wait()
	return err
}

// acquire records an acquire of m; it reports whether the lock is held.
func (cc *coordClient) acquire(m *coordination.Mutex) bool {
	op := cc.op(history.FAcquire, m.Name())
	err := cc.call(&op, coordWait, classifyCoord, m.Lock)
	if err == nil {
		op.Token = m.Token()
	}
	cc.e.record(cc.rec, op)
	if op.Type == history.TypeInfo {
		cc.drop()
	}
	return err == nil
}

// release records a release of m.
func (cc *coordClient) release(m *coordination.Mutex) {
	op := cc.op(history.FRelease, m.Name())
	op.Token = m.Token()
	if err := cc.call(&op, cc.e.OpTimeout, classifyCoord, m.Unlock); err != nil {
		cc.drop()
	}
	cc.e.record(cc.rec, op)
}

// fencedPut records a fenced write of value to key under m's grant.
func (cc *coordClient) fencedPut(m *coordination.Mutex, key, value string) {
	op := cc.op(history.FFencedPut, key)
	op.Lock, op.Token, op.Value = m.Name(), m.Token(), value
	_ = cc.call(&op, cc.e.OpTimeout, classifyFenced, func(ctx context.Context) error {
		rev, err := m.PutFenced(ctx, key, []byte(value))
		op.Rev = rev
		return err
	})
	cc.e.record(cc.rec, op)
}

// finalStreams reads back, for every key under prefix, every write it
// accepted in revision order (a watch from revision 1 up to each key's
// current mod revision) and records one stream operation per key.
func (e *Env) finalStreams(ctx context.Context, prefix string) error {
	rec, err := history.NewRecorder(e.path(fmt.Sprintf("client-%03d.jsonl", FinalClient)))
	if err != nil {
		return err
	}
	defer rec.Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := e.readStreams(ctx, rec, prefix)
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("final read of %s: %w", prefix, err)
		}
		sleepCtx(ctx, 500*time.Millisecond)
	}
}

func (e *Env) readStreams(ctx context.Context, rec *history.Recorder, prefix string) error {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	call := e.Clock.Now()
	r, err := e.Cluster.Admin().Range(ctx, prefix)
	if err != nil {
		return err
	}
	want := map[string]int64{}
	for _, kv := range r.KVs {
		want[string(kv.Key)] = kv.ModRevision
	}
	ops := map[string]*history.Op{}
	if len(want) > 0 {
		ch, err := e.Cluster.Admin().Watch(ctx, prefix, client.WithPrefix(), client.WithStartRevision(1))
		if err != nil {
			return err
		}
		left := len(want)
		for left > 0 {
			wr, ok := <-ch
			if !ok {
				return fmt.Errorf("watch of %s ended with %d keys unread: %w", prefix, left, ctx.Err())
			}
			if wr.Error != nil {
				return fmt.Errorf("watch of %s: %s", prefix, wr.Error.Message)
			}
			for _, ev := range wr.Events {
				k := string(ev.KV.Key)
				if ev.Type != api.EventPut || ev.KV.ModRevision > want[k] {
					continue
				}
				o := ops[k]
				if o == nil {
					o = &history.Op{Client: FinalClient, F: history.FStream, Key: k, Type: history.TypeOK}
					ops[k] = o
				}
				o.Values = append(o.Values, string(ev.KV.Value))
				o.Revs = append(o.Revs, ev.KV.ModRevision)
				if ev.KV.ModRevision == want[k] {
					left--
				}
			}
		}
		cancel()
		for range ch { // drain until the watch goroutine ends
		}
	}
	ret := e.Clock.Now()
	for _, k := range sortedMapKeys(ops) {
		o := ops[k]
		o.Call, o.Return = call, ret
		rec.Add(*o)
	}
	return nil
}

// --- lock --------------------------------------------------------------------------------

// lockWorkload: clients acquire and release a few fenced locks through
// coordination sessions with a short TTL and, while holding one, write its
// register fenced/<lock> with the grant's fence.
type lockWorkload struct{}

func (lockWorkload) Name() string { return "lock" }

func (lockWorkload) Run(ctx context.Context, e *Env) error {
	return e.runCoord(ctx, func(cc *coordClient, rng *rand.Rand, seq int) {
		m := coordination.NewMutex(cc.s, fmt.Sprintf("lock/%d", rng.IntN(lockNames)))
		if !cc.acquire(m) {
			return
		}
		for k := range 1 + rng.IntN(2) {
			cc.fencedPut(m, "fenced/"+m.Name(), fmt.Sprintf("t%d/c%d/s%d-%d", m.Token(), cc.id, seq, k))
		}
		time.Sleep(time.Duration(rng.IntN(50)) * time.Millisecond) // hold a little
		cc.release(m)
	})
}

func (lockWorkload) Final(ctx context.Context, e *Env) error { return e.finalStreams(ctx, "fenced/") }

func (lockWorkload) Check(ops []history.Op, _ []history.Window, _ string, _ time.Duration) []checker.Result {
	return []checker.Result{checker.FencedMutex(ops), checker.FencedRegister(ops)}
}

// --- counter -----------------------------------------------------------------------------

// counterWorkload: under lock counter-lock/i, read counter/i, then write
// the value plus one with the grant's fence. One critical section in
// counterPauseOneIn pauses first, as a frozen process would: it stops
// keeping its session alive and sleeps past the TTL, so that the lock
// moves on and its late write must be refused.
type counterWorkload struct{}

func (counterWorkload) Name() string { return "counter" }

// minOKBeforeFaults: two locks, each critical section three operations,
// and one in counterPauseOneIn holding its lock for a TTL and a second:
// a warm-up of 5s typically sees about 25 ok operations, and as few as
// 18 when pauses come early on both locks. Half the default still tells
// a serving cluster from a stuck one.
func (counterWorkload) minOKBeforeFaults(def int64) int64 { return max(def/2, 1) }

func (counterWorkload) Run(ctx context.Context, e *Env) error {
	return e.runCoord(ctx, func(cc *coordClient, rng *rand.Rand, seq int) {
		i := rng.IntN(counterNames)
		m := coordination.NewMutex(cc.s, fmt.Sprintf("counter-lock/%d", i))
		if !cc.acquire(m) {
			return
		}
		key := fmt.Sprintf("counter/%d", i)
		get := cc.op(history.FGet, key)
		var n int64
		err := cc.call(&get, e.OpTimeout, classify, func(ctx context.Context) error {
			kv, err := cc.c.Get(ctx, key)
			if errors.Is(err, client.ErrKeyNotFound) {
				return nil
			}
			if err == nil {
				get.Found, get.Out, get.Rev = true, string(kv.Value), kv.ModRevision
				var ok bool
				if n, ok = counterValue(kv.Value); !ok {
					return fmt.Errorf("harness: malformed counter %q", kv.Value)
				}
			}
			return err
		})
		e.record(cc.rec, get)
		if err != nil {
			cc.release(m)
			return
		}
		paused := rng.IntN(counterPauseOneIn) == 0
		if paused {
			p := cc.op(history.FPause, key)
			p.Call = e.Clock.Now()
			cc.s.Orphan() // no more keepalives: the session expires one TTL later
			time.Sleep(CoordTTL + time.Second)
			p.Return, p.Type = e.Clock.Now(), history.TypeOK
			e.record(cc.rec, p)
		}
		cc.fencedPut(m, key, checker.CounterValue(n+1, m.Token(), cc.id, seq))
		if !paused {
			cc.release(m)
		}
	})
}

func counterValue(v []byte) (int64, bool) {
	var n int64
	var rest string
	if _, err := fmt.Sscanf(string(v), "%d/%s", &n, &rest); err != nil {
		return 0, false
	}
	return n, true
}

func (counterWorkload) Final(ctx context.Context, e *Env) error {
	return e.finalStreams(ctx, "counter/")
}

func (counterWorkload) Check(ops []history.Op, _ []history.Window, _ string, _ time.Duration) []checker.Result {
	return []checker.Result{checker.FencedMutex(ops), checker.FencedRegister(ops), checker.LockCounter(ops)}
}

// --- election ----------------------------------------------------------------------------

// electionWorkload: clients campaign in a couple of elections; a leader
// proclaims a few values and resigns. One observer per member and
// election records every state it streams.
type electionWorkload struct{}

func (electionWorkload) Name() string { return "election" }

// observerClient numbers observers' histories (client-1NN.jsonl).
const observerClient = 100

func (electionWorkload) Run(ctx context.Context, e *Env) error {
	var wg sync.WaitGroup
	var errs []error
	var mu sync.Mutex
	for n := range e.Cluster.Nodes {
		for k := range electionNames {
			id := observerClient + n*electionNames + k
			c, err := e.newBoundClient(n)
			if err != nil {
				return err
			}
			rec, err := history.NewRecorder(e.path(fmt.Sprintf("client-%03d.jsonl", id)))
			if err != nil {
				c.close()
				return err
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.close()
				e.observe(ctx, c, id, fmt.Sprintf("election/%d", k), rec)
				if err := rec.Close(); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}()
		}
	}
	err := e.runCoord(ctx, func(cc *coordClient, rng *rand.Rand, seq int) {
		name := fmt.Sprintf("election/%d", rng.IntN(electionNames))
		el, err := coordination.NewElection(cc.s, name)
		if err != nil {
			return
		}
		camp := cc.op(history.FCampaign, name)
		camp.Value = fmt.Sprintf("c%d-%d", cc.id, seq)
		err = cc.call(&camp, coordWait, classifyCoord, func(ctx context.Context) error {
			term, err := el.Campaign(ctx, camp.Value)
			camp.Token = term
			return err
		})
		e.record(cc.rec, camp)
		if err != nil {
			if camp.Type == history.TypeInfo {
				cc.drop()
			}
			return
		}
		for k := range rng.IntN(3) {
			time.Sleep(time.Duration(20+rng.IntN(80)) * time.Millisecond)
			p := cc.op(history.FProclaim, name)
			p.Token, p.Value = camp.Token, fmt.Sprintf("c%d-%d-p%d", cc.id, seq, k)
			err := cc.call(&p, e.OpTimeout, classifyCoord, func(ctx context.Context) error { return el.Proclaim(ctx, p.Value) })
			e.record(cc.rec, p)
			if err != nil {
				break
			}
		}
		r := cc.op(history.FResign, name)
		r.Token = camp.Token
		if err := cc.call(&r, e.OpTimeout, classifyCoord, el.Resign); err != nil {
			cc.drop()
		}
		e.record(cc.rec, r)
	})
	wg.Wait()
	return errors.Join(append(errs, err)...)
}

// observe records every state of election name that member c streams,
// until ctx ends.
func (e *Env) observe(ctx context.Context, c *boundClient, id int, name string, rec *history.Recorder) {
	for ctx.Err() == nil {
		ch, err := c.ObserveElection(ctx, name)
		if err != nil {
			sleepCtx(ctx, 200*time.Millisecond)
			continue
		}
		for st := range ch {
			now := e.Clock.Now()
			rec.Add(history.Op{Client: id, Node: e.Cluster.Nodes[c.node].ID, F: history.FObserve, Key: name,
				Session: st.Leader, Token: st.Term, Value: st.Value, Type: history.TypeOK, Call: now, Return: now})
		}
		// The stream reconnects by itself and only ends with ctx: one
		// stream per observer, so that "never goes back" is its promise.
		return
	}
}

func (electionWorkload) Final(context.Context, *Env) error { return nil }

func (electionWorkload) Check(ops []history.Op, _ []history.Window, _ string, _ time.Duration) []checker.Result {
	return []checker.Result{checker.Election(ops)}
}
