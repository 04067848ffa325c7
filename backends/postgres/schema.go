package postgres

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// migrations are applied in order, each once, recorded in
// <schema>.schema_migrations. Never edit one that has shipped; append.
// "{s}" stands for the quoted schema name.
var migrations = []string{
	// 1: keys, fences, and the fence check.
	`CREATE TABLE {s}.kv (
		key        text COLLATE "C" PRIMARY KEY,
		value      bytea NOT NULL,
		version    bigint NOT NULL,
		expires_at timestamptz
	);
	CREATE INDEX kv_expires_at ON {s}.kv (expires_at) WHERE expires_at IS NOT NULL;
	CREATE TABLE {s}.fences (
		lock  text PRIMARY KEY,
		token numeric(20, 0) NOT NULL
	);
	-- fence raises the token of lock to t, or fails with SQLSTATE SN001
	-- (message: the newer token) when a newer token was seen. The fence
	-- row stays locked until the transaction ends, so fenced writers of
	-- one lock are serialized.
	CREATE FUNCTION {s}.fence(l text, t numeric) RETURNS void AS $$
	DECLARE seen numeric;
	BEGIN
		INSERT INTO {s}.fences AS f (lock, token) VALUES (l, t)
		ON CONFLICT (lock) DO UPDATE SET token = EXCLUDED.token WHERE f.token < EXCLUDED.token;
		SELECT f.token INTO seen FROM {s}.fences f WHERE f.lock = l;
		IF seen > t THEN
			RAISE EXCEPTION USING ERRCODE = 'SN001', MESSAGE = seen::text;
		END IF;
	END $$ LANGUAGE plpgsql;`,
}

// migrate creates the schema and applies pending migrations, under an
// advisory lock so that nodes starting together do not race.
func migrate(ctx context.Context, conn *pgx.Conn, schema string) error {
	q := pgx.Identifier{schema}.Sanitize()
	tx, err := conn.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx) //nolint:errcheck // after Commit this is a no-op
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('statenode.backends.' || $1))`, schema); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `CREATE SCHEMA IF NOT EXISTS `+q); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+q+`.schema_migrations (version int PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return err
	}
	var have int
	if err := tx.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM `+q+`.schema_migrations`).Scan(&have); err != nil {
		return err
	}
	if have > len(migrations) {
		return fmt.Errorf("%w: schema %s is at version %d, this build knows %d", ErrSchema, schema, have, len(migrations))
	}
	for v := have + 1; v <= len(migrations); v++ {
		if _, err := tx.Exec(ctx, strings.ReplaceAll(migrations[v-1], "{s}", q)); err != nil {
			return fmt.Errorf("migration %d: %w", v, err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO `+q+`.schema_migrations (version) VALUES ($1)`, v); err != nil {
			return err
		}
	}
	return tx.Commit(ctx)
}
