package redis

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strings"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// Invalidator carries cache invalidations between nodes over Redis
// pub/sub (it implements cached.Invalidator). A message is the sender's
// random id, a newline, and the keys separated by NUL bytes (which keys
// cannot contain); a node ignores its own messages.
type Invalidator struct {
	client  goredis.UniversalClient
	channel string
	id      string
}

// NewInvalidator publishes and subscribes on channel through client (for
// example Backend.Client()). The client must outlive the Invalidator.
func NewInvalidator(client goredis.UniversalClient, channel string) *Invalidator {
	var buf [8]byte
	_, _ = rand.Read(buf[:])
	return &Invalidator{client: client, channel: channel, id: hex.EncodeToString(buf[:])}
}

// Publish sends one invalidation for keys; it blocks for one round trip.
func (iv *Invalidator) Publish(ctx context.Context, keys []string) error {
	if len(keys) == 0 {
		return nil
	}
	return iv.client.Publish(ctx, iv.channel, iv.id+"\n"+strings.Join(keys, "\x00")).Err()
}

// Subscribe calls fn from one goroutine with the keys of every other
// node's invalidation, and with nil after the subscription (re)connects,
// since messages published while disconnected are lost. stop ends it and
// waits for the goroutine. Subscribe returns after the subscription is
// confirmed, or after its first attempt failed (go-redis keeps retrying).
func (iv *Invalidator) Subscribe(fn func(keys []string)) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	ps := iv.client.Subscribe(ctx)
	_ = ps.Subscribe(ctx, iv.channel)
	_, _ = ps.Receive(ctx) // wait for the confirmation, best effort
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			msg, err := ps.Receive(ctx)
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				select { // go-redis reconnects on the next Receive
				case <-ctx.Done():
					return
				case <-time.After(100 * time.Millisecond):
				}
				continue
			}
			switch m := msg.(type) {
			case *goredis.Subscription:
				if m.Kind == "subscribe" {
					fn(nil) // (re)subscribed: we may have missed messages
				}
			case *goredis.Message:
				id, body, ok := strings.Cut(m.Payload, "\n")
				if ok && id != iv.id {
					fn(strings.Split(body, "\x00"))
				}
			}
		}
	})
	return func() {
		cancel()
		_ = ps.Close()
		wg.Wait()
	}
}
