// Package cached is a 3-tier read cache in front of a backends.Backend: an
// in-process LRU with TTL, an optional shared remote tier (Redis), and the
// store of record (PostgreSQL). Writes go to the store and through to the
// local LRU; the remote copy is deleted and other nodes are told to drop
// theirs through an Invalidator (redis.NewInvalidator uses pub/sub).
//
//	c, err := cached.New(cached.Config{
//		Store:       pg,                                  // *postgres.Backend
//		Remote:      rcache,                              // *redis.Backend, own Prefix
//		Invalidator: redis.NewInvalidator(rcache.Client(), "statenode:inval"),
//		Registerer:  reg,
//	})
package cached
