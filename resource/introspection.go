package resource

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/numverify/numverify/internal/contract"
)

// introspector validates the opaque format through the authorization
// server's RFC 7662 endpoint, authenticating with client_secret_basic. Its
// answers are cached by the token's SHA-256, an active one until the token
// expires (never longer), an inactive one for negativeTTL.
type introspector struct {
	disco        *discovery
	client       *http.Client
	clientID     string
	clientSecret string
	checks       claimChecks
	now          func() time.Time
	log          *slog.Logger

	mu         sync.RWMutex
	cache      map[[sha256.Size]byte]introspected
	maxEntries int
}

type introspected struct {
	active bool
	p      principal
	until  time.Time
}

const negativeTTL = 10 * time.Second

func newIntrospector(_ context.Context, cfg Config, disco *discovery, _ *metrics, log *slog.Logger) *introspector {
	return &introspector{
		disco: disco, client: cfg.HTTPClient, clientID: cfg.IntrospectionClientID, clientSecret: cfg.IntrospectionClientSecret,
		checks: claimChecks{issuer: cfg.Issuer, audience: cfg.Audience, skew: cfg.ClockSkew, now: cfg.Now},
		now:    cfg.Now, log: log, cache: map[[sha256.Size]byte]introspected{}, maxEntries: 100_000,
	}
}

// introspectionResponse is RFC 7662 §2.2 plus the subscriber's number and
// amr, read at the top level or (fosite's extra claims) under "ext".
type introspectionResponse struct {
	Active      bool     `json:"active"`
	Scope       string   `json:"scope"`
	ClientID    string   `json:"client_id"`
	Exp         int64    `json:"exp"`
	Iat         int64    `json:"iat"`
	Nbf         int64    `json:"nbf"`
	Iss         string   `json:"iss"`
	Aud         audience `json:"aud"`
	Jti         string   `json:"jti"`
	TokenUse    string   `json:"token_use"`
	PhoneNumber string   `json:"phone_number"`
	AMR         []string `json:"amr"`
	Ext         *struct {
		PhoneNumber string   `json:"phone_number"`
		AMR         []string `json:"amr"`
	} `json:"ext"`
}

func (in *introspector) validate(ctx context.Context, token string) (principal, error) {
	key := sha256.Sum256([]byte(token))
	now := in.now()
	in.mu.RLock()
	hit, found := in.cache[key]
	in.mu.RUnlock()
	if found && now.Before(hit.until) {
		if !hit.active {
			return principal{}, errInvalidCredentials.with("The access token is not active.")
		}
		return hit.p, nil
	}
	resp, err := in.introspect(ctx, token)
	if err != nil {
		in.log.LogAttrs(ctx, slog.LevelWarn, "introspection failed", errAttr(err))
		return principal{}, errUnavailable.with("The authorization server cannot be reached.")
	}
	if !resp.Active || resp.TokenUse != "" && resp.TokenUse != "access_token" {
		in.store(key, introspected{until: now.Add(negativeTTL)})
		return principal{}, errInvalidCredentials.with("The access token is not active.")
	}
	issuer := resp.Iss
	if issuer == "" { // the configured endpoint answered: it is the issuer
		issuer = in.checks.issuer
	}
	exp := time.Unix(resp.Exp, 0)
	if resp.Exp == 0 {
		exp = time.Time{}
	}
	if err := in.checks.check(issuer, resp.Aud, true, exp, unixOrZero(resp.Nbf), unixOrZero(resp.Iat)); err != nil {
		return principal{}, claimError(err)
	}
	jti := resp.Jti
	if jti == "" {
		// RFC 7662's jti is optional (fosite's opaque tokens have none): the
		// token's hash identifies it as well, for single use and the limits.
		jti = "sha256:" + hex.EncodeToString(key[:])
	}
	claims := contract.AccessClaims{ClientID: resp.ClientID, Scope: resp.Scope, ID: jti,
		PhoneNumber: resp.PhoneNumber, AMR: resp.AMR, Expiry: jwt.NewNumericDate(exp)}
	if resp.Iat != 0 {
		claims.IssuedAt = jwt.NewNumericDate(time.Unix(resp.Iat, 0))
	}
	if resp.Ext != nil {
		if claims.PhoneNumber == "" {
			claims.PhoneNumber = resp.Ext.PhoneNumber
		}
		if len(claims.AMR) == 0 {
			claims.AMR = resp.Ext.AMR
		}
	}
	p := principalFromClaims(claims)
	in.store(key, introspected{active: true, p: p, until: exp})
	return p, nil
}

func unixOrZero(sec int64) time.Time {
	if sec == 0 {
		return time.Time{}
	}
	return time.Unix(sec, 0)
}

func (in *introspector) store(key [sha256.Size]byte, v introspected) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if len(in.cache) >= in.maxEntries {
		now := in.now()
		for k, e := range in.cache {
			if !now.Before(e.until) {
				delete(in.cache, k)
			}
		}
		if len(in.cache) >= in.maxEntries {
			return // full of live answers: ask again next time
		}
	}
	in.cache[key] = v
}

func (in *introspector) introspect(ctx context.Context, token string) (*introspectionResponse, error) {
	doc, err := in.disco.get(ctx)
	if err != nil {
		return nil, err
	}
	if doc.IntrospectionEndpoint == "" {
		return nil, errors.New("discovery document has no introspection_endpoint")
	}
	form := url.Values{"token": {token}, "token_type_hint": {"access_token"}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, doc.IntrospectionEndpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	req.SetBasicAuth(url.QueryEscape(in.clientID), url.QueryEscape(in.clientSecret))
	resp, err := in.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("introspect: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxFetchBytes))
		if resp.StatusCode >= 500 {
			in.disco.forget()
		}
		return nil, fmt.Errorf("introspect: status %d", resp.StatusCode)
	}
	var out introspectionResponse
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxFetchBytes)).Decode(&out); err != nil {
		return nil, fmt.Errorf("introspect: %w", err)
	}
	return &out, nil
}

func (in *introspector) ready(ctx context.Context) error {
	_, err := in.disco.get(ctx)
	return err
}

// audience is RFC 7662's aud: a string, an array of strings, or absent/null.
type audience []string

func (a *audience) UnmarshalJSON(b []byte) error {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	switch v := v.(type) {
	case nil:
		*a = nil
	case string:
		*a = audience{v}
	case []any:
		out := make(audience, 0, len(v))
		for _, e := range v {
			s, ok := e.(string)
			if !ok {
				return errors.New("aud: not a string")
			}
			out = append(out, s)
		}
		*a = out
	default:
		return errors.New("aud: not a string or an array")
	}
	return nil
}
