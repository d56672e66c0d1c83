package store

import (
	"context"
	"fmt"
	"time"

	"github.com/ory/fosite"

	"github.com/numverify/numverify/internal/contract"
	"github.com/numverify/numverify/internal/pg"
)

// --- authorization codes (oauth2.AuthorizeCodeStorage) ---

// CreateAuthorizeCodeSession stores the authorization request behind a code.
func (s *Store) CreateAuthorizeCodeSession(ctx context.Context, signature string, r fosite.Requester) error {
	return s.createRequest(ctx, kindCode, signature, r, nil)
}

// GetAuthorizeCodeSession returns the request behind a code. For a code
// already redeemed it returns the request together with
// fosite.ErrInvalidatedAuthorizeCode, so fosite revokes what the code issued.
// Inside a transaction the code's row is locked until it ends (see
// WithTokenTx): a concurrent redemption waits, then sees the code used.
// In a code exchange it answers from the exchange's read.
func (s *Store) GetAuthorizeCodeSession(ctx context.Context, signature string, session fosite.Session) (fosite.Requester, error) {
	req, active, err := s.getRequest(ctx, kindCode, signature, session, true)
	if err != nil {
		return nil, err
	}
	if !active {
		return req, fosite.ErrInvalidatedAuthorizeCode
	}
	return req, nil
}

// InvalidateAuthorizeCodeSession redeems a code: one atomic statement turns
// it inactive only if it was active, so two redemptions cannot both succeed.
// The loser gets fosite.ErrInvalidatedAuthorizeCode (fosite.ErrNotFound for
// an unknown code). It commits durably: a redemption lost to a crash would
// let the code be used again. In a code exchange (WithSealedCodeExchange) the
// redemption is written with the exchange's other writes.
func (s *Store) InvalidateAuthorizeCodeSession(ctx context.Context, signature string) error {
	key := rowKey{kindCode, string(hashSignature(signature))}
	if handled, err := unitFrom(ctx).redeemCode(key); handled {
		return err
	}
	tag, err := s.db(ctx).Exec(ctx, sqlRedeemCode, []byte(key.signature))
	if err != nil {
		return fmt.Errorf("invalidate code: %w", pg.MapError(err))
	}
	if tag.RowsAffected() == 1 {
		return nil
	}
	var exists bool
	if err := s.db(ctx).QueryRow(ctx,
		`SELECT EXISTS (SELECT 1 FROM oauth2_requests WHERE kind = 'code' AND signature = $1)`,
		[]byte(key.signature)).Scan(&exists); err != nil {
		return fmt.Errorf("invalidate code: %w", pg.MapError(err))
	}
	if exists {
		return fosite.ErrInvalidatedAuthorizeCode
	}
	return fosite.ErrNotFound
}

// --- PKCE (pkce.PKCERequestStorage) ---

func (s *Store) CreatePKCERequestSession(ctx context.Context, signature string, r fosite.Requester) error {
	return s.createRequest(ctx, kindPKCE, signature, r, nil)
}

func (s *Store) GetPKCERequestSession(ctx context.Context, signature string, session fosite.Session) (fosite.Requester, error) {
	req, _, err := s.getRequest(ctx, kindPKCE, signature, session, false)
	if err != nil {
		return nil, err
	}
	return req, nil
}

func (s *Store) DeletePKCERequestSession(ctx context.Context, signature string) error {
	return s.deleteRequest(ctx, kindPKCE, signature)
}

// --- OpenID Connect (openid.OpenIDConnectRequestStorage) ---
// fosite passes the authorization code itself here; only its hash is stored.

func (s *Store) CreateOpenIDConnectSession(ctx context.Context, authorizeCode string, r fosite.Requester) error {
	return s.createRequest(ctx, kindOIDC, authorizeCode, r, nil)
}

// GetOpenIDConnectSession decodes the stored session into r's session;
// fosite.ErrNotFound (openid.ErrNoSessionFound) when there is none.
func (s *Store) GetOpenIDConnectSession(ctx context.Context, authorizeCode string, r fosite.Requester) (fosite.Requester, error) {
	var session fosite.Session
	if r != nil {
		session = r.GetSession()
	}
	req, _, err := s.getRequest(ctx, kindOIDC, authorizeCode, session, false)
	if err != nil {
		return nil, err
	}
	return req, nil
}

func (s *Store) DeleteOpenIDConnectSession(ctx context.Context, authorizeCode string) error {
	return s.deleteRequest(ctx, kindOIDC, authorizeCode)
}

// --- access tokens (oauth2.AccessTokenStorage) ---

// CreateAccessTokenSession stores an access token's request. When the
// session tells the JWT's id (AccessTokenID), it is kept so that revoking the
// token can announce it to the resource servers.
func (s *Store) CreateAccessTokenSession(ctx context.Context, signature string, r fosite.Requester) error {
	return s.createRequest(ctx, kindAccess, signature, r, nil)
}

// GetAccessTokenSession returns the request of an access token; for a
// revoked one, the request with fosite.ErrInactiveToken.
func (s *Store) GetAccessTokenSession(ctx context.Context, signature string, session fosite.Session) (fosite.Requester, error) {
	return s.getToken(ctx, kindAccess, signature, session)
}

func (s *Store) DeleteAccessTokenSession(ctx context.Context, signature string) error {
	return s.deleteRequest(ctx, kindAccess, signature)
}

// --- refresh tokens (oauth2.RefreshTokenStorage) ---

func (s *Store) CreateRefreshTokenSession(ctx context.Context, signature, accessSignature string, r fosite.Requester) error {
	var access []byte
	if accessSignature != "" {
		access = hashSignature(accessSignature)
	}
	return s.createRequest(ctx, kindRefresh, signature, r, access)
}

// GetRefreshTokenSession returns the request of a refresh token; for a
// revoked or rotated one, the request with fosite.ErrInactiveToken.
func (s *Store) GetRefreshTokenSession(ctx context.Context, signature string, session fosite.Session) (fosite.Requester, error) {
	return s.getToken(ctx, kindRefresh, signature, session)
}

func (s *Store) DeleteRefreshTokenSession(ctx context.Context, signature string) error {
	return s.deleteRequest(ctx, kindRefresh, signature)
}

// RotateRefreshToken retires the refresh tokens of a request and revokes its
// access tokens, as a refresh grant issues new ones.
func (s *Store) RotateRefreshToken(ctx context.Context, requestID string, refreshTokenSignature string) error {
	if err := s.RevokeRefreshToken(ctx, requestID); err != nil {
		return err
	}
	return s.RevokeAccessToken(ctx, requestID)
}

func (s *Store) getToken(ctx context.Context, k kind, signature string, session fosite.Session) (fosite.Requester, error) {
	req, active, err := s.getRequest(ctx, k, signature, session, false)
	if err != nil {
		return nil, err
	}
	if !active {
		return req, fosite.ErrInactiveToken
	}
	return req, nil
}

// --- revocation (oauth2.TokenRevocationStorage) ---

// revokedTokenFallbackLifetime bounds how long the revocation of an access
// token stored without expiry is remembered.
const revokedTokenFallbackLifetime = 24 * time.Hour

// RevokeAccessToken marks every access token of a request inactive (durably)
// and, for each one issued as a JWT (with a jti), records the revocation and
// announces it to the resource servers, which validate those tokens offline.
func (s *Store) RevokeAccessToken(ctx context.Context, requestID string) error {
	return s.inDurableTx(ctx, func(ctx context.Context, tx querier) error {
		rows, err := tx.Query(ctx, `
			UPDATE oauth2_requests SET active = false
			WHERE kind = 'access' AND request_id = $1 AND active
			RETURNING jti, expires_at`, requestID)
		if err != nil {
			return fmt.Errorf("revoke access tokens: %w", pg.MapError(err))
		}
		type revoked struct {
			jti       *string
			expiresAt *time.Time
		}
		var list []revoked
		for rows.Next() {
			var r revoked
			if err := rows.Scan(&r.jti, &r.expiresAt); err != nil {
				rows.Close()
				return fmt.Errorf("revoke access tokens: %w", err)
			}
			list = append(list, r)
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("revoke access tokens: %w", pg.MapError(err))
		}
		for _, r := range list {
			if r.jti == nil || *r.jti == "" {
				continue
			}
			expiresAt := time.Now().Add(revokedTokenFallbackLifetime)
			if r.expiresAt != nil {
				expiresAt = *r.expiresAt
			}
			if err := contract.RecordRevocation(ctx, tx, *r.jti, expiresAt); err != nil {
				return err
			}
		}
		return nil
	})
}

// RevokeRefreshToken marks every refresh token of a request inactive (durably).
func (s *Store) RevokeRefreshToken(ctx context.Context, requestID string) error {
	return s.inDurableTx(ctx, func(ctx context.Context, tx querier) error {
		if _, err := tx.Exec(ctx, `
			UPDATE oauth2_requests SET active = false
			WHERE kind = 'refresh' AND request_id = $1 AND active`, requestID); err != nil {
			return fmt.Errorf("revoke refresh tokens: %w", pg.MapError(err))
		}
		return nil
	})
}

// RevokeRefreshTokenMaybeGracePeriod is RevokeRefreshToken: numverify keeps
// no grace period for rotated refresh tokens (older fosite interface).
func (s *Store) RevokeRefreshTokenMaybeGracePeriod(ctx context.Context, requestID string, signature string) error {
	return s.RevokeRefreshToken(ctx, requestID)
}
