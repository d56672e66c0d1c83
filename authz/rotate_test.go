package authz_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/numverify/numverify/authz"
	"github.com/numverify/numverify/authz/store"
	"github.com/numverify/numverify/internal/contract"
	"github.com/numverify/numverify/internal/keystore"
	"github.com/numverify/numverify/internal/testclock"
)

// issued is what one login of the load returned.
type issued struct{ idToken, accessToken string }

// `keys rotate`, run as another process would (its own key store), while
// logins run: no request fails, the new key is published at once and signs
// only once the key store's clock has passed the publish-ahead, and every
// token signed before (or after) the rotation still verifies against the
// published keys, as the SP and the resource server check them.
func TestKeyRotationUnderLoad(t *testing.T) {
	const (
		workers      = 8
		publishAhead = time.Minute // passed by moving the key store's clock
		serverCache  = 100 * time.Millisecond
	)
	clock := &testclock.Offset{}
	srv := startServer(t, func(s *serverSetup) { s.keysNow = clock.Now })
	srv.keys.(*keystore.Store).SetCacheTTL(serverCache)
	sp := srv.client(store.ClientSpec{})
	conf, provider := srv.oauthConfig(t, sp)
	// The SP's verifier caches the JWKS it fetched before the rotation and
	// refetches on an unknown kid.
	verifier := provider.Verifier(&oidc.Config{ClientID: sp.id, SupportedSigningAlgs: []string{"ES256"}})
	spHTTP := &http.Client{Timeout: 10 * time.Second}
	before, err := srv.keys.SigningKey(context.Background(), jose.ES256)
	if err != nil {
		t.Fatal(err)
	}

	var (
		mu       sync.Mutex
		tokens   []issued
		failures []error
		stop     atomic.Bool
		wg       sync.WaitGroup
	)
	for range workers {
		d := srv.newDevice()
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				tok, err := loadLogin(d, conf.Endpoint.AuthURL, conf.Endpoint.TokenURL, sp, spHTTP)
				if err == nil {
					_, err = verifier.Verify(context.Background(), tok.idToken)
				}
				mu.Lock()
				if err != nil {
					failures = append(failures, err)
				} else {
					tokens = append(tokens, tok)
				}
				mu.Unlock()
			}
		}()
	}
	// signedBy counts the logins so far whose ID token kid signed.
	signedBy := func(kid string) (n, total int) {
		mu.Lock()
		defer mu.Unlock()
		for _, tok := range tokens {
			if kidOf(t, tok.idToken) == kid {
				n++
			}
		}
		return n, len(tokens)
	}
	waitFor(t, "logins before the rotation", func() bool { n, _ := signedBy(before.KeyID); return n >= workers })
	rotator, err := keystore.New(srv.db.Pool, srv.secretsKey)
	if err != nil {
		t.Fatal(err)
	}
	newKid, err := rotator.Rotate(context.Background(), jose.ES256, publishAhead, authz.DefaultAccessTokenLifetime)
	if err != nil {
		t.Fatalf("rotate: %v", err)
	}
	waitFor(t, "the new key in the server's JWKS", func() bool {
		public, err := srv.keys.PublicSigningKeys(context.Background())
		return err == nil && slices.ContainsFunc(public, func(k jose.JSONWebKey) bool { return k.KeyID == newKid })
	})
	_, published := signedBy(newKid)
	waitFor(t, "logins with the new key published", func() bool { _, total := signedBy(newKid); return total >= published+workers })
	if n, _ := signedBy(newKid); n > 0 {
		t.Fatalf("%d tokens signed by the new key before its publish-ahead passed", n)
	}
	clock.Advance(publishAhead)
	waitFor(t, "logins signed by the new key", func() bool { n, _ := signedBy(newKid); return n >= workers })
	stop.Store(true)
	wg.Wait()

	if len(failures) > 0 {
		t.Fatalf("%d of %d logins failed during the rotation; first: %v", len(failures), len(failures)+len(tokens), failures[0])
	}
	// After the load, with the keys published now: every token verifies.
	jwks := fetchJWKS(t, srv.issuer)
	byKid := map[string]int{}
	for _, tok := range tokens {
		kid, err := verifyWith(jwks, tok.idToken)
		if err != nil {
			t.Fatalf("ID token no longer verifies against the JWKS: %v", err)
		}
		byKid[kid]++
		if _, err := contract.Open(tok.accessToken, srv.openKey); err != nil {
			t.Fatalf("access token no longer opens: %v", err)
		}
	}
	if byKid[before.KeyID] == 0 || byKid[newKid] == 0 {
		t.Fatalf("tokens by signing key %v: want some from the old key %s and some from the new %s", byKid, before.KeyID, newKid)
	}
}

// loadLogin is one silent login: the device authorizes, the SP exchanges.
func loadLogin(d device, authURL, tokenURL string, sp testClient, spHTTP *http.Client) (issued, error) {
	verifier := randomString() + randomString() + randomString()
	q := url.Values{
		"client_id": {sp.id}, "response_type": {"code"}, "redirect_uri": {sp.redirectURI},
		"scope": {"openid " + contract.ScopeVerify}, "state": {"s"}, "nonce": {"nonce-" + randomString()},
		"code_challenge": {s256(verifier)}, "code_challenge_method": {"S256"},
	}
	resp, err := d.http.Get(authURL + "?" + q.Encode())
	if err != nil {
		return issued{}, err
	}
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || loc.Query().Get("code") == "" {
		return issued{}, fmt.Errorf("authorize: %d %s", resp.StatusCode, loc.Query().Get("error"))
	}
	form := url.Values{"grant_type": {"authorization_code"}, "code": {loc.Query().Get("code")},
		"redirect_uri": {sp.redirectURI}, "code_verifier": {verifier}}
	req, _ := http.NewRequest(http.MethodPost, tokenURL, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(sp.id, sp.secret)
	resp, err = spHTTP.Do(req)
	if err != nil {
		return issued{}, err
	}
	defer resp.Body.Close()
	var body struct {
		AccessToken string `json:"access_token"`
		IDToken     string `json:"id_token"`
		Error       string `json:"error"`
	}
	if err := jsonDecode(resp, &body); err != nil || resp.StatusCode != http.StatusOK {
		return issued{}, fmt.Errorf("token: %d %s %v", resp.StatusCode, body.Error, err)
	}
	return issued{idToken: body.IDToken, accessToken: body.AccessToken}, nil
}

func fetchJWKS(t testing.TB, issuer string) jose.JSONWebKeySet {
	t.Helper()
	resp, err := http.Get(issuer + "/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var set jose.JSONWebKeySet
	if err := jsonDecode(resp, &set); err != nil {
		t.Fatal(err)
	}
	return set
}

// kidOf is the kid in the header of a compact JWS.
func kidOf(t testing.TB, raw string) string {
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.ES256, jose.RS256})
	if err != nil {
		t.Errorf("ID token: %v", err)
		return ""
	}
	return tok.Headers[0].KeyID
}

// waitFor polls cond every 10 ms for up to 10 s (what another goroutine
// does, not time passing: clocks are moved).
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within 10 s", what)
		}
	}
}

// verifyWith verifies a compact JWS against set and returns its kid.
func verifyWith(set jose.JSONWebKeySet, raw string) (string, error) {
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.ES256, jose.RS256})
	if err != nil {
		return "", err
	}
	kid := tok.Headers[0].KeyID
	keys := set.Key(kid)
	if len(keys) == 0 {
		return kid, errors.New("kid " + kid + " is not published")
	}
	var claims jwt.Claims
	if err := tok.Claims(keys[0].Key, &claims); err != nil {
		return kid, err
	}
	return kid, claims.ValidateWithLeeway(jwt.Expected{Time: time.Now()}, 0)
}
