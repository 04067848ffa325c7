package fsm

import (
	"bytes"
	"context"
	"fmt"
)

const (
	// watchBatchEvents is the size at which a watch response is cut (at
	// the next revision boundary, so a response may hold a few more).
	watchBatchEvents = 1000
	// watchScanEvents bounds how many history events a watcher examines
	// per read-lock acquisition, so that a watcher far behind with a narrow
	// filter does not hold off Apply for long.
	watchScanEvents = 16 * watchBatchEvents
)

// WatchRequest selects the events a watch delivers.
type WatchRequest struct {
	Key    []byte
	Prefix bool // every key starting with Key (Key empty = all keys)
	// StartRevision is the first revision to deliver; 0 means only changes
	// after the current revision. It must be greater than CompactRevision.
	StartRevision int64
	PrevKV        bool // fill Event.PrevKV
}

// WatchResponse is one delivery of a watch.
type WatchResponse struct {
	Events   []Event // in revision order; events of one revision are never split across responses
	Revision int64   // store revision when this response was built
	Err      error   // set (with no events) if the watcher fell behind compaction (*CompactedError) or a restore replaced the state (*RestoredError); both match ErrCompacted; the channel is closed after it
}

// Watch streams the events matching req, starting at req.StartRevision,
// in revision order with no gaps and no duplicates, then live events as
// they are applied, until ctx ends; then the channel is closed. A
// StartRevision at or below CompactRevision returns a *CompactedError;
// a malformed request an error wrapping ErrInvalid.
//
// Each watch runs one goroutine that pulls events from the retained history
// after every apply: a slow consumer never blocks Apply and never loses
// events. If it falls so far behind that the events it needs are compacted
// away (or a snapshot install skips past them), it receives one response
// with Err set to a *CompactedError and the channel is closed. A Restore
// that does not continue the history the watch has seen (see Restore) ends
// it the same way with a *RestoredError.
//
// Events share their bytes with the store: treat them as read-only.
func (f *FSM) Watch(ctx context.Context, req WatchRequest) (<-chan WatchResponse, error) {
	if len(req.Key) == 0 && !req.Prefix {
		return nil, fmt.Errorf("%w: watch key is empty", ErrInvalid)
	}
	if req.StartRevision < 0 {
		return nil, fmt.Errorf("%w: negative start revision %d", ErrInvalid, req.StartRevision)
	}
	w := &watcher{
		f:      f,
		key:    bytes.Clone(req.Key),
		prefix: req.Prefix,
		prevKV: req.PrevKV,
		next:   req.StartRevision,
		ch:     make(chan WatchResponse),
	}
	f.mu.RLock()
	rev, compactRev := f.st.revision, f.st.compactRev
	w.epoch = f.watchEpoch
	f.mu.RUnlock()
	if w.next == 0 {
		w.next = rev + 1
	} else if w.next <= compactRev {
		return nil, &CompactedError{Requested: w.next, Oldest: compactRev + 1}
	}
	f.goFunc(func() { w.run(ctx) })
	return w.ch, nil
}

type watcher struct {
	f      *FSM
	key    []byte
	prefix bool
	prevKV bool
	next   int64  // first revision not yet examined
	epoch  uint64 // f.watchEpoch when the watch began
	ch     chan WatchResponse
}

func (w *watcher) matches(key []byte) bool {
	if w.prefix {
		return bytes.HasPrefix(key, w.key)
	}
	return bytes.Equal(key, w.key)
}

func (w *watcher) run(ctx context.Context) {
	defer close(w.ch)
	for ctx.Err() == nil {
		// Take the wake-up channel before reading, so an apply that lands
		// after the read still wakes us.
		wake := w.f.notify()
		resp, caughtUp := w.collect()
		if resp.Err != nil || len(resp.Events) > 0 {
			select {
			case w.ch <- resp:
			case <-ctx.Done():
				return
			}
			if resp.Err != nil {
				return
			}
		}
		if caughtUp {
			select {
			case <-wake:
			case <-ctx.Done():
				return
			}
		}
	}
}

// collect gathers the matching events from w.next on, whole revisions only,
// and advances w.next past every revision it examined. caughtUp reports
// that nothing newer than the store revision remains.
func (w *watcher) collect() (resp WatchResponse, caughtUp bool) {
	f := w.f
	f.mu.RLock()
	defer f.mu.RUnlock()
	st := &f.st
	resp.Revision = st.revision
	if w.epoch != f.watchEpoch {
		resp.Err = &RestoredError{Revision: st.revision, CompactRevision: st.compactRev}
		return resp, true
	}
	if w.next <= st.compactRev {
		resp.Err = &CompactedError{Requested: w.next, Oldest: st.compactRev + 1}
		return resp, true
	}
	h := &st.history
	n := h.len()
	i := h.index(w.next)
	start := i
	var prevs []KeyValue
	for i < n && i-start < watchScanEvents && len(resp.Events) < watchBatchEvents {
		rev := h.at(i).KV.ModRevision
		for ; i < n && h.at(i).KV.ModRevision == rev; i++ {
			e := *h.at(i)
			if !w.matches(e.KV.Key) {
				continue
			}
			// Copy PrevKV: the pointer is the store's own item.
			if e.PrevKV != nil && w.prevKV {
				if prevs == nil {
					prevs = make([]KeyValue, 0, min(n-i, watchBatchEvents))
				}
				if len(prevs) == cap(prevs) { // never reallocate: earlier events point into prevs
					prevs = make([]KeyValue, 0, watchBatchEvents)
				}
				prevs = append(prevs, *e.PrevKV)
				e.PrevKV = &prevs[len(prevs)-1]
			} else {
				e.PrevKV = nil
			}
			resp.Events = append(resp.Events, e)
		}
		w.next = rev + 1
	}
	if i == n {
		w.next = max(w.next, st.revision+1)
		return resp, true
	}
	return resp, false
}
