package network

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/labstack/echo/v4"

	"github.com/numverify/numverify/internal/pg"
	"github.com/numverify/numverify/internal/phone"
)

// Operator tokens (GSMA TS.43 temporary tokens, CAMARA NV 2.x): once a
// device has proven its SIM to the entitlement server (EAP-AKA), the server
// mints a token for the subscriber and the one client (SP) that may redeem
// it. The token is 256 random bits; only its SHA-256 is stored. It lives
// OperatorTokenLifetime (2 minutes by default) and is redeemed at most once,
// by the authorization server (JWT-bearer grant or CIBA), in one UPDATE:
// of concurrent redemptions exactly one gets the MSISDN.

// DefaultOperatorTokenLifetime is how long an operator token can be redeemed.
const DefaultOperatorTokenLifetime = 2 * time.Minute

// operatorTokenBytes is the token's entropy: 256 bits.
const operatorTokenBytes = 32

// maxOperatorTokenLength bounds what Redeem looks up (a token is 43
// characters; anything much longer is not one).
const maxOperatorTokenLength = 128

// MaxClientIDLength is the longest client id a token may be bound to (the
// authorization server's own limit).
const MaxClientIDLength = 128

// ValidClientID says whether clientID may be bound to a token: 1 to
// MaxClientIDLength characters, without spaces or control characters.
func ValidClientID(clientID string) bool {
	return clientID != "" && len(clientID) <= MaxClientIDLength &&
		!strings.ContainsFunc(clientID, func(r rune) bool { return r <= ' ' || r == 0x7f })
}

// ErrOperatorTokenInvalid means the token cannot be redeemed: unknown,
// already redeemed, expired, or minted for another client. Which of these it
// was is not told.
var ErrOperatorTokenInvalid = errors.New("network: operator token unknown, used, expired or minted for another client")

// OperatorTokenRedeemer redeems operator tokens: the authorization server
// sees them only through it.
type OperatorTokenRedeemer interface {
	// RedeemOperatorToken returns the MSISDN the token was minted for, once,
	// and only to clientID; ErrOperatorTokenInvalid otherwise. Any other
	// error means the answer is unknown (the database is unreachable).
	RedeemOperatorToken(ctx context.Context, token, clientID string) (msisdn string, err error)
}

var _ OperatorTokenRedeemer = (*Store)(nil)

// operatorTokenSettings are the store's lifetime and clock for operator
// tokens; a nil clock means the database's (now()).
type operatorTokenSettings struct {
	lifetime time.Duration
	now      func() time.Time
}

// ConfigureOperatorTokens sets the lifetime of the tokens minted from now
// on (0: DefaultOperatorTokenLifetime) and the clock that mints and redeems
// them (nil: the database's); call it before the store is used.
func (s *Store) ConfigureOperatorTokens(lifetime time.Duration, now func() time.Time) {
	s.tokens = operatorTokenSettings{lifetime: lifetime, now: now}
}

func (s *Store) operatorTokenLifetime() time.Duration {
	if s.tokens.lifetime > 0 {
		return s.tokens.lifetime
	}
	return DefaultOperatorTokenLifetime
}

// clockNow is the configured clock's time, or nil for the database's.
func (s *Store) clockNow() *time.Time {
	if s.tokens.now == nil {
		return nil
	}
	t := s.tokens.now()
	return &t
}

// MintOperatorToken makes a token for msisdn that only clientID may redeem,
// before expiresAt. ErrInvalid (wrapped) for a malformed number or client id.
func (s *Store) MintOperatorToken(ctx context.Context, msisdn, clientID string) (token string, expiresAt time.Time, err error) {
	e164, err := phone.Normalize(msisdn)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("%w: msisdn: not a valid international (E.164) phone number", ErrInvalid)
	}
	if !ValidClientID(clientID) {
		return "", time.Time{}, fmt.Errorf("%w: client_id: 1 to %d characters, without spaces", ErrInvalid, MaxClientIDLength)
	}
	raw := make([]byte, operatorTokenBytes)
	if _, err := rand.Read(raw); err != nil {
		return "", time.Time{}, fmt.Errorf("mint operator token: %w", err)
	}
	token = base64.RawURLEncoding.EncodeToString(raw)
	hash := operatorTokenHash(token)
	err = s.db.QueryRow(ctx, `
INSERT INTO operator_tokens (token_hash, msisdn, client_id, created_at, expires_at)
VALUES ($1, $2, $3, coalesce($4, now()), coalesce($4, now()) + $5::interval)
RETURNING expires_at`, hash[:], e164, clientID, s.clockNow(), s.operatorTokenLifetime()).Scan(&expiresAt)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("mint operator token: %w", pg.MapError(err))
	}
	return token, expiresAt, nil
}

// RedeemOperatorToken implements OperatorTokenRedeemer with one UPDATE.
func (s *Store) RedeemOperatorToken(ctx context.Context, token, clientID string) (string, error) {
	if token == "" || len(token) > maxOperatorTokenLength || clientID == "" {
		return "", ErrOperatorTokenInvalid
	}
	hash := operatorTokenHash(token)
	var msisdn string
	err := s.db.QueryRow(ctx, `
UPDATE operator_tokens SET redeemed_at = coalesce($3, now())
WHERE token_hash = $1 AND redeemed_at IS NULL AND expires_at > coalesce($3, now()) AND client_id = $2
RETURNING msisdn`, hash[:], clientID, s.clockNow()).Scan(&msisdn)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", ErrOperatorTokenInvalid
	}
	if err != nil {
		return "", fmt.Errorf("redeem operator token: %w", pg.MapError(err))
	}
	return msisdn, nil
}

func operatorTokenHash(token string) [sha256.Size]byte { return sha256.Sum256([]byte(token)) }

// operatorTokenBody is the JSON of POST /operator-tokens.
type operatorTokenBody struct {
	MSISDN   string `json:"msisdn"`
	ClientID string `json:"client_id"`
}

// operatorTokenAnswer is the answer of POST /operator-tokens.
type operatorTokenAnswer struct {
	Token     string    `json:"token"`
	ExpiresIn int       `json:"expires_in"` // seconds
	ExpiresAt time.Time `json:"expires_at"`
}

// handleMintOperatorToken: POST /operator-tokens {msisdn, client_id} →
// 201 {token, expires_in, expires_at}. For an entitlement server that has
// authenticated the subscriber's SIM itself (EAP-AKA).
func (a *Admin) handleMintOperatorToken(c echo.Context) error {
	var body operatorTokenBody
	if err := decodeBody(c, "operator token request", &body); err != nil {
		return err
	}
	token, expiresAt, err := a.store.MintOperatorToken(c.Request().Context(), body.MSISDN, body.ClientID)
	if err != nil {
		return err
	}
	c.Response().Header().Set(echo.HeaderCacheControl, "no-store")
	return c.JSON(http.StatusCreated, operatorTokenAnswer{
		Token: token, ExpiresIn: int(math.Ceil(a.store.operatorTokenLifetime().Seconds())), ExpiresAt: expiresAt.UTC(),
	})
}
