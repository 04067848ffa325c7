package fsm

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestHistoryChunks(t *testing.T) {
	ev := func(rev int64) Event { return Event{Type: EventPut, KV: KeyValue{ModRevision: rev}} }
	revs := func(h *history) []int64 {
		out := make([]int64, h.len())
		for i := range out {
			out[i] = h.at(i).KV.ModRevision
		}
		return out
	}
	seq := func(from, to int64) []int64 {
		var out []int64
		for r := from; r <= to; r++ {
			out = append(out, r)
		}
		return out
	}

	var h history
	for r := int64(1); r <= 3*histChunk+10; r++ {
		h.append(ev(r))
	}
	snap := h.clone()
	tests := []struct {
		rev  int64
		want int
	}{{0, 0}, {1, 0}, {histChunk, histChunk - 1}, {histChunk + 1, histChunk}, {3*histChunk + 10, 3*histChunk + 9}, {1 << 40, 3*histChunk + 10}}
	for _, tt := range tests {
		assert.Equal(t, tt.want, h.index(tt.rev), "index(%d)", tt.rev)
	}

	h.dropThrough(histChunk + 5)
	assert.Equal(t, seq(histChunk+6, 3*histChunk+10), revs(&h))
	assert.Len(t, h.chunks, 3, "the first full chunk is released")
	for r := int64(3*histChunk + 11); r <= 5*histChunk; r++ {
		h.append(ev(r))
	}
	h.dropThrough(4 * histChunk)
	assert.Equal(t, seq(4*histChunk+1, 5*histChunk), revs(&h))

	// The clone saw none of it.
	assert.Equal(t, seq(1, 3*histChunk+10), revs(&snap))

	h.dropThrough(1 << 40)
	assert.Equal(t, 0, h.len())
	require.Nil(t, h.chunks)
	h.append(ev(7))
	assert.Equal(t, []int64{7}, revs(&h))
}
