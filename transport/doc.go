// Package transport carries Raft's traffic between nodes: a TCP stream layer
// for hashicorp/raft's NetworkTransport that can be wrapped in TLS (pass a
// *tls.Config), and a small HTTP server wrapper for the client API that
// shares the same TLS seam.
//
//	st, err := transport.Listen("127.0.0.1:7000", "", nil)
//	tr := transport.NewRaftTransport(st, transport.RaftConfig{})
//	// hand tr to raft.NewRaft
package transport
