package postgres

import (
	"testing"
	"time"
)

func TestWalEnd(t *testing.T) {
	for _, tc := range []struct{ insert, block, want uint64 }{
		{insert: 0x1000128, block: 8192, want: 0x1000128},  // mid-page
		{insert: 3*8192 + 24, block: 8192, want: 3 * 8192}, // just past a short page header: idle at a boundary
		{insert: 0x2000000 + 40, block: 8192, want: 0x2000000},
		{insert: 3*8192 + 32, block: 8192, want: 3*8192 + 32},
		{insert: 77, block: 0, want: 77},
	} {
		if got := walEnd(tc.insert, tc.block); got != tc.want {
			t.Errorf("walEnd(%#x, %d) = %#x, want %#x", tc.insert, tc.block, got, tc.want)
		}
	}
}

// TestRouterCoverage checks the routing rules on synthetic samples: a
// replica is usable while the newest sample it covers is at most maxLag
// old, and in session mode only once it covers a sample taken after the
// last write.
func TestRouterCoverage(t *testing.T) {
	r := &router{mode: ReadReplicaSession, maxLag: time.Second, interval: 100 * time.Millisecond, epoch: time.Now()}
	rep := &replica{}
	r.replicas = []*replica{rep}
	ms := int64(time.Millisecond)
	for i := range int64(40) { // one sample per 100 ms, LSN 1000 per sample
		r.addSample(lsnSample{at: i * 100 * ms, lsn: uint64(i) * 1000})
	}
	if first := r.samples[0].at; first < (3900-1200-100)*ms || first > (3900-1200)*ms {
		t.Fatalf("kept samples from %d ms", first/ms)
	}
	if got := r.covering(35500); got != 3500*ms {
		t.Fatalf("r.covering(35500) = %d ms", got/ms)
	}
	if got := r.covering(1000); got != 0 {
		t.Fatalf("a replica behind every kept sample covers %d ms", got/ms)
	}
	rep.coveredAt.Store(3500 * ms)
	if !r.usable(rep, 4400*ms) || r.usable(rep, 4600*ms) {
		t.Fatal("usable must hold exactly while now - coveredAt <= maxLag")
	}
	r.epoch = time.Now().Add(-4400 * time.Millisecond) // now is about 4400 ms
	r.lastWrite.Store(3400 * ms)
	if r.pick() != rep {
		t.Fatal("session: a replica covering a sample after the last write must be picked")
	}
	r.lastWrite.Store(3600 * ms)
	if r.pick() != nil {
		t.Fatal("session: a replica not covering the last write must not be picked")
	}
	r.mode = ReadReplicaPreferred
	if r.pick() != rep {
		t.Fatal("preferred: the last write must not matter")
	}
}
