package history

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestRecorderRoundTrip(t *testing.T) {
	dir := t.TempDir()
	want := []Op{
		{Client: 0, F: FPut, Key: "k", Value: "c0-1", Type: TypeOK, Rev: 2, Call: 1, Return: 5},
		{Client: 1, F: FGet, Key: "k", Type: TypeOK, Found: true, Out: "c0-1", Rev: 2, Call: 3, Return: 9},
		{Client: 0, F: FCAS, Key: "k", Value: "c0-2", ExpectRev: 2, Type: TypeInfo, Call: 10, Return: 20, Err: "timeout"},
		{Client: 1, F: FRead, Values: []string{"a", "b"}, Type: TypeOK, Call: 30, Return: 31},
	}
	recs := map[int]*Recorder{}
	for _, op := range want {
		r, ok := recs[op.Client]
		if !ok {
			var err error
			r, err = NewRecorder(filepath.Join(dir, "client-"+string(rune('0'+op.Client))+".jsonl"))
			if err != nil {
				t.Fatal(err)
			}
			recs[op.Client] = r
		}
		r.Add(op)
	}
	for _, r := range recs {
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
		if err := r.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
	}
	got, err := ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("ReadDir =\n%v\nwant\n%v", got, want)
	}
	if s := want[2].String(); !strings.Contains(s, "info cas k c0-2 if-rev=2") {
		t.Fatalf("String() = %q", s)
	}
}

func TestReadMalformed(t *testing.T) {
	for _, in := range []string{`{"f":"put","type":"maybe"}`, `{"type":"ok"}`, `not json`} {
		if _, err := Read(strings.NewReader(in)); !errors.Is(err, ErrMalformed) {
			t.Errorf("Read(%q) = %v, want ErrMalformed", in, err)
		}
	}
}

func TestWindows(t *testing.T) {
	evs := []Event{
		{ID: 0, Phase: "info", Fault: "run", Time: 0},
		{ID: 1, Phase: "start", Fault: "kill-one", Detail: "killed n2", Time: 10},
		{ID: 1, Phase: "end", Fault: "kill-one", Time: 20},
		{ID: 2, Phase: "start", Fault: "pause-one", Time: 30},
	}
	got := Windows(evs, 99)
	want := []Window{{ID: 1, Fault: "kill-one", Detail: "killed n2", Start: 10, End: 20}, {ID: 2, Fault: "pause-one", Start: 30, End: 99}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Windows = %+v, want %+v", got, want)
	}
	p := filepath.Join(t.TempDir(), "nemesis.jsonl")
	if err := os.WriteFile(p, []byte(`{"id":1,"phase":"start","fault":"x","time":5}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if e, err := ReadEvents(p); err != nil || len(e) != 1 || e[0].Time != 5 {
		t.Fatalf("ReadEvents = %v, %v", e, err)
	}
}
