package client

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/statenode/statenode/api"
)

// ErrBadSnapshot: a snapshot stream ended before its CRC-32C trailer or
// did not match it (the connection broke, or the bytes were damaged).
var ErrBadSnapshot = errors.New("client: snapshot stream incomplete or damaged")

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Snapshot writes a consistent point-in-time copy of the cluster's state to
// w (GET /v1/snapshot): every write acknowledged before the call is in it.
// Any member serves it (after a read barrier through the leader); an
// endpoint that cannot is skipped until one answers. The stream's CRC-32C
// trailer is checked as it passes: an incomplete or damaged stream fails
// with ErrBadSnapshot after w received it, so write to a temporary file and
// keep it only on success (statenode snapshot save does).
//
// ctx bounds the whole transfer. Without a deadline, Config.RequestTimeout
// bounds only the wait for the answer to begin; the transfer itself takes
// as long as the state's size needs.
func (c *Client) Snapshot(ctx context.Context, w io.Writer) (api.SnapshotInfo, error) {
	var info api.SnapshotInfo
	if c.ctx.Err() != nil {
		return info, ErrClosed
	}
	// Headers must arrive within the budget; the body may take longer.
	start := time.Now()
	budget := c.cfg.RequestTimeout
	if d, ok := ctx.Deadline(); ok {
		budget = time.Until(d)
	}
	var lastErr error
	for attempt := 0; ; attempt++ {
		left := budget - time.Since(start)
		if ctx.Err() != nil || left <= 0 {
			break
		}
		base := c.pick(ctx, toAny)
		resp, err := c.openSnapshot(ctx, base, left)
		if err != nil {
			c.endpointFailed(base)
			lastErr = err
		} else if resp.StatusCode != http.StatusOK {
			e := readError(resp)
			if resp.StatusCode != http.StatusServiceUnavailable && resp.StatusCode != http.StatusGatewayTimeout {
				return info, e
			}
			c.endpointFailed(base) // this member cannot serve it now: try the next
			lastErr = e
		} else {
			return c.copySnapshot(resp, w)
		}
		if !sleepBackoff(ctx, attempt) {
			break
		}
	}
	if c.ctx.Err() != nil {
		return info, ErrClosed
	}
	cerr := ctx.Err()
	if cerr == nil {
		cerr = context.DeadlineExceeded
	}
	if lastErr == nil {
		return info, fmt.Errorf("%w: %w", ErrUnavailable, cerr)
	}
	return info, fmt.Errorf("%w: %w (last error: %w)", ErrUnavailable, cerr, lastErr)
}

// openSnapshot sends GET /v1/snapshot to base and returns the answer once
// its headers arrived (within wait); its body is the caller's to close.
func (c *Client) openSnapshot(ctx context.Context, base string, wait time.Duration) (*http.Response, error) {
	rctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(c.ctx, cancel) // Close ends the transfer
	timer := time.AfterFunc(wait, cancel)
	req, err := http.NewRequestWithContext(rctx, http.MethodGet, base+"/v1/snapshot", nil)
	if err != nil {
		cancel()
		return nil, err
	}
	req.Header["User-Agent"] = noUserAgent
	req.Header[api.HeaderTimeout] = []string{strconv.FormatInt(max((wait-wait/5).Milliseconds(), 1), 10)}
	resp, err := c.rt.RoundTrip(req)
	if err != nil || !timer.Stop() {
		cancel()
		stop()
		if err == nil {
			resp.Body.Close()
			err = context.DeadlineExceeded
		}
		return nil, err
	}
	resp.Body = &closeFunc{ReadCloser: resp.Body, close: func() { stop(); cancel() }}
	return resp, nil
}

type closeFunc struct {
	io.ReadCloser
	close func()
}

func (c *closeFunc) Close() error {
	err := c.ReadCloser.Close()
	c.close()
	return err
}

// copySnapshot copies the body of a 200 answer to w, checking the trailer.
func (c *Client) copySnapshot(resp *http.Response, w io.Writer) (api.SnapshotInfo, error) {
	defer resp.Body.Close()
	var info api.SnapshotInfo
	info.Index, _ = strconv.ParseUint(resp.Header.Get(api.HeaderSnapshotIndex), 10, 64)
	info.Revision, _ = strconv.ParseInt(resp.Header.Get(api.HeaderSnapshotRevision), 10, 64)
	cw := &crcWriter{w: w}
	n, err := io.Copy(cw, resp.Body)
	info.Size = n
	if err != nil {
		var we *writeError
		if errors.As(err, &we) {
			return info, we.err
		}
		return info, fmt.Errorf("%w: after %d bytes: %w", ErrBadSnapshot, n, err)
	}
	if !cw.ok() {
		return info, fmt.Errorf("%w: %d bytes, checksum mismatch (truncated or damaged)", ErrBadSnapshot, n)
	}
	return info, nil
}

// crcWriter passes bytes on to w and computes the CRC-32C of all but the
// last 4 bytes seen, which it keeps to compare with at the end.
type crcWriter struct {
	w    io.Writer
	crc  uint32
	tail [4]byte
	n    int64
}

// writeError marks a failure of the destination (not of the stream).
type writeError struct{ err error }

func (e *writeError) Error() string { return e.err.Error() }

func (c *crcWriter) Write(p []byte) (int, error) {
	if _, err := c.w.Write(p); err != nil {
		return 0, &writeError{err: err}
	}
	// Fold the held-back tail and p minus its own last 4 bytes into the
	// checksum, keeping the stream's last 4 bytes aside.
	held := int(min(c.n, 4))
	all := append(c.tail[4-held:4:4], p...) // copies: the array's capacity is capped
	keep := min(4, len(all))
	c.crc = crc32.Update(c.crc, castagnoli, all[:len(all)-keep])
	var t [4]byte
	copy(t[4-keep:], all[len(all)-keep:])
	c.tail = t
	c.n += int64(len(p))
	return len(p), nil
}

func (c *crcWriter) ok() bool {
	return c.n >= 4 && binary.BigEndian.Uint32(c.tail[:]) == c.crc
}

// Restore replaces the state of the whole cluster with the snapshot read
// from r (POST /v1/snapshot), as written by Snapshot. The leader checks the
// whole snapshot before anything changes: a damaged or truncated one fails
// with ErrInvalid, one over the server's size limit with ErrTooLarge, and
// the state is untouched. See docs/OPERATIONS.md, "Backup and restore", for
// what a restore keeps (the running cluster's members) and changes (every
// key, session and lock; the revision moves forward; watches end).
//
// The request goes to the leader. If the member asked turns out not to
// lead, the snapshot is sent again to the leader only if r is an
// io.Seeker (an *os.File is): it is rewound to where it was. A failure
// after the whole snapshot was sent is ErrIndeterminate (the restore may
// have happened). ctx bounds the call; without a deadline it is unbounded
// (a large snapshot takes a while to transfer and check).
func (c *Client) Restore(ctx context.Context, r io.Reader) error {
	if c.ctx.Err() != nil {
		return ErrClosed
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(c.ctx, cancel)()
	seeker, _ := r.(io.Seeker)
	var start, length int64 = 0, -1
	if seeker != nil {
		var err error
		if start, err = seeker.Seek(0, io.SeekCurrent); err == nil {
			var end int64
			if end, err = seeker.Seek(0, io.SeekEnd); err == nil {
				length = end - start
				_, err = seeker.Seek(start, io.SeekStart)
			}
		}
		if err != nil {
			seeker, length = nil, -1
		}
	}
	var lastErr error
	for attempt := 0; ; attempt++ {
		if ctx.Err() != nil {
			break
		}
		base := c.pick(ctx, toLeader)
		body := &sentReader{r: r}
		err := c.sendRestore(ctx, base, body, length)
		var e *Error
		switch {
		case err == nil:
			return nil
		case errors.As(err, &e) && e.Status == http.StatusServiceUnavailable &&
			(e.Code == api.CodeNoLeader || e.Code == api.CodeNotLeader || e.Code == api.CodeStopped):
			// Answered before anything changed: try the leader.
			c.leaderHint(base, e.Leader)
		case errors.As(err, &e):
			return e
		case body.eof.Load() && !isDialError(err):
			// The leader had the whole snapshot: it may have restored it.
			return fmt.Errorf("%w: restore through %s: %w", ErrIndeterminate, base, err)
		default:
			// The snapshot was not sent completely: nothing changed.
			c.endpointFailed(base)
		}
		lastErr = err
		if body.n.Load() > 0 {
			if seeker == nil {
				return fmt.Errorf("client: restore: %w (the snapshot reader cannot be rewound to send it again)", err)
			}
			if _, serr := seeker.Seek(start, io.SeekStart); serr != nil {
				return fmt.Errorf("client: restore: %w (rewinding the snapshot to send it again: %w)", err, serr)
			}
		}
		if !sleepBackoff(ctx, attempt) {
			break
		}
	}
	if c.ctx.Err() != nil {
		return ErrClosed
	}
	if lastErr == nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, ctx.Err())
	}
	return fmt.Errorf("%w: %w (last error: %w)", ErrUnavailable, ctx.Err(), lastErr)
}

// sendRestore performs one POST /v1/snapshot exchange; an error answer is
// returned as *Error.
func (c *Client) sendRestore(ctx context.Context, base string, body *sentReader, length int64) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/snapshot", body)
	if err != nil {
		return err
	}
	if length >= 0 {
		req.ContentLength = length
		if length == 0 {
			req.Body = http.NoBody
		}
	}
	req.Header["Content-Type"] = []string{"application/octet-stream"}
	req.Header["User-Agent"] = noUserAgent
	if d, ok := ctx.Deadline(); ok {
		if b := serverBudget(ctx); b > 0 {
			req.Header[api.HeaderTimeout] = []string{strconv.FormatInt(max(b.Milliseconds(), 1), 10)}
		} else if time.Until(d) <= 0 {
			return ctx.Err()
		}
	}
	resp, err := c.rt.RoundTrip(req)
	if err != nil {
		return err
	}
	if resp.StatusCode == http.StatusOK {
		_, err = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		return err
	}
	return readError(resp)
}

// readError reads an error answer (and closes its body).
func readError(resp *http.Response) *Error {
	defer resp.Body.Close()
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(io.LimitReader(resp.Body, 64<<10))
	b := buf.Bytes()
	return decodeError(&result{status: resp.StatusCode, header: resp.Header, body: &b})
}

// sentReader counts what the transport read of the body and whether it
// reached the end.
type sentReader struct {
	r   io.Reader
	n   atomic.Int64
	eof atomic.Bool
}

func (s *sentReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	s.n.Add(int64(n))
	if err == io.EOF {
		s.eof.Store(true)
	}
	return n, err
}
