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
