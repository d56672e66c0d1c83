package store

import (
	"context"
	"crypto/rand"
	"testing"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"
	"github.com/ory/fosite/token/jwt"

	"github.com/numverify/numverify/internal/contract"
	"github.com/numverify/numverify/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// TestStorage is the storage conformance suite (dex-style): every subtest
// gets a fresh, migrated Postgres database.
func TestStorage(t *testing.T) {
	for _, tc := range []struct {
		name string
		run  func(t *testing.T, f *fixture)
	}{
		{"ClientCRUD", testClientCRUD},
		{"ClientPrivateKeyJWT", testClientPrivateKeyJWT},
		{"ClientValidation", testClientValidation},
		{"SecretHasher", testSecretHasher},
		{"ClientAssertionJTIReplay", testClientAssertionJTIReplay},
		{"RequestKinds", testRequestKinds},
		{"SignatureHashedAndFormSanitised", testSignatureHashedAndFormSanitised},
		{"CodeInvalidation", testCodeInvalidation},
		{"Expiry", testExpiry},
		{"PurgeKeepsRedeemedCodesForReplay", testPurgeKeepsRedeemedCodesForReplay},
		{"RevokeAccessTokenAnnounces", testRevokeAccessTokenAnnounces},
		{"RevokeRefreshToken", testRevokeRefreshToken},
		{"Transactions", testTransactions},
		{"CommitDurabilityByKind", testCommitDurabilityByKind},
		{"DeleteClientCascades", testDeleteClientCascades},
		{"ConcurrentCodeRedemption", testConcurrentCodeRedemption},
		{"ConcurrentCodeRedemptionWithoutTokenTx", testConcurrentCodeRedemptionWithoutTokenTx},
		{"ClientCache", testClientCache},
		{"SealedCodeExchange", testSealedCodeExchange},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.run(t, newFixture(t))
		})
	}
}

// fixture is one test's store over its own database.
type fixture struct {
	db     *pgtest.DB
	store  *Store
	hasher *SecretHasher
	ctx    context.Context
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	db := pgtest.New(t)
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	hasher, err := NewSecretHasher(key)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return &fixture{db: db, store: New(db.Pool, hasher), hasher: hasher, ctx: ctx}
}

// spClientSpec is a valid service-provider client.
func spClientSpec() ClientSpec {
	return ClientSpec{
		Name:         "Example SP",
		RedirectURIs: []string{"https://sp.example.com/callback"},
		Scopes:       []string{contract.ScopeOpenID, contract.ScopeVerify},
	}
}

func (f *fixture) createClient(t *testing.T, spec ClientSpec) (*Client, string) {
	t.Helper()
	c, secret, err := f.store.CreateClient(f.ctx, spec)
	if err != nil {
		t.Fatalf("CreateClient: %v", err)
	}
	return c, secret
}

// testSession is a provider-like session: OpenID Connect claims plus the jti
// of the JWT access token issued with it.
type testSession struct {
	*openid.DefaultSession
	JTI string `json:"jti,omitempty"`
}

func (s *testSession) AccessTokenID() string { return s.JTI }

func newSession(subject, jti string, authTime time.Time) *testSession {
	return &testSession{
		DefaultSession: &openid.DefaultSession{
			Subject: subject,
			Claims: &jwt.IDTokenClaims{
				Subject:     subject,
				AuthTime:    authTime,
				RequestedAt: authTime,
			},
			Headers: &jwt.Headers{},
			ExpiresAt: map[fosite.TokenType]time.Time{
				fosite.AuthorizeCode: authTime.Add(10 * time.Minute),
				fosite.AccessToken:   authTime.Add(5 * time.Minute),
				fosite.RefreshToken:  authTime.Add(time.Hour),
			},
		},
		JTI: jti,
	}
}

func emptySession() *testSession {
	return &testSession{DefaultSession: &openid.DefaultSession{}}
}

// newRequest is a stored-request fixture for client c.
func newRequest(c fosite.Client, id, subject, jti string) *fosite.Request {
	now := time.Now().UTC().Round(time.Second)
	r := fosite.NewRequest()
	r.ID = id
	r.RequestedAt = now
	r.Client = c
	r.RequestedScope = fosite.Arguments{contract.ScopeOpenID, contract.ScopeVerify}
	r.GrantedScope = fosite.Arguments{contract.ScopeOpenID, contract.ScopeVerify}
	r.RequestedAudience = fosite.Arguments{contract.DefaultAudience}
	r.GrantedAudience = fosite.Arguments{contract.DefaultAudience}
	r.Form.Set("redirect_uri", "https://sp.example.com/callback")
	r.Form.Set("state", "state-12345678")
	r.Form.Set("client_secret", "must-not-be-stored")
	r.Form.Set("code_verifier", "must-not-be-stored-either")
	r.Session = newSession(subject, jti, now.Add(-time.Second))
	return r
}
