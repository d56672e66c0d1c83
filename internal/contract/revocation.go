package contract

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// Execer is a pgx pool, connection or transaction.
type Execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// RecordRevocation records that the token with this jti is revoked until it
// would have expired and announces it on RevocationChannel. Inside a
// transaction the announcement is delivered at commit.
func RecordRevocation(ctx context.Context, db Execer, jti string, expiresAt time.Time) error {
	_, err := db.Exec(ctx, `
		WITH recorded AS (
			INSERT INTO revoked_tokens (jti, expires_at) VALUES ($1, $2)
			ON CONFLICT (jti) DO NOTHING
		)
		SELECT pg_notify($3, $1)`, jti, expiresAt, RevocationChannel)
	if err != nil {
		return fmt.Errorf("record revocation: %w", err)
	}
	return nil
}

// ClientRevocationChannel is the Postgres NOTIFY channel on which the
// revocation of every token of a client is announced (payload: the client
// id). A channel of its own, so that no payload is ever taken for the other
// kind.
const ClientRevocationChannel = "numverify_client_revocations"

// RecordClientRevocation records that every access token of clientID (a
// deleted client: its id is never issued again) is revoked, whenever it was
// issued, until the record expires after retain (at least the longest access
// token lifetime, so that no token outlives the record, not even one an
// exchange racing the deletion issued after it), and announces it on
// ClientRevocationChannel. Inside a transaction the announcement is
// delivered at commit.
func RecordClientRevocation(ctx context.Context, db Execer, clientID string, retain time.Duration) error {
	_, err := db.Exec(ctx, `
		WITH recorded AS (
			INSERT INTO revoked_clients (client_id, revoked_before, expires_at)
			VALUES ($1, now() + make_interval(secs => $2), now() + make_interval(secs => $2))
			ON CONFLICT (client_id) DO UPDATE SET
				revoked_before = greatest(revoked_clients.revoked_before, EXCLUDED.revoked_before),
				expires_at = greatest(revoked_clients.expires_at, EXCLUDED.expires_at)
		)
		SELECT pg_notify($3, $1)`, clientID, retain.Seconds(), ClientRevocationChannel)
	if err != nil {
		return fmt.Errorf("record client revocation: %w", err)
	}
	return nil
}
