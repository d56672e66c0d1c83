package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/numverify/numverify/internal/pg"
)

// Transactions are plain pgx transactions carried in the context (fosite's
// storage.Transactional): every store method called with a context that
// carries one runs on it (db), otherwise on the pool. A BeginTX inside one
// is a savepoint. Inside a transaction every write commits durably (it may
// share the transaction with a revocation or a redemption).
//
// A login does not use them: its two steps are units of work (unit.go),
// /authorize writing nothing and /token one statement.

type txKey struct{}

func txFrom(ctx context.Context) pgx.Tx {
	tx, _ := ctx.Value(txKey{}).(pgx.Tx)
	return tx
}

// db is the transaction in ctx, or the pool.
func (s *Store) db(ctx context.Context) querier {
	if tx := txFrom(ctx); tx != nil {
		return tx
	}
	return s.pool
}

// BeginTX starts a transaction (a savepoint inside the one in ctx) and
// returns a context carrying it. Inside a login's unit of work (unit.go) it
// starts nothing: the unit's one statement is the transaction.
func (s *Store) BeginTX(ctx context.Context) (context.Context, error) {
	if unitFrom(ctx) != nil {
		return ctx, nil
	}
	tx, err := s.begin(ctx)
	if err != nil {
		return ctx, err
	}
	return context.WithValue(ctx, txKey{}, tx), nil
}

// begin starts a transaction: a savepoint inside the one in ctx, else one
// on the pool.
func (s *Store) begin(ctx context.Context) (pgx.Tx, error) {
	var tx pgx.Tx
	var err error
	if parent := txFrom(ctx); parent != nil {
		tx, err = parent.Begin(ctx)
	} else {
		tx, err = s.pool.Begin(ctx)
	}
	if err != nil {
		return nil, fmt.Errorf("begin transaction: %w", pg.MapError(err))
	}
	return tx, nil
}

// ErrNoTransaction is returned by Commit and Rollback when the context
// carries no transaction.
var ErrNoTransaction = errors.New("no transaction in context")

// Commit commits the transaction carried in ctx (a nested one: releases its
// savepoint).
func (s *Store) Commit(ctx context.Context) error {
	if unitFrom(ctx) != nil {
		return nil
	}
	tx := txFrom(ctx)
	if tx == nil {
		return ErrNoTransaction
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit: %w", pg.MapError(err))
	}
	return nil
}

// Rollback rolls back the transaction carried in ctx (a nested one: to its
// savepoint); inside a unit of work it fails the unit. Rolling back a
// finished transaction is not an error.
func (s *Store) Rollback(ctx context.Context) error {
	if u := unitFrom(ctx); u != nil {
		u.fail()
		return nil
	}
	tx := txFrom(ctx)
	if tx == nil {
		return ErrNoTransaction
	}
	if err := tx.Rollback(ctx); err != nil && !errors.Is(err, pgx.ErrTxClosed) {
		return fmt.Errorf("rollback: %w", pg.MapError(err))
	}
	return nil
}

// WithTokenTx runs one token-endpoint exchange (fosite's NewAccessRequest
// followed by NewAccessResponse) in a transaction; the provider calls it for
// every grant but the authorization code's (WithSealedCodeExchange). Inside it the
// read of an authorization code locks the code's row until the exchange
// commits, so of concurrent redemptions of one code exactly one issues
// tokens and every other one finds the code used: fosite answers those
// invalid_grant and revokes what the code issued (RFC 6749 §4.1.2).
//
// The transaction is committed even when fn returns an error: a replayed
// code's revocations must persist, and fosite rolls back its own part (a
// savepoint) when issuing fails. fn's error is returned unless the commit
// fails, in which case both are.
func (s *Store) WithTokenTx(ctx context.Context, fn func(ctx context.Context) error) error {
	txCtx, err := s.BeginTX(ctx)
	if err != nil {
		return err
	}
	fnErr := fn(txCtx)
	if err := s.Commit(txCtx); err != nil {
		_ = s.Rollback(txCtx)
		if fnErr != nil {
			return errors.Join(fmt.Errorf("token exchange: %w", err), fnErr)
		}
		return fmt.Errorf("token exchange: %w", err)
	}
	return fnErr
}

// inDurableTx runs fn in a transaction (nested in the one in ctx, if any)
// that commits synchronously whatever the server's default.
func (s *Store) inDurableTx(ctx context.Context, fn func(ctx context.Context, db querier) error) error {
	tx, err := s.begin(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if _, err := tx.Exec(ctx, sqlSynchronousCommit, "on"); err != nil {
		return fmt.Errorf("durable commit: %w", pg.MapError(err))
	}
	if err := fn(context.WithValue(ctx, txKey{}, tx), tx); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit: %w", pg.MapError(err))
	}
	return nil
}

// sqlSynchronousCommit sets synchronous_commit for the rest of the
// transaction (an implicit one: the batch it is sent in).
const sqlSynchronousCommit = `SELECT set_config('synchronous_commit', $1, true)`

// execShortLived writes a short-lived login record outside a unit: inside a
// transaction, as one of its statements; alone, in one round trip with
// asynchronous commit (DESIGN "Durability by kind").
func (s *Store) execShortLived(ctx context.Context, sql string, args ...any) error {
	if tx := txFrom(ctx); tx != nil {
		_, err := tx.Exec(ctx, sql, args...)
		return err
	}
	b := &pgx.Batch{}
	b.Queue(sqlSynchronousCommit, "off")
	b.Queue(sql, args...)
	return s.pool.SendBatch(ctx, b).Close()
}
