package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/numverify/numverify/internal/contract"
	"github.com/numverify/numverify/internal/pg"
)

// DefaultClientRevocationRetention is how long a deleted client's tokens
// stay refused by default: far longer than any access token lives (300 s by
// default), so that none outlives the record.
const DefaultClientRevocationRetention = 24 * time.Hour

// DeleteClientAndRevoke removes a client and every request record issued to
// it, and in the same transaction revokes every access token it was issued
// (a client-level revocation, kept for retain and announced to the resource
// servers, which validate JWT access tokens offline and may hold tokens no
// table lists); ErrNotFound when there is no such client.
//
// No foreign key ties the records to the client (migration 0012: its check
// locked the client's row at every exchange), so an exchange that
// authenticated the client just before the deletion can still commit a
// token after it: the revocation covers every token the client will ever
// have (contract.RecordClientRevocation).
func (s *Store) DeleteClientAndRevoke(ctx context.Context, id string, retain time.Duration) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM oauth2_clients WHERE id = $1`, id)
		if err != nil {
			return fmt.Errorf("delete client: %w", pg.MapError(err))
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("client %q: %w", id, ErrNotFound)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM oauth2_requests WHERE client_id = $1`, id); err != nil {
			return fmt.Errorf("delete client: its requests: %w", pg.MapError(err))
		}
		return contract.RecordClientRevocation(ctx, tx, id, retain)
	})
	s.clients.forget(id)
	return err
}
