// Package authz is numverify's OAuth2 / OpenID Connect authorization server:
// fosite composed with the authorization-code flow, PKCE (S256, required),
// OpenID Connect, introspection, revocation and refresh tokens, on the
// Postgres store of authz/store, logging a subscriber in silently from the
// network address of the request (network.Resolver).
package authz

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/ory/fosite"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/numverify/numverify/authz/store"
	"github.com/numverify/numverify/internal/keystore"
	"github.com/numverify/numverify/network"
)

// Deps are the collaborators of the server.
type Deps struct {
	// Store keeps clients, codes and tokens; client secrets are compared
	// with the hasher it makes them with (store.New).
	Store *store.Store
	// Keys serves the signing and encryption keys (keystore.Store).
	Keys Keys
	// Resolver says which subscriber holds an address at an instant.
	Resolver network.Resolver
	// Logger receives one line per failed request, never a number, token,
	// code or secret. Default: slog.Default().
	Logger *slog.Logger
	// Registerer receives the server's Prometheus metrics (metrics.go); nil:
	// not exported.
	Registerer prometheus.Registerer
	// Now is the clock of the abuse limits and of the operator-token grants
	// (tests); default time.Now.
	Now func() time.Time
	// OperatorTokens redeems TS.43 operator tokens (JWT-bearer and CIBA,
	// operatortoken.go); default: Resolver, when it redeems them too.
	OperatorTokens network.OperatorTokenRedeemer
	// Consent decides the operator-token requests; nil: all are allowed.
	Consent Consent
}

// Server is the authorization server; Handler serves its endpoints.
type Server struct {
	cfg      Config
	provider *fosite.Fosite
	codes    *sealedCodes
	store    *store.Store
	keys     Keys
	resolver network.Resolver
	logger   *slog.Logger
	address  addressSource
	subjects subjects
	metadata []byte // discovery document
	limits   limits
	metrics  *metrics
	// backchannel serves the operator-token logins (operatortoken.go).
	backchannel *backchannel
}

// New validates cfg (after defaults) and builds the server.
func New(cfg Config, deps Deps) (*Server, error) {
	cfg = cfg.WithDefaults()
	var problems []error
	if err := cfg.Validate(); err != nil {
		problems = append(problems, err)
	}
	if deps.Store == nil {
		problems = append(problems, errors.New("a store is required"))
	}
	if deps.Store != nil && deps.Store.SecretHasher() == nil {
		problems = append(problems, errors.New("the store has no client secret hasher"))
	}
	if deps.Keys == nil {
		problems = append(problems, errors.New("a key store is required"))
	}
	if deps.Resolver == nil {
		problems = append(problems, errors.New("a network resolver is required"))
	}
	if err := errors.Join(problems...); err != nil {
		return nil, fmt.Errorf("authz config: %w", err)
	}
	if deps.Logger == nil {
		deps.Logger = slog.Default()
	}
	s := &Server{
		cfg:      cfg,
		store:    deps.Store,
		keys:     deps.Keys,
		resolver: deps.Resolver,
		logger:   deps.Logger.With("component", "authz"),
		address:  newAddressSource(cfg),
		subjects: subjects{key: keystore.DeriveKey(cfg.SecretsKey, labelPairwise)},
		limits:   newLimits(cfg, deps.Now),
		metrics:  newMetrics(deps.Registerer),
	}
	s.backchannel = newBackchannel(deps, s.subjects, s.limits.now)
	s.provider, s.codes = newProvider(cfg, deps.Store, deps.Keys, func(clientID string) (bool, time.Duration) {
		return s.allowClient(clientID, "token")
	}, s.backchannel)
	metadata, err := newMetadata(cfg).marshal()
	if err != nil {
		return nil, err
	}
	s.metadata = metadata
	return s, nil
}

// Config returns the configuration in force (defaults applied).
func (s *Server) Config() Config { return s.cfg }

// Handler serves every endpoint (see routes.go).
func (s *Server) Handler() http.Handler { return s.routes() }
