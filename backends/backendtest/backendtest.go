// Package backendtest is the conformance suite every backends.Backend (store
// or wrapper combination) must pass.
//
//	func TestConformance(t *testing.T) {
//		backendtest.Run(t, func(t *testing.T) backends.Backend {
//			return memory.New()
//		})
//	}
//
// The factory is called once per subtest and must return an empty store
// (use a unique key prefix or schema per call); Run closes it.
package backendtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/statenode/statenode/backends"
)

// Factory returns a new, empty Backend for one subtest. It may register
// t.Cleanup to drop what it created; Run closes the Backend itself.
type Factory func(t *testing.T) backends.Backend

// Run runs the conformance suite against backends made by newBackend.
func Run(t *testing.T, newBackend Factory) {
	tests := []struct {
		name string
		fn   func(*testing.T, backends.Backend)
	}{
		{"GetMissing", testGetMissing},
		{"PutGet", testPutGet},
		{"Versions", testVersions},
		{"Delete", testDelete},
		{"CompareAndSwap", testCAS},
		{"ConcurrentCAS", testConcurrentCAS},
		{"TTL", testTTL},
		{"List", testList},
		{"ListPaging", testListPaging},
		{"ListSpecialPrefix", testListSpecial},
		{"Batches", testBatches},
		{"Fence", testFence},
		{"FencedBatch", testFencedBatch},
		{"InvalidInput", testInvalid},
		{"Context", testContext},
		{"Stats", testStats},
		{"Close", testClose},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := newBackend(t)
			t.Cleanup(func() { _ = b.Close() })
			tc.fn(t, b)
		})
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

func must[T any](v T, err error) func(*testing.T) T {
	return func(t *testing.T) T {
		t.Helper()
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return v
	}
}

func noErr(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("unexpected error: %v", err)
	}
}

func wantErr(t *testing.T, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("got error %v, want %v", err, target)
	}
}

func wantValue(t *testing.T, b backends.Backend, key string, want []byte) backends.VersionedValue {
	t.Helper()
	v, err := b.Get(ctx(t), key)
	if err != nil {
		t.Fatalf("get %q: %v", key, err)
	}
	if !bytes.Equal(v.Value, want) || v.Value == nil {
		t.Fatalf("get %q = %q, want %q", key, v.Value, want)
	}
	return v
}

// poll calls cond until it returns true or 10 s pass.
func poll(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func testGetMissing(t *testing.T, b backends.Backend) {
	_, err := b.Get(ctx(t), "missing")
	wantErr(t, err, backends.ErrNotFound)
	vs := must(b.GetMany(ctx(t), []string{"missing", "also-missing"}))(t)
	if len(vs) != 2 || vs[0].Found() || vs[1].Found() {
		t.Fatalf("GetMany of missing keys = %+v", vs)
	}
}

func testPutGet(t *testing.T, b backends.Backend) {
	c := ctx(t)
	bin := make([]byte, 256)
	for i := range bin {
		bin[i] = byte(i)
	}
	cases := map[string][]byte{
		"a":                                      []byte("1"),
		"empty":                                  {},
		"binary":                                 bin,
		"unicode/ключ/键":                         []byte("ünïcödé"),
		"with space and:colon":                   []byte("x"),
		strings.Repeat("k", backends.MaxKeySize): []byte("longest key"),
		"big":                                    bytes.Repeat([]byte("0123456789abcdef"), backends.MaxValueSize/16),
	}
	for k, v := range cases {
		ver := must(b.Put(c, k, v, backends.WriteOptions{}))(t)
		if ver == 0 {
			t.Fatalf("put %q returned version 0", k)
		}
		got := wantValue(t, b, k, v)
		if got.Version != ver {
			t.Fatalf("get %q version %d, put returned %d", k, got.Version, ver)
		}
		if !got.ExpiresAt.IsZero() {
			t.Fatalf("get %q: ExpiresAt %v without a TTL", k, got.ExpiresAt)
		}
	}
	// The caller's buffer is not retained.
	buf := []byte("original")
	must(b.Put(c, "alias", buf, backends.WriteOptions{}))(t)
	copy(buf, "mutated!")
	wantValue(t, b, "alias", []byte("original"))
	got := wantValue(t, b, "alias", []byte("original"))
	copy(got.Value, "MUTATED!")
	wantValue(t, b, "alias", []byte("original"))
}

func testVersions(t *testing.T, b backends.Backend) {
	c := ctx(t)
	var last uint64
	for i := range 5 {
		v := must(b.Put(c, "k", fmt.Appendf(nil, "v%d", i), backends.WriteOptions{}))(t)
		if v <= last {
			t.Fatalf("version %d after %d: not increasing", v, last)
		}
		last = v
	}
	noErr(t, b.Delete(c, "k", backends.WriteOptions{}))
	// After delete, creating with CAS(0) works again.
	must(b.CompareAndSwap(c, "k", 0, []byte("again"), backends.WriteOptions{}))(t)
}

func testDelete(t *testing.T, b backends.Backend) {
	c := ctx(t)
	must(b.Put(c, "d", []byte("x"), backends.WriteOptions{}))(t)
	noErr(t, b.Delete(c, "d", backends.WriteOptions{}))
	_, err := b.Get(c, "d")
	wantErr(t, err, backends.ErrNotFound)
	noErr(t, b.Delete(c, "d", backends.WriteOptions{})) // idempotent
	page := must(b.List(c, "d", backends.ListOptions{}))(t)
	if len(page.Entries) != 0 {
		t.Fatalf("deleted key still listed: %+v", page.Entries)
	}
}

func testCAS(t *testing.T, b backends.Backend) {
	c := ctx(t)
	_, err := b.CompareAndSwap(c, "c", 7, []byte("x"), backends.WriteOptions{})
	wantErr(t, err, backends.ErrVersionMismatch)
	_, err = b.Get(c, "c")
	wantErr(t, err, backends.ErrNotFound)

	v1 := must(b.CompareAndSwap(c, "c", 0, []byte("one"), backends.WriteOptions{}))(t)
	_, err = b.CompareAndSwap(c, "c", 0, []byte("dup"), backends.WriteOptions{})
	wantErr(t, err, backends.ErrVersionMismatch)
	_, err = b.CompareAndSwap(c, "c", v1+1, []byte("future"), backends.WriteOptions{})
	wantErr(t, err, backends.ErrVersionMismatch)
	wantValue(t, b, "c", []byte("one"))

	v2 := must(b.CompareAndSwap(c, "c", v1, []byte("two"), backends.WriteOptions{}))(t)
	if v2 <= v1 {
		t.Fatalf("CAS version %d after %d", v2, v1)
	}
	_, err = b.CompareAndSwap(c, "c", v1, []byte("stale"), backends.WriteOptions{})
	wantErr(t, err, backends.ErrVersionMismatch)
	if got := wantValue(t, b, "c", []byte("two")); got.Version != v2 {
		t.Fatalf("version %d, want %d", got.Version, v2)
	}
}

// testConcurrentCAS increments a counter from several goroutines with CAS
// retry loops; a CAS that is not atomic loses increments.
func testConcurrentCAS(t *testing.T, b backends.Backend) {
	c := ctx(t)
	const workers, each = 4, 15
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for range workers {
		wg.Go(func() {
			for range each {
				for {
					var n int
					var ver uint64
					v, err := b.Get(c, "counter")
					switch {
					case errors.Is(err, backends.ErrNotFound):
					case err != nil:
						errs <- err
						return
					default:
						if _, err := fmt.Sscan(string(v.Value), &n); err != nil {
							errs <- fmt.Errorf("counter %q: %w", v.Value, err)
							return
						}
						ver = v.Version
					}
					_, err = b.CompareAndSwap(c, "counter", ver, fmt.Appendf(nil, "%d", n+1), backends.WriteOptions{})
					if err == nil {
						break
					}
					if !errors.Is(err, backends.ErrVersionMismatch) {
						errs <- err
						return
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	wantValue(t, b, "counter", fmt.Appendf(nil, "%d", workers*each))
}

func testTTL(t *testing.T, b backends.Backend) {
	c := ctx(t)
	const ttl = 400 * time.Millisecond
	start := time.Now()
	must(b.Put(c, "short", []byte("x"), backends.WriteOptions{TTL: ttl}))(t)
	must(b.Put(c, "kept", []byte("y"), backends.WriteOptions{TTL: ttl}))(t)
	must(b.Put(c, "kept", []byte("z"), backends.WriteOptions{}))(t) // clears the TTL
	must(b.PutMany(c, []backends.Item{{Key: "batch", Value: []byte("b")}}, backends.WriteOptions{TTL: ttl}))(t)
	must(b.CompareAndSwap(c, "cas", 0, []byte("c"), backends.WriteOptions{TTL: ttl}))(t)

	if v, err := b.Get(c, "short"); err == nil {
		if v.ExpiresAt.IsZero() || v.ExpiresAt.Before(start) || v.ExpiresAt.After(time.Now().Add(ttl+time.Second)) {
			t.Fatalf("ExpiresAt %v, put at %v with TTL %v", v.ExpiresAt, start, ttl)
		}
	} else if time.Since(start) < ttl {
		t.Fatalf("get before TTL: %v", err)
	}
	for _, k := range []string{"short", "batch", "cas"} {
		poll(t, k+" to expire", func() bool {
			_, err := b.Get(c, k)
			if err != nil && !errors.Is(err, backends.ErrNotFound) {
				t.Fatalf("get %q: %v", k, err)
			}
			return err != nil
		})
	}
	if time.Since(start) < ttl-50*time.Millisecond {
		t.Fatalf("keys expired after %v, TTL %v", time.Since(start), ttl)
	}
	v := wantValue(t, b, "kept", []byte("z"))
	if !v.ExpiresAt.IsZero() {
		t.Fatalf("kept has ExpiresAt %v after a Put without TTL", v.ExpiresAt)
	}
	page := must(b.List(c, "", backends.ListOptions{}))(t)
	if len(page.Entries) != 1 || page.Entries[0].Key != "kept" {
		t.Fatalf("List after expiry = %v", keysOf(page.Entries))
	}
	vs := must(b.GetMany(c, []string{"short", "kept"}))(t)
	if vs[0].Found() || !vs[1].Found() {
		t.Fatalf("GetMany after expiry = %+v", vs)
	}
	// An expired key is absent for CAS too.
	must(b.CompareAndSwap(c, "short", 0, []byte("reborn"), backends.WriteOptions{}))(t)
}

func keysOf(es []backends.Entry) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.Key
	}
	return out
}

func testList(t *testing.T, b backends.Backend) {
	c := ctx(t)
	want := []string{"p/a", "p/b", "p/b/c", "p/z", "p/é"}
	for _, k := range append([]string{"o", "q", "p", "pa"}, want...) {
		must(b.Put(c, k, []byte("v:"+k), backends.WriteOptions{}))(t)
	}
	page := must(b.List(c, "p/", backends.ListOptions{}))(t)
	if got := keysOf(page.Entries); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("List(p/) = %q, want %q", got, want)
	}
	if page.Next != "" {
		t.Fatalf("single page has Next %q", page.Next)
	}
	for _, e := range page.Entries {
		if string(e.Value) != "v:"+e.Key || e.Version == 0 {
			t.Fatalf("entry %+v", e)
		}
	}
	keys := must(b.List(c, "p/", backends.ListOptions{KeysOnly: true}))(t)
	if len(keys.Entries) != len(want) || keys.Entries[0].Version == 0 {
		t.Fatalf("KeysOnly page %+v", keys.Entries)
	}
	all := must(b.List(c, "", backends.ListOptions{}))(t)
	if len(all.Entries) != 9 || !sort.SliceIsSorted(all.Entries, func(i, j int) bool { return all.Entries[i].Key < all.Entries[j].Key }) {
		t.Fatalf("List(\"\") = %q", keysOf(all.Entries))
	}
	none := must(b.List(c, "nothing", backends.ListOptions{}))(t)
	if len(none.Entries) != 0 {
		t.Fatalf("List(nothing) = %q", keysOf(none.Entries))
	}
}

func testListPaging(t *testing.T, b backends.Backend) {
	c := ctx(t)
	var items []backends.Item
	for i := range 25 {
		items = append(items, backends.Item{Key: fmt.Sprintf("page/%03d", i), Value: []byte{byte(i)}})
	}
	must(b.PutMany(c, items, backends.WriteOptions{}))(t)
	var got []string
	opts := backends.ListOptions{Limit: 7}
	for pages := 0; ; pages++ {
		if pages > 10 {
			t.Fatal("paging does not terminate")
		}
		page := must(b.List(c, "page/", opts))(t)
		if len(page.Entries) > 7 {
			t.Fatalf("page of %d entries, limit 7", len(page.Entries))
		}
		got = append(got, keysOf(page.Entries)...)
		if page.Next == "" {
			break
		}
		opts.After = page.Next
	}
	if len(got) != 25 {
		t.Fatalf("paged %d keys, want 25: %q", len(got), got)
	}
	for i, k := range got {
		if k != items[i].Key {
			t.Fatalf("key %d = %q, want %q", i, k, items[i].Key)
		}
	}
	after := must(b.List(c, "page/", backends.ListOptions{After: "page/020"}))(t)
	if fmt.Sprint(keysOf(after.Entries)) != "[page/021 page/022 page/023 page/024]" {
		t.Fatalf("After page/020: %q", keysOf(after.Entries))
	}
}

// testListSpecial uses prefixes full of glob and LIKE metacharacters, which
// a store must not interpret.
func testListSpecial(t *testing.T, b backends.Backend) {
	c := ctx(t)
	keys := []string{"a%b/1", "a_b/1", "axb/1", "a*b/1", "a?b/1", "a[b]/1", `a\b/1`, "a{b}/1"}
	for _, k := range keys {
		must(b.Put(c, k, []byte(k), backends.WriteOptions{}))(t)
	}
	for _, k := range keys {
		prefix := strings.TrimSuffix(k, "1")
		page := must(b.List(c, prefix, backends.ListOptions{}))(t)
		if len(page.Entries) != 1 || page.Entries[0].Key != k {
			t.Fatalf("List(%q) = %q, want [%q]", prefix, keysOf(page.Entries), k)
		}
	}
}

func testBatches(t *testing.T, b backends.Backend) {
	c := ctx(t)
	must(b.PutMany(c, nil, backends.WriteOptions{}))(t)
	if vs := must(b.GetMany(c, nil))(t); len(vs) != 0 {
		t.Fatalf("GetMany(nil) = %v", vs)
	}
	noErr(t, b.DeleteMany(c, nil, backends.WriteOptions{}))

	must(b.Put(c, "b1", []byte("old"), backends.WriteOptions{}))(t)
	items := []backends.Item{{Key: "b1", Value: []byte("one")}, {Key: "b2", Value: []byte("two")}, {Key: "b3", Value: []byte("three")}}
	vers := must(b.PutMany(c, items, backends.WriteOptions{}))(t)
	if len(vers) != 3 || vers[0] < 2 || vers[1] == 0 || vers[2] == 0 {
		t.Fatalf("PutMany versions %v", vers)
	}
	vs := must(b.GetMany(c, []string{"b3", "nope", "b1", "b2"}))(t)
	if len(vs) != 4 || string(vs[0].Value) != "three" || vs[1].Found() || string(vs[2].Value) != "one" || vs[2].Version != vers[0] || string(vs[3].Value) != "two" {
		t.Fatalf("GetMany = %+v", vs)
	}
	noErr(t, b.DeleteMany(c, []string{"b1", "b3", "nope"}, backends.WriteOptions{}))
	vs = must(b.GetMany(c, []string{"b1", "b2", "b3"}))(t)
	if vs[0].Found() || !vs[1].Found() || vs[2].Found() {
		t.Fatalf("after DeleteMany: %+v", vs)
	}
	// A batch with an invalid item writes nothing.
	_, err := b.PutMany(c, []backends.Item{{Key: "ok", Value: []byte("x")}, {Key: "", Value: []byte("y")}}, backends.WriteOptions{})
	wantErr(t, err, backends.ErrInvalidKey)
	_, err = b.Get(c, "ok")
	wantErr(t, err, backends.ErrNotFound)
}

func testFence(t *testing.T, b backends.Backend) {
	c := ctx(t)
	f := func(token uint64) backends.WriteOptions {
		return backends.WriteOptions{Fence: &backends.Fence{Lock: "lock/a", Token: token}}
	}
	must(b.Put(c, "f", []byte("t5"), f(5)))(t)
	must(b.Put(c, "f", []byte("t5 again"), f(5)))(t) // the holder writes twice
	_, err := b.Put(c, "f", []byte("t4"), f(4))
	wantErr(t, err, backends.ErrFenced)
	var fe *backends.FencedError
	if !errors.As(err, &fe) || fe.Lock != "lock/a" || fe.Token != 4 || fe.Seen != 5 {
		t.Fatalf("FencedError = %+v (%v)", fe, err)
	}
	wantValue(t, b, "f", []byte("t5 again"))

	v := must(b.Put(c, "f", []byte("t6"), f(6)))(t)
	// Every kind of write is fenced, and a rejected one changes nothing.
	_, err = b.Put(c, "g", []byte("t5"), f(5))
	wantErr(t, err, backends.ErrFenced)
	_, err = b.CompareAndSwap(c, "f", v, []byte("t5"), f(5))
	wantErr(t, err, backends.ErrFenced)
	wantErr(t, b.Delete(c, "f", f(5)), backends.ErrFenced)
	wantErr(t, b.DeleteMany(c, []string{"f"}, f(5)), backends.ErrFenced)
	_, err = b.Get(c, "g")
	wantErr(t, err, backends.ErrNotFound)
	wantValue(t, b, "f", []byte("t6"))

	// A fenced CAS that loses on version does not raise the fence.
	_, err = b.CompareAndSwap(c, "f", v+100, []byte("t9"), f(9))
	wantErr(t, err, backends.ErrVersionMismatch)
	must(b.Put(c, "f", []byte("t7"), f(7)))(t)

	// Unfenced writes and other locks are unaffected.
	must(b.Put(c, "f", []byte("plain"), backends.WriteOptions{}))(t)
	must(b.Put(c, "f", []byte("other"), backends.WriteOptions{Fence: &backends.Fence{Lock: "lock/b", Token: 1}}))(t)
	noErr(t, b.Delete(c, "f", f(7)))
}

func testFencedBatch(t *testing.T, b backends.Backend) {
	c := ctx(t)
	f := func(token uint64) backends.WriteOptions {
		return backends.WriteOptions{Fence: &backends.Fence{Lock: "batch-lock", Token: token}}
	}
	items := []backends.Item{{Key: "x1", Value: []byte("a")}, {Key: "x2", Value: []byte("b")}}
	must(b.PutMany(c, items, f(10)))(t)
	_, err := b.PutMany(c, []backends.Item{{Key: "x1", Value: []byte("stale")}, {Key: "x3", Value: []byte("stale")}}, f(9))
	wantErr(t, err, backends.ErrFenced)
	vs := must(b.GetMany(c, []string{"x1", "x2", "x3"}))(t)
	if string(vs[0].Value) != "a" || string(vs[1].Value) != "b" || vs[2].Found() {
		t.Fatalf("a fenced batch changed data: %+v", vs)
	}
}

func testInvalid(t *testing.T, b backends.Backend) {
	c := ctx(t)
	bad := []string{"", strings.Repeat("k", backends.MaxKeySize+1), "nul\x00key", "bad\xffutf8"}
	for _, k := range bad {
		_, err := b.Get(c, k)
		wantErr(t, err, backends.ErrInvalidKey)
		_, err = b.Put(c, k, []byte("x"), backends.WriteOptions{})
		wantErr(t, err, backends.ErrInvalidKey)
		_, err = b.CompareAndSwap(c, k, 0, []byte("x"), backends.WriteOptions{})
		wantErr(t, err, backends.ErrInvalidKey)
		wantErr(t, b.Delete(c, k, backends.WriteOptions{}), backends.ErrInvalidKey)
		_, err = b.GetMany(c, []string{"fine", k})
		wantErr(t, err, backends.ErrInvalidKey)
		wantErr(t, b.DeleteMany(c, []string{"fine", k}, backends.WriteOptions{}), backends.ErrInvalidKey)
		_, err = b.Put(c, "fenced", []byte("x"), backends.WriteOptions{Fence: &backends.Fence{Lock: k, Token: 1}})
		wantErr(t, err, backends.ErrInvalidKey)
	}
	_, err := b.List(c, "bad\x00", backends.ListOptions{})
	wantErr(t, err, backends.ErrInvalidKey)

	huge := make([]byte, backends.MaxValueSize+backends.ValueOverhead+1)
	_, err = b.Put(c, "huge", huge, backends.WriteOptions{})
	wantErr(t, err, backends.ErrTooLarge)
	_, err = b.CompareAndSwap(c, "huge", 0, huge, backends.WriteOptions{})
	wantErr(t, err, backends.ErrTooLarge)
	_, err = b.PutMany(c, []backends.Item{{Key: "fine", Value: []byte("x")}, {Key: "huge", Value: huge}}, backends.WriteOptions{})
	wantErr(t, err, backends.ErrTooLarge)
	_, err = b.Put(c, "neg", []byte("x"), backends.WriteOptions{TTL: -time.Second})
	if err == nil {
		t.Fatal("negative TTL accepted")
	}
	vs := must(b.GetMany(c, []string{"huge", "fine", "neg"}))(t)
	for i, v := range vs {
		if v.Found() {
			t.Fatalf("rejected write %d was applied", i)
		}
	}
}

func testContext(t *testing.T, b backends.Backend) {
	c, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := b.Get(c, "k")
	wantErr(t, err, context.Canceled)
	_, err = b.Put(c, "k", []byte("v"), backends.WriteOptions{})
	wantErr(t, err, context.Canceled)
	_, err = b.PutMany(c, []backends.Item{{Key: "k", Value: []byte("v")}}, backends.WriteOptions{})
	wantErr(t, err, context.Canceled)
	_, err = b.Get(ctx(t), "k")
	wantErr(t, err, backends.ErrNotFound)
}

func testStats(t *testing.T, b backends.Backend) {
	c := ctx(t)
	for i := range 3 {
		must(b.Put(c, fmt.Sprintf("s%d", i), []byte("v"), backends.WriteOptions{}))(t)
	}
	st := must(b.Stats(c))(t)
	if st.Backend == "" {
		t.Fatal("Stats.Backend is empty")
	}
	if st.Keys != -1 && st.Keys != 3 {
		t.Fatalf("Stats.Keys = %d, want 3 (or -1)", st.Keys)
	}
}

func testClose(t *testing.T, b backends.Backend) {
	c := ctx(t)
	must(b.Put(c, "k", []byte("v"), backends.WriteOptions{}))(t)
	noErr(t, b.Close())
	noErr(t, b.Close())
	_, err := b.Get(c, "k")
	wantErr(t, err, backends.ErrClosed)
	_, err = b.Put(c, "k", []byte("v"), backends.WriteOptions{})
	wantErr(t, err, backends.ErrClosed)
	_, err = b.CompareAndSwap(c, "k", 1, []byte("v"), backends.WriteOptions{})
	wantErr(t, err, backends.ErrClosed)
	wantErr(t, b.Delete(c, "k", backends.WriteOptions{}), backends.ErrClosed)
	_, err = b.List(c, "", backends.ListOptions{})
	wantErr(t, err, backends.ErrClosed)
	_, err = b.GetMany(c, []string{"k"})
	wantErr(t, err, backends.ErrClosed)
	_, err = b.PutMany(c, []backends.Item{{Key: "k", Value: []byte("v")}}, backends.WriteOptions{})
	wantErr(t, err, backends.ErrClosed)
	wantErr(t, b.DeleteMany(c, []string{"k"}, backends.WriteOptions{}), backends.ErrClosed)
	_, err = b.Stats(c)
	wantErr(t, err, backends.ErrClosed)
}
