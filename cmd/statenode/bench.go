package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/signal"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/statenode/statenode/api"
	"github.com/statenode/statenode/client"
)

// benchGroup holds the load generators. Each prints the report of
// report.go. A coordination benchmark opens one session per worker with
// openBenchEnv and, if its workers cycle independently (lock,
// semaphore), times them with runCycles (benchcoord.go): a new one is a
// command here plus a benchCycle per worker.
type benchGroup struct {
	KV        benchCmd          `cmd:"" name:"kv" default:"withargs" help:"Key-value load (the default: statenode bench --total N is statenode bench kv --total N)."`
	Lock      benchLockCmd      `cmd:"" help:"Lock+unlock cycles of fenced locks, one session per worker, on distinct locks or one contended lock."`
	Election  benchElectionCmd  `cmd:"" help:"Election handoff latency: from a leader's resign until the next candidate leads."`
	Semaphore benchSemaphoreCmd `cmd:"" help:"Acquire+release cycles of one semaphore's permits, one session per worker."`
}

// benchCmd is a load generator in the style of etcd's "benchmark put".
type benchCmd struct {
	Clients     int    `name:"clients" default:"1" help:"Concurrent workers, each with one request in flight."`
	Conns       int    `name:"conns" default:"1" help:"Client instances, shared round-robin by the workers."`
	Total       int    `name:"total" default:"10000" help:"Requests to send."`
	KeySize     int    `name:"key-size" default:"8" help:"Key size in bytes (zero-padded decimal index; --key-prefix not counted)."`
	ValSize     int    `name:"val-size" default:"256" help:"Value size in bytes."`
	KeySpace    int    `name:"key-space" default:"10000" help:"Keys are chosen uniformly at random from this many."`
	SeqKeys     bool   `name:"seq-keys" help:"Use keys in sequence (request i uses key i mod --key-space) instead of at random."`
	KeyPrefix   string `name:"key-prefix" help:"Prefix of every key."`
	Mix         string `name:"mix" default:"put=100" help:"Operation mix by weight; ops are put, get, cas, txn, del (e.g. put=50,get=40,cas=5,txn=5)."`
	Consistency string `name:"consistency" enum:"l,s" default:"l" help:"Reads: l (linearizable) or s (stale, served locally)."`
	Rate        int    `name:"rate" default:"0" help:"Requests per second across all workers (0: unlimited)."`
	NoPreload   bool   `name:"no-preload" help:"Do not write every key of the key space before a mix with reads."`
	NoWarmup    bool   `name:"no-warmup" help:"Do not send each worker one untimed request of the mix (writes included) before the clock starts; its first timed request then opens its connection."`
	CPUProfile  string `name:"cpu-profile" type:"path" help:"Write a CPU profile of this load generator (not of the cluster) to this file."`
}

// Operation types of the mix, in report order.
var benchOps = []string{"put", "get", "cas", "txn", "del"}

const (
	opPut = iota
	opGet
	opCas
	opTxn
	opDel
)

// parseMix parses "put=50,get=50" into weights indexed like benchOps, and
// returns their sum.
func parseMix(s string) ([]int, int, error) {
	w := make([]int, len(benchOps))
	sum := 0
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, val, ok := strings.Cut(part, "=")
		if !ok {
			return nil, 0, fmt.Errorf("%w: --mix: %q is not OP=WEIGHT", errUsage, part)
		}
		i := indexOf(benchOps, strings.TrimSpace(name))
		if i < 0 {
			return nil, 0, fmt.Errorf("%w: --mix: unknown op %q (want %s)", errUsage, name, strings.Join(benchOps, ", "))
		}
		n, err := strconv.Atoi(strings.TrimSpace(val))
		if err != nil || n < 0 {
			return nil, 0, fmt.Errorf("%w: --mix: weight of %s must be a non-negative integer", errUsage, name)
		}
		w[i] += n
		sum += n
	}
	if sum == 0 {
		return nil, 0, fmt.Errorf("%w: --mix: no operation has a positive weight", errUsage)
	}
	return w, sum, nil
}

func indexOf(list []string, s string) int {
	for i, v := range list {
		if v == s {
			return i
		}
	}
	return -1
}

func (b *benchCmd) validate() error {
	switch {
	case b.Clients < 1, b.Conns < 1:
		return fmt.Errorf("%w: --clients and --conns must be at least 1", errUsage)
	case b.Total < 1:
		return fmt.Errorf("%w: --total must be at least 1", errUsage)
	case b.KeySpace < 1:
		return fmt.Errorf("%w: --key-space must be at least 1", errUsage)
	case b.KeySize < len(strconv.Itoa(b.KeySpace-1)):
		return fmt.Errorf("%w: --key-space %d needs --key-size of at least %d", errUsage, b.KeySpace, len(strconv.Itoa(b.KeySpace-1)))
	case b.ValSize < 0, b.Rate < 0:
		return fmt.Errorf("%w: --val-size and --rate must not be negative", errUsage)
	}
	return nil
}

// Run preloads the key space if the mix reads, runs --total requests over
// --clients workers, and prints the report.
func (b *benchCmd) Run(rc *runContext) error {
	if err := b.validate(); err != nil {
		return err
	}
	weights, weightSum, err := parseMix(b.Mix)
	if err != nil {
		return err
	}
	// Ctrl-C stops the run early; the report covers what completed.
	ctx, stop := signal.NotifyContext(rc.ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	// HTTP/1.1 carries one request per connection at a time: give each
	// client instance as many connections per endpoint as workers share it.
	perConn := (b.Clients + b.Conns - 1) / b.Conns
	clients := make([]*client.Client, b.Conns)
	for i := range clients {
		cl, err := client.New(client.Config{
			Endpoints:           rc.g.Addr,
			RequestTimeout:      rc.g.Timeout,
			MaxConnsPerEndpoint: perConn,
		})
		if err != nil {
			return err
		}
		defer cl.Close()
		clients[i] = cl
	}

	value := []byte(strings.Repeat("x", b.ValSize))
	if weights[opGet]+weights[opCas]+weights[opTxn] > 0 && !b.NoPreload {
		fmt.Fprintf(rc.stderr, "bench: preloading %d keys\n", b.KeySpace)
		if err := b.preload(ctx, clients, value); err != nil {
			return fmt.Errorf("preload: %w", err)
		}
	}
	fmt.Fprintf(rc.stderr, "bench: %d requests, %d clients, %d conns, mix %s, key space %d, %d-byte keys, %d-byte values\n",
		b.Total, b.Clients, b.Conns, b.Mix, b.KeySpace, b.KeySize+len(b.KeyPrefix), b.ValSize)

	var readOpts []client.ReadOption
	if b.Consistency == "s" {
		readOpts = append(readOpts, client.WithStale())
	}
	workers := make([]*benchWorker, b.Clients)
	for i := range workers {
		workers[i] = &benchWorker{
			b:         b,
			cl:        clients[i%len(clients)],
			rng:       rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), uint64(i))),
			weights:   weights,
			weightSum: weightSum,
			keyBuf:    make([]byte, 0, len(b.KeyPrefix)+b.KeySize),
			value:     value,
			readOpts:  readOpts,
			lats:      make([]float64, 0, b.Total/b.Clients+1),
			errs:      map[string]int{},
			revs:      map[string]int64{},
		}
	}

	if !b.NoWarmup {
		if failed, err := warmup(ctx, workers); failed > 0 {
			fmt.Fprintf(rc.stderr, "bench: warm-up: %d of %d requests failed (first: %s)\n", failed, len(workers), oneLine(err))
		}
	}
	stopProfile := func() {}
	if b.CPUProfile != "" {
		if stopProfile, err = startCPUProfile(b.CPUProfile); err != nil {
			return err
		}
		defer stopProfile() // if the run panics or returns early
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for _, w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.run(ctx, &next, start)
		}()
	}
	wg.Wait()
	r := report{Elapsed: time.Since(start), Errors: map[string]int{}}
	stopProfile()

	// Merge the workers' records; nothing was shared while they ran.
	for i, op := range benchOps {
		if weights[i] == 0 {
			continue
		}
		s := opStats{Op: op}
		for _, w := range workers {
			s.OK += w.ops[i].OK
			s.Misses += w.ops[i].Misses
			s.Errors += w.ops[i].Errors
		}
		r.Ops = append(r.Ops, s)
	}
	for _, w := range workers {
		r.Lats = append(r.Lats, w.lats...)
		for m, n := range w.errs {
			r.Errors[m] += n
		}
	}
	s := r.summarize()
	if rc.g.Output == "json" {
		s.Config = map[string]any{
			"clients": b.Clients, "conns": b.Conns, "total": b.Total, "key_size": b.KeySize,
			"val_size": b.ValSize, "key_space": b.KeySpace, "seq_keys": b.SeqKeys, "mix": b.Mix,
			"consistency": b.Consistency, "rate": b.Rate, "warmup": !b.NoWarmup,
		}
		return writeJSON(rc.stdout, s)
	}
	return s.writeText(rc.stdout)
}

// preload writes every key of the key space, so that reads find them.
func (b *benchCmd) preload(ctx context.Context, clients []*client.Client, value []byte) error {
	var next atomic.Int64
	var firstErr atomic.Pointer[error]
	var wg sync.WaitGroup
	for i := range max(b.Clients, 16) {
		cl := clients[i%len(clients)]
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 0, len(b.KeyPrefix)+b.KeySize)
			for {
				k := next.Add(1) - 1
				if k >= int64(b.KeySpace) || firstErr.Load() != nil || ctx.Err() != nil {
					return
				}
				if _, err := cl.Put(ctx, string(b.appendKey(buf[:0], int(k))), value); err != nil {
					firstErr.CompareAndSwap(nil, &err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if p := firstErr.Load(); p != nil {
		return *p
	}
	return ctx.Err()
}

// appendKey appends the key of index k: --key-prefix, then k in decimal,
// zero-padded to --key-size bytes.
func (b *benchCmd) appendKey(dst []byte, k int) []byte {
	dst = append(dst, b.KeyPrefix...)
	var num [20]byte
	digits := strconv.AppendInt(num[:0], int64(k), 10)
	for range b.KeySize - len(digits) {
		dst = append(dst, '0')
	}
	return append(dst, digits...)
}

// benchWorker issues requests one at a time and records them in its own
// slices and maps: no locks on the hot path; Run merges them at the end.
type benchWorker struct {
	b         *benchCmd
	cl        *client.Client
	rng       *rand.Rand
	weights   []int
	weightSum int
	keyBuf    []byte // the current request's key
	value     []byte
	readOpts  []client.ReadOption

	lats []float64        // seconds, successful requests
	ops  [5]opStats       // indexed like benchOps
	errs map[string]int   // error message -> count
	revs map[string]int64 // cas: last mod revision this worker saw per key
}

// run takes request numbers from next until --total are taken or ctx ends.
// With --rate, request i is not sent before start + i/rate.
func (w *benchWorker) run(ctx context.Context, next *atomic.Int64, start time.Time) {
	var interval time.Duration
	if w.b.Rate > 0 {
		interval = time.Second / time.Duration(w.b.Rate)
	}
	var timer *time.Timer
	for {
		i := next.Add(1) - 1
		if i >= int64(w.b.Total) || ctx.Err() != nil {
			return
		}
		if interval > 0 {
			if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
				if timer == nil {
					timer = time.NewTimer(d)
					defer timer.Stop()
				} else {
					timer.Reset(d)
				}
				select {
				case <-ctx.Done():
					return
				case <-timer.C:
				}
			}
		}
		op, key := w.prepare(ctx, i)
		t0 := time.Now()
		miss, err := w.do(ctx, op, key)
		lat := time.Since(t0)

		if err != nil {
			if ctx.Err() != nil {
				return // interrupted: not a failure of the cluster
			}
			w.ops[op].Errors++
			w.errs[oneLine(err)]++
			continue
		}
		w.lats = append(w.lats, lat.Seconds())
		w.ops[op].OK++
		if miss {
			w.ops[op].Misses++
		}
	}
}

// warmup has every worker send one untimed request of its mix at once
// (writes included), so that the timed run starts with its connections
// open and its clients past their first use: what it measures is
// requests, not TCP handshakes (etcd's benchmark likewise dials before it
// starts the clock). Of 100,000 requests over 1,000 workers, their first
// requests alone were the slowest percent. It returns how many failed and
// the first failure.
func warmup(ctx context.Context, workers []*benchWorker) (failed int, first error) {
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			op, key := w.prepare(ctx, -1)
			if _, err := w.do(ctx, op, key); err != nil {
				mu.Lock()
				defer mu.Unlock()
				if failed++; first == nil {
					first = err
				}
			}
		}()
	}
	wg.Wait()
	return failed, first
}

// prepare chooses the operation and key of request i (-1: a random key),
// and for a cas fetches the key's revision first, untimed.
func (w *benchWorker) prepare(ctx context.Context, i int64) (op int, key string) {
	op = w.pick()
	k := int(i % int64(w.b.KeySpace))
	if i < 0 || !w.b.SeqKeys {
		k = w.rng.IntN(w.b.KeySpace)
	}
	key = string(w.b.appendKey(w.keyBuf[:0], k))
	if op == opCas {
		w.learnRevision(ctx, key)
	}
	return op, key
}

// pick chooses an operation by weight.
func (w *benchWorker) pick() int {
	n := w.rng.IntN(w.weightSum)
	for i, wt := range w.weights {
		if n < wt {
			return i
		}
		n -= wt
	}
	return opPut
}

// learnRevision fetches key's mod revision, untimed, if this worker does
// not know it, so that the timed cas has a revision to compare against.
func (w *benchWorker) learnRevision(ctx context.Context, key string) {
	if _, ok := w.revs[key]; ok {
		return
	}
	kv, err := w.cl.Get(ctx, key)
	switch {
	case err == nil:
		w.revs[key] = kv.ModRevision
	case errors.Is(err, client.ErrKeyNotFound):
		w.revs[key] = 0
	}
}

// do sends one request; miss reports an answered request that found
// nothing to act on (see opStats.Misses).
func (w *benchWorker) do(ctx context.Context, op int, key string) (miss bool, err error) {
	switch op {
	case opPut:
		resp, err := w.cl.Put(ctx, key, w.value)
		if err == nil {
			w.revs[key] = resp.Revision
		}
		return false, err
	case opGet:
		_, err := w.cl.Get(ctx, key, w.readOpts...)
		if errors.Is(err, client.ErrKeyNotFound) {
			return true, nil
		}
		return false, err
	case opCas:
		resp, err := w.cl.CompareAndSwap(ctx, key, w.value, w.revs[key])
		if errors.Is(err, client.ErrCASFailed) {
			delete(w.revs, key) // another worker changed it: re-learn next time
			return true, nil
		}
		if err == nil {
			w.revs[key] = resp.Revision
		}
		return false, err
	case opTxn:
		// If the key exists, overwrite it and read it back; else create it.
		resp, err := w.cl.Txn(ctx, &api.TxnRequest{
			Compare: []api.Compare{api.CompareModRevision(key, api.ResultGreater, 0)},
			Success: []api.Op{api.PutOp(key, w.value), api.GetOp(key)},
			Failure: []api.Op{api.PutOp(key, w.value)},
		})
		if err != nil {
			return false, err
		}
		w.revs[key] = resp.Revision
		return !resp.Succeeded, nil
	case opDel:
		resp, err := w.cl.Delete(ctx, key)
		if err != nil {
			return false, err
		}
		delete(w.revs, key)
		return resp.Deleted == 0, nil
	}
	return false, fmt.Errorf("unknown op %d", op)
}

// startCPUProfile profiles this process into path until the returned
// function is called.
func startCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	return sync.OnceFunc(func() {
		pprof.StopCPUProfile()
		f.Close()
	}), nil
}
