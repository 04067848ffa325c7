package checker

import (
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"os"
	"sort"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/statenode/statenode/jepsen/history"
)

// Errors returned by this package.
var (
	// ErrTimeout: the linearizability search did not finish in time. A
	// timeout is a failed check, never a pass.
	ErrTimeout = errors.New("checker: linearizability check timed out")
)

// Result is the verdict of one checker.
type Result struct {
	Name      string   // e.g. "linearizable", "set"
	Valid     bool     // no anomaly found and the check completed
	Ops       int      // operations the checker looked at
	Anomalies []string // one line per anomaly, empty when Valid
	Summary   string   // one line
}

// kvInput is the input of one register operation.
type kvInput struct {
	F         string // history.FGet, FPut, FCAS
	Key       string
	Value     string
	ExpectRev int64
}

// kvOutput is its output. Unknown marks an indeterminate write.
type kvOutput struct {
	Unknown bool
	OK      bool // cas: the condition held
	Found   bool // get, failed cas: the key exists
	Value   string
	Rev     int64
}

// kvState is one key's state. Rev is -1 when the key was last written by an
// indeterminate write whose revision nobody has observed yet.
type kvState struct {
	Exists bool
	Value  string
	Rev    int64
}

const unknownRev = -1

// kvStep lists the states a key can move to. It is nondeterministic only
// for an indeterminate cas against a key of unknown revision (it may or may
// not have matched).
func kvStep(st kvState, in kvInput, out kvOutput) []kvState {
	switch in.F {
	case history.FGet:
		if out.Found != st.Exists {
			return nil
		}
		if !out.Found {
			return []kvState{st}
		}
		if out.Value != st.Value || (st.Rev != unknownRev && st.Rev != out.Rev) {
			return nil
		}
		return []kvState{{Exists: true, Value: st.Value, Rev: out.Rev}}
	case history.FPut:
		if out.Unknown {
			return []kvState{{Exists: true, Value: in.Value, Rev: unknownRev}}
		}
		if st.Rev != unknownRev && st.Exists && out.Rev <= st.Rev {
			return nil
		}
		return []kvState{{Exists: true, Value: in.Value, Rev: out.Rev}}
	case history.FCAS:
		match := func() (yes, maybe bool) {
			if in.ExpectRev == 0 {
				return !st.Exists, false
			}
			if !st.Exists {
				return false, false
			}
			if st.Rev == unknownRev {
				return false, true
			}
			return st.Rev == in.ExpectRev, false
		}
		yes, maybe := match()
		applied := kvState{Exists: true, Value: in.Value, Rev: unknownRev}
		switch {
		case out.Unknown:
			if maybe {
				return []kvState{applied, st}
			}
			if yes {
				return []kvState{applied}
			}
			return []kvState{st}
		case out.OK:
			if !yes && !maybe {
				return nil
			}
			if out.Rev <= in.ExpectRev {
				return nil
			}
			applied.Rev = out.Rev
			return []kvState{applied}
		default: // the condition failed; the answer carries the current key
			if yes {
				return nil
			}
			if out.Found != st.Exists {
				return nil
			}
			if !out.Found {
				return []kvState{st}
			}
			if out.Value != st.Value || out.Rev == in.ExpectRev || (st.Rev != unknownRev && st.Rev != out.Rev) {
				return nil
			}
			return []kvState{{Exists: true, Value: st.Value, Rev: out.Rev}}
		}
	}
	return nil
}

func describeKV(input, output interface{}) string {
	in, out := input.(kvInput), output.(kvOutput)
	res := ""
	switch {
	case out.Unknown:
		res = "?"
	case in.F == history.FGet || (in.F == history.FCAS && !out.OK):
		if out.Found {
			res = fmt.Sprintf("%s@%d", out.Value, out.Rev)
		} else {
			res = "absent"
		}
		if in.F == history.FCAS {
			res = "failed, now " + res
		}
	default:
		res = fmt.Sprintf("rev %d", out.Rev)
	}
	switch in.F {
	case history.FGet:
		return fmt.Sprintf("get(%s) → %s", in.Key, res)
	case history.FPut:
		return fmt.Sprintf("put(%s, %s) → %s", in.Key, in.Value, res)
	default:
		return fmt.Sprintf("cas(%s, if rev=%d, %s) → %s", in.Key, in.ExpectRev, in.Value, res)
	}
}

// KVModel is the Porcupine model of the kv register workload: per-key
// registers with mod revisions, partitioned by key. Indeterminate writes
// must carry an output with Unknown set and Return = math.MaxInt64.
func KVModel() porcupine.Model {
	nm := porcupine.NondeterministicModel{
		Partition: func(h []porcupine.Operation) [][]porcupine.Operation {
			byKey := map[string][]porcupine.Operation{}
			var keys []string
			for _, op := range h {
				k := op.Input.(kvInput).Key
				if _, ok := byKey[k]; !ok {
					keys = append(keys, k)
				}
				byKey[k] = append(byKey[k], op)
			}
			sort.Strings(keys)
			out := make([][]porcupine.Operation, 0, len(keys))
			for _, k := range keys {
				out = append(out, byKey[k])
			}
			return out
		},
		Init: func() []interface{} { return []interface{}{kvState{}} },
		Step: func(state, input, output interface{}) []interface{} {
			next := kvStep(state.(kvState), input.(kvInput), output.(kvOutput))
			out := make([]interface{}, len(next))
			for i, s := range next {
				out[i] = s
			}
			return out
		},
		Hash: func(state interface{}) uint64 {
			s := state.(kvState)
			h := fnv.New64a()
			fmt.Fprintf(h, "%t/%s/%d", s.Exists, s.Value, s.Rev)
			return h.Sum64()
		},
		DescribeOperation: describeKV,
		DescribeState: func(state interface{}) string {
			s := state.(kvState)
			switch {
			case !s.Exists:
				return "absent"
			case s.Rev == unknownRev:
				return s.Value + "@?"
			default:
				return fmt.Sprintf("%s@%d", s.Value, s.Rev)
			}
		},
	}
	return nm.ToModel()
}

// KVOperations turns a kv register history into Porcupine operations:
// ok operations as they are, indeterminate writes with an unknown output
// and Return = math.MaxInt64 (they may take effect at any time after their
// call), failed operations and reads of unknown outcome dropped (they had
// no effect). A cas that failed its condition is kept: its answer is a
// linearizable read of the key.
func KVOperations(ops []history.Op) []porcupine.Operation {
	var out []porcupine.Operation
	for _, o := range ops {
		if o.F != history.FGet && o.F != history.FPut && o.F != history.FCAS {
			continue
		}
		in := kvInput{F: o.F, Key: o.Key, Value: o.Value, ExpectRev: o.ExpectRev}
		var res kvOutput
		ret := o.Return
		switch {
		case o.Type == history.TypeOK:
			res = kvOutput{OK: true, Found: o.Found, Value: o.Out, Rev: o.Rev}
		case o.Type == history.TypeFail && o.F == history.FCAS && o.Err == CASFailed:
			res = kvOutput{OK: false, Found: o.Found, Value: o.Out, Rev: o.Rev}
		case o.Type == history.TypeInfo && o.F != history.FGet:
			res = kvOutput{Unknown: true}
			ret = math.MaxInt64
		default:
			continue
		}
		out = append(out, porcupine.Operation{ClientId: o.Client, Input: in, Call: o.Call, Output: res, Return: ret})
	}
	return out
}

// CASFailed is the Op.Err of a cas whose condition did not hold (a
// definite failure whose answer carries the key's current value).
const CASFailed = "cas-failed"

// Linearizable checks a kv register history with Porcupine within timeout.
// If htmlPath is not empty it writes the visualization there, with the
// fault windows drawn as annotations.
func Linearizable(ops []history.Op, windows []history.Window, timeout time.Duration, htmlPath string) Result {
	pops := KVOperations(ops)
	res := Result{Name: "linearizable", Ops: len(pops)}
	model := KVModel()
	verdict, info := porcupine.CheckOperationsVerbose(model, pops, timeout)
	if htmlPath != "" {
		var ann []porcupine.Annotation
		for _, w := range windows {
			ann = append(ann, porcupine.Annotation{
				Tag: "nemesis", Start: w.Start, End: w.End,
				Description: w.Fault, Details: w.Detail, BackgroundColor: "#ffd6d6",
			})
		}
		info.AddAnnotations(ann)
		if err := writeVisualization(model, info, htmlPath); err != nil {
			res.Anomalies = append(res.Anomalies, "visualization: "+err.Error())
		}
	}
	switch verdict {
	case porcupine.Ok:
		res.Valid = true
		res.Summary = fmt.Sprintf("linearizable (%d operations)", len(pops))
	case porcupine.Illegal:
		res.Summary = fmt.Sprintf("NOT linearizable (%d operations)", len(pops))
		res.Anomalies = append(res.Anomalies, illegalDetail(model, pops, info)...)
	default:
		res.Summary = fmt.Sprintf("%v after %s (%d operations)", ErrTimeout, timeout, len(pops))
		res.Anomalies = append(res.Anomalies, ErrTimeout.Error())
	}
	if len(res.Anomalies) > 0 {
		res.Valid = false
	}
	return res
}

// illegalDetail names the keys whose history could not be linearized and
// the longest prefix that could.
func illegalDetail(model porcupine.Model, pops []porcupine.Operation, info porcupine.LinearizationInfo) []string {
	var out []string
	sizes := []int{}
	for _, p := range model.Partition(pops) {
		sizes = append(sizes, len(p))
	}
	parts := info.PartialLinearizationsOperations()
	for i, p := range parts {
		// Each partition lists its longest partial linearizations; a
		// partition that is fully linearizable is not reported.
		longest := 0
		var best []porcupine.Operation
		for _, lin := range p {
			if len(lin) > longest {
				longest, best = len(lin), lin
			}
		}
		if len(best) == 0 || (i < len(sizes) && longest == sizes[i]) {
			continue
		}
		key := best[0].Input.(kvInput).Key
		last := best[len(best)-1]
		out = append(out, fmt.Sprintf("key %s: longest linearizable prefix has %d operations, ending with %s; see history.html",
			key, longest, describeKV(last.Input, last.Output)))
	}
	if len(out) == 0 {
		out = append(out, "history is not linearizable; see history.html")
	}
	return out
}

func writeVisualization(model porcupine.Model, info porcupine.LinearizationInfo, path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := porcupine.Visualize(model, info, f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
