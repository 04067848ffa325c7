package client_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"os"
	"time"

	"github.com/statenode/statenode/api"
	"github.com/statenode/statenode/client"
	"github.com/statenode/statenode/node"
)

// startExampleNode runs a single-node cluster for the examples and returns
// its client API address and a stop function.
func startExampleNode() (string, func()) {
	dir, err := os.MkdirTemp("", "statenode-example")
	if err != nil {
		log.Fatal(err)
	}
	cfg := node.DefaultLocalConfig()
	cfg.ID, cfg.DataDir, cfg.Bootstrap = "n1", dir, true
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	n, err := node.New(cfg)
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.Start(ctx); err != nil {
		log.Fatal(err)
	}
	for !n.Ready() {
		if ctx.Err() != nil {
			log.Fatal("no leader")
		}
		time.Sleep(5 * time.Millisecond)
	}
	return n.HTTPAddr(), func() {
		_ = n.Shutdown(context.Background())
		os.RemoveAll(dir)
	}
}

func Example() {
	addr, stop := startExampleNode()
	defer stop()

	c, err := client.New(client.Config{Endpoints: []string{addr}})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()

	if _, err := c.Put(ctx, "config/mode", []byte("active")); err != nil {
		log.Fatal(err)
	}
	kv, err := c.Get(ctx, "config/mode")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s=%s version=%d\n", kv.Key, kv.Value, kv.Version)

	_, err = c.Get(ctx, "config/missing")
	fmt.Println(errors.Is(err, client.ErrKeyNotFound))
	// Output:
	// config/mode=active version=1
	// true
}

func ExampleClient_CompareAndSwap() {
	addr, stop := startExampleNode()
	defer stop()
	c, err := client.New(client.Config{Endpoints: []string{addr}})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()

	// Take a lock: create the key only if it does not exist (revision 0).
	mine, err := c.CompareAndSwap(ctx, "lock", []byte("alice"), 0)
	if err != nil {
		log.Fatal(err)
	}
	_, err = c.CompareAndSwap(ctx, "lock", []byte("bob"), 0)
	var ce *client.Error
	if errors.As(err, &ce) && errors.Is(err, client.ErrCASFailed) {
		fmt.Printf("bob: lock held by %s\n", ce.KV.Value)
	}
	// Alice updates her lock, conditional on nobody having touched it.
	if _, err := c.CompareAndSwap(ctx, "lock", []byte("alice, renewed"), mine.Revision); err != nil {
		log.Fatal(err)
	}
	kv, _ := c.Get(ctx, "lock")
	fmt.Println(string(kv.Value))
	// Output:
	// bob: lock held by alice
	// alice, renewed
}

func ExampleClient_Txn() {
	addr, stop := startExampleNode()
	defer stop()
	c, err := client.New(client.Config{Endpoints: []string{addr}})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()

	// Move a job from "queue/" to "running/" atomically, if still queued.
	put, _ := c.Put(ctx, "queue/job1", []byte("payload"))
	resp, err := c.Txn(ctx, &api.TxnRequest{
		Compare: []api.Compare{api.CompareModRevision("queue/job1", api.ResultEqual, put.Revision)},
		Success: []api.Op{api.DeleteOp("queue/job1"), api.PutOp("running/job1", []byte("payload"))},
	})
	if err != nil {
		log.Fatal(err)
	}
	r, _ := c.Range(ctx, "", client.WithKeysOnly())
	fmt.Println(resp.Succeeded, resp.Revision == put.Revision+1, len(r.KVs), string(r.KVs[0].Key))
	// Output:
	// true true 1 running/job1
}

func ExampleClient_Watch() {
	addr, stop := startExampleNode()
	defer stop()
	c, err := client.New(client.Config{Endpoints: []string{addr}})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	ch, err := c.Watch(ctx, "jobs/", client.WithPrefix())
	if err != nil {
		log.Fatal(err)
	}
	<-ch // the created response
	_, _ = c.Put(ctx, "jobs/1", []byte("new"))
	_, _ = c.Delete(ctx, "jobs/1")
	for seen := 0; seen < 2; {
		resp := <-ch
		for _, ev := range resp.Events {
			fmt.Println(ev.Type, string(ev.KV.Key), string(ev.KV.Value))
			seen++
		}
	}
	// Output:
	// PUT jobs/1 new
	// DELETE jobs/1
}
