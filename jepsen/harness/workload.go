package harness

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/statenode/statenode/client"
	"github.com/statenode/statenode/jepsen/checker"
	"github.com/statenode/statenode/jepsen/history"
)

// A Workload drives clients against the cluster and checks what they saw.
//
// Run is called once per run from the runner's goroutine and returns when
// ctx ends and every client has finished its last operation; it records
// every completed operation (ok, fail or info) through Env.Recorder. Final
// runs after the cluster has healed (final reads). Check is pure: it sees
// only the saved history, so a saved run can be checked again.
type Workload interface {
	Name() string
	Run(ctx context.Context, e *Env) error
	Final(ctx context.Context, e *Env) error
	Check(ops []history.Op, windows []history.Window, dir string, timeout time.Duration) []checker.Result
}

// slowStarter is an optional ability of a Workload whose operations are
// paced by its own design (held locks, deliberate pauses) rather than by
// the cluster: it scales the warm-up's liveness minimum.
type slowStarter interface {
	minOKBeforeFaults(def int64) int64
}

// minOKBeforeFaults is the warm-up's liveness minimum for w.
func minOKBeforeFaults(w Workload, def int64) int64 {
	if s, ok := w.(slowStarter); ok {
		return s.minOKBeforeFaults(def)
	}
	return def
}

// pending lists the workload slots whose client API has not landed yet:
// they are not registered, and asking for them fails with ErrSkipped and
// this message. Empty now that every slot of the matrix is filled.
var pending = map[string]string{}

// Workloads lists the registered workloads by name.
func Workloads() map[string]Workload {
	return map[string]Workload{
		"register":  registerWorkload{},
		"set":       setWorkload{},
		"lock":      lockWorkload{},
		"counter":   counterWorkload{},
		"election":  electionWorkload{},
		"crdt":      crdtWorkload{},
		"semaphore": semaphoreWorkload{},
		"latch":     latchWorkload{},
		"barrier":   barrierWorkload{},
	}
}

// selfTests are workloads that are expected to FAIL: they show, end to end,
// that the harness catches a real anomaly. Not part of the matrix.
var selfTests = map[string]Workload{
	// Reads served from any member's local state (WithStale) are not
	// linearizable: under a partition an isolated member serves old values.
	"register-stale": registerWorkload{stale: true},
}

// LookupWorkload returns the named workload, or ErrSkipped for a slot whose
// client API has not landed, or ErrUnknownScenario.
func LookupWorkload(name string) (Workload, error) {
	if w, ok := Workloads()[name]; ok {
		return w, nil
	}
	if w, ok := selfTests[name]; ok {
		return w, nil
	}
	if why, ok := pending[name]; ok {
		return nil, fmt.Errorf("%w: %s: %s", ErrSkipped, name, why)
	}
	return nil, fmt.Errorf("%w: workload %q", ErrUnknownScenario, name)
}

// PendingWorkloads lists the unregistered slots and why.
func PendingWorkloads() map[string]string { return pending }

// --- clients ---------------------------------------------------------------------------

// boundClient is a client that only ever talks to one member, the way a
// Jepsen client is bound to its node: every dial goes to that member's
// address, so requests for the leader reach it through the member's
// forwarding (and thus through the proxies).
type boundClient struct {
	*client.Client
	node int
	tr   *http.Transport
}

func (e *Env) newBoundClient(node int) (*boundClient, error) {
	addr := e.Cluster.Nodes[node].HTTPAddr
	d := &net.Dialer{Timeout: time.Second}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return d.DialContext(ctx, network, addr)
		},
		MaxIdleConnsPerHost: 8,
		IdleConnTimeout:     30 * time.Second,
	}
	c, err := client.New(client.Config{
		Endpoints:      []string{addr},
		RequestTimeout: e.OpTimeout,
		HTTPClient:     &http.Client{Transport: tr},
	})
	if err != nil {
		return nil, err
	}
	return &boundClient{Client: c, node: node, tr: tr}, nil
}

func (b *boundClient) close() {
	b.Client.Close()
	b.tr.CloseIdleConnections()
}

// classify turns a client error into an operation type: a write is failed
// only when the client says it certainly did not apply (a failed condition,
// no leader before proposing, no endpoint reached); everything else is
// indeterminate.
func classify(err error) (typ, msg string) {
	switch {
	case err == nil:
		return history.TypeOK, ""
	case errors.Is(err, client.ErrCASFailed):
		return history.TypeFail, checker.CASFailed
	case errors.Is(err, client.ErrIndeterminate):
		return history.TypeInfo, err.Error()
	case errors.Is(err, client.ErrNoLeader), errors.Is(err, client.ErrUnavailable):
		return history.TypeFail, err.Error()
	default:
		return history.TypeInfo, err.Error()
	}
}

// runClients runs perNode clients on every member, each calling step in a
// loop (paced by the run's rate limiter) until ctx ends.
func (e *Env) runClients(ctx context.Context, step func(ctx context.Context, c *boundClient, id int, rec *history.Recorder, rng *rand.Rand, seq int)) error {
	var wg sync.WaitGroup
	var errs []error
	var mu sync.Mutex
	for n := range e.Cluster.Nodes {
		for k := 0; k < e.ClientsPerNode; k++ {
			id := n*e.ClientsPerNode + k
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
				rng := rand.New(rand.NewPCG(e.Seed, uint64(id)+1))
				for seq := 1; ; seq++ {
					if !e.token(ctx) {
						break
					}
					step(ctx, c, id, rec, rng, seq)
				}
				if err := rec.Close(); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}()
		}
	}
	wg.Wait()
	return errors.Join(errs...)
}

// record stamps and saves one operation and counts ok ones.
func (e *Env) record(rec *history.Recorder, op history.Op) {
	if op.Type == history.TypeOK {
		e.okOps.Add(1)
	}
	rec.Add(op)
}

// opCtx is the context of one operation: not derived from the run's
// context, so that the last operations finish (with a verdict) when the
// run stops instead of being cut off.
func (e *Env) opCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), e.OpTimeout)
}

// --- register ---------------------------------------------------------------------------

// registerWorkload: get / put / cas over a few keys with unique values,
// clients bound to every member. Keys rotate every opsPerKey operations so
// that indeterminate writes stay few per key (they make the linearizability
// search exponential).
type registerWorkload struct {
	stale bool // self-test: reads with WithStale, expected to be caught
}

const (
	registerKeys = 3
	opsPerKey    = 250
)

func (w registerWorkload) Name() string {
	if w.stale {
		return "register-stale"
	}
	return "register"
}

func (w registerWorkload) Run(ctx context.Context, e *Env) error {
	var readOpts []client.ReadOption
	if w.stale {
		readOpts = append(readOpts, client.WithStale())
	}
	var started atomic.Int64
	return e.runClients(ctx, func(_ context.Context, c *boundClient, id int, rec *history.Recorder, rng *rand.Rand, seq int) {
		n := started.Add(1) - 1
		gen := n / (registerKeys * opsPerKey)
		key := fmt.Sprintf("reg/%d/%d", gen, rng.IntN(registerKeys))
		op := history.Op{Client: id, Node: e.Cluster.Nodes[c.node].ID, Key: key}
		ctx, cancel := e.opCtx()
		defer cancel()
		switch r := rng.IntN(10); {
		case r < 4:
			op.F = history.FGet
			op.Call = e.Clock.Now()
			kv, err := c.Get(ctx, key, readOpts...)
			op.Return = e.Clock.Now()
			if errors.Is(err, client.ErrKeyNotFound) {
				op.Type = history.TypeOK
			} else if op.Type, op.Err = classify(err); err == nil {
				op.Found, op.Out, op.Rev = true, string(kv.Value), kv.ModRevision
			}
			if op.Type == history.TypeOK {
				e.lastRev.Store(key, op.Rev)
			}
		case r < 7:
			op.F = history.FPut
			op.Value = fmt.Sprintf("c%d-%d", id, seq)
			op.Call = e.Clock.Now()
			resp, err := c.Put(ctx, key, []byte(op.Value))
			op.Return = e.Clock.Now()
			if op.Type, op.Err = classify(err); err == nil {
				op.Rev = resp.Revision
				e.lastRev.Store(key, op.Rev)
			}
		default:
			op.F = history.FCAS
			op.Value = fmt.Sprintf("c%d-%d", id, seq)
			if v, ok := e.lastRev.Load(key); ok {
				op.ExpectRev = v.(int64)
			}
			op.Call = e.Clock.Now()
			resp, err := c.CompareAndSwap(ctx, key, []byte(op.Value), op.ExpectRev)
			op.Return = e.Clock.Now()
			op.Type, op.Err = classify(err)
			var ce *client.Error
			switch {
			case err == nil:
				op.Rev = resp.Revision
				e.lastRev.Store(key, op.Rev)
			case op.Err == checker.CASFailed && errors.As(err, &ce):
				if ce.KV != nil {
					op.Found, op.Out, op.Rev = true, string(ce.KV.Value), ce.KV.ModRevision
					e.lastRev.Store(key, op.Rev)
				} else {
					e.lastRev.Store(key, int64(0))
				}
			}
		}
		e.record(rec, op)
	})
}

func (registerWorkload) Final(context.Context, *Env) error { return nil }

func (registerWorkload) Check(ops []history.Op, windows []history.Window, dir string, timeout time.Duration) []checker.Result {
	return []checker.Result{checker.Linearizable(ops, windows, timeout, filepath.Join(dir, "history.html"))}
}

// --- set -------------------------------------------------------------------------------

// setWorkload: unique adds (a put of a fresh key under set/) and one final
// linearizable read of the prefix after the cluster healed.
type setWorkload struct{}

func (setWorkload) Name() string { return "set" }

func (setWorkload) Run(ctx context.Context, e *Env) error {
	return e.runClients(ctx, func(_ context.Context, c *boundClient, id int, rec *history.Recorder, _ *rand.Rand, seq int) {
		v := fmt.Sprintf("c%d-%d", id, seq)
		op := history.Op{Client: id, Node: e.Cluster.Nodes[c.node].ID, F: history.FAdd, Value: v, Key: "set/" + v}
		ctx, cancel := e.opCtx()
		defer cancel()
		op.Call = e.Clock.Now()
		resp, err := c.Put(ctx, op.Key, []byte(v))
		op.Return = e.Clock.Now()
		if op.Type, op.Err = classify(err); err == nil {
			op.Rev = resp.Revision
		}
		e.record(rec, op)
	})
}

// FinalClient is the client number of the harness's final reads.
const FinalClient = 999

func (setWorkload) Final(ctx context.Context, e *Env) error {
	rec, err := history.NewRecorder(e.path(fmt.Sprintf("client-%03d.jsonl", FinalClient)))
	if err != nil {
		return err
	}
	defer rec.Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		op := history.Op{Client: FinalClient, F: history.FRead, Key: "set/"}
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		op.Call = e.Clock.Now()
		r, err := e.Cluster.Admin().Range(rctx, "set/")
		op.Return = e.Clock.Now()
		cancel()
		if err == nil {
			op.Type = history.TypeOK
			for _, kv := range r.KVs {
				op.Values = append(op.Values, string(kv.Value))
			}
			sort.Strings(op.Values)
			rec.Add(op)
			return nil
		}
		op.Type, op.Err = history.TypeFail, err.Error()
		rec.Add(op)
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("final read: %w", err)
		}
		sleepCtx(ctx, 200*time.Millisecond)
	}
}

func (setWorkload) Check(ops []history.Op, _ []history.Window, _ string, _ time.Duration) []checker.Result {
	return []checker.Result{checker.Set(ops)}
}

func sortedMapKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
