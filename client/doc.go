// Package client is the Go client of statenode's HTTP API v1.
//
// A Client holds keep-alive connections to a list of endpoints (the client
// API addresses of cluster members). It learns the leader's address from
// /v1/status, or from the hint a member returns when it cannot serve, and
// sends writes and linearizable reads there; stale reads go to any member.
//
//	c, err := client.New(client.Config{Endpoints: []string{"127.0.0.1:7001", "127.0.0.1:7011"}})
//	if err != nil { ... }
//	defer c.Close()
//	put, err := c.Put(ctx, "config/mode", []byte("active"))
//	kv, err := c.Get(ctx, "config/mode")                    // linearizable
//	kv, err = c.Get(ctx, "config/mode", client.WithStale()) // served locally by any member
//	_, err = c.CompareAndSwap(ctx, "config/mode", []byte("standby"), put.Revision)
//	if errors.Is(err, client.ErrCASFailed) { ... someone else wrote it first ... }
//
// # Retries
//
// Reads are retried on another endpoint after any transport error. A write
// is retried only when it certainly was not applied: the connection could
// not be made, or the member answered 503 (no leader, not the leader,
// stopping), which it does only before proposing. A write whose connection
// broke after the request was sent, or which timed out on the server (504),
// fails with ErrIndeterminate: it may or may not have been applied, and
// the client never repeats it on its own. Retries back off until the
// context ends; a context without a deadline gets Config.RequestTimeout.
//
// # Watches
//
// Watch returns a channel of api.WatchResponse: first a response with
// Created set and the revision the watch started after, then batches of
// events. The channel is closed when the context ends or Close is called,
// and also when the stream breaks; then the last response carries an Error
// (code "compacted" if the watcher fell behind the retained history,
// "unavailable" if the connection was lost). To resume, watch again from
// the last revision seen plus one.
package client
