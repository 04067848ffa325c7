package checker

import (
	"fmt"
	"testing"

	"github.com/statenode/statenode/jepsen/history"
)

func sacq(c int, s uint64, k int64, tok uint64, call, ret int64) history.Op {
	return history.Op{Client: c, F: history.FSemAcquire, Key: "S", Session: s, Size: 2, N: k, Count: k, Token: tok, Type: history.TypeOK, Call: call * ms, Return: ret * ms}
}

func srel(c int, s uint64, k int64, call, ret int64) history.Op {
	return history.Op{Client: c, F: history.FSemRelease, Key: "S", Session: s, N: k, Type: history.TypeOK, Call: call * ms, Return: ret * ms}
}

func stry(c int, s uint64, k int64, call, ret int64) history.Op {
	o := history.Op{Client: c, F: history.FSemAcquire, Key: "S", Session: s, Size: 2, N: k, Value: "try", Type: history.TypeFail,
		Err: "client: server answered 409 no_permits: not enough permits", Call: call * ms, Return: ret * ms}
	return o
}

func switness(c int, s uint64, vals []string, sum int64, call, ret int64) history.Op {
	return history.Op{Client: c, F: history.FSemWitness, Key: "S", Session: s, Values: vals, N: sum, Type: history.TypeOK, Call: call * ms, Return: ret * ms}
}

func semResult(t *testing.T, ops []history.Op, name string) Result {
	t.Helper()
	for _, r := range Semaphore(ops) {
		if r.Name == name {
			return r
		}
	}
	t.Fatalf("no %s result", name)
	return Result{}
}

func TestSemaphore(t *testing.T) {
	w := WitnessValue
	good := []history.Op{
		// s1 (1 permit) and s2 (1 permit) hold together; s3 waits for 2
		// and gets them when both released (one command: token 30 for
		// nobody else).
		sacq(0, 1, 1, 10, 0, 5), switness(0, 1, []string{w(1, 1)}, 1, 6, 7),
		sacq(1, 2, 1, 20, 1, 8), switness(1, 2, []string{w(1, 1), w(2, 1)}, 2, 9, 10),
		srel(0, 1, 1, 11, 12), srel(1, 2, 1, 13, 14),
		sacq(2, 3, 2, 30, 2, 15), switness(2, 3, []string{w(3, 2)}, 2, 16, 17), srel(2, 3, 2, 18, 19),
		// s4's session expired while it held (no acknowledged release):
		// s5 and s6 may then hold both permits.
		sacq(0, 4, 1, 40, 20, 21),
		typ(srel(0, 4, 1, 40, 41), history.TypeFail),
		sacq(1, 5, 1, 50, 22, 23), sacq(2, 6, 1, 60, 24, 25), srel(1, 5, 1, 30, 31), srel(2, 6, 1, 32, 33),
		// an indeterminate acquire explains a later refusal
		typ(history.Op{Client: 3, F: history.FSemAcquire, Key: "S", Session: 7, Size: 2, N: 2, Type: history.TypeInfo, Call: 50 * ms, Return: 52 * ms}, history.TypeInfo),
		stry(4, 8, 1, 60, 61),
		// two waiters granted by one release share its token
		sacq(0, 9, 2, 100, 70, 71), sacq(1, 10, 1, 110, 72, 80), sacq(2, 11, 1, 110, 73, 81), srel(0, 9, 2, 74, 75),
	}
	for _, r := range Semaphore(good) {
		wantValid(t, r, true, "")
	}
	cases := []struct {
		name, check, want string
		ops               []history.Op
	}{
		{"three holders of two permits", "semaphore", "over-granted", []history.Op{
			sacq(0, 1, 1, 10, 0, 1), sacq(1, 2, 1, 20, 0, 2), sacq(2, 3, 1, 30, 0, 3),
			srel(0, 1, 1, 10, 11), srel(1, 2, 1, 10, 11), srel(2, 3, 1, 10, 11),
		}},
		{"a k=2 holder and a k=1 holder", "semaphore", "over-granted", []history.Op{
			sacq(0, 1, 2, 10, 0, 1), sacq(1, 2, 1, 20, 2, 3), srel(1, 2, 1, 4, 5), srel(0, 1, 2, 6, 7),
		}},
		{"granted more than asked", "semaphore", "granted 2", []history.Op{
			func() history.Op { o := sacq(0, 1, 1, 10, 0, 1); o.Count = 2; return o }(),
		}},
		{"tokens backwards", "semaphore", "backwards", []history.Op{sacq(0, 1, 1, 20, 0, 1), sacq(1, 2, 1, 10, 2, 3)}},
		{"one token for two grants apart in time", "semaphore", "do not overlap", []history.Op{sacq(0, 1, 1, 20, 0, 1), sacq(1, 2, 1, 20, 2, 3)}},
		{"release without a grant", "semaphore", "never granted", []history.Op{srel(0, 1, 1, 0, 1)}},
		{"refusal with every permit free", "semaphore", "refused while at most 0", []history.Op{stry(0, 1, 1, 0, 1)}},
		{"refusal after the holder released", "semaphore", "refused while at most 1", []history.Op{
			sacq(0, 1, 1, 10, 0, 1), srel(0, 1, 1, 2, 3), sacq(1, 2, 1, 20, 4, 5), stry(2, 3, 1, 6, 7),
		}},
		{"witness sees three permits", "semaphore-witness", "over-granted", []history.Op{
			sacq(0, 1, 1, 10, 0, 1), sacq(1, 2, 2, 20, 0, 2), switness(0, 1, []string{w(1, 1), w(2, 2)}, 3, 3, 4),
		}},
		{"witness of a stranger", "semaphore-witness", "never asked", []history.Op{
			sacq(0, 1, 1, 10, 0, 1), switness(0, 1, []string{w(1, 1), w(9, 1)}, 2, 3, 4),
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { wantValid(t, semResult(t, c.ops, c.check), false, c.want) })
	}
}

func lcreate(c int, s uint64, call int64) history.Op {
	return history.Op{Client: c, F: history.FLatchCreate, Key: "L", Session: s, Size: 3, Count: 3, Type: history.TypeOK, Call: call * ms, Return: (call + 1) * ms}
}

func lcd(c int, s, id uint64, count int64, call, ret int64) history.Op {
	return history.Op{Client: c, F: history.FCountDown, Key: "L", Session: s, ReqID: id, Count: count, Type: history.TypeOK, Call: call * ms, Return: ret * ms}
}

func lawait(c int, count int64, call, ret int64) history.Op {
	return history.Op{Client: c, F: history.FLatchAwait, Key: "L", Count: count, Type: history.TypeOK, Call: call * ms, Return: ret * ms}
}

func lread(count int64) history.Op {
	return history.Op{Client: 999, F: history.FLatchRead, Key: "L", Count: count, Type: history.TypeOK, Call: 1000 * ms, Return: 1001 * ms}
}

func TestLatch(t *testing.T) {
	base := []history.Op{
		lcreate(0, 1, 0), lcreate(1, 2, 0),
		lcd(0, 1, 100, 2, 2, 3), lcd(0, 1, 100, 2, 4, 5), // a retry answers the same
		lcd(1, 2, 100, 1, 2, 6), // same request ID, other session: another count-down
		lawait(2, 0, 1, 20),
	}
	third := typ(lcd(1, 2, 101, 0, 7, 9), history.TypeInfo)
	good := append(append([]history.Op(nil), base...), lcd(0, 1, 101, 0, 7, 8), third, lread(0))
	wantValid(t, Latch(good), true, "")
	// the indeterminate one may not have applied
	wantValid(t, Latch(append(append([]history.Op(nil), base...), typ(lcd(1, 2, 101, 0, 7, 9), history.TypeInfo), lread(1))), true, "")
	// past zero: the extra count-down answers 0
	wantValid(t, Latch(append(append([]history.Op(nil), base...), lcd(0, 1, 101, 0, 7, 8), lcd(1, 2, 101, 0, 9, 10), lread(0))), true, "")

	// Every create indeterminate (all members down) and no latch at the
	// end: the creates failed, which is allowed.
	wantValid(t, Latch([]history.Op{typ(lcreate(0, 1, 0), history.TypeInfo), typ(lcreate(1, 2, 0), history.TypeInfo), lread(history.LatchAbsent)}), true, "")

	cases := []struct {
		name, want string
		ops        []history.Op
	}{
		{"acknowledged latch gone", "absent at the end", []history.Op{
			typ(lcreate(0, 1, 0), history.TypeInfo), lcreate(1, 2, 0), lread(history.LatchAbsent),
		}},
		{"counted-down latch gone", "absent at the end", []history.Op{
			typ(lcreate(0, 1, 0), history.TypeInfo), lcd(0, 1, 100, 2, 2, 3), lread(history.LatchAbsent),
		}},
		{"retry applied twice", "applied twice", append(append([]history.Op(nil), base[:3]...),
			lcd(0, 1, 100, 1, 6, 7), lread(1))},
		{"two IDs leave the same count", "both left 2", []history.Op{
			lcreate(0, 1, 0), lcd(0, 1, 100, 2, 2, 3), lcd(1, 2, 200, 2, 2, 4), lread(1),
		}},
		{"await open too early", "only 2 of 3", []history.Op{
			lcreate(0, 1, 0), lcd(0, 1, 100, 2, 2, 3), lcd(1, 2, 200, 1, 2, 4), lawait(2, 0, 1, 5), lcd(0, 1, 101, 0, 6, 7), lread(0),
		}},
		{"zero before C invoked", "only 2 distinct", []history.Op{
			lcreate(0, 1, 0), lcd(0, 1, 100, 2, 2, 3), lcd(1, 2, 200, 0, 2, 4), lread(0),
		}},
		{"opened with fewer count-downs", "outside [1, 1]", []history.Op{
			lcreate(0, 1, 0), lcd(0, 1, 100, 2, 2, 3), lcd(1, 2, 200, 1, 2, 4), lread(0),
		}},
		{"a count-down lost", "outside [0, 0]", []history.Op{
			lcreate(0, 1, 0), lcd(0, 1, 100, 2, 2, 3), lcd(1, 2, 200, 1, 2, 4), lcd(0, 1, 101, 0, 5, 6), lread(1),
		}},
		{"a retry applied twice, seen only at the end", "outside [1, 1]", []history.Op{
			lcreate(0, 1, 0), lcd(0, 1, 100, 2, 2, 3), lcd(0, 1, 100, 2, 4, 5), lcd(1, 2, 200, 1, 2, 6), lread(0),
		}},
		{"await returns a count", "await returned with count 1", []history.Op{
			lcreate(0, 1, 0), lcd(0, 1, 100, 2, 2, 3), lcd(1, 2, 200, 1, 2, 4), lcd(0, 1, 101, 0, 5, 6), lawait(2, 1, 1, 7), lread(0),
		}},
		{"no final read", "no successful final read", []history.Op{lcreate(0, 1, 0), lcd(0, 1, 100, 2, 2, 3)}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { wantValid(t, Latch(c.ops), false, c.want) })
	}
}

func bawait(c int, s, gen uint64, arrival int64, call, ret int64) history.Op {
	return history.Op{Client: c, F: history.FBarrier, Key: "B", Session: s, Size: 3, Token: gen, Arrival: arrival, Type: history.TypeOK, Call: call * ms, Return: ret * ms}
}

func bbroken(c int, s, culprit uint64, call, ret int64) history.Op {
	return history.Op{Client: c, F: history.FBarrier, Key: "B", Session: s, Size: 3, Culprit: culprit, Type: history.TypeFail,
		Err:  fmt.Sprintf("client: server answered 409 barrier_broken: barrier \"B\" broken: session %d ended while registered", culprit),
		Call: call * ms, Return: ret * ms}
}

func alive(ids ...string) history.Op {
	return history.Op{Client: 999, F: history.FSessions, Values: ids, Type: history.TypeOK, Call: 1000 * ms, Return: 1000 * ms}
}

func TestBarrier(t *testing.T) {
	const hang = 10_000 * ms
	good := []history.Op{
		bawait(0, 1, 10, 0, 0, 5), bawait(1, 2, 10, 1, 1, 5), bawait(2, 3, 10, 2, 4, 5),
		typ(bawait(0, 1, 0, 0, 6, 9), history.TypeFail), // withdrawn (wait timeout)
		bawait(0, 1, 20, 0, 10, 15), bawait(1, 2, 20, 1, 11, 15), bawait(2, 3, 20, 2, 12, 15),
		// session 3 is destroyed while registered: the barrier breaks
		typ(bawait(2, 3, 0, 0, 16, 19), history.TypeInfo),
		{Client: 2, F: history.FSessionEnd, Session: 3, Value: "destroy", Type: history.TypeOK, Call: 17 * ms, Return: 18 * ms},
		bbroken(0, 1, 3, 16, 18), bbroken(1, 2, 3, 17, 18), bbroken(1, 2, 3, 20, 21),
		alive("1", "2"),
	}
	wantValid(t, Barrier(good, hang), true, "")
	BarrierCulpritTest := BarrierCulprit(`client: server answered 409 barrier_broken: barrier "b/0" broken: session 4242 ended while registered`)
	if BarrierCulpritTest != 4242 {
		t.Fatalf("BarrierCulprit = %d", BarrierCulpritTest)
	}
	cases := []struct {
		name, want string
		ops        []history.Op
	}{
		{"released before N arrived", "at most 2 of 3", []history.Op{
			bawait(0, 1, 10, 0, 0, 5), bawait(1, 2, 10, 1, 1, 5), bawait(2, 3, 10, 2, 6, 7),
		}},
		{"a timed-out await does not count", "at most 2 of 3", []history.Op{
			typ(bawait(2, 3, 0, 0, 0, 1), history.TypeFail), bawait(0, 1, 10, 0, 2, 5), bawait(1, 2, 10, 1, 3, 5),
		}},
		{"too many released", "released 4 parties", []history.Op{
			bawait(0, 1, 10, 0, 0, 5), bawait(1, 2, 10, 1, 0, 5), bawait(2, 3, 10, 2, 0, 5), bawait(3, 4, 10, 2, 0, 5),
		}},
		{"arrival repeated", "repeated", []history.Op{
			bawait(0, 1, 10, 0, 0, 5), bawait(1, 2, 10, 0, 0, 5), bawait(2, 3, 10, 2, 0, 5),
		}},
		{"generations backwards", "backwards", []history.Op{
			bawait(0, 1, 20, 0, 0, 5), bawait(1, 2, 20, 1, 0, 5), bawait(2, 3, 20, 2, 0, 5),
			bawait(0, 1, 10, 0, 6, 9), bawait(1, 2, 10, 1, 6, 9), bawait(2, 3, 10, 2, 6, 9),
		}},
		{"culprit still alive at the end", "still alive at the end", []history.Op{
			bawait(0, 1, 0, 0, 0, 1), bbroken(1, 2, 1, 0, 2), alive("1", "2"),
		}},
		{"culprit acts after the break", "still alive after", []history.Op{
			bawait(0, 1, 0, 0, 0, 1), bbroken(1, 2, 1, 0, 2), sacq(0, 1, 1, 10, 3, 4), alive("2"),
		}},
		{"culprit never awaited", "had not awaited", []history.Op{bbroken(1, 2, 7, 0, 2), alive("2")}},
		{"two culprits", "never reset", []history.Op{
			bawait(0, 1, 0, 0, 0, 1), bawait(0, 3, 0, 0, 0, 1), bbroken(1, 2, 1, 0, 2), bbroken(1, 2, 3, 3, 4), alive("2"),
		}},
		{"no live-session list", "no final list", []history.Op{bawait(0, 1, 0, 0, 0, 1), bbroken(1, 2, 1, 0, 2)}},
		{"hung waiter", "hung", []history.Op{
			func() history.Op { o := typ(bawait(0, 1, 0, 0, 0, 30_000), history.TypeInfo); o.Err = "hung"; return o }(),
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { wantValid(t, Barrier(c.ops, hang), false, c.want) })
	}
}
