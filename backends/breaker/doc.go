// Package breaker is a backends.Backend wrapper with a circuit breaker
// (sony/gobreaker v2) and optional periodic health checks. After
// Config.Failures consecutive ErrUnavailable results the breaker opens and
// calls fail fast with ErrOpen (which Is backends.ErrUnavailable) for
// Config.OpenFor; then HalfOpenProbes calls are let through, and their
// success closes it again.
//
//	b := breaker.New(redisStore, breaker.DefaultConfig("redis"))
package breaker
