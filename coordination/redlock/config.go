package redlock

import (
	"fmt"
	"time"
)

// clockDriftConst is added to the drift allowance on every attempt: the
// granularity of Redis key expiry (antirez's spec uses 2 ms).
const clockDriftConst = 2 * time.Millisecond

// Config tunes a Redlock. Start from DefaultConfig; Validate checks it.
type Config struct {
	// TTL is the lease of a lock on each server (ms precision). The
	// validity a client gets is TTL minus the time the acquisition took
	// minus the drift allowance. Default 10 s: long enough for typical
	// jobs, short enough that a crashed holder frees the lock quickly.
	TTL time.Duration
	// ServerTimeout bounds each request to one server, so a dead or hung
	// server costs an attempt at most this long. It must be much smaller
	// than TTL (Validate requires less than TTL/2). Default 50 ms: several
	// round trips on a LAN, under 1% of TTL.
	ServerTimeout time.Duration
	// DriftFactor is the fraction of TTL allowed for clock drift between
	// the servers (plus a fixed 2 ms for expiry granularity). Default 0.01,
	// as in antirez's spec.
	DriftFactor float64
	// Retries is how many more attempts Lock makes after a failed one; 0
	// means one attempt, negative means retry until ctx ends. Default 3.
	Retries int
	// RetryDelay is the least pause before a retry. Default 50 ms.
	RetryDelay time.Duration
	// RetryJitter is the upper bound of a uniformly random amount added to
	// RetryDelay, so clients that collided split their votes apart next
	// time. Default 150 ms.
	RetryJitter time.Duration
	// KeyPrefix is put in front of every lock name to form the Redis key.
	// Default "redlock:".
	KeyPrefix string
}

// DefaultConfig returns the defaults documented on Config.
func DefaultConfig() Config {
	return Config{
		TTL:           10 * time.Second,
		ServerTimeout: 50 * time.Millisecond,
		DriftFactor:   0.01,
		Retries:       3,
		RetryDelay:    50 * time.Millisecond,
		RetryJitter:   150 * time.Millisecond,
		KeyPrefix:     "redlock:",
	}
}

// Validate reports the first unusable field, wrapped in ErrInvalidConfig.
func (c Config) Validate() error {
	switch {
	case c.TTL < time.Millisecond:
		return fmt.Errorf("%w: TTL %v is below 1ms", ErrInvalidConfig, c.TTL)
	case c.ServerTimeout <= 0:
		return fmt.Errorf("%w: ServerTimeout %v must be positive", ErrInvalidConfig, c.ServerTimeout)
	case c.ServerTimeout >= c.TTL/2:
		return fmt.Errorf("%w: ServerTimeout %v must be well below TTL %v (less than half)", ErrInvalidConfig, c.ServerTimeout, c.TTL)
	case !(c.DriftFactor >= 0 && c.DriftFactor < 1):
		return fmt.Errorf("%w: DriftFactor %v must be in [0, 1)", ErrInvalidConfig, c.DriftFactor)
	case c.drift() >= c.TTL:
		return fmt.Errorf("%w: drift allowance %v leaves no validity of TTL %v", ErrInvalidConfig, c.drift(), c.TTL)
	case c.RetryDelay < 0:
		return fmt.Errorf("%w: RetryDelay %v is negative", ErrInvalidConfig, c.RetryDelay)
	case c.RetryJitter < 0:
		return fmt.Errorf("%w: RetryJitter %v is negative", ErrInvalidConfig, c.RetryJitter)
	}
	return nil
}

// drift is the clock drift allowance subtracted from every validity.
func (c Config) drift() time.Duration {
	return time.Duration(float64(c.TTL)*c.DriftFactor) + clockDriftConst
}
