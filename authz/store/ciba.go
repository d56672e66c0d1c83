package store

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/numverify/numverify/internal/pg"
)

// BackchannelRequest is a CIBA authentication request (poll mode), keyed by
// the SHA-256 of its auth_req_id. The subscriber is known when it is made
// (an operator token proved who it is); the decision is ready at ReadyAt.
type BackchannelRequest struct {
	ClientID  string
	MSISDN    string
	Subject   string // pairwise, for the client's sector
	AMR       string
	Scopes    []string
	Denied    bool // the request is refused (no consent)
	CreatedAt time.Time
	ReadyAt   time.Time
	ExpiresAt time.Time
	// Interval is the least time between two polls; it grows by 5 s at
	// every poll that comes sooner (slow_down).
	Interval     time.Duration
	LastPolledAt time.Time // zero before the first poll
	Issued       bool      // tokens were issued: the auth_req_id is spent
}

const backchannelColumns = `client_id, msisdn, subject, scopes, amr, denied, created_at, ready_at, expires_at,
	poll_interval, last_polled_at, issued_at IS NOT NULL`

func backchannelKey(authReqID string) []byte {
	sum := sha256.Sum256([]byte(authReqID))
	return sum[:]
}

// CreateBackchannelRequest stores r under authReqID.
func (s *Store) CreateBackchannelRequest(ctx context.Context, authReqID string, r BackchannelRequest) error {
	_, err := s.db(ctx).Exec(ctx, `
		INSERT INTO ciba_requests (auth_req_id_hash, client_id, msisdn, subject, scopes, amr, denied,
			created_at, ready_at, expires_at, poll_interval)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
		backchannelKey(authReqID), r.ClientID, r.MSISDN, r.Subject, nonNil(r.Scopes), r.AMR, r.Denied,
		r.CreatedAt, r.ReadyAt, r.ExpiresAt, int32(r.Interval/time.Second))
	if err != nil {
		return fmt.Errorf("create CIBA request: %w", pg.MapError(err))
	}
	return nil
}

// LockBackchannelRequest reads the request of authReqID and, inside a
// transaction (WithTokenTx), locks its row until the transaction ends, so
// that concurrent polls of one auth_req_id are decided one after the other.
// ErrNotFound when there is none.
func (s *Store) LockBackchannelRequest(ctx context.Context, authReqID string) (BackchannelRequest, error) {
	var r BackchannelRequest
	var interval int32
	var lastPolled *time.Time
	err := s.db(ctx).QueryRow(ctx, `SELECT `+backchannelColumns+` FROM ciba_requests WHERE auth_req_id_hash = $1 FOR UPDATE`,
		backchannelKey(authReqID)).Scan(&r.ClientID, &r.MSISDN, &r.Subject, &r.Scopes, &r.AMR, &r.Denied,
		&r.CreatedAt, &r.ReadyAt, &r.ExpiresAt, &interval, &lastPolled, &r.Issued)
	if errors.Is(err, pgx.ErrNoRows) {
		return BackchannelRequest{}, ErrNotFound
	}
	if err != nil {
		return BackchannelRequest{}, fmt.Errorf("read CIBA request: %w", pg.MapError(err))
	}
	r.Interval = time.Duration(interval) * time.Second
	if lastPolled != nil {
		r.LastPolledAt = *lastPolled
	}
	return r, nil
}

// RecordBackchannelPoll notes a poll at at and the interval from then on.
func (s *Store) RecordBackchannelPoll(ctx context.Context, authReqID string, at time.Time, interval time.Duration) error {
	_, err := s.db(ctx).Exec(ctx, `UPDATE ciba_requests SET last_polled_at = $2, poll_interval = $3 WHERE auth_req_id_hash = $1`,
		backchannelKey(authReqID), at, int32(interval/time.Second))
	if err != nil {
		return fmt.Errorf("record CIBA poll: %w", pg.MapError(err))
	}
	return nil
}

// MarkBackchannelIssued spends the auth_req_id: tokens were issued at at.
func (s *Store) MarkBackchannelIssued(ctx context.Context, authReqID string, at time.Time) error {
	tag, err := s.db(ctx).Exec(ctx, `UPDATE ciba_requests SET issued_at = $2, last_polled_at = $2
		WHERE auth_req_id_hash = $1 AND issued_at IS NULL`, backchannelKey(authReqID), at)
	if err != nil {
		return fmt.Errorf("spend CIBA request: %w", pg.MapError(err))
	}
	if tag.RowsAffected() != 1 {
		return ErrNotFound
	}
	return nil
}

// The grants of logins through a TS.43 operator token a client may be
// registered for (ClientSpec.GrantTypes).
const (
	GrantTypeJWTBearer = "urn:ietf:params:oauth:grant-type:jwt-bearer"
	GrantTypeCIBA      = "urn:openid:params:grant-type:ciba"
)

// operatorTokenGrant reports whether grants include an operator-token grant.
func operatorTokenGrant(grants []string) bool {
	for _, g := range grants {
		if g == GrantTypeJWTBearer || g == GrantTypeCIBA {
			return true
		}
	}
	return false
}
