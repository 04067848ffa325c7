package client_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/statenode/statenode/api"
	"github.com/statenode/statenode/client"
	"github.com/statenode/statenode/node"
	"github.com/statenode/statenode/node/nodetest"
)

func withGossip(i int, c *node.Config) { c.GossipAddr = "127.0.0.1:0" }

func TestClientCRDT(t *testing.T) {
	cl := nodetest.MakeCluster(t, 1, nodetest.WithConfig(withGossip))
	c := newClient(t, addrs(cl)...)
	ctx := ctxT(t, 60*time.Second)

	v, err := c.CounterInc(ctx, "visits", 4)
	require.NoError(t, err)
	require.Equal(t, int64(4), v)
	v, err = c.CounterInc(ctx, "visits", -1)
	require.NoError(t, err)
	require.Equal(t, int64(3), v)
	v, err = c.CounterValue(ctx, "visits")
	require.NoError(t, err)
	require.Equal(t, int64(3), v)
	require.Equal(t, int64(3), cl.Node(0).CRDT().Counter("visits").Value(), "the Go handle sees HTTP updates")

	require.NoError(t, c.SetAdd(ctx, "online", "b"))
	require.NoError(t, c.SetAdd(ctx, "online", "a"))
	require.NoError(t, c.SetRemove(ctx, "online", "b"))
	els, err := c.SetElements(ctx, "online")
	require.NoError(t, err)
	require.Equal(t, []string{"a"}, els)

	_, ok, err := c.RegisterGet(ctx, "cfg")
	require.NoError(t, err)
	require.False(t, ok)
	require.NoError(t, c.RegisterSet(ctx, "cfg", []byte{0xff, 0}))
	b, ok, err := c.RegisterGet(ctx, "cfg")
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, []byte{0xff, 0}, b)

	got, err := c.CRDTGet(ctx, "register", "cfg")
	require.NoError(t, err)
	require.Equal(t, "n1", got.Node)
	require.Equal(t, api.CRDTLWWRegister, got.Type)

	_, err = c.CRDTUpdate(ctx, "bcounter", "seats", api.CRDTOp{Op: api.CRDTOpDec, Delta: 1})
	require.ErrorIs(t, err, client.ErrInsufficientRights)
	_, err = c.CRDTUpdate(ctx, "set", "x", api.CRDTOp{Op: api.CRDTOpInc, Delta: 1})
	require.ErrorIs(t, err, client.ErrInvalid)

	objs, err := c.CRDTObjects(ctx)
	require.NoError(t, err)
	require.Contains(t, objs, api.CRDTObject{Type: api.CRDTORSet, Name: "online"})

	// Members carry gossip state; the member watch starts with a snapshot.
	ms, err := c.Members(ctx)
	require.NoError(t, err)
	require.Len(t, ms, 1)
	require.Equal(t, api.MemberGossipAlive, ms[0].Gossip)
	require.Equal(t, api.RaftRoleVoter, ms[0].RaftRole)
	ch, err := c.WatchMembers(ctx)
	require.NoError(t, err)
	select {
	case ev := <-ch:
		require.Equal(t, "n1", ev.ID)
		require.Equal(t, api.MemberGossipAlive, ev.State)
		require.Equal(t, ms[0].GossipAddr, ev.GossipAddr)
	case <-ctx.Done():
		t.Fatal("no member event")
	}
	// Close ends the stream.
	require.NoError(t, c.Close())
	require.Eventually(t, func() bool {
		for {
			select {
			case _, open := <-ch:
				if !open {
					return true
				}
			default:
				return false
			}
		}
	}, 10*time.Second, 10*time.Millisecond)
}

func TestClientCRDTGossipDisabled(t *testing.T) {
	cl := nodetest.MakeCluster(t, 1)
	c := newClient(t, addrs(cl)...)
	ctx := ctxT(t, 30*time.Second)
	_, err := c.CounterInc(ctx, "visits", 1)
	require.ErrorIs(t, err, client.ErrGossipDisabled)
	_, err = c.WatchMembers(ctx)
	require.ErrorIs(t, err, client.ErrGossipDisabled)
	ms, err := c.Members(ctx)
	require.NoError(t, err)
	assert.Empty(t, ms[0].Gossip)
}
