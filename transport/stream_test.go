package transport

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/stretchr/testify/require"
)

func TestHCLoggerKeepsLevels(t *testing.T) {
	var buf bytes.Buffer
	l := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelWarn}))
	h := HCLogger(l, "raft")
	h.Info("chatty")
	h.Warn("heartbeat timeout reached", "peer", "n2")
	h.Error("failed to append")
	out := buf.String()
	require.NotContains(t, out, "chatty", "info is below the handler's level")
	require.Contains(t, out, "level=WARN")
	require.Contains(t, out, "heartbeat timeout reached")
	require.Contains(t, out, "level=ERROR")
	require.Equal(t, 2, strings.Count(out, "\n"))
}

func TestStreamLayerDialAccept(t *testing.T) {
	s, err := Listen("127.0.0.1:0", "", nil)
	require.NoError(t, err)
	defer s.Close()
	done := make(chan []byte, 1)
	go func() {
		c, err := s.Accept()
		if err != nil {
			done <- nil
			return
		}
		defer c.Close()
		b := make([]byte, 5)
		_, _ = c.Read(b)
		done <- b
	}()
	c, err := s.Dial(raft.ServerAddress(s.Addr().String()), time.Second)
	require.NoError(t, err)
	_, err = c.Write([]byte("hello"))
	require.NoError(t, err)
	require.Equal(t, "hello", string(<-done))
	c.Close()
}

func TestWildcardNeedsAdvertise(t *testing.T) {
	_, err := Listen("0.0.0.0:0", "", nil)
	require.ErrorIs(t, err, ErrNotAdvertisable)
	s, err := Listen("0.0.0.0:0", "127.0.0.1:7000", nil)
	require.NoError(t, err)
	require.Equal(t, "127.0.0.1:7000", s.Addr().String())
	s.Close()
}

func TestCloseClosesInboundConnections(t *testing.T) {
	s, err := Listen("127.0.0.1:0", "", nil)
	require.NoError(t, err)
	accepted := make(chan struct{})
	go func() {
		if _, err := s.Accept(); err == nil {
			close(accepted)
		}
	}()
	c, err := s.Dial(raft.ServerAddress(s.Addr().String()), time.Second)
	require.NoError(t, err)
	defer c.Close()
	<-accepted
	require.NoError(t, s.Close())
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = c.Read(make([]byte, 1))
	require.Error(t, err, "the peer's connection must be closed, not left open")
	require.NotContains(t, err.Error(), "timeout")
}

// Raft must never replicate through a pipeline (see RaftTransport), and
// the wrapper must keep the optional interfaces raft looks for.
func TestRaftTransportRefusesPipelining(t *testing.T) {
	s, err := Listen("127.0.0.1:0", "", nil)
	require.NoError(t, err)
	tr := NewRaftTransport(s, RaftConfig{})
	defer tr.Close()
	p, err := tr.AppendEntriesPipeline("peer", raft.ServerAddress(s.Addr().String()))
	require.ErrorIs(t, err, raft.ErrPipelineReplicationNotSupported)
	require.Nil(t, p)
	var rt raft.Transport = tr
	_, ok := rt.(raft.WithClose)
	require.True(t, ok, "raft closes the transport through WithClose")
	_, ok = rt.(raft.WithPreVote)
	require.True(t, ok, "raft pre-votes only through WithPreVote")
}
