package redlock_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/statenode/statenode/coordination/redlock"
)

func ExampleRedlock() {
	// Five independent redis-server processes on free local ports.
	addrs := exampleServers(5)

	cfg := redlock.DefaultConfig()
	cfg.TTL = 5 * time.Second
	rl, err := redlock.Dial(cfg, addrs...)
	if err != nil {
		log.Fatal(err)
	}
	defer rl.Close()
	ctx := context.Background()

	l, err := rl.Lock(ctx, "reports/nightly")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("held, valid for at most the TTL:", l.Validity() > 0 && l.Validity() <= cfg.TTL)

	_, err = rl.TryLock(ctx, "reports/nightly")
	fmt.Println("second holder refused:", errors.Is(err, redlock.ErrNotAcquired))

	if _, err := l.Extend(ctx); err != nil {
		log.Fatal(err)
	}
	fmt.Println("unlocked:", l.Unlock(ctx) == nil)

	again, err := rl.TryLock(ctx, "reports/nightly")
	fmt.Println("free again:", err == nil)
	_ = again.Unlock(ctx)
	// Output:
	// held, valid for at most the TTL: true
	// second holder refused: true
	// unlocked: true
	// free again: true
}
