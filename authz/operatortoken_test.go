package authz_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/numverify/numverify/authz"
	"github.com/numverify/numverify/authz/store"
	"github.com/numverify/numverify/internal/contract"
	"github.com/numverify/numverify/internal/testclock"
	"github.com/numverify/numverify/network"
	"github.com/numverify/numverify/resource"
)

const (
	grantJWTBearer = "urn:ietf:params:oauth:grant-type:jwt-bearer"
	grantCIBA      = "urn:openid:params:grant-type:ciba"
	purposeScope   = contract.Purpose + " " + contract.ScopeVerify
)

// operatorTokenEnv is an authorization server on a clock the test moves, a
// network store that mints operator tokens (as the entitlement server
// does), an SP allowed both operator-token grants, and a resource server.
type operatorTokenEnv struct {
	srv     *testServer
	network *network.Store
	sp      testClient
	clock   *testclock.Offset
	api     string // the resource server's base URL
}

func newOperatorTokenEnv(t *testing.T, opts ...serverOption) *operatorTokenEnv {
	t.Helper()
	clock := &testclock.Offset{}
	opts = append([]serverOption{
		func(s *serverSetup) { s.now = clock.Now },
		config(func(c *authz.Config) {
			c.RateLimitPerClient = authz.NoRateLimit
			c.BackchannelApprovalDelay = 30 * time.Second
		}),
	}, opts...)
	srv := startServer(t, opts...)
	st, err := network.NewStore(srv.db.Pool, network.Pools{})
	if err != nil {
		t.Fatal(err)
	}
	e := &operatorTokenEnv{srv: srv, network: st, clock: clock}
	e.sp = e.client(grantJWTBearer, grantCIBA)
	e.api = startResourceServer(t, srv, false)
	return e
}

// client registers a private_key_jwt client allowed grants (and the code flow).
func (e *operatorTokenEnv) client(grants ...string) testClient {
	return e.srv.client(store.ClientSpec{
		TokenEndpointAuthMethod: store.AuthMethodPrivateKeyJWT,
		GrantTypes:              append([]string{"authorization_code"}, grants...),
		Scopes:                  []string{"openid", contract.ScopeVerify, contract.ScopeShare},
	})
}

// startResourceServer runs the resource server for srv's tokens (jwt format).
func startResourceServer(t *testing.T, srv *testServer, allowNonNetwork bool) string {
	t.Helper()
	rs, err := resource.New(context.Background(), resource.Config{
		Pool: srv.db.Pool, Issuer: srv.issuer, TokenFormat: resource.FormatJWT,
		AllowNonNetworkAuthentication: allowNonNetwork,
		DecryptionKeys: func(ctx context.Context) ([]jose.JSONWebKey, error) {
			k, err := srv.keys.EncryptionKey(ctx)
			return []jose.JSONWebKey{k}, err
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rs.Close)
	hs := httptest.NewServer(rs.Handler())
	t.Cleanup(hs.Close)
	return hs.URL
}

// verify calls POST /number-verification/{edition}/verify with phone.
func verify(t *testing.T, api, edition, accessToken, phone string) (int, map[string]any) {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"phoneNumber": phone})
	req, _ := http.NewRequest(http.MethodPost, api+"/number-verification/"+edition+"/verify", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+accessToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]any{}
	raw, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(raw, &out)
	return resp.StatusCode, out
}

// mint is the entitlement server handing the device a token for sp.
func (e *operatorTokenEnv) mint(t *testing.T, msisdn string, sp testClient) string {
	t.Helper()
	token, _, err := e.network.MintOperatorToken(context.Background(), msisdn, sp.id)
	if err != nil {
		t.Fatal(err)
	}
	return token
}

// mintExpired mints a token that expired a minute ago.
func (e *operatorTokenEnv) mintExpired(t *testing.T, msisdn string, sp testClient) string {
	t.Helper()
	past, err := network.NewStore(e.srv.db.Pool, network.Pools{})
	if err != nil {
		t.Fatal(err)
	}
	past.ConfigureOperatorTokens(time.Minute, func() time.Time { return time.Now().Add(-2 * time.Minute) })
	token, _, err := past.MintOperatorToken(context.Background(), msisdn, sp.id)
	if err != nil {
		t.Fatal(err)
	}
	return token
}

// grantClaims are the claims of a good JWT-bearer assertion.
func (e *operatorTokenEnv) grantClaims(sp testClient, token, scope string) map[string]any {
	now := time.Now()
	claims := map[string]any{"iss": sp.id, "sub": "operatortoken:" + token, "aud": e.srv.issuer,
		"iat": now.Unix(), "exp": now.Add(time.Minute).Unix(), "jti": randomString()}
	if scope != "" {
		claims["scope"] = scope
	}
	return claims
}

// clientAuth adds sp's private_key_jwt authentication to form.
func (e *operatorTokenEnv) clientAuth(t *testing.T, sp testClient, form url.Values) url.Values {
	form.Set("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
	form.Set("client_assertion", assertion(t, sp, e.srv.issuer, time.Now(), time.Minute, randomString()))
	return form
}

// jwtBearer exchanges a signed assertion with claims at /token.
func (e *operatorTokenEnv) jwtBearer(t *testing.T, sp testClient, claims map[string]any) (int, map[string]any) {
	t.Helper()
	form := url.Values{"grant_type": {grantJWTBearer}, "assertion": {signJWT(t, sp.key, sp.kid, claims)}}
	return postForm(t, e.srv.issuer+"/token", e.clientAuth(t, sp, form), "", "")
}

// wantError checks an RFC 6749 §5.2 answer.
func wantError(t *testing.T, status int, body map[string]any, wantStatus int, wantCode string) {
	t.Helper()
	if status != wantStatus || body["error"] != wantCode {
		t.Fatalf("got %d %v, want %d %s", status, body, wantStatus, wantCode)
	}
}

// wantVerified checks an access token: amr sim, the pairwise subject, no
// refresh token; and the resource server verifies the number with it.
func (e *operatorTokenEnv) wantVerified(t *testing.T, body map[string]any, msisdn string) contract.AccessClaims {
	t.Helper()
	token, _ := body["access_token"].(string)
	if token == "" {
		t.Fatalf("no access token: %v", body)
	}
	if _, ok := body["refresh_token"]; ok {
		t.Error("a refresh token was issued")
	}
	if exp, _ := body["expires_in"].(float64); exp <= 0 || exp > 300 {
		t.Errorf("expires_in %v, want a short-lived token (at most 300 s)", body["expires_in"])
	}
	claims, err := contract.Open(token, e.srv.openKey)
	if err != nil {
		t.Fatal(err)
	}
	if len(claims.AMR) != 1 || claims.AMR[0] != contract.AMRSIM || claims.PhoneNumber != msisdn {
		t.Errorf("amr %v phone %q, want [sim] and %s", claims.AMR, claims.PhoneNumber, msisdn)
	}
	if claims.Subject == "" || strings.Contains(claims.Subject, strings.TrimPrefix(msisdn, "+")) {
		t.Errorf("sub %q: want a pairwise subject, never the number", claims.Subject)
	}
	status, answer := verify(t, e.api, "v2", token, msisdn)
	if status != http.StatusOK || answer["devicePhoneNumberVerified"] != true {
		t.Errorf("verify: %d %v, want 200 verified", status, answer)
	}
	return claims
}

// A device on Wi-Fi (no session holds its address) gets an operator token
// from the entitlement server; the SP's backend exchanges it through the
// JWT-bearer grant, and the resource server verifies the number.
func TestJWTBearerOperatorToken(t *testing.T) {
	e := newOperatorTokenEnv(t)
	wifi := newDetachedDevice()

	token := e.mint(t, wifi.msisdn, e.sp)
	status, body := e.jwtBearer(t, e.sp, e.grantClaims(e.sp, token, purposeScope))
	if status != http.StatusOK {
		t.Fatalf("jwt-bearer: %d %v", status, body)
	}
	if _, ok := body["id_token"]; ok {
		t.Error("an ID token was issued by the jwt-bearer grant")
	}
	claims := e.wantVerified(t, body, wifi.msisdn)
	if claims.ClientID != e.sp.id {
		t.Errorf("client_id %q", claims.ClientID)
	}

	t.Run("same token a second time", func(t *testing.T) {
		status, body := e.jwtBearer(t, e.sp, e.grantClaims(e.sp, token, purposeScope))
		wantError(t, status, body, http.StatusBadRequest, "invalid_grant")
	})
	t.Run("expired token", func(t *testing.T) {
		status, body := e.jwtBearer(t, e.sp, e.grantClaims(e.sp, e.mintExpired(t, wifi.msisdn, e.sp), purposeScope))
		wantError(t, status, body, http.StatusBadRequest, "invalid_grant")
	})
	t.Run("token minted for another client", func(t *testing.T) {
		other := e.client(grantJWTBearer)
		status, body := e.jwtBearer(t, e.sp, e.grantClaims(e.sp, e.mint(t, wifi.msisdn, other), purposeScope))
		wantError(t, status, body, http.StatusBadRequest, "invalid_grant")
	})
	t.Run("replayed assertion jti", func(t *testing.T) {
		fresh := e.mint(t, wifi.msisdn, e.sp)
		claims := e.grantClaims(e.sp, e.mint(t, wifi.msisdn, e.sp), purposeScope)
		if status, body := e.jwtBearer(t, e.sp, claims); status != http.StatusOK {
			t.Fatalf("first use: %d %v", status, body)
		}
		claims["sub"] = "operatortoken:" + fresh // a new token, the same jti
		status, body := e.jwtBearer(t, e.sp, claims)
		wantError(t, status, body, http.StatusBadRequest, "invalid_grant")
		if !strings.Contains(body["error_description"].(string), "jti") {
			t.Errorf("description %q does not name the jti", body["error_description"])
		}
		// The refused replay did not spend the new token.
		if status, body := e.jwtBearer(t, e.sp, e.grantClaims(e.sp, fresh, purposeScope)); status != http.StatusOK {
			t.Errorf("the token of a refused replay: %d %v", status, body)
		}
	})
	for _, c := range []struct {
		name, scope string
	}{
		{"missing purpose", "openid " + contract.ScopeVerify},
		{"two purposes", contract.Purpose + " dpv:Marketing " + contract.ScopeVerify},
		{"two purposes, prefixed", contract.Purpose + "#" + contract.ScopeVerify + " dpv:Marketing#" + contract.ScopeShare},
		{"purpose alone", contract.Purpose},
		{"no scope claim", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			fresh := e.mint(t, wifi.msisdn, e.sp)
			status, body := e.jwtBearer(t, e.sp, e.grantClaims(e.sp, fresh, c.scope))
			wantError(t, status, body, http.StatusBadRequest, "invalid_scope")
		})
	}
	t.Run("scope parameter sent", func(t *testing.T) {
		form := url.Values{"grant_type": {grantJWTBearer}, "scope": {purposeScope},
			"assertion": {signJWT(t, e.sp.key, e.sp.kid, e.grantClaims(e.sp, e.mint(t, wifi.msisdn, e.sp), purposeScope))}}
		status, body := postForm(t, e.srv.issuer+"/token", e.clientAuth(t, e.sp, form), "", "")
		wantError(t, status, body, http.StatusBadRequest, "invalid_request")
	})
	for _, c := range []struct {
		name   string
		mutate func(map[string]any)
	}{
		{"aud another server", func(c map[string]any) { c["aud"] = "https://other-as.example" }},
		{"aud two values", func(c map[string]any) { c["aud"] = []string{e.srv.issuer, "https://other-as.example"} }},
		{"lifetime over 300 s", func(c map[string]any) { c["exp"] = time.Now().Add(10 * time.Minute).Unix() }},
		{"expired", func(c map[string]any) {
			c["iat"], c["exp"] = time.Now().Add(-3*time.Minute).Unix(), time.Now().Add(-time.Minute).Unix()
		}},
		{"iss another client", func(c map[string]any) { c["iss"] = "someone-else" }},
		{"no jti", func(c map[string]any) { delete(c, "jti") }},
		{"sub a phone number", func(c map[string]any) { c["sub"] = "tel:" + wifi.msisdn }},
	} {
		t.Run(c.name, func(t *testing.T) {
			claims := e.grantClaims(e.sp, e.mint(t, wifi.msisdn, e.sp), purposeScope)
			c.mutate(claims)
			status, body := e.jwtBearer(t, e.sp, claims)
			wantError(t, status, body, http.StatusBadRequest, "invalid_grant")
		})
	}
	t.Run("aud the token endpoint", func(t *testing.T) {
		claims := e.grantClaims(e.sp, e.mint(t, wifi.msisdn, e.sp), purposeScope)
		claims["aud"] = e.srv.issuer + "/token"
		if status, body := e.jwtBearer(t, e.sp, claims); status != http.StatusOK {
			t.Errorf("%d %v", status, body)
		}
	})
	t.Run("signed by another key", func(t *testing.T) {
		impostor := e.client(grantJWTBearer)
		form := url.Values{"grant_type": {grantJWTBearer},
			"assertion": {signJWT(t, impostor.key, e.sp.kid, e.grantClaims(e.sp, e.mint(t, wifi.msisdn, e.sp), purposeScope))}}
		status, body := postForm(t, e.srv.issuer+"/token", e.clientAuth(t, e.sp, form), "", "")
		wantError(t, status, body, http.StatusBadRequest, "invalid_grant")
	})
	t.Run("client not allowed the grant", func(t *testing.T) {
		codeOnly := e.client()
		status, body := e.jwtBearer(t, codeOnly, e.grantClaims(codeOnly, e.mint(t, wifi.msisdn, codeOnly), purposeScope))
		wantError(t, status, body, http.StatusBadRequest, "unauthorized_client")
	})
	t.Run("no client authentication", func(t *testing.T) {
		form := url.Values{"grant_type": {grantJWTBearer}, "client_id": {e.sp.id},
			"assertion": {signJWT(t, e.sp.key, e.sp.kid, e.grantClaims(e.sp, e.mint(t, wifi.msisdn, e.sp), purposeScope))}}
		status, body := postForm(t, e.srv.issuer+"/token", form, "", "")
		wantError(t, status, body, http.StatusUnauthorized, "invalid_client")
	})
}

// Of 32 concurrent JWT-bearer exchanges of one operator token (each with
// its own assertion) exactly one gets a token.
func TestJWTBearerConcurrentRedemptions(t *testing.T) {
	e := newOperatorTokenEnv(t)
	wifi := newDetachedDevice()
	token := e.mint(t, wifi.msisdn, e.sp)
	forms := make([]url.Values, 32)
	for i := range forms {
		forms[i] = e.clientAuth(t, e.sp, url.Values{"grant_type": {grantJWTBearer},
			"assertion": {signJWT(t, e.sp.key, e.sp.kid, e.grantClaims(e.sp, token, purposeScope))}})
	}
	var ok, refused atomic.Int32
	var wg sync.WaitGroup
	start := make(chan struct{})
	for _, form := range forms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			status, body := postForm(t, e.srv.issuer+"/token", form, "", "")
			switch {
			case status == http.StatusOK:
				ok.Add(1)
			case status == http.StatusBadRequest && body["error"] == "invalid_grant":
				refused.Add(1)
			default:
				t.Errorf("%d %v", status, body)
			}
		}()
	}
	close(start)
	wg.Wait()
	if ok.Load() != 1 || refused.Load() != 31 {
		t.Errorf("%d tokens and %d invalid_grant, want 1 and 31", ok.Load(), refused.Load())
	}
}
