package checker

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/statenode/statenode/jepsen/history"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const ms = int64(time.Millisecond)

func put(c int, key, v string, rev int64, call, ret int64) history.Op {
	return history.Op{Client: c, F: history.FPut, Key: key, Value: v, Type: history.TypeOK, Rev: rev, Call: call * ms, Return: ret * ms}
}

func get(c int, key, v string, rev int64, call, ret int64) history.Op {
	return history.Op{Client: c, F: history.FGet, Key: key, Type: history.TypeOK, Found: v != "", Out: v, Rev: rev, Call: call * ms, Return: ret * ms}
}

func info(o history.Op) history.Op {
	o.Type, o.Rev, o.Found, o.Out, o.Err = history.TypeInfo, 0, false, "", "timeout"
	return o
}

func cas(c int, key, v string, expect, rev int64, call, ret int64) history.Op {
	return history.Op{Client: c, F: history.FCAS, Key: key, Value: v, ExpectRev: expect, Type: history.TypeOK, Rev: rev, Call: call * ms, Return: ret * ms}
}

func casFail(c int, key, v string, expect int64, cur string, curRev int64, call, ret int64) history.Op {
	return history.Op{Client: c, F: history.FCAS, Key: key, Value: v, ExpectRev: expect, Type: history.TypeFail, Err: CASFailed,
		Found: cur != "", Out: cur, Rev: curRev, Call: call * ms, Return: ret * ms}
}

func TestLinearizable(t *testing.T) {
	cases := []struct {
		name  string
		ops   []history.Op
		valid bool
	}{
		{"empty", nil, true},
		{"sequential", []history.Op{
			get(0, "a", "", 0, 0, 1), put(0, "a", "v1", 2, 2, 3), get(1, "a", "v1", 2, 4, 5),
			cas(1, "a", "v2", 2, 3, 6, 7), get(0, "a", "v2", 3, 8, 9),
		}, true},
		{"concurrent read may see either", []history.Op{
			put(0, "a", "v1", 2, 0, 1), put(0, "a", "v2", 5, 10, 20), get(1, "a", "v1", 2, 11, 12), get(2, "a", "v2", 5, 13, 14),
		}, true},
		{"stale read", []history.Op{
			put(0, "a", "v1", 2, 0, 10), put(0, "a", "v2", 3, 20, 30), get(1, "a", "v1", 2, 40, 50),
		}, false},
		{"read of a value never written", []history.Op{put(0, "a", "v1", 2, 0, 10), get(1, "a", "zz", 2, 20, 30)}, false},
		{"indeterminate put later observed", []history.Op{
			put(0, "a", "v1", 2, 0, 10), info(put(0, "a", "v2", 0, 20, 30)), get(1, "a", "v2", 7, 40, 50), get(1, "a", "v2", 7, 60, 70),
		}, true},
		{"indeterminate put never observed", []history.Op{
			put(0, "a", "v1", 2, 0, 10), info(put(0, "a", "v2", 0, 20, 30)), get(1, "a", "v1", 2, 40, 50),
		}, true},
		{"indeterminate put observed then forgotten", []history.Op{
			put(0, "a", "v1", 2, 0, 10), info(put(0, "a", "v2", 0, 20, 30)), get(1, "a", "v2", 7, 40, 50), get(1, "a", "v1", 2, 60, 70),
		}, false},
		{"indeterminate put observed at two revisions", []history.Op{
			info(put(0, "a", "v2", 0, 20, 30)), get(1, "a", "v2", 7, 40, 50), get(1, "a", "v2", 8, 60, 70),
		}, false},
		{"failed write observed", []history.Op{
			put(0, "a", "v1", 2, 0, 10),
			{Client: 0, F: history.FPut, Key: "a", Value: "v2", Type: history.TypeFail, Call: 20 * ms, Return: 30 * ms},
			get(1, "a", "v2", 3, 40, 50),
		}, false},
		{"cas with the wrong revision succeeds", []history.Op{
			put(0, "a", "v1", 2, 0, 10), cas(1, "a", "v2", 9, 10, 20, 30),
		}, false},
		{"cas fails although it matched", []history.Op{
			put(0, "a", "v1", 2, 0, 10), casFail(1, "a", "v2", 2, "v1", 2, 20, 30),
		}, false},
		{"cas fails and reports the current value", []history.Op{
			put(0, "a", "v1", 2, 0, 10), casFail(1, "a", "v2", 1, "v1", 2, 20, 30), cas(1, "a", "v3", 2, 4, 40, 50),
		}, true},
		{"cas on an absent key", []history.Op{cas(0, "a", "v1", 0, 3, 0, 10), casFail(0, "a", "v2", 0, "v1", 3, 20, 30)}, true},
		{"indeterminate cas may or may not apply", []history.Op{
			put(0, "a", "v1", 2, 0, 10), info(cas(0, "a", "v2", 2, 0, 20, 30)), get(1, "a", "v1", 2, 40, 50), get(1, "a", "v2", 6, 60, 70),
		}, true},
		{"revisions go backwards", []history.Op{put(0, "a", "v1", 5, 0, 10), put(0, "a", "v2", 4, 20, 30)}, false},
		{"keys are independent", []history.Op{
			put(0, "a", "v1", 2, 0, 10), put(0, "b", "w1", 3, 20, 30), get(1, "a", "v1", 2, 40, 50), get(1, "b", "w1", 3, 40, 50),
		}, true},
		{"failed reads are ignored", []history.Op{
			put(0, "a", "v1", 2, 0, 10),
			{Client: 1, F: history.FGet, Key: "a", Type: history.TypeInfo, Call: 20 * ms, Return: 30 * ms},
		}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			html := filepath.Join(t.TempDir(), "h.html")
			r := Linearizable(tc.ops, []history.Window{{Fault: "partition", Start: 5 * ms, End: 25 * ms}}, 10*time.Second, html)
			if r.Valid != tc.valid {
				t.Fatalf("Valid = %v, want %v: %s %v", r.Valid, tc.valid, r.Summary, r.Anomalies)
			}
			if !tc.valid && len(r.Anomalies) == 0 {
				t.Fatalf("invalid history without anomalies")
			}
			b, err := os.ReadFile(html)
			if err != nil || !strings.Contains(string(b), "partition") {
				t.Fatalf("visualization missing or without the fault annotation: %v", err)
			}
		})
	}
}

func TestIndeterminateGetsInfiniteReturn(t *testing.T) {
	ops := KVOperations([]history.Op{info(put(0, "a", "v", 0, 1, 2))})
	if len(ops) != 1 || ops[0].Return != math.MaxInt64 || !ops[0].Output.(kvOutput).Unknown {
		t.Fatalf("indeterminate put = %+v, want Return = MaxInt64 and an unknown output", ops)
	}
}

// TestTimeoutIsFailure: a search that cannot finish in time fails the
// check. The history is exponential for the search: 24 indeterminate puts
// that every read may or may not follow, and a last read no order explains.
func TestTimeoutIsFailure(t *testing.T) {
	var ops []history.Op
	for i := 0; i < 24; i++ {
		ops = append(ops, info(put(i, "a", fmt.Sprintf("v%d", i), 0, 0, 1)))
	}
	for i := 0; i < 24; i++ {
		ops = append(ops, get(100, "a", fmt.Sprintf("v%d", i), int64(1000+i), int64(10+2*i), int64(11+2*i)))
	}
	ops = append(ops, get(100, "a", "nope", 5, 1000, 1001))
	r := Linearizable(ops, nil, 50*time.Millisecond, "")
	if r.Valid {
		t.Fatalf("a 50ms budget on an exponential history passed: %s", r.Summary)
	}
	if !strings.Contains(strings.Join(r.Anomalies, " "), ErrTimeout.Error()) {
		t.Fatalf("anomalies %v do not name the timeout", r.Anomalies)
	}
}

func add(c int, v, typ string) history.Op {
	return history.Op{Client: c, F: history.FAdd, Value: v, Type: typ}
}

func read(vs ...string) history.Op {
	return history.Op{Client: 999, F: history.FRead, Type: history.TypeOK, Values: vs, Call: 100}
}

func TestSet(t *testing.T) {
	cases := []struct {
		name  string
		ops   []history.Op
		valid bool
		want  string
	}{
		{"all there", []history.Op{add(0, "a", "ok"), add(1, "b", "ok"), read("a", "b")}, true, ""},
		{"indeterminate may be missing or present", []history.Op{add(0, "a", "ok"), add(1, "b", "info"), add(1, "c", "info"), read("a", "c")}, true, ""},
		{"failed add absent", []history.Op{add(0, "a", "ok"), add(1, "b", "fail"), read("a")}, true, ""},
		{"lost acknowledged add", []history.Op{add(0, "a", "ok"), add(1, "b", "ok"), read("a")}, false, "lost"},
		{"element from nowhere", []history.Op{add(0, "a", "ok"), read("a", "zz")}, false, "never added"},
		{"failed add present", []history.Op{add(0, "a", "fail"), read("a")}, false, "not applied"},
		{"no final read", []history.Op{add(0, "a", "ok")}, false, "no successful final read"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := Set(tc.ops)
			if r.Valid != tc.valid {
				t.Fatalf("Valid = %v, want %v: %s %v", r.Valid, tc.valid, r.Summary, r.Anomalies)
			}
			if tc.want != "" && !strings.Contains(strings.Join(r.Anomalies, "\n"), tc.want) {
				t.Fatalf("anomalies %v lack %q", r.Anomalies, tc.want)
			}
		})
	}
}
