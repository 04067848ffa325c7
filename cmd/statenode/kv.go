package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/statenode/statenode/api"
	"github.com/statenode/statenode/client"
)

// kvCmd groups the key-value commands.
type kvCmd struct {
	Put   kvPutCmd   `cmd:"" help:"Set KEY to VALUE; VALUE omitted or '-' reads it from stdin (bytes as they are)."`
	Get   kvGetCmd   `cmd:"" help:"Print the value of KEY, or with --prefix the keys that start with KEY."`
	Ls    kvLsCmd    `cmd:"" help:"List the keys that start with PREFIX, one per line."`
	Del   kvDelCmd   `cmd:"" help:"Delete KEY, or with --prefix every key that starts with KEY."`
	Cas   kvCasCmd   `cmd:"" help:"Set KEY to VALUE only if its mod revision is --rev (0: only if KEY does not exist)."`
	Watch kvWatchCmd `cmd:"" help:"Print changes to keys that start with PREFIX until interrupted."`
}

// newClient connects to the --addr endpoints.
func (rc *runContext) newClient() (*client.Client, error) {
	return client.New(client.Config{
		Endpoints:      rc.g.Addr,
		RequestTimeout: rc.g.Timeout,
	})
}

// connect is the prologue of a one-request command: a client for the --addr
// endpoints and a context bounded by --timeout; done releases both.
func (rc *runContext) connect() (*client.Client, context.Context, func(), error) {
	cl, err := rc.newClient()
	if err != nil {
		return nil, nil, nil, err
	}
	ctx, cancel := rc.requestContext()
	return cl, ctx, func() { cancel(); cl.Close() }, nil
}

// connectUntilSignal is connect for a command that runs until it is done
// or interrupted (watch, observe, snapshot transfers): its context ends on
// SIGINT or SIGTERM instead of after --timeout.
func (rc *runContext) connectUntilSignal() (*client.Client, context.Context, func(), error) {
	cl, err := rc.newClient()
	if err != nil {
		return nil, nil, nil, err
	}
	ctx, stop := signal.NotifyContext(rc.ctx, os.Interrupt, syscall.SIGTERM)
	return cl, ctx, func() { stop(); cl.Close() }, nil
}

// requestContext bounds one client request by --timeout.
func (rc *runContext) requestContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(rc.ctx, rc.g.Timeout)
}

// readValue returns arg, or stdin when arg is nil or "-".
func (rc *runContext) readValue(arg *string) ([]byte, error) {
	if arg != nil && *arg != "-" {
		return []byte(*arg), nil
	}
	b, err := io.ReadAll(rc.stdin)
	if err != nil {
		return nil, fmt.Errorf("read value from stdin: %w", err)
	}
	return b, nil
}

// writeJSON writes v as one line of JSON.
func writeJSON(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

type kvPutCmd struct {
	Key     string  `arg:"" help:"Key."`
	Value   *string `arg:"" optional:"" help:"Value; omitted or '-' reads stdin."`
	Session uint64  `name:"session" env:"-" placeholder:"ID" help:"Attach the key to this coordination session: it is deleted when the session ends (an ephemeral key)."`
}

// Run prints "OK revision=N" (text) or the PutResponse (json). With
// --session the key is ephemeral; a session that does not exist is an
// error and nothing is written. --session is not read from
// STATENODE_SESSION: lock and sem set that variable for their command, and
// a put in that command must not turn ephemeral unless asked to.
func (c *kvPutCmd) Run(rc *runContext) error {
	value, err := rc.readValue(c.Value)
	if err != nil {
		return err
	}
	cl, ctx, done, err := rc.connect()
	if err != nil {
		return err
	}
	defer done()
	var resp *api.PutResponse
	if c.Session != 0 {
		resp, err = cl.PutEphemeral(ctx, c.Key, value, c.Session)
		if errors.Is(err, client.ErrSessionNotFound) {
			return fmt.Errorf("session not found: %d", c.Session)
		}
	} else {
		resp, err = cl.Put(ctx, c.Key, value)
	}
	if err != nil {
		return err
	}
	if rc.g.Output == "json" {
		return writeJSON(rc.stdout, resp)
	}
	_, err = fmt.Fprintf(rc.stdout, "OK revision=%d\n", resp.Revision)
	return err
}

type kvGetCmd struct {
	Key    string `arg:"" help:"Key, or the prefix with --prefix."`
	Prefix bool   `name:"prefix" help:"Read every key that starts with KEY (text output: the keys, one per line)."`
	Stale  bool   `name:"stale" help:"Serve the read from the contacted member's local state (may lag behind)."`
	Rev    int64  `name:"rev" placeholder:"REV" help:"Read the store as of this revision (0: the current one)."`
	Limit  int64  `name:"limit" placeholder:"N" help:"With --prefix, return at most this many keys (0: all)."`
}

func (c *kvGetCmd) readOptions() []client.ReadOption {
	var opts []client.ReadOption
	if c.Stale {
		opts = append(opts, client.WithStale())
	}
	if c.Rev > 0 {
		opts = append(opts, client.WithRevision(c.Rev))
	}
	if c.Limit > 0 {
		opts = append(opts, client.WithLimit(c.Limit))
	}
	return opts
}

// Run prints the value followed by a newline (text) or the KeyValue (json);
// with --prefix the keys one per line (text) or the RangeResponse (json).
func (c *kvGetCmd) Run(rc *runContext) error {
	if c.Limit != 0 && !c.Prefix {
		return fmt.Errorf("%w: --limit needs --prefix", errUsage)
	}
	cl, ctx, done, err := rc.connect()
	if err != nil {
		return err
	}
	defer done()
	if c.Prefix {
		resp, err := cl.Range(ctx, c.Key, c.readOptions()...)
		if err != nil {
			return err
		}
		return printRange(rc, resp)
	}
	kv, err := cl.Get(ctx, c.Key, c.readOptions()...)
	if errors.Is(err, client.ErrKeyNotFound) {
		return fmt.Errorf("key not found: %s", c.Key)
	}
	if err != nil {
		return err
	}
	if rc.g.Output == "json" {
		return writeJSON(rc.stdout, kv)
	}
	_, err = rc.stdout.Write(append(kv.Value, '\n'))
	return err
}

// printRange prints the keys one per line (text) or the response (json).
func printRange(rc *runContext, resp *api.RangeResponse) error {
	if rc.g.Output == "json" {
		return writeJSON(rc.stdout, resp)
	}
	var out []byte
	for _, kv := range resp.KVs {
		out = append(append(out, kv.Key...), '\n')
	}
	_, err := rc.stdout.Write(out)
	return err
}

type kvLsCmd struct {
	Prefix string `arg:"" optional:"" help:"Key prefix (default: every key)."`
	Stale  bool   `name:"stale" help:"Serve the read from the contacted member's local state."`
	Rev    int64  `name:"rev" placeholder:"REV" help:"List the keys as of this revision (0: the current one)."`
	Limit  int64  `name:"limit" placeholder:"N" help:"At most this many keys (0: all)."`
}

// Run prints the keys one per line (text) or the RangeResponse, without
// values, (json).
func (c *kvLsCmd) Run(rc *runContext) error {
	cl, ctx, done, err := rc.connect()
	if err != nil {
		return err
	}
	defer done()
	opts := (&kvGetCmd{Stale: c.Stale, Rev: c.Rev, Limit: c.Limit}).readOptions()
	resp, err := cl.Range(ctx, c.Prefix, append(opts, client.WithKeysOnly())...)
	if err != nil {
		return err
	}
	return printRange(rc, resp)
}

type kvDelCmd struct {
	Key    string `arg:"" help:"Key, or the prefix with --prefix."`
	Prefix bool   `name:"prefix" help:"Delete every key that starts with KEY."`
}

// Run prints "deleted=N revision=R" (text) or the DeleteResponse (json).
// Deleting a missing key is not an error (deleted=0).
func (c *kvDelCmd) Run(rc *runContext) error {
	cl, ctx, done, err := rc.connect()
	if err != nil {
		return err
	}
	defer done()
	var resp *api.DeleteResponse
	if c.Prefix {
		resp, err = cl.DeletePrefix(ctx, c.Key)
	} else {
		resp, err = cl.Delete(ctx, c.Key)
	}
	if err != nil {
		return err
	}
	if rc.g.Output == "json" {
		return writeJSON(rc.stdout, resp)
	}
	_, err = fmt.Fprintf(rc.stdout, "deleted=%d revision=%d\n", resp.Deleted, resp.Revision)
	return err
}

type kvCasCmd struct {
	Key   string  `arg:"" help:"Key."`
	Value *string `arg:"" optional:"" help:"New value; omitted or '-' reads stdin."`
	Rev   int64   `name:"rev" placeholder:"REV" required:"" help:"Expected mod revision of KEY (from kv get -o json); 0 means KEY must not exist."`
}

// Run prints "OK revision=N" (text) or the PutResponse (json); a failed
// comparison is an error ("cas failed: ...", exit status 1).
func (c *kvCasCmd) Run(rc *runContext) error {
	if c.Rev < 0 {
		return fmt.Errorf("%w: --rev must not be negative", errUsage)
	}
	value, err := rc.readValue(c.Value)
	if err != nil {
		return err
	}
	cl, ctx, done, err := rc.connect()
	if err != nil {
		return err
	}
	defer done()
	resp, err := cl.CompareAndSwap(ctx, c.Key, value, c.Rev)
	if errors.Is(err, client.ErrCASFailed) {
		if c.Rev == 0 {
			return fmt.Errorf("cas failed: %s already exists", c.Key)
		}
		return fmt.Errorf("cas failed: %s is not at mod revision %d", c.Key, c.Rev)
	}
	if err != nil {
		return err
	}
	if rc.g.Output == "json" {
		return writeJSON(rc.stdout, resp)
	}
	_, err = fmt.Fprintf(rc.stdout, "OK revision=%d\n", resp.Revision)
	return err
}

type kvWatchCmd struct {
	Prefix string `arg:"" optional:"" help:"Key prefix to watch (default: every key)."`
	Rev    int64  `name:"rev" placeholder:"REV" help:"Start at this revision, replaying retained history (0: from now)."`
	PrevKV bool   `name:"prev-kv" help:"Include each key's previous value (json output)."`
}

// Run prints one line per event until SIGINT/SIGTERM: "PUT key value" or
// "DELETE key" (text), or one JSON object per event (json, NDJSON):
// {"type":"PUT","kv":{...},"prev_kv":{...},"revision":N}.
//
// If the stream breaks (the member went away), the watch resumes on another
// endpoint from the revision after the last one printed, so no event is
// lost or repeated; it retries until interrupted. A compacted start
// revision, or falling behind the retained history, is an error.
func (c *kvWatchCmd) Run(rc *runContext) error {
	cl, ctx, done, err := rc.connectUntilSignal()
	if err != nil {
		return err
	}
	defer done()

	next := c.Rev // the revision to resume from; 0 = from now
	backoff := newBackoff(100*time.Millisecond, 2*time.Second)
	for attempt := 0; ; attempt++ {
		opts := []client.WatchOption{client.WithPrefix()}
		if next > 0 {
			opts = append(opts, client.WithStartRevision(next))
		}
		if c.PrevKV {
			opts = append(opts, client.WithPrevKV())
		}
		ch, err := cl.Watch(ctx, c.Prefix, opts...)
		switch {
		case ctx.Err() != nil:
			return nil // interrupted: the normal way out
		case err != nil && attempt == 0:
			return err // nothing watched yet: report, do not retry
		case err != nil && errors.Is(err, client.ErrCompacted):
			return fmt.Errorf("watch: %w", err)
		case err != nil:
			fmt.Fprintf(rc.stderr, "statenode: watch: %s; retrying\n", oneLine(err))
			if !backoff.wait(ctx) {
				return nil
			}
			continue
		}
		broken, err := c.consume(ctx, rc, ch, &next)
		if err != nil || ctx.Err() != nil {
			return err
		}
		backoff.reset()
		fmt.Fprintf(rc.stderr, "statenode: watch: %s; resuming from revision %d\n", broken, next)
	}
}

// consume prints the responses of one watch stream and advances *next past
// every revision printed. It returns why the stream ended if it can be
// resumed, or an error if it cannot.
func (c *kvWatchCmd) consume(ctx context.Context, rc *runContext, ch <-chan api.WatchResponse, next *int64) (string, error) {
	for {
		select {
		case <-ctx.Done():
			return "", nil
		case resp, ok := <-ch:
			switch {
			case !ok:
				return "stream closed", nil
			case resp.Error != nil && resp.Error.Code == api.CodeUnavailable:
				return resp.Error.Message, nil
			case resp.Error != nil:
				return "", fmt.Errorf("watch: %w", resp.Error)
			case resp.Created:
				if *next == 0 {
					*next = resp.Revision + 1 // watching from now: resume after the start
				}
				continue
			}
			if err := printEvents(rc, resp); err != nil {
				return "", err
			}
			if len(resp.Events) > 0 {
				*next = resp.Revision + 1
			}
		}
	}
}

// backoff is an exponential delay between retries.
type backoff struct {
	min, max, cur time.Duration
}

func newBackoff(min, max time.Duration) *backoff { return &backoff{min: min, max: max, cur: min} }

func (b *backoff) reset() { b.cur = b.min }

// wait sleeps for the current delay and doubles it; false if ctx ended.
func (b *backoff) wait(ctx context.Context) bool {
	t := time.NewTimer(b.cur)
	defer t.Stop()
	b.cur = min(2*b.cur, b.max)
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// watchEventJSON is one NDJSON line of kv watch -o json.
type watchEventJSON struct {
	Type     string        `json:"type"`
	KV       api.KeyValue  `json:"kv"`
	PrevKV   *api.KeyValue `json:"prev_kv,omitempty"`
	Revision int64         `json:"revision"`
}

func printEvents(rc *runContext, resp api.WatchResponse) error {
	var out []byte
	for _, ev := range resp.Events {
		if rc.g.Output == "json" {
			b, err := json.Marshal(watchEventJSON{Type: ev.Type, KV: ev.KV, PrevKV: ev.PrevKV, Revision: ev.KV.ModRevision})
			if err != nil {
				return err
			}
			out = append(append(out, b...), '\n')
			continue
		}
		out = append(out, ev.Type...)
		out = append(append(out, ' '), ev.KV.Key...)
		if ev.Type == api.EventPut {
			out = append(append(out, ' '), ev.KV.Value...)
		}
		out = append(out, '\n')
	}
	_, err := rc.stdout.Write(out)
	return err
}
