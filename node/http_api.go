package node

// The public HTTP/JSON API v1: routes, request decoding, response encoding
// and error mapping. docs/API.md documents it for users. The wire types live
// in package api; this file converts them from and to the fsm types.
//
// The key-value routes are the hot path: their query parameters are parsed
// without building url.Values, their responses are encoded with the
// reflection-free api.*.AppendJSON into pooled buffers, and headers are set
// with preallocated values.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/statenode/statenode/api"
	"github.com/statenode/statenode/fsm"
)

const (
	// apiBodySlack is added to Limits().MaxRequestSize to bound JSON
	// bodies: base64 grows a value by a third and JSON adds member names
	// and escapes. 2x the request limit covers base64-encoded requests
	// with room to spare.
	apiBodySlack = 64 << 10
	// apiSmallBody bounds the bodies of the membership routes, bytes.
	apiSmallBody = 64 << 10
	// watchProgressInterval is how long a watch stream may stay silent
	// before the server writes a progress line ({"revision":N}), so that
	// clients and proxies can tell an idle stream from a dead one.
	watchProgressInterval = 5 * time.Second
	// watchFlushBytes: buffered watch lines are flushed once this many
	// bytes are pending even if more responses are ready.
	watchFlushBytes = 64 << 10
)

// Preallocated header values (net/http never mutates them).
var (
	hdrJSON        = []string{"application/json"}
	hdrNDJSON      = []string{"application/x-ndjson"}
	hdrOctetStream = []string{"application/octet-stream"}
	hdrText        = []string{"text/plain; charset=utf-8"}
	hdrNoCache     = []string{"no-cache"}
	hdrNoSniff     = []string{"nosniff"}
)

// apiHandler serves one route and returns the status code it wrote (for
// metrics, without wrapping the ResponseWriter).
type apiHandler func(w http.ResponseWriter, r *http.Request) int

// registerAPI registers the public client API, /livez, /readyz and /metrics
// on mux; request metrics go to reg. Start calls it once per node; the
// internal routes (/v1/internal/) are registered separately.
func (n *Node) registerAPI(mux *http.ServeMux, reg prometheus.Registerer) {
	m := newHTTPMetrics(reg)
	handle := func(pattern string, h apiHandler) {
		method, route, _ := strings.Cut(pattern, " ")
		rm := m.route(route, method)
		mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			code := h(w, r)
			rm.observe(code, time.Since(start))
		})
	}
	handle("PUT /v1/kv/{key...}", n.handlePut)
	handle("GET /v1/kv/{key...}", n.handleGet)
	handle("DELETE /v1/kv/{key...}", n.handleDelete)
	handle("POST /v1/txn", n.handleTxn)
	handle("GET /v1/watch", n.handleWatch)
	handle("GET /v1/status", n.handleStatus)
	handle("GET /v1/members", n.handleMembers)
	handle("POST /v1/members", n.handleAddMember)
	handle("DELETE /v1/members/{id}", n.handleRemoveMember)
	handle("POST /v1/leader/transfer", n.handleTransferLeader)
	n.registerCoord(handle)
	n.registerSnapshot(handle)
	n.registerGossipAPI(handle)
	handle("GET /livez", func(w http.ResponseWriter, r *http.Request) int {
		return writeText(w, http.StatusOK, "ok\n")
	})
	handle("GET /readyz", func(w http.ResponseWriter, r *http.Request) int {
		if n.Ready() {
			return writeText(w, http.StatusOK, "ok\n")
		}
		return writeText(w, http.StatusServiceUnavailable, "not ready\n")
	})
	var g prometheus.Gatherer = n.cfg.Registry
	if n.cfg.Registry == nil {
		g = prometheus.NewRegistry()
	}
	mux.Handle("GET /metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{}))
}

// --- metrics ---------------------------------------------------------------

type httpMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newHTTPMetrics(reg prometheus.Registerer) *httpMetrics {
	m := &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "statenode_http_requests_total",
			Help: "Client API requests by route pattern, method and status code.",
		}, []string{"route", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "statenode_http_request_duration_seconds",
			Help:    "Client API request latency by route pattern and method, seconds (watches: stream lifetime).",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route", "method"}),
	}
	if reg != nil {
		m.requests = registerOrReuse(reg, m.requests)
		m.duration = registerOrReuse(reg, m.duration)
	}
	return m
}

// registerOrReuse registers c, or returns the identical collector already
// registered (a node restarted with the same registry).
func registerOrReuse[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
	}
	return c
}

// routeMetrics caches the series of one route so that a request costs no
// label lookup: the histogram observer is resolved once, and the counter of
// each status code on first use.
type routeMetrics struct {
	route, method string
	requests      *prometheus.CounterVec
	duration      prometheus.Observer
	codes         [500]atomic.Pointer[prometheus.Counter] // index: status-100
}

func (m *httpMetrics) route(route, method string) *routeMetrics {
	return &routeMetrics{
		route:    route,
		method:   method,
		requests: m.requests,
		duration: m.duration.WithLabelValues(route, method),
	}
}

func (rm *routeMetrics) observe(code int, d time.Duration) {
	rm.duration.Observe(d.Seconds())
	if code < 100 || code > 599 {
		rm.requests.WithLabelValues(rm.route, rm.method, strconv.Itoa(code)).Inc()
		return
	}
	slot := &rm.codes[code-100]
	c := slot.Load()
	if c == nil {
		cnt := rm.requests.WithLabelValues(rm.route, rm.method, strconv.Itoa(code))
		slot.CompareAndSwap(nil, &cnt)
		c = slot.Load()
	}
	(*c).Inc()
}

// --- buffers and writers ---------------------------------------------------

var apiBufPool = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

func getAPIBuf() *[]byte { return apiBufPool.Get().(*[]byte) }

func putAPIBuf(p *[]byte) {
	if cap(*p) > 256<<10 {
		return // do not keep the buffers of huge responses alive
	}
	*p = (*p)[:0]
	apiBufPool.Put(p)
}

// writeBody writes a complete response body with the given content type.
func writeBody(w http.ResponseWriter, code int, ctype []string, body []byte) int {
	h := w.Header()
	h["Content-Type"] = ctype
	if len(body) > 2048 {
		// Small bodies get a Content-Length from net/http for free.
		h["Content-Length"] = []string{strconv.Itoa(len(body))}
	}
	w.WriteHeader(code)
	_, _ = w.Write(body)
	return code
}

func writeText(w http.ResponseWriter, code int, s string) int {
	h := w.Header()
	h["Content-Type"] = hdrText
	w.WriteHeader(code)
	_, _ = io.WriteString(w, s)
	return code
}

// writeJSONAppend encodes with an AppendJSON-style function into a pooled
// buffer and writes it.
func writeJSONAppend(w http.ResponseWriter, code int, appendFn func([]byte) []byte) int {
	p := getAPIBuf()
	*p = appendFn(*p)
	writeBody(w, code, hdrJSON, *p)
	putAPIBuf(p)
	return code
}

// writeJSONValue encodes v with encoding/json (cold routes).
func writeJSONValue(w http.ResponseWriter, code int, v any) int {
	p := getAPIBuf()
	buf := bytes.NewBuffer(*p)
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		putAPIBuf(p)
		return writeAPIError(w, &api.Error{Message: "encode response: " + err.Error(), Code: api.CodeInternal}, http.StatusInternalServerError)
	}
	*p = buf.Bytes()
	writeBody(w, code, hdrJSON, *p)
	putAPIBuf(p)
	return code
}

// --- errors ------------------------------------------------------------------

// apiError is an error detected by the HTTP layer itself: it already knows
// its status and code.
type apiError struct {
	status int
	code   string
	msg    string
}

func (e *apiError) Error() string { return e.msg }

func badRequest(format string, args ...any) error {
	return &apiError{status: http.StatusBadRequest, code: api.CodeBadRequest, msg: "bad request: " + fmt.Sprintf(format, args...)}
}

func writeAPIError(w http.ResponseWriter, e *api.Error, status int) int {
	return writeJSONAppend(w, status, e.AppendJSON)
}

// writeError maps err onto a status and an error code and writes the body.
func (n *Node) writeError(w http.ResponseWriter, err error) int {
	status, e := n.classify(err)
	return writeAPIError(w, e, status)
}

// classify maps an error of the node, of fsm or of request decoding onto
// the HTTP status and the error body.
func (n *Node) classify(err error) (int, *api.Error) {
	if status, e, ok := classifyCoord(err); ok {
		return status, e
	}
	e := &api.Error{Message: err.Error()}
	var (
		ae  *apiError
		mbe *http.MaxBytesError
		ce  *fsm.CompactedError
		nle *NotLeaderError
	)
	switch {
	case errors.As(err, &ae):
		e.Code = ae.code
		return ae.status, e
	case errors.As(err, &mbe):
		e.Code = api.CodeTooLarge
		e.Message = fmt.Sprintf("request body exceeds %d bytes", mbe.Limit)
		return http.StatusRequestEntityTooLarge, e
	case errors.As(err, &ce):
		e.Code = api.CodeCompacted
		e.CompactRevision = ce.Oldest - 1
		return http.StatusGone, e
	case errors.Is(err, fsm.ErrCompacted):
		e.Code = api.CodeCompacted
		e.CompactRevision = n.fsm.CompactRevision()
		return http.StatusGone, e
	case errors.Is(err, fsm.ErrFutureRevision):
		e.Code = api.CodeFutureRevision
		return http.StatusBadRequest, e
	case errors.Is(err, fsm.ErrTooLarge):
		e.Code = api.CodeTooLarge
		return http.StatusRequestEntityTooLarge, e
	case errors.Is(err, fsm.ErrInvalid):
		e.Code = api.CodeInvalid
		return http.StatusBadRequest, e
	case errors.Is(err, ErrKeyNotFound):
		e.Code = api.CodeNotFound
		return http.StatusNotFound, e
	case errors.Is(err, ErrUnknownMember):
		e.Code = api.CodeUnknownMember
		return http.StatusNotFound, e
	case errors.As(err, &nle):
		e.Code = api.CodeNotLeader
		e.Leader = nle.LeaderHTTP
		if e.Leader == "" {
			e.Leader = n.Leader().HTTPAddr
		}
		return http.StatusServiceUnavailable, e
	case errors.Is(err, ErrNotLeader):
		e.Code = api.CodeNotLeader
		e.Leader = n.Leader().HTTPAddr
		return http.StatusServiceUnavailable, e
	case errors.Is(err, ErrNoLeader):
		e.Code = api.CodeNoLeader
		e.Leader = n.Leader().HTTPAddr
		return http.StatusServiceUnavailable, e
	case errors.Is(err, ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		e.Code = api.CodeTimeout
		return http.StatusGatewayTimeout, e
	case err == ErrStopped:
		// The bare sentinel: the node refused before proposing anything.
		e.Code = api.CodeStopped
		return http.StatusServiceUnavailable, e
	case errors.Is(err, ErrStopped):
		// Wrapped: the node stopped while a write was being committed
		// ("may or may not have applied"). Clients must not retry it
		// blindly, so it is reported as an unknown outcome.
		e.Code = api.CodeTimeout
		return http.StatusGatewayTimeout, e
	case errors.Is(err, context.Canceled):
		e.Code = api.CodeCanceled
		return api.StatusCanceled, e
	}
	n.log.Warn("client API: internal error", "err", err)
	e.Code = api.CodeInternal
	return http.StatusInternalServerError, e
}

// --- query parameters --------------------------------------------------------

// Query parameter bits: which parameters a route accepts and which a
// request gave.
const (
	qPrefix uint32 = 1 << iota
	qRaw
	qPrevKV
	qKeysOnly
	qCountOnly
	qStale
	qConsistency
	qLimit
	qRevision
	qIfModRevision
	qIfVersion
	qIfValue
	qKey
	qStartRevision
	qSession
)

var queryNames = [...]struct {
	name string
	bit  uint32
}{
	{"prefix", qPrefix}, {"raw", qRaw}, {"prev_kv", qPrevKV}, {"keys_only", qKeysOnly},
	{"count_only", qCountOnly}, {"stale", qStale}, {"consistency", qConsistency},
	{"limit", qLimit}, {"revision", qRevision}, {"if_mod_revision", qIfModRevision},
	{"if_version", qIfVersion}, {"if_value", qIfValue}, {"key", qKey},
	{"start_revision", qStartRevision}, {"session", qSession},
}

// kvQuery is a parsed query string.
type kvQuery struct {
	set         uint32 // parameters present
	flags       uint32 // boolean parameters that are true
	consistency Consistency
	limit       int64
	revision    int64
	ifModRev    int64
	ifVersion   int64
	startRev    int64
	session     uint64 // PUT: attach the key to this session (ephemeral)
	ifValue     string
	key         string
}

func (q *kvQuery) has(bit uint32) bool  { return q.set&bit != 0 }
func (q *kvQuery) flag(bit uint32) bool { return q.flags&bit != 0 }

// parseQuery parses raw (a URL's RawQuery) accepting only the parameters
// in allowed. Boolean parameters are true when given bare or as
// =true/=1, false as =false/=0. Unknown or repeated parameters are errors:
// a typo must not silently change what a write does.
func parseQuery(raw string, allowed uint32) (kvQuery, error) {
	var q kvQuery
	for raw != "" {
		var part string
		part, raw, _ = strings.Cut(raw, "&")
		if part == "" {
			continue
		}
		name, val, _ := strings.Cut(part, "=")
		var err error
		if name, err = queryUnescape(name); err != nil {
			return q, badRequest("query: %v", err)
		}
		if val, err = queryUnescape(val); err != nil {
			return q, badRequest("query parameter %q: %v", name, err)
		}
		var bit uint32
		for _, qn := range queryNames {
			if qn.name == name {
				bit = qn.bit
				break
			}
		}
		if bit == 0 || allowed&bit == 0 {
			return q, badRequest("unknown query parameter %q", name)
		}
		if q.set&bit != 0 {
			return q, badRequest("query parameter %q given twice", name)
		}
		q.set |= bit
		switch bit {
		case qPrefix, qRaw, qPrevKV, qKeysOnly, qCountOnly, qStale:
			switch val {
			case "", "true", "1":
				q.flags |= bit
			case "false", "0":
			default:
				return q, badRequest("query parameter %q: %q is not a boolean", name, val)
			}
		case qConsistency:
			switch val {
			case "linearizable":
				q.consistency = Linearizable
			case "stale":
				q.consistency = Stale
			default:
				return q, badRequest("consistency must be \"linearizable\" or \"stale\", not %q", val)
			}
		case qLimit, qRevision, qIfModRevision, qIfVersion, qStartRevision:
			v, err := strconv.ParseInt(val, 10, 64)
			if err != nil || v < 0 {
				return q, badRequest("query parameter %q: %q is not a non-negative integer", name, val)
			}
			switch bit {
			case qLimit:
				q.limit = v
			case qRevision:
				q.revision = v
			case qIfModRevision:
				q.ifModRev = v
			case qIfVersion:
				q.ifVersion = v
			case qStartRevision:
				q.startRev = v
			}
		case qSession:
			v, err := strconv.ParseUint(val, 10, 64)
			if err != nil || v == 0 {
				return q, badRequest("query parameter %q: %q is not a session ID", name, val)
			}
			q.session = v
		case qIfValue:
			q.ifValue = val
		case qKey:
			q.key = val
		}
	}
	if q.flag(qStale) {
		if q.has(qConsistency) && q.consistency != Stale {
			return q, badRequest("stale and consistency=linearizable contradict each other")
		}
		q.consistency = Stale
	}
	return q, nil
}

func queryUnescape(s string) (string, error) {
	if strings.IndexByte(s, '%') < 0 && strings.IndexByte(s, '+') < 0 {
		return s, nil
	}
	return url.QueryUnescape(s)
}

// --- bodies --------------------------------------------------------------------

// readBody reads r's body up to limit bytes into a pooled buffer (nil body:
// empty). The caller returns the buffer with putAPIBuf.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) (*[]byte, error) {
	if r.ContentLength > limit {
		return nil, &http.MaxBytesError{Limit: limit}
	}
	p := getAPIBuf()
	buf := bytes.NewBuffer(*p)
	_, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, limit))
	*p = buf.Bytes()
	if err != nil {
		putAPIBuf(p)
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, err
		}
		return nil, badRequest("read body: %v", err)
	}
	return p, nil
}

// readRawValue reads r's body as an exact value (PUT ?raw). The slice is
// freshly allocated: it is handed to the node, which may hold it after the
// request (a timed-out write may still be proposed).
func readRawValue(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	if r.ContentLength > limit {
		return nil, &http.MaxBytesError{Limit: limit}
	}
	if r.ContentLength >= 0 {
		v := make([]byte, r.ContentLength)
		if _, err := io.ReadFull(r.Body, v); err != nil {
			return nil, badRequest("read body: %v", err)
		}
		return v, nil
	}
	v, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, err
		}
		return nil, badRequest("read body: %v", err)
	}
	return v, nil
}

// decodeJSONBody reads and strictly decodes a JSON body into v (an api
// request type whose UnmarshalJSON rejects unknown members). An empty body
// is an error unless emptyOK.
func decodeJSONBody(w http.ResponseWriter, r *http.Request, limit int64, v any, emptyOK bool) error {
	p, err := readBody(w, r, limit)
	if err != nil {
		return err
	}
	defer putAPIBuf(p)
	body := bytes.TrimSpace(*p)
	if len(body) == 0 {
		if emptyOK {
			return nil
		}
		return badRequest("empty body")
	}
	// The api request types reject unknown members themselves.
	if err := json.Unmarshal(body, v); err != nil {
		return badRequest("malformed JSON body: %v", err)
	}
	return nil
}

func (n *Node) jsonBodyLimit() int64 { return 2*int64(n.limits.MaxRequestSize) + apiBodySlack }

// requestKey returns the key of a /v1/kv/{key...} request: the path
// remainder, or the ?key= parameter (for keys that are awkward in a path).
func requestKey(r *http.Request, q *kvQuery) ([]byte, error) {
	pk := r.PathValue("key")
	if q.has(qKey) {
		if pk != "" {
			return nil, badRequest("key given both in the path and as ?key=")
		}
		return []byte(q.key), nil
	}
	return []byte(pk), nil
}

// remoteKey marks the context of a request served for an HTTP client,
// which can try another member: such a request does not wait out its
// deadline on a member that has no leader or stopped leading (apply,
// waitLocal).
type remoteKey struct{}

func isRemote(ctx context.Context) bool { return ctx.Value(remoteKey{}) != nil }

// requestContext is the request's context, marked remote and bounded by
// the client's X-Statenode-Timeout (milliseconds) if it sent one.
func requestContext(r *http.Request) (context.Context, context.CancelFunc, error) {
	ctx := context.WithValue(r.Context(), remoteKey{}, true)
	v := r.Header[api.HeaderTimeout]
	if len(v) == 0 {
		return ctx, func() {}, nil
	}
	ms, err := strconv.ParseInt(v[0], 10, 64)
	if err != nil || ms <= 0 || ms > int64(24*time.Hour/time.Millisecond) {
		return nil, nil, badRequest("header %s: %q is not a positive number of milliseconds", api.HeaderTimeout, v[0])
	}
	ctx, cancel := context.WithTimeout(ctx, time.Duration(ms)*time.Millisecond)
	return ctx, cancel, nil
}

// --- conversions ---------------------------------------------------------------

// apiKV views an fsm.KeyValue as an api.KeyValue (same fields): no copy.
func apiKV(kv *fsm.KeyValue) *api.KeyValue { return (*api.KeyValue)(kv) }

func apiKVs(kvs []fsm.KeyValue) []api.KeyValue {
	if len(kvs) == 0 {
		return []api.KeyValue{}
	}
	out := make([]api.KeyValue, len(kvs))
	for i := range kvs {
		out[i] = api.KeyValue(kvs[i])
	}
	return out
}

func firstKV(res []fsm.OpResult) *api.KeyValue {
	if len(res) == 0 || len(res[0].KVs) == 0 {
		return nil
	}
	return apiKV(&res[0].KVs[0])
}

var (
	compareTargets = map[string]fsm.CompareTarget{
		api.TargetValue: fsm.CompareValue, api.TargetVersion: fsm.CompareVersion,
		api.TargetCreateRevision: fsm.CompareCreateRevision, api.TargetModRevision: fsm.CompareModRevision,
	}
	compareResults = map[string]fsm.CompareResult{
		api.ResultEqual: fsm.CompareEqual, api.ResultNotEqual: fsm.CompareNotEqual,
		api.ResultGreater: fsm.CompareGreater, api.ResultLess: fsm.CompareLess,
	}
	opTypes = map[string]fsm.OpType{api.OpPut: fsm.OpPut, api.OpGet: fsm.OpRange, api.OpDelete: fsm.OpDelete}
)

func opTypeName(t fsm.OpType) string {
	switch t {
	case fsm.OpPut:
		return api.OpPut
	case fsm.OpRange:
		return api.OpGet
	case fsm.OpDelete:
		return api.OpDelete
	}
	return strconv.Itoa(int(t))
}

// txnToFSM converts a decoded txn body into an fsm.Request, rejecting what
// the wire format cannot express (unknown targets, results, op types,
// operands that do not fit the target). Limits and the remaining structural
// rules are checked by fsm.Request.Validate in Node.Txn.
func txnToFSM(t *api.TxnRequest) (*fsm.Request, error) {
	req := &fsm.Request{}
	if len(t.Compare) > 0 {
		req.Compare = make([]fsm.Compare, len(t.Compare))
	}
	for i := range t.Compare {
		c := &t.Compare[i]
		target, ok := compareTargets[c.Target]
		if !ok {
			return nil, fmt.Errorf("%w: compare[%d]: unknown target %q (want value, version, create_revision or mod_revision)", fsm.ErrInvalid, i, c.Target)
		}
		result, ok := compareResults[c.Result]
		if !ok {
			return nil, fmt.Errorf("%w: compare[%d]: unknown result %q (want =, !=, > or <)", fsm.ErrInvalid, i, c.Result)
		}
		if target == fsm.CompareValue && c.Number != 0 {
			return nil, fmt.Errorf("%w: compare[%d]: a value compare takes \"value\", not \"number\"", fsm.ErrInvalid, i)
		}
		if target != fsm.CompareValue && c.Value != nil {
			return nil, fmt.Errorf("%w: compare[%d]: a %s compare takes \"number\", not \"value\"", fsm.ErrInvalid, i, c.Target)
		}
		if target != fsm.CompareValue && c.Number < 0 {
			return nil, fmt.Errorf("%w: compare[%d]: negative number %d", fsm.ErrInvalid, i, c.Number)
		}
		req.Compare[i] = fsm.Compare{Key: c.Key, Target: target, Result: result, Value: c.Value, Number: c.Number}
	}
	var err error
	if req.Success, err = opsToFSM("success", t.Success); err != nil {
		return nil, err
	}
	if req.Failure, err = opsToFSM("failure", t.Failure); err != nil {
		return nil, err
	}
	return req, nil
}

func opsToFSM(branch string, ops []api.Op) ([]fsm.Op, error) {
	if len(ops) == 0 {
		return nil, nil
	}
	out := make([]fsm.Op, len(ops))
	for i := range ops {
		op := &ops[i]
		typ, ok := opTypes[op.Type]
		if !ok {
			return nil, fmt.Errorf("%w: %s[%d]: unknown op type %q (want put, get or delete)", fsm.ErrInvalid, branch, i, op.Type)
		}
		switch {
		case typ != fsm.OpPut && op.Value != nil:
			return nil, fmt.Errorf("%w: %s[%d]: value set on a %s op", fsm.ErrInvalid, branch, i, op.Type)
		case typ == fsm.OpPut && op.Value == nil:
			return nil, fmt.Errorf("%w: %s[%d]: put without \"value\" or \"value_base64\"", fsm.ErrInvalid, branch, i)
		case typ != fsm.OpRange && op.Limit != 0:
			return nil, fmt.Errorf("%w: %s[%d]: limit set on a %s op", fsm.ErrInvalid, branch, i, op.Type)
		case typ == fsm.OpRange && op.PrevKV:
			return nil, fmt.Errorf("%w: %s[%d]: prev_kv set on a get op", fsm.ErrInvalid, branch, i)
		case op.Limit < 0:
			return nil, fmt.Errorf("%w: %s[%d]: negative limit %d", fsm.ErrInvalid, branch, i, op.Limit)
		case typ != fsm.OpPut && op.Session != 0:
			return nil, fmt.Errorf("%w: %s[%d]: session set on a %s op (only a put is ephemeral)", fsm.ErrInvalid, branch, i, op.Type)
		}
		out[i] = fsm.Op{Type: typ, Key: op.Key, Value: op.Value, Prefix: op.Prefix, Limit: op.Limit, PrevKV: op.PrevKV, Session: op.Session}
	}
	return out, nil
}

func txnResponseToAPI(resp *fsm.Response) *api.TxnResponse {
	out := &api.TxnResponse{Succeeded: resp.Succeeded, Revision: resp.Revision, Results: make([]api.OpResult, len(resp.Results))}
	for i := range resp.Results {
		r := &resp.Results[i]
		out.Results[i] = api.OpResult{Type: opTypeName(r.Type), More: r.More, Count: r.Count}
		if len(r.KVs) > 0 {
			out.Results[i].KVs = apiKVs(r.KVs)
		}
	}
	return out
}

func eventsToAPI(evs []fsm.Event) []api.Event {
	out := make([]api.Event, len(evs))
	for i := range evs {
		e := &evs[i]
		t := api.EventPut
		if e.Type == fsm.EventDelete {
			t = api.EventDelete
		}
		out[i] = api.Event{Type: t, KV: api.KeyValue(e.KV)}
		if e.PrevKV != nil {
			out[i].PrevKV = apiKV(e.PrevKV)
		}
	}
	return out
}

// conditions turns the CAS query parameters into compares on key.
func conditions(key []byte, q *kvQuery) []fsm.Compare {
	var cmp []fsm.Compare
	if q.has(qIfModRevision) {
		cmp = append(cmp, fsm.Compare{Key: key, Target: fsm.CompareModRevision, Result: fsm.CompareEqual, Number: q.ifModRev})
	}
	if q.has(qIfVersion) {
		cmp = append(cmp, fsm.Compare{Key: key, Target: fsm.CompareVersion, Result: fsm.CompareEqual, Number: q.ifVersion})
	}
	if q.has(qIfValue) {
		cmp = append(cmp, fsm.Compare{Key: key, Target: fsm.CompareValue, Result: fsm.CompareEqual, Value: []byte(q.ifValue)})
	}
	return cmp
}

// casFailed writes the 409 of a failed condition with the key's current
// value (read by the txn's failure branch), if it exists.
func casFailed(w http.ResponseWriter, resp *fsm.Response) int {
	e := &api.Error{Message: "condition failed", Code: api.CodeCASFailed, KV: firstKV(resp.Results)}
	return writeAPIError(w, e, http.StatusConflict)
}

// --- key-value routes ------------------------------------------------------------

// handlePut serves PUT /v1/kv/{key...}. With ?session=ID the key is
// ephemeral: deleted when that session ends (404 session_not_found, and
// nothing written, if it does not exist).
func (n *Node) handlePut(w http.ResponseWriter, r *http.Request) int {
	ctx, cancel, err := requestContext(r)
	if err != nil {
		return n.writeError(w, err)
	}
	defer cancel()
	q, err := parseQuery(r.URL.RawQuery, qRaw|qPrevKV|qIfModRevision|qIfVersion|qIfValue|qKey|qSession)
	if err != nil {
		return n.writeError(w, err)
	}
	key, err := requestKey(r, &q)
	if err != nil {
		return n.writeError(w, err)
	}
	var value []byte
	if q.flag(qRaw) {
		value, err = readRawValue(w, r, int64(n.limits.MaxRequestSize))
	} else {
		var pr api.PutRequest
		err = decodeJSONBody(w, r, n.jsonBodyLimit(), &pr, false)
		value = pr.Value
	}
	if err != nil {
		return n.writeError(w, err)
	}
	req := &fsm.Request{Success: []fsm.Op{{Type: fsm.OpPut, Key: key, Value: value, PrevKV: q.flag(qPrevKV), Session: q.session}}}
	if req.Compare = conditions(key, &q); req.Compare != nil {
		req.Failure = []fsm.Op{{Type: fsm.OpRange, Key: key}}
	}
	resp, err := n.txnHTTP(ctx, r, req)
	if err != nil {
		return n.writeError(w, err)
	}
	if !resp.Succeeded {
		return casFailed(w, resp)
	}
	out := api.PutResponse{Revision: resp.Revision}
	if q.flag(qPrevKV) {
		out.PrevKV = firstKV(resp.Results)
	}
	return writeJSONAppend(w, http.StatusOK, out.AppendJSON)
}

// handleGet serves GET /v1/kv/{key...}: one key, or a range with ?prefix.
func (n *Node) handleGet(w http.ResponseWriter, r *http.Request) int {
	ctx, cancel, err := requestContext(r)
	if err != nil {
		return n.writeError(w, err)
	}
	defer cancel()
	q, err := parseQuery(r.URL.RawQuery, qPrefix|qLimit|qRevision|qKeysOnly|qCountOnly|qConsistency|qStale|qRaw|qKey)
	if err != nil {
		return n.writeError(w, err)
	}
	key, err := requestKey(r, &q)
	if err != nil {
		return n.writeError(w, err)
	}
	prefix := q.flag(qPrefix)
	if !prefix && (q.has(qLimit) || q.flag(qCountOnly)) {
		return n.writeError(w, badRequest("limit and count_only need ?prefix"))
	}
	if prefix && q.flag(qRaw) {
		return n.writeError(w, badRequest("raw reads one key; it does not combine with ?prefix"))
	}
	resp, err := n.Range(ctx, fsm.RangeRequest{
		Key: key, Prefix: prefix, Limit: q.limit, Revision: q.revision,
		CountOnly: q.flag(qCountOnly), KeysOnly: q.flag(qKeysOnly),
	}, q.consistency)
	if err != nil {
		return n.writeError(w, err)
	}
	if prefix {
		out := api.RangeResponse{KVs: apiKVs(resp.KVs), More: resp.More, Count: resp.Count, Revision: resp.Revision}
		return writeJSONAppend(w, http.StatusOK, out.AppendJSON)
	}
	if len(resp.KVs) == 0 {
		h := w.Header()
		h[api.HeaderRevision] = []string{strconv.FormatInt(resp.Revision, 10)}
		return writeAPIError(w, &api.Error{Message: "key not found", Code: api.CodeNotFound}, http.StatusNotFound)
	}
	kv := apiKV(&resp.KVs[0])
	if q.flag(qRaw) {
		setKVHeaders(w.Header(), kv, resp.Revision)
		return writeBody(w, http.StatusOK, hdrOctetStream, kv.Value)
	}
	p := getAPIBuf()
	*p = kv.AppendJSONWithRevision(*p, resp.Revision)
	writeBody(w, http.StatusOK, hdrJSON, *p)
	putAPIBuf(p)
	return http.StatusOK
}

// setKVHeaders sets the X-Statenode-* metadata headers with two
// allocations: one string holding all four numbers, and one slice backing
// the four header values.
func setKVHeaders(h http.Header, kv *api.KeyValue, rev int64) {
	var buf [4 * 20]byte
	b := strconv.AppendInt(buf[:0], rev, 10)
	e0 := len(b)
	b = strconv.AppendInt(b, kv.ModRevision, 10)
	e1 := len(b)
	b = strconv.AppendInt(b, kv.CreateRevision, 10)
	e2 := len(b)
	b = strconv.AppendInt(b, kv.Version, 10)
	s := string(b)
	vals := []string{s[:e0], s[e0:e1], s[e1:e2], s[e2:]}
	h[api.HeaderRevision] = vals[0:1:1]
	h[api.HeaderModRevision] = vals[1:2:2]
	h[api.HeaderCreateRevision] = vals[2:3:3]
	h[api.HeaderVersion] = vals[3:4:4]
}

// handleDelete serves DELETE /v1/kv/{key...}.
func (n *Node) handleDelete(w http.ResponseWriter, r *http.Request) int {
	ctx, cancel, err := requestContext(r)
	if err != nil {
		return n.writeError(w, err)
	}
	defer cancel()
	q, err := parseQuery(r.URL.RawQuery, qPrefix|qPrevKV|qIfModRevision|qIfVersion|qIfValue|qKey)
	if err != nil {
		return n.writeError(w, err)
	}
	key, err := requestKey(r, &q)
	if err != nil {
		return n.writeError(w, err)
	}
	prefix := q.flag(qPrefix)
	if prefix && q.set&(qIfModRevision|qIfVersion|qIfValue) != 0 {
		return n.writeError(w, badRequest("conditions apply to one key; they do not combine with ?prefix"))
	}
	req := &fsm.Request{Success: []fsm.Op{{Type: fsm.OpDelete, Key: key, Prefix: prefix, PrevKV: q.flag(qPrevKV)}}}
	if req.Compare = conditions(key, &q); req.Compare != nil {
		req.Failure = []fsm.Op{{Type: fsm.OpRange, Key: key}}
	}
	resp, err := n.txnHTTP(ctx, r, req)
	if err != nil {
		return n.writeError(w, err)
	}
	if !resp.Succeeded {
		return casFailed(w, resp)
	}
	out := api.DeleteResponse{Revision: resp.Revision}
	if len(resp.Results) > 0 {
		out.Deleted = resp.Results[0].Count
		if q.flag(qPrevKV) && len(resp.Results[0].KVs) > 0 {
			out.PrevKVs = apiKVs(resp.Results[0].KVs)
		}
	}
	return writeJSONAppend(w, http.StatusOK, out.AppendJSON)
}

// handleTxn serves POST /v1/txn.
func (n *Node) handleTxn(w http.ResponseWriter, r *http.Request) int {
	ctx, cancel, err := requestContext(r)
	if err != nil {
		return n.writeError(w, err)
	}
	defer cancel()
	if _, err := parseQuery(r.URL.RawQuery, 0); err != nil {
		return n.writeError(w, err)
	}
	var t api.TxnRequest
	if err := decodeJSONBody(w, r, n.jsonBodyLimit(), &t, false); err != nil {
		return n.writeError(w, err)
	}
	req, err := txnToFSM(&t)
	if err != nil {
		return n.writeError(w, err)
	}
	resp, err := n.txnHTTP(ctx, r, req)
	if err != nil {
		return n.writeError(w, err)
	}
	return writeJSONAppend(w, http.StatusOK, txnResponseToAPI(resp).AppendJSON)
}

// --- watch -----------------------------------------------------------------------

// handleWatch serves GET /v1/watch as NDJSON: a created line, then one line
// per batch of events, a progress line ({"revision":N}) after
// watchProgressInterval of silence, and an error line before the server
// ends the stream (compaction). It ends when the client goes away or the
// node stops.
func (n *Node) handleWatch(w http.ResponseWriter, r *http.Request) int {
	q, err := parseQuery(r.URL.RawQuery, qKey|qPrefix|qStartRevision|qPrevKV)
	if err != nil {
		return n.writeError(w, err)
	}
	if !q.has(qKey) && !q.flag(qPrefix) {
		return n.writeError(w, badRequest("missing ?key= (or ?prefix for all keys)"))
	}
	rc := http.NewResponseController(w)
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	req := fsm.WatchRequest{Key: []byte(q.key), Prefix: q.flag(qPrefix), StartRevision: q.startRev, PrevKV: q.flag(qPrevKV)}
	created := n.fsm.Revision()
	if req.StartRevision == 0 {
		// Pin the start so that the created line's revision is exact:
		// every matching event after it is delivered.
		req.StartRevision = created + 1
	}
	ch, err := n.Watch(ctx, req)
	if err != nil {
		return n.writeError(w, err)
	}
	h := w.Header()
	h["Content-Type"] = hdrNDJSON
	h["Cache-Control"] = hdrNoCache
	h["X-Content-Type-Options"] = hdrNoSniff
	w.WriteHeader(http.StatusOK)

	p := getAPIBuf()
	defer putAPIBuf(p)
	line := api.WatchResponse{Created: true, Revision: created}
	*p = append(line.AppendJSON((*p)[:0]), '\n')
	if _, err := w.Write(*p); err != nil {
		return http.StatusOK
	}
	if err := rc.Flush(); err != nil {
		return http.StatusOK
	}
	last := created
	progress := time.NewTicker(watchProgressInterval)
	defer progress.Stop()
	for {
		*p = (*p)[:0]
		var resp fsm.WatchResponse
		var ok bool
		select {
		case resp, ok = <-ch:
		case <-progress.C:
			line := api.WatchResponse{Revision: last}
			*p = append(line.AppendJSON(*p), '\n')
			if _, err := w.Write(*p); err != nil {
				return http.StatusOK
			}
			if err := rc.Flush(); err != nil {
				return http.StatusOK
			}
			continue
		}
		// Batch whatever else is ready into one flush.
		for ok {
			if resp.Err != nil {
				_, e := n.classify(resp.Err)
				line := api.WatchResponse{Revision: resp.Revision, Error: e}
				*p = append(line.AppendJSON(*p), '\n')
				_, _ = w.Write(*p)
				_ = rc.Flush()
				return http.StatusOK
			}
			if len(resp.Events) > 0 {
				line := api.WatchResponse{Events: eventsToAPI(resp.Events), Revision: resp.Revision}
				*p = append(line.AppendJSON(*p), '\n')
				last = resp.Revision
			}
			if len(*p) >= watchFlushBytes {
				break
			}
			select {
			case resp, ok = <-ch:
				continue
			default:
			}
			break
		}
		if len(*p) > 0 {
			if _, err := w.Write(*p); err != nil {
				return http.StatusOK
			}
			if err := rc.Flush(); err != nil {
				return http.StatusOK
			}
			progress.Reset(watchProgressInterval)
		}
		if !ok {
			return http.StatusOK // ctx ended or the node stopped
		}
	}
}

// --- cluster routes ----------------------------------------------------------------

func statusToAPI(s Status) api.Status {
	return api.Status{
		ID: s.ID, State: s.State, Term: s.Term,
		Leader:      api.LeaderInfo{ID: s.Leader.ID, RaftAddr: s.Leader.RaftAddr, HTTPAddr: s.Leader.HTTPAddr},
		CommitIndex: s.CommitIndex, AppliedIndex: s.AppliedIndex, LastIndex: s.LastIndex,
		Revision: s.Revision, CompactRevision: s.CompactRevision, LastContact: s.LastContact,
		Members: s.Members, Version: s.Version, LogEngine: s.LogEngine,
	}
}

func (n *Node) handleStatus(w http.ResponseWriter, r *http.Request) int {
	return writeJSONValue(w, http.StatusOK, statusToAPI(n.Status()))
}

func (n *Node) handleMembers(w http.ResponseWriter, r *http.Request) int {
	ctx, cancel, err := requestContext(r)
	if err != nil {
		return n.writeError(w, err)
	}
	defer cancel()
	ms, err := n.Members(ctx)
	if err != nil {
		return n.writeError(w, err)
	}
	out := make([]api.Member, len(ms))
	for i, m := range ms {
		out[i] = api.Member{ID: m.ID, RaftAddr: m.RaftAddr, HTTPAddr: m.HTTPAddr, Voter: m.Voter, Leader: m.Leader}
	}
	out = n.withGossip(out) // gossip state, when the node runs gossip
	return writeJSONValue(w, http.StatusOK, out)
}

func (n *Node) handleAddMember(w http.ResponseWriter, r *http.Request) int {
	ctx, cancel, err := requestContext(r)
	if err != nil {
		return n.writeError(w, err)
	}
	defer cancel()
	var req api.AddMemberRequest
	if err := decodeJSONBody(w, r, apiSmallBody, &req, false); err != nil {
		return n.writeError(w, err)
	}
	if req.ID == "" || req.RaftAddr == "" {
		return n.writeError(w, fmt.Errorf("%w: \"id\" and \"raft_addr\" are required", fsm.ErrInvalid))
	}
	if err := n.addMember(ctx, joinRequest{ID: req.ID, RaftAddr: req.RaftAddr, HTTPAddr: req.HTTPAddr, NonVoter: req.NonVoter}); err != nil {
		return n.writeError(w, err)
	}
	return writeJSONValue(w, http.StatusOK, api.Member{ID: req.ID, RaftAddr: req.RaftAddr, HTTPAddr: req.HTTPAddr, Voter: !req.NonVoter})
}

func (n *Node) handleRemoveMember(w http.ResponseWriter, r *http.Request) int {
	ctx, cancel, err := requestContext(r)
	if err != nil {
		return n.writeError(w, err)
	}
	defer cancel()
	id := r.PathValue("id")
	if err := n.Remove(ctx, id); err != nil {
		return n.writeError(w, err)
	}
	return writeBody(w, http.StatusOK, hdrJSON, []byte("{}"))
}

func (n *Node) handleTransferLeader(w http.ResponseWriter, r *http.Request) int {
	ctx, cancel, err := requestContext(r)
	if err != nil {
		return n.writeError(w, err)
	}
	defer cancel()
	var req api.TransferLeaderRequest
	if err := decodeJSONBody(w, r, apiSmallBody, &req, true); err != nil {
		return n.writeError(w, err)
	}
	if err := n.TransferLeadership(ctx, req.ID); err != nil {
		return n.writeError(w, err)
	}
	return writeBody(w, http.StatusOK, hdrJSON, []byte("{}"))
}
