package authz

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/google/uuid"
	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/oauth2"

	"github.com/numverify/numverify/internal/contract"
)

// jwtAccessTokens issues the access token of the numverify contract: an
// RFC 9068 JWT, signed by the authorization server (always with
// accessTokenSigningAlgorithm) and encrypted to the resource server (nested),
// or encrypted with the key both share (direct).
// fosite still stores a record per token, keyed by the JWE's last segment
// (its authentication tag, unique per token), so that introspection and
// revocation find it.
type jwtAccessTokens struct {
	keys     Keys
	issuer   string
	audience []string
	lifetime time.Duration
	direct   bool
}

var _ oauth2.AccessTokenStrategy = (*jwtAccessTokens)(nil)

// AccessTokenSignature is the JWE's authentication tag ("" for anything that
// is not a compact JWE).
func (j *jwtAccessTokens) AccessTokenSignature(_ context.Context, token string) string {
	if strings.Count(token, ".") != 4 {
		return ""
	}
	return token[strings.LastIndexByte(token, '.')+1:]
}

// GenerateAccessToken seals the claims of requester's session and sets the
// session's TokenID to the new jti (the store records it with the token).
func (j *jwtAccessTokens) GenerateAccessToken(ctx context.Context, requester fosite.Requester) (string, string, error) {
	sess, ok := requester.GetSession().(*Session)
	if !ok {
		return "", "", fmt.Errorf("access token: session is %T, want *authz.Session", requester.GetSession())
	}
	// Whole seconds, as in the JWT; the session's expiry (what introspection
	// and the stored record say) is made to agree with the token's.
	now := time.Now().UTC().Truncate(time.Second)
	exp := now.Add(j.lifetime)
	if sessionExp := sess.GetExpiresAt(fosite.AccessToken); !sessionExp.IsZero() && sessionExp.Before(exp) {
		exp = sessionExp.Truncate(time.Second)
	}
	sess.SetExpiresAt(fosite.AccessToken, exp)
	jti, err := randomID()
	if err != nil {
		return "", "", err
	}
	claims := contract.AccessClaims{
		Issuer:      j.issuer,
		Subject:     sess.Subject,
		Audience:    jwt.Audience(j.audience),
		ClientID:    requester.GetClient().GetID(),
		Scope:       strings.Join(requester.GetGrantedScopes(), " "),
		AMR:         sess.IDTokenClaims().AuthenticationMethodsReferences,
		IssuedAt:    jwt.NewNumericDate(now),
		Expiry:      jwt.NewNumericDate(exp),
		ID:          jti,
		PhoneNumber: sess.PhoneNumber,
	}
	if at := sess.IDTokenClaims().AuthTime; !at.IsZero() {
		claims.AuthTime = jwt.NewNumericDate(at)
	}
	token, err := j.seal(ctx, claims)
	if err != nil {
		return "", "", err
	}
	sess.TokenID = jti
	return token, j.AccessTokenSignature(ctx, token), nil
}

func (j *jwtAccessTokens) seal(ctx context.Context, claims contract.AccessClaims) (string, error) {
	if j.direct {
		kid, key, err := j.keys.DirectKey(ctx)
		if err != nil {
			return "", fmt.Errorf("access token direct key: %w", err)
		}
		return contract.SealDirect(claims, key, kid)
	}
	signing, err := j.keys.SigningKey(ctx, accessTokenSigningAlgorithm)
	if err != nil {
		return "", fmt.Errorf("access token signing key: %w", err)
	}
	encryption, err := j.keys.EncryptionKey(ctx)
	if err != nil {
		return "", fmt.Errorf("access token encryption key: %w", err)
	}
	return contract.SealNested(claims,
		jose.SigningKey{Algorithm: jose.SignatureAlgorithm(signing.Algorithm), Key: signing},
		encryption.Public())
}

// ValidateAccessToken checks a token against its stored record: not
// expired, opens with our keys, and is the token the record was made for.
func (j *jwtAccessTokens) ValidateAccessToken(ctx context.Context, requester fosite.Requester, token string) error {
	if exp := requester.GetSession().GetExpiresAt(fosite.AccessToken); !exp.IsZero() && exp.Before(time.Now().UTC()) {
		return fosite.ErrTokenExpired.WithHint("The access token expired.")
	}
	claims, err := contract.Open(token, j.openKeys(ctx))
	if err != nil {
		return fosite.ErrTokenSignatureMismatch.WithWrap(err)
	}
	if sess, ok := requester.GetSession().(*Session); ok && sess.TokenID != claims.ID {
		return fosite.ErrTokenSignatureMismatch.WithHint("The access token does not belong to this record.")
	}
	return nil
}

// openKeys are the keys to open our own tokens with.
func (j *jwtAccessTokens) openKeys(ctx context.Context) contract.Keys {
	return contract.Keys{
		Decryption: func(kid string) (any, bool) {
			if j.direct {
				id, key, err := j.keys.DirectKey(ctx)
				return key, err == nil && id == kid
			}
			k, err := j.keys.EncryptionKey(ctx)
			return k.Key, err == nil && k.KeyID == kid
		},
		Verification: func(kid string) (any, bool) {
			keys, err := j.keys.PublicSigningKeys(ctx)
			if err != nil {
				return nil, false
			}
			for _, k := range keys {
				if k.KeyID == kid {
					return k.Key, true
				}
			}
			return nil, false
		},
	}
}

// randomID is a new identifier for a token or request: a UUIDv7 (RFC 9562:
// the millisecond, then 74 random bits), so that the rows keyed by it are
// inserted in time order. Postgres keeps the single-use record of every
// access token (used_access_tokens, keyed by jti) and the index of every
// token and code row by request ID (oauth2_requests_request_id): with
// random keys, each insert lands on a leaf page anywhere in an index that
// outgrows the buffers under a sustained load, and after each checkpoint
// every page it dirties is written whole to the WAL; in time order the
// inserts fill the index's right edge.
func randomID() (string, error) {
	id, err := uuid.NewV7()
	if err != nil {
		return "", errors.New("random: " + err.Error())
	}
	return id.String(), nil
}
