package node_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/statenode/statenode/api"
	"github.com/statenode/statenode/node"
	"github.com/statenode/statenode/node/nodetest"
)

// The semaphore, barrier and latch routes and the ephemeral put, over
// HTTP: status codes, error codes, and that bad input changes nothing.
func TestHTTPCoordSyncRoutes(t *testing.T) {
	c := nodetest.MakeCluster(t, 1)
	n := c.Leader(t)
	h := newHTTPT(t, n)
	ctx := context.Background()
	s, err := n.CreateSession(ctx, api.SessionRequest{TTLMillis: 10000})
	require.NoError(t, err)
	body := func(v any) string {
		b, err := json.Marshal(v)
		require.NoError(t, err)
		return string(b)
	}

	a := h.str(http.MethodPost, "/v1/semaphore/s1", body(api.SemaphoreRequest{Session: s.ID, RequestID: 1, Permits: 2, Count: 2}))
	require.Equal(t, http.StatusOK, a.status, "%s", a.body)
	a = h.str(http.MethodPost, "/v1/semaphore/s1", body(api.SemaphoreRequest{Session: s.ID, RequestID: 2, Permits: 3, Count: 1}))
	assert.Equal(t, http.StatusConflict, a.status)
	assert.Equal(t, api.CodeMismatch, a.code(t))
	a = h.str(http.MethodPost, "/v1/semaphore/s1", body(api.SemaphoreRequest{Session: s.ID, RequestID: 3, Permits: 2, Count: 1, Try: true}))
	assert.Equal(t, api.CodeNoPermits, a.code(t))
	a = h.str(http.MethodPost, "/v1/semaphore/s1", body(api.SemaphoreRequest{Session: s.ID, RequestID: 4, Permits: 2, Count: 3}))
	assert.Equal(t, http.StatusBadRequest, a.status, "more permits than the semaphore has")
	// A blocking acquire that cannot be granted times out cleanly and is
	// withdrawn.
	other, err := n.CreateSession(ctx, api.SessionRequest{TTLMillis: 10000})
	require.NoError(t, err)
	req, err := http.NewRequest(http.MethodPost, h.base+"/v1/semaphore/s1",
		strings.NewReader(body(api.SemaphoreRequest{Session: other.ID, RequestID: 1, Permits: 2, Count: 1})))
	require.NoError(t, err)
	req.Header.Set(api.HeaderTimeout, "300")
	resp, err := h.hc.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, api.StatusWaitTimeout, resp.StatusCode)
	info, err := n.SemaphoreInfo(ctx, "s1")
	require.NoError(t, err)
	assert.Empty(t, info.Waiters)
	assert.Equal(t, []api.SemaphoreHold{{Session: s.ID, Permits: 2}}, info.Holders)
	a = h.str(http.MethodDelete, "/v1/semaphore/s1", body(api.SemaphoreReleaseRequest{Session: s.ID, RequestID: 5}))
	assert.Equal(t, http.StatusNoContent, a.status)

	// Barrier: one party trips at once; unknown actions are refused.
	a = h.str(http.MethodPost, "/v1/barrier/b1", body(api.BarrierRequest{Session: s.ID, RequestID: 6, Parties: 1}))
	require.Equal(t, http.StatusOK, a.status, "%s", a.body)
	assert.NotZero(t, a.json(t)["generation"])
	a = h.str(http.MethodPost, "/v1/barrier/b1", body(api.BarrierRequest{Session: s.ID, RequestID: 7, Action: "jump"}))
	assert.Equal(t, http.StatusBadRequest, a.status)

	// Latch.
	a = h.str(http.MethodGet, "/v1/latch/l1", "")
	assert.Equal(t, http.StatusNotFound, a.status)
	assert.Equal(t, api.CodeObjectNotFound, a.code(t))
	a = h.str(http.MethodPut, "/v1/latch/l1", body(api.LatchRequest{Session: s.ID, RequestID: 8, Count: 1}))
	require.Equal(t, http.StatusOK, a.status, "%s", a.body)
	a = h.str(http.MethodPost, "/v1/latch/l1", body(api.LatchRequest{Session: s.ID, RequestID: 9}))
	require.Equal(t, http.StatusOK, a.status)
	a = h.str(http.MethodGet, "/v1/latch/l1?wait", "")
	require.Equal(t, http.StatusOK, a.status)
	assert.Equal(t, float64(0), a.json(t)["count"])

	// Ephemeral put: a bad or missing session writes nothing.
	rev := n.FSM().Revision()
	a = h.str(http.MethodPut, "/v1/kv/eph?raw&session=x", "v")
	assert.Equal(t, http.StatusBadRequest, a.status)
	a = h.str(http.MethodPut, fmt.Sprintf("/v1/kv/eph?raw&session=%d", s.ID+1), "v")
	assert.Equal(t, http.StatusNotFound, a.status)
	assert.Equal(t, api.CodeSessionNotFound, a.code(t))
	assert.Equal(t, rev, n.FSM().Revision())
	a = h.str(http.MethodPut, fmt.Sprintf("/v1/kv/eph?raw&session=%d", s.ID), "v")
	require.Equal(t, http.StatusOK, a.status, "%s", a.body)
	assert.Equal(t, s.ID, n.FSM().EphemeralSession([]byte("eph")))

	// The same through POST /v1/txn: a session on a non-put op, or a
	// missing session, is refused and writes nothing.
	rev = n.FSM().Revision()
	a = h.str(http.MethodPost, "/v1/txn", fmt.Sprintf(`{"success":[{"type":"delete","key":"eph","session":%d}]}`, s.ID))
	assert.Equal(t, http.StatusBadRequest, a.status, "%s", a.body)
	a = h.str(http.MethodPost, "/v1/txn", fmt.Sprintf(`{"success":[{"type":"put","key":"ok","value":"1"},{"type":"put","key":"eph2","value":"v","session":%d}]}`, s.ID+1))
	assert.Equal(t, http.StatusNotFound, a.status, "%s", a.body)
	assert.Equal(t, api.CodeSessionNotFound, a.code(t))
	assert.Equal(t, rev, n.FSM().Revision(), "a refused txn writes nothing, not even its other ops")
	a = h.str(http.MethodPost, "/v1/txn", fmt.Sprintf(`{"success":[{"type":"put","key":"eph2","value":"v","session":%d}]}`, s.ID))
	require.Equal(t, http.StatusOK, a.status, "%s", a.body)
	assert.Equal(t, s.ID, n.FSM().EphemeralSession([]byte("eph2")))

	require.NoError(t, n.DestroySession(ctx, s.ID))
	for _, k := range []string{"eph", "eph2"} {
		_, err = n.Get(ctx, []byte(k), node.Linearizable)
		require.ErrorIs(t, err, node.ErrKeyNotFound, "%s went with its session", k)
	}
}
