package store

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/compose"

	"github.com/numverify/numverify/internal/contract"
)

const (
	raceRedeemers = 32
	raceVerifier  = "a-code-verifier-of-more-than-43-characters-0123456789"
	raceRedirect  = "https://sp.example.com/callback"
)

// raceSetup is a real fosite provider (authorization code + PKCE +
// revocation, HMAC tokens) composed over the store, a client with a hashed
// secret, and one fresh authorization code.
type raceSetup struct {
	provider fosite.OAuth2Provider
	strategy interface {
		AccessTokenSignature(ctx context.Context, token string) string
		AuthorizeCodeSignature(ctx context.Context, token string) string
	}
	client  *Client
	secret  string
	code    string
	records []byte // the code's records, as a sealed code carries them
	barrier *barrier
}

func newRaceSetup(t *testing.T, f *fixture, mode redeemMode) *raceSetup {
	t.Helper()
	config := &fosite.Config{
		AccessTokenLifespan:   5 * time.Minute,
		AuthorizeCodeLifespan: 10 * time.Minute,
		GlobalSecret:          []byte("a-global-secret-of-32-bytes-long"),
		ClientSecretsHasher:   f.hasher,
		EnforcePKCE:           true,
		ScopeStrategy:         fosite.ExactScopeStrategy,
	}
	strategy := compose.NewOAuth2HMACStrategy(config)
	// Order matters: PKCE after the authorization code handler.
	st := &barrierStore{Store: f.store, barrier: newBarrier(raceRedeemers)}
	provider := compose.Compose(config, st, &compose.CommonStrategy{CoreStrategy: strategy},
		compose.OAuth2AuthorizeExplicitFactory,
		compose.OAuth2PKCEFactory,
		compose.OAuth2TokenRevocationFactory,
	)
	client, secret := f.createClient(t, spClientSpec())
	s := &raceSetup{provider: provider, strategy: strategy, client: client, secret: secret, barrier: st.barrier}
	records, err := f.store.CollectAuthorizeRecords(f.ctx, func(ctx context.Context) error {
		s.code = s.authorize(t, ctx)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	s.records = records
	if mode != withSealedCode { // the records stored, as without sealed codes
		s.code = s.authorize(t, f.ctx)
	}
	return s
}

func (s *raceSetup) authorize(t *testing.T, ctx context.Context) string {
	t.Helper()
	challenge := sha256.Sum256([]byte(raceVerifier))
	q := url.Values{
		"response_type":         {"code"},
		"client_id":             {s.client.ID},
		"redirect_uri":          {raceRedirect},
		"scope":                 {contract.ScopeOpenID + " " + contract.ScopeVerify},
		"state":                 {"state-12345678"},
		"code_challenge":        {base64.RawURLEncoding.EncodeToString(challenge[:])},
		"code_challenge_method": {"S256"},
	}
	r := httptest.NewRequest(http.MethodGet, "/authorize?"+q.Encode(), nil)
	ar, err := s.provider.NewAuthorizeRequest(ctx, r)
	if err != nil {
		t.Fatalf("NewAuthorizeRequest: %v", fosite.ErrorToRFC6749Error(err).WithExposeDebug(true).GetDescription())
	}
	for _, scope := range ar.GetRequestedScopes() {
		ar.GrantScope(scope)
	}
	resp, err := s.provider.NewAuthorizeResponse(ctx, ar, newSession("pairwise-sub", "", time.Now().UTC()))
	if err != nil {
		t.Fatalf("NewAuthorizeResponse: %v", err)
	}
	return resp.GetCode()
}

// redeemMode is how an exchange uses the store.
type redeemMode int

const (
	withoutTx        redeemMode = iota // fosite alone
	withTokenTx                        // in Store.WithTokenTx
	withCodeExchange                   // in Store.WithSealedCodeExchange
	withSealedCode                     // in Store.WithSealedCodeExchange (as handleToken)
)

// redeem exchanges the code once, as the token endpoint does.
func (s *raceSetup) redeem(ctx context.Context, st *Store, mode redeemMode) (fosite.AccessResponder, error) {
	form := url.Values{
		"grant_type":    {"authorization_code"},
		"code":          {s.code},
		"redirect_uri":  {raceRedirect},
		"code_verifier": {raceVerifier},
	}
	r := httptest.NewRequest(http.MethodPost, "/token", strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.SetBasicAuth(url.QueryEscape(s.client.ID), url.QueryEscape(s.secret))
	var resp fosite.AccessResponder
	exchange := func(ctx context.Context) error {
		ar, err := s.provider.NewAccessRequest(ctx, r, newSession("", "", time.Time{}))
		if err != nil {
			return err
		}
		resp, err = s.provider.NewAccessResponse(ctx, ar)
		return err
	}
	arrived := new(atomic.Bool)
	ctx = context.WithValue(ctx, arrivalKey{}, arrived)
	switch mode {
	case withTokenTx:
		return resp, st.WithTokenTx(ctx, exchange)
	case withSealedCode:
		// Every exchange finds the code unused (it carries its records; the
		// barrier is at fosite's first read), so all contend at the write.
		return resp, st.WithSealedCodeExchange(ctx, s.records, s.strategy.AuthorizeCodeSignature(ctx, s.code), s.code, exchange)
	}
	return resp, exchange(ctx)
}

// barrierStore holds every exchange at its first read of the code until all
// redeemers have arrived, so that they really contend: without it the first
// exchange may finish before the others start, and the race proves nothing.
type barrierStore struct {
	*Store
	barrier *barrier
}

type arrivalKey struct{}

func (s *barrierStore) GetAuthorizeCodeSession(ctx context.Context, signature string, session fosite.Session) (fosite.Requester, error) {
	if arrived, ok := ctx.Value(arrivalKey{}).(*atomic.Bool); ok && arrived.CompareAndSwap(false, true) {
		s.barrier.arrive()
	}
	return s.Store.GetAuthorizeCodeSession(ctx, signature, session)
}

type barrier struct {
	mu      sync.Mutex
	waiting int
	all     chan struct{}
}

func newBarrier(n int) *barrier { return &barrier{waiting: n, all: make(chan struct{})} }

func (b *barrier) arrive() {
	b.mu.Lock()
	b.waiting--
	if b.waiting == 0 {
		close(b.all)
	}
	b.mu.Unlock()
	select {
	case <-b.all:
	case <-time.After(10 * time.Second): // a redeemer failed before the read; do not hang
	}
}

type raceResult struct {
	winners     []fosite.AccessResponder
	errorsByKey map[string]int
}

func (s *raceSetup) race(ctx context.Context, st *Store, mode redeemMode) raceResult {
	var (
		mu     sync.Mutex
		wg     sync.WaitGroup
		start  = make(chan struct{})
		result = raceResult{errorsByKey: map[string]int{}}
	)
	for range raceRedeemers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			resp, err := s.redeem(ctx, st, mode)
			mu.Lock()
			defer mu.Unlock()
			if err == nil {
				result.winners = append(result.winners, resp)
				return
			}
			result.errorsByKey[fosite.ErrorToRFC6749Error(err).ErrorField]++
		}()
	}
	close(start)
	wg.Wait()
	return result
}

// testConcurrentCodeRedemption: 32 concurrent exchanges of one code through
// a real fosite provider give exactly one token; every other one is answered
// invalid_grant (never server_error), and because the code was replayed, the
// token it issued is revoked.
func testConcurrentCodeRedemption(t *testing.T, f *fixture) {
	for _, mode := range []struct {
		name string
		mode redeemMode
	}{
		{"locking read of the code", withTokenTx},
		{"WithSealedCodeExchange", withSealedCode},
	} {
		t.Run(mode.name, func(t *testing.T) { testConcurrentCodeRedemptionIn(t, f, mode.mode) })
	}
}

func testConcurrentCodeRedemptionIn(t *testing.T, f *fixture, mode redeemMode) {
	s := newRaceSetup(t, f, mode)
	result := s.race(f.ctx, f.store, mode)
	if len(result.winners) != 1 {
		t.Fatalf("%d exchanges succeeded, want exactly 1 (errors %v)", len(result.winners), result.errorsByKey)
	}
	if result.errorsByKey["invalid_grant"] != raceRedeemers-1 {
		t.Fatalf("losers' errors %v, want %d invalid_grant", result.errorsByKey, raceRedeemers-1)
	}
	token := result.winners[0].GetAccessToken()
	_, err := f.store.GetAccessTokenSession(f.ctx, s.strategy.AccessTokenSignature(f.ctx, token), emptySession())
	if !fosite.ErrInactiveToken.Is(fosite.ErrorToRFC6749Error(err)) {
		t.Errorf("winner's token after the replays: %v, want revoked (ErrInactiveToken)", err)
	}
	// And so the provider refuses it.
	if _, _, err := s.provider.IntrospectToken(f.ctx, token, fosite.AccessToken, emptySession()); err == nil {
		t.Errorf("introspection accepted the token of a replayed code")
	}
}

// testConcurrentCodeRedemptionWithoutTokenTx: even without WithTokenTx the
// redemption is one atomic statement, so still exactly one token is issued.
func testConcurrentCodeRedemptionWithoutTokenTx(t *testing.T, f *fixture) {
	s := newRaceSetup(t, f, withoutTx)
	result := s.race(f.ctx, f.store, withoutTx)
	if len(result.winners) != 1 {
		t.Fatalf("%d exchanges succeeded, want exactly 1 (errors %v)", len(result.winners), result.errorsByKey)
	}
	losers := 0
	for _, n := range result.errorsByKey {
		losers += n
	}
	if losers != raceRedeemers-1 {
		t.Errorf("%d losers, want %d", losers, raceRedeemers-1)
	}
}
