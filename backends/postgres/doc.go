// Package postgres is a backends.Backend on PostgreSQL through a pgx v5
// pool.
//
// New creates the configured schema and applies its migrations (recorded
// in <schema>.schema_migrations, under an advisory lock). CompareAndSwap is
// UPDATE ... WHERE version = $n; batches are one pgx.Batch, which pgx sends
// in one round trip ending with a single Sync, so PostgreSQL runs them as
// one implicit transaction; PutMany batches of Config.CopyThreshold items
// or more are loaded with COPY. A fenced write calls <schema>.fence(lock,
// token) first in the same transaction: it raises the lock's token or
// aborts the transaction with SQLSTATE SN001.
//
// With Config.Replicas and a ReadMode other than ReadPrimary, Get, GetMany
// and List are served by a hot standby known to be at most
// Config.MaxReplicaLag behind, else by the primary; writes always go to
// the primary. A background loop compares the primary's WAL insert
// position with each standby's replay position (not replay timestamps,
// which make an idle primary look ever more lagged); Backend.Replicas
// reports what it measured. ReadReplicaSession adds read-your-writes.
//
//	cfg := postgres.DefaultConfig("postgres://postgres@127.0.0.1:5432/app")
//	cfg.Replicas = []string{"postgres://postgres@10.0.0.2:5432/app"}
//	cfg.ReadMode = postgres.ReadReplicaSession
//	cfg.MaxReplicaLag = 2 * time.Second
//	b, err := postgres.New(ctx, cfg)
//	if err != nil { ... }
//	defer b.Close()
//	ver, err := b.CompareAndSwap(ctx, "user/42", 0, []byte("ada"), backends.WriteOptions{})
package postgres
