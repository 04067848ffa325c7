package harness

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/statenode/statenode/api"
	"github.com/statenode/statenode/client"
	"github.com/statenode/statenode/jepsen/checker"
	"github.com/statenode/statenode/jepsen/history"
)

// Settings of the semaphore, latch and barrier workloads.
const (
	semName    = "sem/0"
	semPermits = 2
	// semWitness is the prefix of the semaphore's witness keys: each
	// holder puts semwit/<semaphore>/<session>, attached to its session.
	semWitness = "semwit/"
	// semPauseOneIn: one holder in this many pauses inside its critical
	// section (stops keeping its session alive, sleeps past the TTL).
	semPauseOneIn = 10

	latchCount = 5 // every latch's initial count
	// latchExtra count-downs go to each latch beyond its count: the latch
	// must stay at zero.
	latchExtra = 1
	latchWait  = 2 * time.Second // an await's budget

	// barrierKillOneIn: one await in this many has its session destroyed
	// while it waits (as a crashed party); barrierOrphanOneIn: one in this
	// many stops keeping its session alive first (as a frozen party).
	barrierKillOneIn   = 12
	barrierOrphanOneIn = 25
	// barrierHang: an await without an answer this long after its call
	// hangs, which fails the run.
	barrierHang = coordWait + 10*time.Second

	// sessionsClient numbers the history of the harness's list of the
	// sessions alive at the end of the barrier workload.
	sessionsClient = 998
)

// classifyLatch classifies a latch create or count-down: a count-down
// whose retry found its session gone may still have applied, so only a
// missing latch or a mismatch is a failure.
func classifyLatch(err error) (typ, msg string) {
	switch {
	case err == nil:
		return history.TypeOK, ""
	case errors.Is(err, client.ErrObjectNotFound), errors.Is(err, client.ErrMismatch):
		return history.TypeFail, err.Error()
	default:
		return history.TypeInfo, err.Error()
	}
}

// --- semaphore ---------------------------------------------------------------------------

// semaphoreWorkload: clients with short-TTL sessions take 1 (mostly) or 2
// of the semaphore's 2 permits, blocking or as a try. A holder puts its
// witness key (attached to its session), reads every witness key of the
// semaphore linearizably, deletes its key and releases; one in
// semPauseOneIn pauses past its TTL inside, so that its permits return by
// expiry under its feet.
type semaphoreWorkload struct{}

func (semaphoreWorkload) Name() string { return "semaphore" }

func (semaphoreWorkload) Run(ctx context.Context, e *Env) error {
	return e.runCoord(ctx, func(cc *coordClient, rng *rand.Rand, seq int) {
		k := int64(1)
		if rng.IntN(5) == 0 {
			k = 2
		}
		try := rng.IntN(4) == 0
		sid := cc.s.ID()
		acq := cc.op(history.FSemAcquire, semName)
		acq.Size, acq.N = semPermits, k
		if try {
			acq.Value = "try"
		}
		err := cc.call(&acq, coordWait, classifyCoord, func(ctx context.Context) error {
			r, err := cc.c.AcquireSemaphore(ctx, semName, api.SemaphoreRequest{
				Session: sid, RequestID: cc.nextReq(), Permits: semPermits, Count: k, Try: try})
			if err == nil {
				acq.Token, acq.Count = r.Token, r.Count
			}
			return err
		})
		e.record(cc.rec, acq)
		if err != nil {
			if acq.Type == history.TypeInfo {
				cc.drop()
			}
			return
		}
		// The witness key lives only while this session holds its permits:
		// put after the grant, deleted before the release, and deleted by
		// the cluster in the very command that ends the session.
		key := fmt.Sprintf("%s%s/%d", semWitness, semName, sid)
		octx, cancel := e.opCtx()
		_, err = cc.c.PutEphemeral(octx, key, []byte(strconv.FormatInt(k, 10)), sid)
		cancel()
		if err != nil {
			cc.drop() // destroying the session returns the permits and deletes the key
			return
		}
		cc.semWitness(sid)
		if rng.IntN(semPauseOneIn) == 0 {
			p := cc.op(history.FPause, semName)
			p.Call = e.Clock.Now()
			cc.s.Orphan() // no more keepalives: the session expires one TTL later
			time.Sleep(CoordTTL + time.Second)
			p.Return, p.Type = e.Clock.Now(), history.TypeOK
			e.record(cc.rec, p)
			cc.semWitness(sid) // its own key is most likely gone, others may hold
		} else {
			time.Sleep(time.Duration(10+rng.IntN(50)) * time.Millisecond)
		}
		// Even after the pause: a new leader gives every session a fresh
		// TTL (session-renew-all), so a session paused across a leader
		// change can outlive the pause, its permits and key with it. Its
		// release must not leave the key behind.
		octx, cancel = e.opCtx()
		_, err = cc.c.Delete(octx, key)
		cancel()
		if err != nil {
			cc.drop()
			return
		}
		rel := cc.op(history.FSemRelease, semName)
		rel.Session, rel.N, rel.Token = sid, k, acq.Token
		if err := cc.call(&rel, e.OpTimeout, classifyCoord, func(ctx context.Context) error {
			return cc.c.ReleaseSemaphore(ctx, semName, api.SemaphoreReleaseRequest{Session: sid, RequestID: cc.nextReq(), Count: k})
		}); err != nil {
			cc.drop()
		}
		e.record(cc.rec, rel)
	})
}

// semWitness records a linearizable read of the semaphore's witness keys.
func (cc *coordClient) semWitness(sid uint64) {
	prefix := semWitness + semName + "/"
	w := cc.op(history.FSemWitness, semName)
	w.Session = sid
	_ = cc.call(&w, cc.e.OpTimeout, classify, func(ctx context.Context) error {
		r, err := cc.c.Range(ctx, prefix)
		if err != nil {
			return err
		}
		for _, kv := range r.KVs {
			s, err1 := strconv.ParseUint(strings.TrimPrefix(string(kv.Key), prefix), 10, 64)
			n, err2 := strconv.ParseInt(string(kv.Value), 10, 64)
			if err1 != nil || err2 != nil {
				w.Values = append(w.Values, string(kv.Key)+"="+string(kv.Value)) // reported as malformed
				continue
			}
			w.Values = append(w.Values, checker.WitnessValue(s, n))
			w.N += n
		}
		return nil
	})
	cc.e.record(cc.rec, w)
}

func (semaphoreWorkload) Final(context.Context, *Env) error { return nil }

func (semaphoreWorkload) Check(ops []history.Op, _ []history.Window, _ string, _ time.Duration) []checker.Result {
	return checker.Semaphore(ops)
}

// --- latch -------------------------------------------------------------------------------

// latchWorkload: latches latch/0, latch/1, ... of count latchCount, each
// given latchCount+latchExtra count-downs in turn by all clients. A
// count-down carries a request ID the client chose; one in four (and every
// indeterminate one) is sent again with the same ID, which must apply
// once. Three steps in ten await the latch being counted down. At the end
// every latch's count is read.
type latchWorkload struct{}

func (latchWorkload) Name() string { return "latch" }

func (latchWorkload) Run(ctx context.Context, e *Env) error {
	var next atomic.Int64 // count-down slots handed out
	return e.runCoord(ctx, func(cc *coordClient, rng *rand.Rand, _ int) {
		sid := cc.s.ID()
		if rng.IntN(10) < 3 {
			name := fmt.Sprintf("latch/%d", next.Load()/(latchCount+latchExtra))
			if !cc.createLatch(name, sid) {
				return
			}
			aw := cc.op(history.FLatchAwait, name)
			_ = cc.call(&aw, latchWait, classifyCoord, func(ctx context.Context) error {
				info, err := cc.c.AwaitLatch(ctx, name)
				if err == nil {
					aw.Count = info.Count
				}
				return err
			})
			e.record(cc.rec, aw)
			return
		}
		name := fmt.Sprintf("latch/%d", (next.Add(1)-1)/(latchCount+latchExtra))
		if !cc.createLatch(name, sid) {
			return
		}
		id := cc.nextReq()
		typ := cc.countDown(name, sid, id)
		if (typ == history.TypeInfo || rng.IntN(4) == 0) && cc.s != nil && cc.s.ID() == sid {
			cc.countDown(name, sid, id) // the same request again
		}
	})
}

// createLatch creates latch name (idempotent) once per client; false if
// that failed.
func (cc *coordClient) createLatch(name string, sid uint64) bool {
	if cc.latches[name] {
		return true
	}
	op := cc.op(history.FLatchCreate, name)
	op.Size = latchCount
	err := cc.call(&op, cc.e.OpTimeout, classifyLatch, func(ctx context.Context) error {
		info, err := cc.c.CreateLatch(ctx, name, api.LatchRequest{Session: sid, RequestID: cc.nextReq(), Count: latchCount})
		if err == nil {
			op.Count = info.Count
		}
		return err
	})
	cc.e.record(cc.rec, op)
	if err != nil {
		return false
	}
	if cc.latches == nil {
		cc.latches = map[string]bool{}
	}
	cc.latches[name] = true
	return true
}

// countDown records one count-down of latch name with request ID id.
func (cc *coordClient) countDown(name string, sid, id uint64) string {
	op := cc.op(history.FCountDown, name)
	op.Session, op.ReqID = sid, id
	_ = cc.call(&op, cc.e.OpTimeout, classifyLatch, func(ctx context.Context) error {
		info, err := cc.c.CountDownLatch(ctx, name, api.LatchRequest{Session: sid, RequestID: id})
		if err == nil {
			op.Count = info.Count
		}
		return err
	})
	cc.e.record(cc.rec, op)
	return op.Type
}

// Final reads the count of every latch the clients created.
func (latchWorkload) Final(ctx context.Context, e *Env) error {
	ops, err := history.ReadDir(e.Dir)
	if err != nil {
		return err
	}
	names := map[string]bool{}
	for _, o := range ops {
		if o.F == history.FLatchCreate {
			names[o.Key] = true
		}
	}
	rec, err := history.NewRecorder(e.path(fmt.Sprintf("client-%03d.jsonl", FinalClient)))
	if err != nil {
		return err
	}
	defer rec.Close()
	deadline := time.Now().Add(30 * time.Second)
	for _, name := range sortedMapKeys(names) {
		for {
			op := history.Op{Client: FinalClient, F: history.FLatchRead, Key: name}
			rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			op.Call = e.Clock.Now()
			info, err := e.Cluster.Admin().LatchInfo(rctx, name)
			op.Return = e.Clock.Now()
			cancel()
			if err == nil {
				op.Type, op.Count = history.TypeOK, info.Count
				rec.Add(op)
				break
			}
			if errors.Is(err, client.ErrObjectNotFound) {
				// Never created: every create may have failed (the
				// checker requires that none was acknowledged).
				op.Type, op.Count = history.TypeOK, history.LatchAbsent
				rec.Add(op)
				break
			}
			op.Type, op.Err = history.TypeFail, err.Error()
			rec.Add(op)
			if time.Now().After(deadline) || ctx.Err() != nil {
				return fmt.Errorf("final read of %s: %w", name, err)
			}
			sleepCtx(ctx, 200*time.Millisecond)
		}
	}
	return nil
}

func (latchWorkload) Check(ops []history.Op, _ []history.Window, _ string, _ time.Duration) []checker.Result {
	return []checker.Result{checker.Latch(ops)}
}

// --- barrier -----------------------------------------------------------------------------

// barrierWorkload: cyclic barriers whose parties are one client per
// member (group k is the k-th client of every member, barrier
// barrier/<k>/<epoch> of as many parties as members). Every client awaits
// its barrier again and again; one await in barrierKillOneIn has its
// session destroyed while it waits, one in barrierOrphanOneIn stops
// keeping its session alive first. Nothing resets a barrier: a client that
// finds its barrier broken moves on to the next epoch, where the rest of
// its group follows. When the workload's time is up, the sessions still
// alive are listed: a barrier broken before must name a session that is
// not.
type barrierWorkload struct{}

func (barrierWorkload) Name() string { return "barrier" }

func (barrierWorkload) Run(ctx context.Context, e *Env) error {
	parties := int64(len(e.Cluster.Nodes))
	var bg sync.WaitGroup // awaits abandoned as hung, still running; the session list
	defer bg.Wait()
	bg.Add(1)
	go func() {
		defer bg.Done()
		<-ctx.Done()
		e.listSessions() // at once: every client's session still lives unless it ended
	}()
	return e.runCoord(ctx, func(cc *coordClient, rng *rand.Rand, _ int) {
		name := fmt.Sprintf("barrier/%d/%d", cc.id%e.ClientsPerNode, cc.epoch)
		sid := cc.s.ID()
		op := cc.op(history.FBarrier, name)
		op.Size = parties
		kill := rng.IntN(barrierKillOneIn) == 0
		orphan := !kill && rng.IntN(barrierOrphanOneIn) == 0
		var killed chan struct{}
		if orphan {
			end := cc.op(history.FSessionEnd, "")
			end.Value, end.Call = "orphan", e.Clock.Now()
			cc.s.Orphan()
			end.Return, end.Type = e.Clock.Now(), history.TypeOK
			e.record(cc.rec, end)
		}
		if kill {
			killed = make(chan struct{})
			delay := time.Duration(rng.IntN(40)) * time.Millisecond // while it is likely still registered
			go func() {
				defer close(killed)
				time.Sleep(delay)
				end := cc.op(history.FSessionEnd, "")
				end.Session, end.Value = sid, "destroy"
				_ = cc.call(&end, e.OpTimeout, classify, func(ctx context.Context) error {
					err := cc.c.DestroySession(ctx, sid)
					if errors.Is(err, client.ErrSessionNotFound) {
						return nil // ended already
					}
					return err
				})
				e.record(cc.rec, end)
			}()
		}
		type answer struct {
			r   *api.BarrierResponse
			err error
		}
		done := make(chan answer, 1)
		actx, cancel := context.WithTimeout(context.Background(), coordWait)
		op.Call = e.Clock.Now()
		bg.Add(1)
		go func() {
			defer bg.Done()
			defer cancel()
			r, err := cc.c.Barrier(actx, name, api.BarrierRequest{Session: sid, RequestID: cc.nextReq(), Action: api.BarrierAwait, Parties: parties})
			done <- answer{r, err}
		}()
		select {
		case a := <-done:
			op.Return = e.Clock.Now()
			op.Type, op.Err = classifyCoord(a.err)
			switch {
			case a.err == nil:
				op.Token, op.Arrival = a.r.Generation, a.r.Arrival
			case errors.Is(a.err, client.ErrBroken):
				op.Culprit = checker.BarrierCulprit(a.err.Error())
				cc.epoch++
			}
		case <-time.After(barrierHang):
			op.Return = e.Clock.Now()
			op.Type, op.Err = history.TypeInfo, fmt.Sprintf("hung: no answer %s after the call", barrierHang)
			cc.epoch++ // the client cannot know where its group is
		}
		e.record(cc.rec, op)
		if killed != nil {
			<-killed
		}
		if kill || orphan || op.Type == history.TypeInfo {
			cc.drop()
		}
	})
}

// listSessions records the sessions alive now (history client
// sessionsClient), retrying for a while.
func (e *Env) listSessions() {
	rec, err := history.NewRecorder(e.path(fmt.Sprintf("client-%03d.jsonl", sessionsClient)))
	if err != nil {
		return
	}
	defer rec.Close()
	deadline := time.Now().Add(20 * time.Second)
	for {
		op := history.Op{Client: sessionsClient, F: history.FSessions}
		rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		op.Call = e.Clock.Now()
		ss, err := e.Cluster.Admin().Sessions(rctx)
		op.Return = e.Clock.Now()
		cancel()
		if err == nil {
			op.Type = history.TypeOK
			for _, s := range ss {
				op.Values = append(op.Values, strconv.FormatUint(s.ID, 10))
			}
			rec.Add(op)
			return
		}
		op.Type, op.Err = history.TypeFail, err.Error()
		rec.Add(op)
		if time.Now().After(deadline) {
			return
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func (barrierWorkload) Final(context.Context, *Env) error { return nil }

func (barrierWorkload) Check(ops []history.Op, _ []history.Window, _ string, _ time.Duration) []checker.Result {
	return []checker.Result{checker.Barrier(ops, int64(barrierHang))}
}
