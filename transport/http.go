package transport

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"
)

// HTTPServer serves the client API on a bound listener.
type HTTPServer struct {
	ln     net.Listener
	srv    *http.Server
	done   chan error
	cancel context.CancelFunc
}

// ListenHTTP binds addr and serves h on it (TLS if tlsConf is non-nil).
// Serving runs on its own goroutine until Shutdown.
func ListenHTTP(addr string, h http.Handler, tlsConf *tls.Config) (*HTTPServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("transport: listen %s: %w", addr, err)
	}
	if tlsConf != nil {
		ln = tls.NewListener(ln, tlsConf)
	}
	base, cancel := context.WithCancel(context.Background())
	s := &HTTPServer{
		ln:     ln,
		cancel: cancel,
		srv: &http.Server{
			Handler:           h,
			ReadHeaderTimeout: 10 * time.Second,
			IdleTimeout:       2 * time.Minute,
			MaxHeaderBytes:    64 << 10,
			// Requests' contexts end at Shutdown, so long-lived streams
			// (watches) finish instead of holding Shutdown up.
			BaseContext: func(net.Listener) context.Context { return base },
		},
		done: make(chan error, 1),
	}
	go func() { s.done <- s.srv.Serve(ln) }()
	return s, nil
}

// Addr is the bound address.
func (s *HTTPServer) Addr() net.Addr { return s.ln.Addr() }

// Shutdown stops accepting, waits for in-flight requests until ctx ends,
// then closes what is left (long-lived watch streams).
func (s *HTTPServer) Shutdown(ctx context.Context) error {
	s.cancel()
	err := s.srv.Shutdown(ctx)
	if err != nil {
		_ = s.srv.Close()
	}
	if serr := <-s.done; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		return serr
	}
	return err
}
