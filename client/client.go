package client

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"path"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/statenode/statenode/api"
)

// Errors returned by the client; match with errors.Is. Server errors are
// *Error values whose Is maps their code onto these.
var (
	// ErrKeyNotFound: Get found no such key (404 not_found).
	ErrKeyNotFound = errors.New("client: key not found")
	// ErrCASFailed: a CompareAndSwap condition did not hold (409 cas_failed).
	ErrCASFailed = errors.New("client: compare-and-swap failed")
	// ErrNoLeader: the cluster had no leader, or the member could not reach
	// it, and nothing was proposed (503).
	ErrNoLeader = errors.New("client: no leader")
	// ErrUnavailable: no endpoint could serve the request before the
	// context ended (every endpoint unreachable or without a leader).
	ErrUnavailable = errors.New("client: no endpoint available")
	// ErrIndeterminate: a write whose outcome is unknown: the connection
	// broke after the request was sent, the server timed out (504), or the
	// context ended while waiting for the answer. It may have been applied.
	ErrIndeterminate = errors.New("client: write outcome unknown")
	// ErrCompacted: the revision asked for has been compacted (410).
	ErrCompacted = errors.New("client: revision compacted")
	// ErrInvalid: the server rejected the request as malformed or invalid (400).
	ErrInvalid = errors.New("client: invalid request")
	// ErrTooLarge: a key, value or request exceeds the server's limits (413).
	ErrTooLarge = errors.New("client: request too large")
	// ErrUnknownMember: the member ID is not part of the cluster (404 unknown_member).
	ErrUnknownMember = errors.New("client: unknown member")
	// ErrClosed: the client has been closed.
	ErrClosed = errors.New("client: closed")
)

// Error is an error answer of the server.
type Error struct {
	Status  int    // HTTP status
	Code    string // api.Code* constant, e.g. "not_found"
	Message string
	// Leader is the leader's client API address hinted by a 503, if any.
	Leader string
	// CompactRevision is set with ErrCompacted: the oldest revision still
	// readable is CompactRevision+1.
	CompactRevision int64
	// KV is the key's current value on ErrCASFailed, if the key exists.
	KV *api.KeyValue
}

func (e *Error) Error() string {
	return fmt.Sprintf("client: server answered %d %s: %s", e.Status, e.Code, e.Message)
}

// Is maps the error code onto the package's sentinel errors.
func (e *Error) Is(target error) bool {
	switch e.Code {
	case api.CodeNotFound:
		return target == ErrKeyNotFound
	case api.CodeCASFailed:
		return target == ErrCASFailed
	case api.CodeNoLeader, api.CodeNotLeader, api.CodeStopped:
		return target == ErrNoLeader
	case api.CodeTimeout:
		return target == ErrIndeterminate
	case api.CodeCompacted:
		return target == ErrCompacted
	case api.CodeInvalid, api.CodeBadRequest, api.CodeFutureRevision:
		return target == ErrInvalid
	case api.CodeTooLarge:
		return target == ErrTooLarge
	case api.CodeUnknownMember:
		return target == ErrUnknownMember
	}
	return coordIs(e.Code, target) || crdtIs(e.Code, target)
}

// Config configures a Client.
type Config struct {
	// Endpoints are the client API addresses of cluster members, as
	// "host:port" or "http://host:port" ("https://" with TLS). At least one.
	Endpoints []string
	// RequestTimeout bounds a request, retries included, whose context has
	// no deadline. Default 10s: long enough to ride out a leader election.
	RequestTimeout time.Duration
	// MaxConnsPerEndpoint caps the connections to one endpoint (HTTP/1.1
	// carries one request per connection at a time); 0 = unlimited.
	MaxConnsPerEndpoint int
	// HTTPClient, if set, is used instead of the client's own (Close does
	// not close its transport). Its Timeout should be zero: contexts bound
	// requests, and watches are long-lived.
	HTTPClient *http.Client
	// TLS, if set, makes "host:port" endpoints https and configures the
	// client's own transport.
	TLS *tls.Config
}

const (
	defaultRequestTimeout = 10 * time.Second
	// dialTimeout bounds connecting to one endpoint, so that a blackholed
	// address does not eat a request's whole budget.
	dialTimeout = 2 * time.Second
	// backoffMin and backoffMax bound the wait between retries.
	backoffMin = 10 * time.Millisecond
	backoffMax = 500 * time.Millisecond
	// leaderRetryAfter is how long requests avoid a leader address that
	// could not be reached (members forward to the leader meanwhile).
	leaderRetryAfter = time.Second
	// readAttemptBudget bounds the server time of one attempt of a read,
	// so that a read retries elsewhere when one member cannot serve it.
	readAttemptBudget = 2 * time.Second
)

// Client talks to a statenode cluster. It is safe for concurrent use.
type Client struct {
	cfg       Config
	hc        *http.Client
	rt        http.RoundTripper // hc's transport, used directly: no redirects, no header copies
	own       *http.Transport   // closed by Close; nil with Config.HTTPClient
	scheme    string
	endpoints []string // base URLs, e.g. "http://127.0.0.1:7001"

	leader atomic.Pointer[string] // base URL of the leader, nil if unknown
	// noDiscoveryUntil (unix ns): after the leader named by the cluster
	// could not be reached, requests go through the endpoints (which
	// forward) for a while instead of rediscovering the same address.
	noDiscoveryUntil atomic.Int64
	next             atomic.Uint32 // endpoint tried first by requests that need no leader

	ctx    context.Context // ends at Close; parent of watches
	cancel context.CancelFunc
	mu     sync.Mutex // orders wg.Add after Close's wg.Wait
	closed bool
	wg     sync.WaitGroup // watch goroutines
}

// New creates a client. It does not contact the cluster.
func New(cfg Config) (*Client, error) {
	if len(cfg.Endpoints) == 0 {
		return nil, fmt.Errorf("%w: no endpoints", ErrInvalid)
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = defaultRequestTimeout
	}
	if cfg.MaxConnsPerEndpoint < 0 {
		return nil, fmt.Errorf("%w: negative MaxConnsPerEndpoint", ErrInvalid)
	}
	c := &Client{cfg: cfg, scheme: "http"}
	if cfg.TLS != nil {
		c.scheme = "https"
	}
	for _, ep := range cfg.Endpoints {
		base, err := c.baseURL(ep)
		if err != nil {
			return nil, err
		}
		c.endpoints = append(c.endpoints, base)
	}
	if cfg.HTTPClient != nil {
		c.hc = cfg.HTTPClient
	} else {
		c.own = &http.Transport{
			DialContext:         (&net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConnsPerHost: max(cfg.MaxConnsPerEndpoint, 256),
			MaxConnsPerHost:     cfg.MaxConnsPerEndpoint,
			IdleConnTimeout:     90 * time.Second,
			TLSClientConfig:     cfg.TLS,
			DisableCompression:  true,
		}
		c.hc = &http.Client{Transport: c.own}
	}
	c.rt = c.hc.Transport
	if c.rt == nil {
		c.rt = http.DefaultTransport
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	return c, nil
}

// baseURL normalizes an endpoint or address into "scheme://host:port".
func (c *Client) baseURL(ep string) (string, error) {
	ep = strings.TrimRight(strings.TrimSpace(ep), "/")
	if !strings.Contains(ep, "://") {
		ep = c.scheme + "://" + ep
	}
	u, err := url.Parse(ep)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") || (u.Path != "" && u.Path != "/") {
		return "", fmt.Errorf("%w: bad endpoint %q", ErrInvalid, ep)
	}
	return u.Scheme + "://" + u.Host, nil
}

// Close ends every watch of this client, waits for their goroutines and
// closes idle connections. Requests in flight fail. Safe to call twice.
func (c *Client) Close() error {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	c.cancel()
	c.wg.Wait()
	if c.own != nil {
		c.own.CloseIdleConnections()
	} else {
		c.hc.CloseIdleConnections()
	}
	return nil
}

// --- request machinery ----------------------------------------------------------

// target says where a request goes.
type target int

const (
	toLeader target = iota // writes and linearizable reads
	toAny                  // stale reads, status, members
)

// call is one logical request, possibly sent several times.
type call struct {
	method string
	path   string // escaped path, e.g. "/v1/kv/a%20b"
	query  string // raw query without "?"
	body   []byte
	ctype  string
	write  bool // not idempotent: retried only if certainly not applied
	to     target
	// idempotent marks a write that may be repeated (it carries a request
	// ID the server deduplicates): retried even when its outcome is unknown.
	idempotent bool
	// header holds extra request headers (fences), nil for none.
	header http.Header
	// attempt, if positive, bounds each attempt of an idempotent call:
	// an endpoint that has not answered by then is given up on and the
	// next one is tried, so that a member cut off from the cluster (which
	// still accepts connections) cannot hold the call for its whole budget.
	attempt time.Duration
}

// result is a completed exchange: status, headers and the whole body.
type result struct {
	status int
	header http.Header
	body   *[]byte // pooled; release with putBuf
}

var noUserAgent = []string{""}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

func putBuf(p *[]byte) {
	if p == nil || cap(*p) > 256<<10 {
		return
	}
	*p = (*p)[:0]
	bufPool.Put(p)
}

// withTimeout applies RequestTimeout to a context without a deadline.
func (c *Client) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, c.cfg.RequestTimeout)
}

// do sends cl until it gets an answer that is not a retryable failure, and
// returns it; error answers (status >= 400) are returned as *Error.
func (c *Client) do(ctx context.Context, cl *call) (*result, error) {
	if c.ctx.Err() != nil {
		return nil, ErrClosed
	}
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	var lastErr error
	for attempt := 0; ; attempt++ {
		if ctx.Err() != nil {
			break
		}
		// Leave the server a budget a little below ours, so that its
		// verdict arrives before we give up on it.
		budget := serverBudget(ctx)
		if budget <= 0 {
			break
		}
		if !cl.write {
			// A read may be retried: do not let one stuck member eat
			// the whole budget.
			budget = min(budget, readAttemptBudget)
		}
		actx, acancel := ctx, context.CancelFunc(func() {})
		if cl.attempt > 0 && (!cl.write || cl.idempotent) {
			actx, acancel = context.WithTimeout(ctx, cl.attempt)
			budget = min(budget, serverBudget(actx))
			if budget <= 0 {
				budget = max(cl.attempt/2, time.Millisecond)
			}
		}
		base := c.pick(actx, cl.to)
		var wrote atomic.Bool
		sctx := actx
		if cl.write {
			sctx = httptrace.WithClientTrace(actx, &httptrace.ClientTrace{WroteHeaders: func() { wrote.Store(true) }})
		}
		res, err := c.send(sctx, base, cl, budget)
		attemptTimedOut := actx.Err() != nil && ctx.Err() == nil
		acancel()
		if err != nil && attemptTimedOut {
			// The endpoint did not answer within the attempt's bound: move
			// on to the next one (the call is idempotent).
			c.endpointFailed(base)
			lastErr = fmt.Errorf("%s did not answer within %v: %w", base, cl.attempt, err)
		} else if err != nil {
			// Before the headers are written nothing has left this
			// process; a dial error means no connection was made.
			sent := wrote.Load() && !isDialError(err)
			if cl.write && sent && !cl.idempotent {
				// The request may have reached the server: never repeat it.
				return nil, fmt.Errorf("%w: %s %s: %w", ErrIndeterminate, cl.method, base, err)
			}
			c.endpointFailed(base)
			lastErr = err
		} else if res.status < 400 {
			return res, nil
		} else {
			e := decodeError(res)
			putBuf(res.body)
			switch {
			case res.status == http.StatusServiceUnavailable && (e.Code == api.CodeNoLeader || e.Code == api.CodeNotLeader || e.Code == api.CodeStopped):
				// Returned only before proposing: safe to retry anywhere.
				c.leaderHint(base, e.Leader)
				lastErr = e
			case res.status == http.StatusGatewayTimeout && (!cl.write || cl.idempotent):
				c.endpointFailed(base)
				lastErr = e
			case res.status >= 500 && e.Code == "" && !cl.write:
				// Not our server's answer (a proxy?): try another endpoint.
				c.endpointFailed(base)
				lastErr = e
			default:
				return nil, e
			}
		}
		if !sleepBackoff(ctx, attempt) {
			break
		}
	}
	if c.ctx.Err() != nil {
		return nil, ErrClosed
	}
	cerr := ctx.Err()
	if cerr == nil {
		cerr = context.DeadlineExceeded // too little time left to try again
	}
	if lastErr == nil {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, cerr)
	}
	return nil, fmt.Errorf("%w: %w (last error: %w)", ErrUnavailable, cerr, lastErr)
}

// send performs one exchange with base and reads the whole answer.
func (c *Client) send(ctx context.Context, base string, cl *call, budget time.Duration) (*result, error) {
	u := base + cl.path
	if cl.query != "" {
		u += "?" + cl.query
	}
	var body io.Reader
	if cl.body != nil {
		body = bytes.NewReader(cl.body)
	}
	req, err := http.NewRequestWithContext(ctx, cl.method, u, body)
	if err != nil {
		return nil, err
	}
	if cl.ctype != "" {
		req.Header["Content-Type"] = []string{cl.ctype}
	}
	for k, v := range cl.header {
		req.Header[k] = v
	}
	// No User-Agent: one header less to write and parse per request.
	req.Header["User-Agent"] = noUserAgent
	if budget > 0 {
		req.Header[api.HeaderTimeout] = []string{strconv.FormatInt(max(budget.Milliseconds(), 1), 10)}
	}
	resp, err := c.rt.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	p := bufPool.Get().(*[]byte)
	buf := bytes.NewBuffer(*p)
	if resp.ContentLength > 0 {
		buf.Grow(int(min(resp.ContentLength, 64<<20)))
	}
	_, err = buf.ReadFrom(resp.Body)
	*p = buf.Bytes()
	if err != nil {
		putBuf(p)
		return nil, fmt.Errorf("read response: %w", err)
	}
	return &result{status: resp.StatusCode, header: resp.Header, body: p}, nil
}

func decodeError(res *result) *Error {
	e := &Error{Status: res.status}
	var ae api.Error
	if err := json.Unmarshal(*res.body, &ae); err == nil && ae.Code != "" {
		e.Code, e.Message, e.Leader, e.CompactRevision, e.KV = ae.Code, ae.Message, ae.Leader, ae.CompactRevision, ae.KV
	} else {
		e.Message = strings.TrimSpace(string((*res.body)[:min(len(*res.body), 512)]))
		if e.Message == "" {
			e.Message = http.StatusText(res.status)
		}
	}
	return e
}

// serverBudget is the time a server may spend on one attempt: what is left
// of ctx minus a margin for the answer to travel back (a fifth, within
// 20ms..100ms). Zero when too little is left to bother.
func serverBudget(ctx context.Context) time.Duration {
	d, ok := ctx.Deadline()
	if !ok {
		return time.Hour
	}
	left := time.Until(d)
	b := left - min(max(left/5, 20*time.Millisecond), 100*time.Millisecond)
	if b < 10*time.Millisecond {
		return 0
	}
	return b
}

// isDialError reports whether err happened before the request was sent:
// the connection could not be made.
func isDialError(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	return errors.Is(err, syscall.ECONNREFUSED)
}

// sleepBackoff waits before retry number attempt+1; false if ctx ended.
func sleepBackoff(ctx context.Context, attempt int) bool {
	d := min(backoffMin<<min(attempt, 10), backoffMax)
	d = d/2 + rand.N(d/2+1)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// pick chooses the endpoint for an attempt.
func (c *Client) pick(ctx context.Context, to target) string {
	if to == toLeader {
		if l := c.leader.Load(); l != nil {
			return *l
		}
		if time.Now().UnixNano() >= c.noDiscoveryUntil.Load() {
			if l := c.discoverLeader(ctx); l != "" {
				return l
			}
		}
	}
	return c.endpoints[int(c.next.Load())%len(c.endpoints)]
}

// endpointFailed moves on from an endpoint that could not be reached (or
// forgets the leader if it was the leader).
func (c *Client) endpointFailed(base string) {
	if l := c.leader.Load(); l != nil && *l == base {
		if c.leader.CompareAndSwap(l, nil) {
			c.noDiscoveryUntil.Store(time.Now().Add(leaderRetryAfter).UnixNano())
		}
	}
	i := c.next.Load()
	if c.endpoints[int(i)%len(c.endpoints)] == base {
		c.next.CompareAndSwap(i, i+1)
	}
}

// leaderHint records the leader named by a 503, or forgets a leader that
// said it no longer leads.
func (c *Client) leaderHint(from, hint string) {
	if hint != "" {
		if base, err := c.baseURL(hint); err == nil && base != from {
			c.leader.Store(&base)
			return
		}
	}
	c.endpointFailed(from)
}

// discoverLeader asks the endpoints, in turn, for /v1/status and returns the
// leader's base URL if one names it (and remembers it).
func (c *Client) discoverLeader(ctx context.Context) string {
	start := int(c.next.Load())
	for i := range c.endpoints {
		if ctx.Err() != nil {
			return ""
		}
		st, err := c.statusOf(ctx, c.endpoints[(start+i)%len(c.endpoints)])
		if err != nil || st.Leader.HTTPAddr == "" {
			continue
		}
		base, err := c.baseURL(st.Leader.HTTPAddr)
		if err != nil {
			continue
		}
		c.leader.Store(&base)
		return base
	}
	return ""
}

// --- keys in URLs ---------------------------------------------------------------

// keyPath returns the escaped path of a key: "/v1/kv/" + key with every
// byte outside [A-Za-z0-9-._~/] percent-encoded. If the result would be
// changed by the server's path cleaning (a "//", "." or ".." segment), "/"
// and "." are encoded too.
func keyPath(key string) string {
	const prefix = "/v1/kv/"
	if plainKey(key) {
		return prefix + key
	}
	b := make([]byte, 0, len(prefix)+len(key)*3)
	b = append(b, prefix...)
	full := !isClean(prefix + key)
	for i := 0; i < len(key); i++ {
		ch := key[i]
		if unreserved(ch) || (!full && (ch == '/' || ch == '.')) {
			b = append(b, ch)
			continue
		}
		b = append(b, '%', "0123456789ABCDEF"[ch>>4], "0123456789ABCDEF"[ch&15])
	}
	return string(b)
}

func unreserved(ch byte) bool {
	return 'a' <= ch && ch <= 'z' || 'A' <= ch && ch <= 'Z' || '0' <= ch && ch <= '9' || ch == '-' || ch == '_' || ch == '~'
}

// plainKey: the key can go into the path as it is.
func plainKey(key string) bool {
	for i := 0; i < len(key); i++ {
		if ch := key[i]; !unreserved(ch) && ch != '/' && ch != '.' {
			return false
		}
	}
	return isClean("/v1/kv/" + key)
}

// isClean mirrors net/http's path cleaning (path.Clean keeping a trailing
// slash): a path it would rewrite gets a redirect instead of the handler.
func isClean(p string) bool {
	if !strings.Contains(p, "//") && !strings.Contains(p, "/.") {
		return true
	}
	cp := path.Clean(p)
	if p[len(p)-1] == '/' && cp != "/" {
		cp += "/"
	}
	return cp == p
}

// --- options ---------------------------------------------------------------------

type readOptions struct {
	stale     bool
	revision  int64
	limit     int64
	keysOnly  bool
	countOnly bool
}

// ReadOption changes a Get or Range.
type ReadOption func(*readOptions)

// WithStale serves the read from any member's local state, without
// contacting the leader: faster, but it may miss recent writes.
func WithStale() ReadOption { return func(o *readOptions) { o.stale = true } }

// WithRevision reads the store as of revision rev (within the retained
// history; ErrCompacted otherwise).
func WithRevision(rev int64) ReadOption { return func(o *readOptions) { o.revision = rev } }

// WithLimit returns at most n keys (Range only).
func WithLimit(n int64) ReadOption { return func(o *readOptions) { o.limit = n } }

// WithKeysOnly leaves values out.
func WithKeysOnly() ReadOption { return func(o *readOptions) { o.keysOnly = true } }

// WithCountOnly returns only the number of matching keys (Range only).
func WithCountOnly() ReadOption { return func(o *readOptions) { o.countOnly = true } }

func (o *readOptions) appendQuery(q []byte, forRange bool) []byte {
	add := func(s string) {
		if len(q) > 0 {
			q = append(q, '&')
		}
		q = append(q, s...)
	}
	addInt := func(name string, v int64) {
		add(name)
		q = append(q, '=')
		q = strconv.AppendInt(q, v, 10)
	}
	if o.stale {
		add("stale")
	}
	if o.revision != 0 {
		addInt("revision", o.revision)
	}
	if o.keysOnly {
		add("keys_only")
	}
	if forRange {
		if o.limit != 0 {
			addInt("limit", o.limit)
		}
		if o.countOnly {
			add("count_only")
		}
	}
	return q
}

func readTarget(o *readOptions) target {
	if o.stale {
		return toAny
	}
	return toLeader
}

// --- key-value ---------------------------------------------------------------------

// Put sets key to value and returns the revision of the write.
func (c *Client) Put(ctx context.Context, key string, value []byte) (*api.PutResponse, error) {
	return c.put(ctx, key, value, "raw")
}

// PutEphemeral sets key to value attached to session: the key is deleted
// in the same committed command that ends the session (expiry or
// destroy), and watchers see a DELETE event. A put without a session
// later detaches the key. A session that does not exist fails with
// ErrSessionNotFound and writes nothing.
func (c *Client) PutEphemeral(ctx context.Context, key string, value []byte, session uint64) (*api.PutResponse, error) {
	if session == 0 {
		return nil, fmt.Errorf("%w: session ID 0", ErrInvalid)
	}
	return c.put(ctx, key, value, "raw&session="+strconv.FormatUint(session, 10))
}

// CompareAndSwap sets key to value only if the key's mod revision is
// modRevision; modRevision 0 means "only if the key does not exist". A
// mismatch fails with ErrCASFailed (an *Error whose KV is the current value).
func (c *Client) CompareAndSwap(ctx context.Context, key string, value []byte, modRevision int64) (*api.PutResponse, error) {
	if modRevision < 0 {
		return nil, fmt.Errorf("%w: negative mod revision", ErrInvalid)
	}
	return c.put(ctx, key, value, "raw&if_mod_revision="+strconv.FormatInt(modRevision, 10))
}

func (c *Client) put(ctx context.Context, key string, value []byte, query string) (*api.PutResponse, error) {
	if value == nil {
		value = []byte{}
	}
	res, err := c.do(ctx, &call{
		method: http.MethodPut, path: keyPath(key), query: query,
		body: value, ctype: "application/octet-stream", write: true, to: toLeader,
	})
	if err != nil {
		return nil, err
	}
	defer putBuf(res.body)
	var out api.PutResponse
	if err := json.Unmarshal(*res.body, &out); err != nil {
		return nil, fmt.Errorf("%w: the write succeeded but its answer is malformed: %w", ErrIndeterminate, err)
	}
	return &out, nil
}

// Get reads one key; ErrKeyNotFound if it does not exist. Options:
// WithStale, WithRevision, WithKeysOnly.
func (c *Client) Get(ctx context.Context, key string, opts ...ReadOption) (*api.KeyValue, error) {
	var o readOptions
	for _, opt := range opts {
		opt(&o)
	}
	var qb [64]byte
	q := append(qb[:0], "raw"...)
	q = o.appendQuery(q, false)
	res, err := c.do(ctx, &call{method: http.MethodGet, path: keyPath(key), query: string(q), to: readTarget(&o)})
	if err != nil {
		return nil, err
	}
	defer putBuf(res.body)
	kv := &api.KeyValue{Key: []byte(key), Value: bytes.Clone(*res.body)}
	if kv.Value == nil {
		kv.Value = []byte{}
	}
	for _, f := range []struct {
		name string
		dst  *int64
	}{
		{api.HeaderModRevision, &kv.ModRevision},
		{api.HeaderCreateRevision, &kv.CreateRevision},
		{api.HeaderVersion, &kv.Version},
	} {
		v := res.header[f.name]
		if len(v) == 0 {
			return nil, fmt.Errorf("client: answer lacks header %s", f.name)
		}
		if *f.dst, err = strconv.ParseInt(v[0], 10, 64); err != nil {
			return nil, fmt.Errorf("client: bad header %s: %w", f.name, err)
		}
	}
	return kv, nil
}

// Range reads every key that starts with prefix ("" = all keys), sorted.
// Options: WithStale, WithRevision, WithLimit, WithKeysOnly, WithCountOnly.
func (c *Client) Range(ctx context.Context, prefix string, opts ...ReadOption) (*api.RangeResponse, error) {
	var o readOptions
	for _, opt := range opts {
		opt(&o)
	}
	var qb [96]byte
	q := append(qb[:0], "prefix"...)
	q = o.appendQuery(q, true)
	res, err := c.do(ctx, &call{method: http.MethodGet, path: keyPath(prefix), query: string(q), to: readTarget(&o)})
	if err != nil {
		return nil, err
	}
	defer putBuf(res.body)
	var out api.RangeResponse
	if err := json.Unmarshal(*res.body, &out); err != nil {
		return nil, fmt.Errorf("client: malformed range answer: %w", err)
	}
	return &out, nil
}

// Delete removes key. Deleting a missing key is not an error: Deleted is 0.
func (c *Client) Delete(ctx context.Context, key string) (*api.DeleteResponse, error) {
	return c.del(ctx, key, "")
}

// DeletePrefix removes every key that starts with prefix ("" = every key).
func (c *Client) DeletePrefix(ctx context.Context, prefix string) (*api.DeleteResponse, error) {
	return c.del(ctx, prefix, "prefix")
}

func (c *Client) del(ctx context.Context, key, query string) (*api.DeleteResponse, error) {
	res, err := c.do(ctx, &call{method: http.MethodDelete, path: keyPath(key), query: query, write: true, to: toLeader})
	if err != nil {
		return nil, err
	}
	defer putBuf(res.body)
	var out api.DeleteResponse
	if err := json.Unmarshal(*res.body, &out); err != nil {
		return nil, fmt.Errorf("%w: the delete succeeded but its answer is malformed: %w", ErrIndeterminate, err)
	}
	return &out, nil
}

// Txn runs a transaction: if every compare holds, the success ops run,
// otherwise the failure ops; atomically, as one revision.
func (c *Client) Txn(ctx context.Context, req *api.TxnRequest) (*api.TxnResponse, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	res, err := c.do(ctx, &call{method: http.MethodPost, path: "/v1/txn", body: body, ctype: "application/json", write: true, to: toLeader})
	if err != nil {
		return nil, err
	}
	defer putBuf(res.body)
	var out api.TxnResponse
	if err := json.Unmarshal(*res.body, &out); err != nil {
		return nil, fmt.Errorf("%w: the txn ran but its answer is malformed: %w", ErrIndeterminate, err)
	}
	return &out, nil
}

// --- cluster ---------------------------------------------------------------------------

// Status returns the status of the first endpoint that answers.
func (c *Client) Status(ctx context.Context) (*api.Status, error) {
	res, err := c.do(ctx, &call{method: http.MethodGet, path: "/v1/status", to: toAny})
	if err != nil {
		return nil, err
	}
	defer putBuf(res.body)
	var st api.Status
	if err := json.Unmarshal(*res.body, &st); err != nil {
		return nil, fmt.Errorf("client: malformed status: %w", err)
	}
	return &st, nil
}

// StatusOf returns the status of one endpoint ("host:port" or a URL),
// which need not be in Config.Endpoints. No retries.
func (c *Client) StatusOf(ctx context.Context, endpoint string) (*api.Status, error) {
	base, err := c.baseURL(endpoint)
	if err != nil {
		return nil, err
	}
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	return c.statusOf(ctx, base)
}

func (c *Client) statusOf(ctx context.Context, base string) (*api.Status, error) {
	res, err := c.send(ctx, base, &call{method: http.MethodGet, path: "/v1/status"}, 0)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrUnavailable, base, err)
	}
	defer putBuf(res.body)
	if res.status != http.StatusOK {
		return nil, decodeError(res)
	}
	var st api.Status
	if err := json.Unmarshal(*res.body, &st); err != nil {
		return nil, fmt.Errorf("client: malformed status from %s: %w", base, err)
	}
	return &st, nil
}

// Members lists the cluster's members.
func (c *Client) Members(ctx context.Context) ([]api.Member, error) {
	res, err := c.do(ctx, &call{method: http.MethodGet, path: "/v1/members", to: toAny})
	if err != nil {
		return nil, err
	}
	defer putBuf(res.body)
	var ms []api.Member
	if err := json.Unmarshal(*res.body, &ms); err != nil {
		return nil, fmt.Errorf("client: malformed member list: %w", err)
	}
	return ms, nil
}

// AddMember adds a voting member with the given Raft and client API
// addresses (a node started without state waits to be added).
func (c *Client) AddMember(ctx context.Context, id, raftAddr, httpAddr string) error {
	return c.addMember(ctx, api.AddMemberRequest{ID: id, RaftAddr: raftAddr, HTTPAddr: httpAddr})
}

// AddNonvoter adds a member that replicates the log and serves stale reads
// but does not vote.
func (c *Client) AddNonvoter(ctx context.Context, id, raftAddr, httpAddr string) error {
	return c.addMember(ctx, api.AddMemberRequest{ID: id, RaftAddr: raftAddr, HTTPAddr: httpAddr, NonVoter: true})
}

func (c *Client) addMember(ctx context.Context, req api.AddMemberRequest) error {
	body, err := json.Marshal(req)
	if err != nil {
		return err
	}
	res, err := c.do(ctx, &call{method: http.MethodPost, path: "/v1/members", body: body, ctype: "application/json", write: true, to: toLeader})
	if err != nil {
		return err
	}
	putBuf(res.body)
	return nil
}

// RemoveMember removes a member from the cluster.
func (c *Client) RemoveMember(ctx context.Context, id string) error {
	res, err := c.do(ctx, &call{method: http.MethodDelete, path: "/v1/members/" + url.PathEscape(id), write: true, to: toLeader})
	if err != nil {
		return err
	}
	putBuf(res.body)
	return nil
}

// TransferLeadership asks the leader to hand leadership to the member toID
// ("" = the most up-to-date voter) and forgets the known leader.
func (c *Client) TransferLeadership(ctx context.Context, toID string) error {
	body, err := json.Marshal(api.TransferLeaderRequest{ID: toID})
	if err != nil {
		return err
	}
	res, err := c.do(ctx, &call{method: http.MethodPost, path: "/v1/leader/transfer", body: body, ctype: "application/json", write: true, to: toLeader})
	if err != nil {
		return err
	}
	putBuf(res.body)
	c.leader.Store(nil)
	return nil
}
