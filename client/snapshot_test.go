package client_test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/statenode/statenode/client"
	"github.com/statenode/statenode/node/nodetest"
)

// A snapshot stream cut short or damaged on the way fails with
// ErrBadSnapshot. A real member cannot be made to send either, so a
// server in the test replays a real member's snapshot, altered.
func TestSnapshotDetectsDamagedStream(t *testing.T) {
	ctx := ctxT(t, 30*time.Second)
	c := nodetest.MakeCluster(t, 1)
	cl := newClient(t, c.Node(0).HTTPAddr())
	_, err := cl.Put(ctx, "k", bytes.Repeat([]byte("v"), 1000))
	require.NoError(t, err)
	var good bytes.Buffer
	info, err := cl.Snapshot(ctx, &good)
	require.NoError(t, err)
	require.EqualValues(t, good.Len(), info.Size)

	for name, body := range map[string][]byte{
		"truncated": good.Bytes()[:good.Len()-3],
		"damaged":   append(append([]byte{}, good.Bytes()[:100]...), append([]byte{good.Bytes()[100] ^ 1}, good.Bytes()[101:]...)...),
	} {
		t.Run(name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/octet-stream")
				_, _ = w.Write(body)
			}))
			defer srv.Close()
			bad := newClient(t, srv.Listener.Addr().String())
			var out bytes.Buffer
			_, err := bad.Snapshot(ctx, &out)
			require.ErrorIs(t, err, client.ErrBadSnapshot)
		})
	}
}
