package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/statenode/statenode/api"
)

// watchIdleTimeout: a stream with no line for this long is considered dead
// (the server writes a progress line after 5s of silence).
const watchIdleTimeout = 20 * time.Second

type watchOptions struct {
	prefix   bool
	startRev int64
	prevKV   bool
}

// WatchOption changes a Watch.
type WatchOption func(*watchOptions)

// WithPrefix watches every key that starts with the given key ("" = all keys).
func WithPrefix() WatchOption { return func(o *watchOptions) { o.prefix = true } }

// WithStartRevision delivers events from revision rev on (history within
// the retained window; ErrCompacted otherwise). Without it the watch starts
// after the member's current revision.
func WithStartRevision(rev int64) WatchOption { return func(o *watchOptions) { o.startRev = rev } }

// WithPrevKV fills Event.PrevKV with the key's value before each change.
func WithPrevKV() WatchOption { return func(o *watchOptions) { o.prevKV = true } }

// Watch streams changes to key (or, WithPrefix, to every key under it).
// It returns once the server has created the watch; the first response on
// the channel has Created set and the revision the watch starts after.
// The channel is closed when ctx ends, when Close is called, or when the
// stream breaks; in the last case the final response carries an Error
// (code "compacted" or "unavailable"). A start revision that is already
// compacted fails at once with ErrCompacted.
//
// Watches are served by any member from its own state (a follower's may
// lag the leader's slightly) and are never silently resumed: on a broken
// stream, watch again from the last revision seen plus one.
func (c *Client) Watch(ctx context.Context, key string, opts ...WatchOption) (<-chan api.WatchResponse, error) {
	var o watchOptions
	for _, opt := range opts {
		opt(&o)
	}
	if c.ctx.Err() != nil {
		return nil, ErrClosed
	}
	q := "key=" + url.QueryEscape(key)
	if o.prefix {
		q += "&prefix"
	}
	if o.startRev != 0 {
		q += "&start_revision=" + strconv.FormatInt(o.startRev, 10)
	}
	if o.prevKV {
		q += "&prev_kv"
	}

	// The stream lives until ctx ends or the client closes.
	wctx, cancel := context.WithCancel(ctx)
	stopOnClose := context.AfterFunc(c.ctx, cancel)
	fail := func(err error) (<-chan api.WatchResponse, error) {
		stopOnClose()
		cancel()
		return nil, err
	}

	// Opening the stream is a read: retry on other endpoints within the
	// request timeout.
	octx, ocancel := c.withTimeout(ctx)
	defer ocancel()
	var lastErr error
	for attempt := 0; ; attempt++ {
		if octx.Err() != nil || (attempt > 0 && !sleepBackoff(octx, attempt)) {
			if c.ctx.Err() != nil {
				return fail(ErrClosed)
			}
			return fail(fmt.Errorf("%w: %w (last error: %w)", ErrUnavailable, octx.Err(), lastErr))
		}
		base := c.pick(octx, toAny)
		// Each attempt has its own stream context, canceled if octx ends
		// before the stream is established.
		actx, acancel := context.WithCancel(wctx)
		stopBound := context.AfterFunc(octx, acancel)
		abandon := func(err error) {
			stopBound()
			acancel()
			c.endpointFailed(base)
			lastErr = err
		}
		req, err := http.NewRequestWithContext(actx, http.MethodGet, base+"/v1/watch?"+q, nil)
		if err != nil {
			acancel()
			return fail(err)
		}
		req.Header["Accept"] = []string{"application/x-ndjson"}
		resp, err := c.rt.RoundTrip(req)
		if err != nil {
			abandon(err)
			continue
		}
		if resp.StatusCode != http.StatusOK {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
			e := decodeError(&result{status: resp.StatusCode, body: &body})
			if resp.StatusCode == http.StatusServiceUnavailable || (resp.StatusCode >= 500 && e.Code == "") {
				abandon(e)
				continue
			}
			stopBound()
			acancel()
			return fail(e)
		}
		// The created line confirms the watch.
		br := bufio.NewReaderSize(resp.Body, 32<<10)
		first, err := readWatchLine(br)
		if err == nil && !first.Created {
			err = fmt.Errorf("client: watch stream did not start with a created line")
		}
		if err != nil || !stopBound() {
			resp.Body.Close()
			if err == nil {
				err = octx.Err()
			}
			abandon(err)
			continue
		}
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			resp.Body.Close()
			acancel()
			return fail(ErrClosed)
		}
		c.wg.Add(1)
		c.mu.Unlock()
		ch := make(chan api.WatchResponse, 16)
		go func() {
			defer c.wg.Done()
			defer stopOnClose()
			defer cancel()
			defer acancel()
			c.runWatch(actx, resp.Body, br, first, ch)
		}()
		return ch, nil
	}
}

// runWatch copies the stream into ch until it ends, then closes ch.
func (c *Client) runWatch(ctx context.Context, body io.ReadCloser, br *bufio.Reader, first api.WatchResponse, ch chan<- api.WatchResponse) {
	defer close(ch)
	defer body.Close()
	// A stream that stays silent longer than the server's progress
	// interval allows is dead: close the body to unblock the reader.
	idle := time.AfterFunc(watchIdleTimeout, func() { body.Close() })
	defer idle.Stop()

	send := func(r api.WatchResponse) bool {
		select {
		case ch <- r:
			return true
		case <-ctx.Done():
			return false
		}
	}
	if !send(first) {
		return
	}
	for {
		r, err := readWatchLine(br)
		if err != nil {
			if ctx.Err() == nil {
				send(api.WatchResponse{Error: &api.Error{Code: api.CodeUnavailable, Message: "watch stream broken: " + err.Error()}})
			}
			return
		}
		idle.Reset(watchIdleTimeout)
		switch {
		case r.Error != nil:
			send(r)
			return
		case len(r.Events) == 0 && !r.Created:
			continue // progress line: keeps the stream alive
		}
		if !send(r) {
			return
		}
	}
}

// readWatchLine reads and decodes one NDJSON line.
func readWatchLine(br *bufio.Reader) (api.WatchResponse, error) {
	var r api.WatchResponse
	for {
		line, err := br.ReadBytes('\n')
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			if err != nil {
				return r, err
			}
			continue
		}
		if err := json.Unmarshal(line, &r); err != nil {
			return r, fmt.Errorf("client: malformed watch line: %w", err)
		}
		return r, nil
	}
}
