package fsm

import "sort"

// histChunk is the number of events per history chunk. Appending never
// copies events, compaction frees whole chunks, and a snapshot copies one
// slice header per chunk.
const histChunk = 1024

// history is the append-only, front-compacted log of events in revision
// order, stored in fixed-size chunks. Every chunk but the last is full.
//
// Events are never modified once appended, and a chunk's elements below
// the length some copy has seen are never written again: a clone (taken by
// Snapshot) therefore stays valid while the original keeps appending and
// compacting, without locks.
type history struct {
	chunks [][]Event
	start  int // index in chunks[0] of the oldest live event
	n      int // number of live events
}

func (h *history) len() int { return h.n }

// at returns the i-th live event (0 = oldest).
func (h *history) at(i int) *Event {
	i += h.start
	return &h.chunks[i/histChunk][i%histChunk]
}

func (h *history) append(e Event) {
	if k := len(h.chunks); k == 0 || len(h.chunks[k-1]) == histChunk {
		h.chunks = append(h.chunks, make([]Event, 0, histChunk))
	}
	last := &h.chunks[len(h.chunks)-1]
	*last = append(*last, e)
	h.n++
}

// index returns the index of the first event with revision >= rev.
func (h *history) index(rev int64) int {
	return sort.Search(h.n, func(i int) bool { return h.at(i).KV.ModRevision >= rev })
}

// dropThrough removes every event with revision <= rev. Whole chunks are
// released to the garbage collector; the outer slice is re-allocated
// rather than shifted in place, as clones share it.
func (h *history) dropThrough(rev int64) {
	k := 0
	for k < h.n && h.at(k).KV.ModRevision <= rev {
		k++
	}
	if k == 0 {
		return
	}
	h.start += k
	h.n -= k
	if full := h.start / histChunk; full > 0 {
		h.chunks = h.chunks[full:]
		h.start -= full * histChunk
		// Reslicing leaves dropped chunk headers (and so the chunks)
		// reachable from the array; re-allocate once they dominate.
		if cap(h.chunks) > 2*len(h.chunks)+8 {
			h.chunks = append([][]Event(nil), h.chunks...)
		}
	}
	if h.n == 0 {
		*h = history{}
	}
}

// clone returns a view of h that later appends and compactions of h do not
// affect. O(number of chunks).
func (h *history) clone() history {
	return history{chunks: append([][]Event(nil), h.chunks...), start: h.start, n: h.n}
}
