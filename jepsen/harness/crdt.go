package harness

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/statenode/statenode/jepsen/checker"
	"github.com/statenode/statenode/jepsen/history"
)

// CRDT objects of the crdt workload.
const (
	crdtCounter = "jepsen-counter"
	crdtSet     = "jepsen-set"
	// crdtQuiet bounds the wait, after every fault healed, for every
	// member to report the same values.
	crdtQuiet = 30 * time.Second
)

// crdtWorkload: counter increments and OR-set adds and removes on the
// member each client is bound to (CRDT requests are never forwarded),
// spread by gossip; after healing, every member must converge to values
// the operations explain.
type crdtWorkload struct{}

func (crdtWorkload) Name() string { return "crdt" }

func (crdtWorkload) gossip() bool { return true }

func (crdtWorkload) Run(ctx context.Context, e *Env) error {
	var mu sync.Mutex
	added := map[int][]string{} // client → its acknowledged adds not yet removed
	return e.runClients(ctx, func(_ context.Context, c *boundClient, id int, rec *history.Recorder, rng *rand.Rand, seq int) {
		op := history.Op{Client: id, Node: e.Cluster.Nodes[c.node].ID}
		ctx, cancel := e.opCtx()
		defer cancel()
		mu.Lock()
		mine := added[id]
		mu.Unlock()
		var err error
		switch r := rng.IntN(10); {
		case r < 5:
			op.F, op.Key, op.N = history.FCounterInc, crdtCounter, int64(1+rng.IntN(3))
			op.Call = e.Clock.Now()
			_, err = c.CounterInc(ctx, crdtCounter, op.N)
		case r < 8 || len(mine) == 0:
			op.F, op.Key, op.Value = history.FSetAddElem, crdtSet, fmt.Sprintf("c%d-%d", id, seq)
			op.Call = e.Clock.Now()
			err = c.SetAdd(ctx, crdtSet, op.Value)
			if err == nil {
				mine = append(mine, op.Value)
			}
		default:
			k := rng.IntN(len(mine))
			op.F, op.Key, op.Value = history.FSetRemove, crdtSet, mine[k]
			mine = slices.Delete(mine, k, k+1)
			op.Call = e.Clock.Now()
			err = c.SetRemove(ctx, crdtSet, op.Value)
		}
		op.Return = e.Clock.Now()
		op.Type, op.Err = classify(err)
		mu.Lock()
		added[id] = mine
		mu.Unlock()
		e.record(rec, op)
	})
}

// Final waits (up to crdtQuiet) until every member reports the same value
// of every object, then records each member's last read of each.
func (crdtWorkload) Final(ctx context.Context, e *Env) error {
	rec, err := history.NewRecorder(e.path(fmt.Sprintf("client-%03d.jsonl", FinalClient)))
	if err != nil {
		return err
	}
	defer rec.Close()
	clients := make([]*boundClient, len(e.Cluster.Nodes))
	for i := range clients {
		if clients[i], err = e.newBoundClient(i); err != nil {
			return err
		}
		defer clients[i].close()
	}
	deadline := time.Now().Add(crdtQuiet)
	for {
		var round []history.Op
		for i, c := range clients {
			node := e.Cluster.Nodes[i].ID
			rctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			o := history.Op{Client: FinalClient, Node: node, F: history.FCounterRead, Key: crdtCounter, Call: e.Clock.Now()}
			v, err := c.CounterValue(rctx, crdtCounter)
			o.Return = e.Clock.Now()
			o.N, o.Type, o.Err = v, history.TypeOK, ""
			if err != nil {
				o.N, o.Type, o.Err = 0, history.TypeFail, err.Error()
			}
			round = append(round, o)
			s := history.Op{Client: FinalClient, Node: node, F: history.FSetRead, Key: crdtSet, Call: e.Clock.Now()}
			elems, err := c.SetElements(rctx, crdtSet)
			s.Return = e.Clock.Now()
			cancel()
			s.Type = history.TypeOK
			if err != nil {
				s.Type, s.Err = history.TypeFail, err.Error()
			}
			s.Values = append([]string{}, elems...)
			sort.Strings(s.Values)
			round = append(round, s)
		}
		if converged(round) || time.Now().After(deadline) || ctx.Err() != nil {
			for _, o := range round {
				rec.Add(o)
			}
			if !converged(round) {
				return fmt.Errorf("members did not converge within %s of healing", crdtQuiet)
			}
			return nil
		}
		sleepCtx(ctx, 500*time.Millisecond)
	}
}

// converged: every read of the round succeeded and reads of one object agree.
func converged(round []history.Op) bool {
	first := map[string]history.Op{}
	for _, o := range round {
		if o.Type != history.TypeOK {
			return false
		}
		f, ok := first[o.Key]
		if !ok {
			first[o.Key] = o
			continue
		}
		if f.N != o.N || !slices.Equal(f.Values, o.Values) {
			return false
		}
	}
	return true
}

func (crdtWorkload) Check(ops []history.Op, _ []history.Window, _ string, _ time.Duration) []checker.Result {
	return checker.CRDT(ops)
}
