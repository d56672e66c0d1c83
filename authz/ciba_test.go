package authz_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/numverify/numverify/internal/contract"
)

// bcAuthorize posts a CIBA authentication request for sp.
func (e *operatorTokenEnv) bcAuthorize(t *testing.T, sp testClient, params url.Values) (int, map[string]any) {
	t.Helper()
	return postForm(t, e.srv.issuer+"/bc-authorize", e.clientAuth(t, sp, params), "", "")
}

// poll asks /token for the tokens of authReqID.
func (e *operatorTokenEnv) poll(t *testing.T, sp testClient, authReqID string) (int, map[string]any) {
	t.Helper()
	form := url.Values{"grant_type": {grantCIBA}, "auth_req_id": {authReqID}}
	return postForm(t, e.srv.issuer+"/token", e.clientAuth(t, sp, form), "", "")
}

// started makes a CIBA request with a fresh operator token for msisdn.
func (e *operatorTokenEnv) started(t *testing.T, msisdn string) string {
	t.Helper()
	status, body := e.bcAuthorize(t, e.sp, url.Values{
		"login_hint": {"operatortoken:" + e.mint(t, msisdn, e.sp)}, "scope": {"openid " + purposeScope}})
	if status != http.StatusOK {
		t.Fatalf("bc-authorize: %d %v", status, body)
	}
	return body["auth_req_id"].(string)
}

// A device on Wi-Fi is verified through CIBA (poll mode): the request is
// pending until its decision is ready, a poll sooner than the interval is
// told to slow down, then the tokens come (once), and the resource server
// verifies the number.
func TestCIBAOperatorToken(t *testing.T) {
	e := newOperatorTokenEnv(t)
	wifi := newDetachedDevice()

	status, body := e.bcAuthorize(t, e.sp, url.Values{
		"login_hint": {"operatortoken:" + e.mint(t, wifi.msisdn, e.sp)}, "scope": {"openid " + purposeScope},
		"acr_values": {"urn:ignored"}, "binding_message": {"ignored"}})
	if status != http.StatusOK {
		t.Fatalf("bc-authorize: %d %v", status, body)
	}
	id, _ := body["auth_req_id"].(string)
	if len(id) < 43 || body["expires_in"] != float64(120) || body["interval"] != float64(2) {
		t.Fatalf("answer %v: want auth_req_id, expires_in 120, interval 2", body)
	}
	status, body = e.poll(t, e.sp, id)
	wantError(t, status, body, http.StatusBadRequest, "authorization_pending")
	status, body = e.poll(t, e.sp, id) // at once: sooner than the interval
	wantError(t, status, body, http.StatusBadRequest, "slow_down")

	e.clock.Advance(31 * time.Second) // the decision is ready
	status, body = e.poll(t, e.sp, id)
	if status != http.StatusOK {
		t.Fatalf("poll: %d %v", status, body)
	}
	claims := e.wantVerified(t, body, wifi.msisdn)
	rawID, _ := body["id_token"].(string)
	provider, err := oidc.NewProvider(context.Background(), e.srv.issuer)
	if err != nil {
		t.Fatal(err)
	}
	idToken, err := provider.Verifier(&oidc.Config{ClientID: e.sp.id, SupportedSigningAlgs: []string{"ES256"}}).Verify(context.Background(), rawID)
	if err != nil {
		t.Fatalf("ID token: %v", err)
	}
	if idToken.Subject != claims.Subject {
		t.Errorf("ID token sub %q, access token sub %q", idToken.Subject, claims.Subject)
	}

	e.clock.Advance(10 * time.Second)
	status, body = e.poll(t, e.sp, id)
	wantError(t, status, body, http.StatusBadRequest, "invalid_grant") // spent

	t.Run("interval grows after slow_down", func(t *testing.T) {
		id := e.started(t, wifi.msisdn)
		e.poll(t, e.sp, id)
		status, body := e.poll(t, e.sp, id)
		wantError(t, status, body, http.StatusBadRequest, "slow_down")
		e.clock.Advance(3 * time.Second) // past 2 s, not past 2 + 5 s
		status, body = e.poll(t, e.sp, id)
		wantError(t, status, body, http.StatusBadRequest, "slow_down")
	})
	t.Run("expired request", func(t *testing.T) {
		id := e.started(t, wifi.msisdn)
		e.clock.Advance(121 * time.Second)
		status, body := e.poll(t, e.sp, id)
		wantError(t, status, body, http.StatusBadRequest, "expired_token")
	})
	t.Run("another client's auth_req_id", func(t *testing.T) {
		id := e.started(t, wifi.msisdn)
		status, body := e.poll(t, e.client(grantCIBA), id)
		wantError(t, status, body, http.StatusBadRequest, "invalid_grant")
	})
	t.Run("unknown auth_req_id", func(t *testing.T) {
		status, body := e.poll(t, e.sp, randomString()+randomString())
		wantError(t, status, body, http.StatusBadRequest, "invalid_grant")
	})

	used := e.mint(t, wifi.msisdn, e.sp)
	if _, err := e.network.RedeemOperatorToken(context.Background(), used, e.sp.id); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name       string
		sp         testClient
		params     url.Values
		wantStatus int
		wantError  string
	}{
		{"same token a second time", e.sp, url.Values{"login_hint": {"operatortoken:" + used}, "scope": {purposeScope}}, 400, "unknown_user_id"},
		{"expired token", e.sp, url.Values{"login_hint": {"operatortoken:" + e.mintExpired(t, wifi.msisdn, e.sp)}, "scope": {purposeScope}}, 400, "unknown_user_id"},
		{"token minted for another client", e.sp, url.Values{"login_hint": {"operatortoken:" + e.mint(t, wifi.msisdn, e.client())}, "scope": {purposeScope}}, 400, "unknown_user_id"},
		{"unknown token", e.sp, url.Values{"login_hint": {"operatortoken:" + randomString()}, "scope": {purposeScope}}, 400, "unknown_user_id"},
		{"missing purpose", e.sp, url.Values{"login_hint": {"operatortoken:" + e.mint(t, wifi.msisdn, e.sp)}, "scope": {"openid " + contract.ScopeVerify}}, 400, "invalid_scope"},
		{"two purposes", e.sp, url.Values{"login_hint": {"operatortoken:" + e.mint(t, wifi.msisdn, e.sp)}, "scope": {purposeScope + " dpv:Marketing"}}, 400, "invalid_scope"},
		{"no scope", e.sp, url.Values{"login_hint": {"operatortoken:" + e.mint(t, wifi.msisdn, e.sp)}}, 400, "invalid_scope"},
		{"no login_hint", e.sp, url.Values{"scope": {purposeScope}}, 400, "invalid_request"},
		{"login_hint_token", e.sp, url.Values{"login_hint_token": {"x"}, "login_hint": {"operatortoken:" + e.mint(t, wifi.msisdn, e.sp)}, "scope": {purposeScope}}, 400, "invalid_request"},
		{"tel: login_hint", e.sp, url.Values{"login_hint": {"tel:" + wifi.msisdn}, "scope": {purposeScope}}, 403, "access_denied"},
		{"client not allowed the grant", e.client(grantJWTBearer), url.Values{"login_hint": {"operatortoken:x"}, "scope": {purposeScope}}, 400, "unauthorized_client"},
	} {
		t.Run(c.name, func(t *testing.T) {
			status, body := e.bcAuthorize(t, c.sp, c.params)
			wantError(t, status, body, c.wantStatus, c.wantError)
		})
	}
	t.Run("no client authentication", func(t *testing.T) {
		status, body := postForm(t, e.srv.issuer+"/bc-authorize", url.Values{"client_id": {e.sp.id},
			"login_hint": {"operatortoken:" + e.mint(t, wifi.msisdn, e.sp)}, "scope": {purposeScope}}, "", "")
		wantError(t, status, body, http.StatusUnauthorized, "invalid_client")
	})
}

// A signed authentication request (CIBA Core §7.1.1, required by ICM) is
// accepted once; its parameters come from the object only.
func TestCIBASignedRequest(t *testing.T) {
	e := newOperatorTokenEnv(t)
	wifi := newDetachedDevice()
	object := func(aud string, mutate func(map[string]any)) (string, map[string]any) {
		now := time.Now()
		claims := map[string]any{"iss": e.sp.id, "aud": aud, "iat": now.Unix(), "nbf": now.Unix(),
			"exp": now.Add(time.Minute).Unix(), "jti": randomString(),
			"login_hint": "operatortoken:" + e.mint(t, wifi.msisdn, e.sp), "scope": "openid " + purposeScope}
		if mutate != nil {
			mutate(claims)
		}
		return signJWT(t, e.sp.key, e.sp.kid, claims), claims
	}
	signed, _ := object(e.srv.issuer+"/bc-authorize", nil)
	status, body := e.bcAuthorize(t, e.sp, url.Values{"request": {signed}})
	if status != http.StatusOK || body["auth_req_id"] == nil {
		t.Fatalf("signed request: %d %v", status, body)
	}
	e.clock.Advance(31 * time.Second)
	status, body = e.poll(t, e.sp, body["auth_req_id"].(string))
	if status != http.StatusOK {
		t.Fatalf("poll: %d %v", status, body)
	}
	e.wantVerified(t, body, wifi.msisdn)

	for _, c := range []struct {
		name   string
		params func() url.Values
	}{
		{"replayed", func() url.Values { return url.Values{"request": {signed}} }},
		{"another audience", func() url.Values {
			r, _ := object("https://other-as.example", nil)
			return url.Values{"request": {r}}
		}},
		{"lifetime over 300 s", func() url.Values {
			r, _ := object(e.srv.issuer, func(c map[string]any) { c["exp"] = time.Now().Add(10 * time.Minute).Unix() })
			return url.Values{"request": {r}}
		}},
		{"plain parameter differs", func() url.Values {
			r, _ := object(e.srv.issuer, nil)
			return url.Values{"request": {r}, "scope": {purposeScope + " " + contract.ScopeShare}}
		}},
		{"signed by another key", func() url.Values {
			other := e.client(grantCIBA)
			return url.Values{"request": {signJWT(t, other.key, e.sp.kid, map[string]any{"iss": e.sp.id, "aud": e.srv.issuer,
				"iat": time.Now().Unix(), "exp": time.Now().Add(time.Minute).Unix(), "jti": randomString(),
				"login_hint": "operatortoken:x", "scope": purposeScope})}}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			status, body := e.bcAuthorize(t, e.sp, c.params())
			wantError(t, status, body, http.StatusBadRequest, "invalid_request_object")
		})
	}
}

// A request the subscriber has not consented to is denied when polled
// (and a JWT-bearer exchange refused).
func TestCIBAAccessDenied(t *testing.T) {
	e := newOperatorTokenEnv(t, func(s *serverSetup) {
		s.consent = func(context.Context, string, string, []string) (bool, error) { return false, nil }
	})
	wifi := newDetachedDevice()
	id := e.started(t, wifi.msisdn)
	status, body := e.poll(t, e.sp, id)
	wantError(t, status, body, http.StatusBadRequest, "authorization_pending")
	e.clock.Advance(31 * time.Second)
	status, body = e.poll(t, e.sp, id)
	wantError(t, status, body, http.StatusBadRequest, "access_denied")

	status, body = e.jwtBearer(t, e.sp, e.grantClaims(e.sp, e.mint(t, wifi.msisdn, e.sp), purposeScope))
	wantError(t, status, body, http.StatusBadRequest, "invalid_grant")
}

// Discovery lists the grants and CIBA's metadata.
func TestDiscoveryOperatorTokenGrants(t *testing.T) {
	srv := startServer(t)
	doc := srv.discoveryDocument(t)
	for _, want := range []string{"authorization_code", grantJWTBearer, grantCIBA} {
		if !strings.Contains(toString(doc["grant_types_supported"]), `"`+want+`"`) {
			t.Errorf("grant_types_supported %v lacks %s", doc["grant_types_supported"], want)
		}
	}
	if doc["backchannel_authentication_endpoint"] != srv.issuer+"/bc-authorize" {
		t.Errorf("backchannel_authentication_endpoint %v", doc["backchannel_authentication_endpoint"])
	}
	if toString(doc["backchannel_token_delivery_modes_supported"]) != `["poll"]` {
		t.Errorf("backchannel_token_delivery_modes_supported %v", doc["backchannel_token_delivery_modes_supported"])
	}
	if !strings.Contains(toString(doc["backchannel_authentication_request_signing_alg_values_supported"]), "ES256") {
		t.Errorf("backchannel_authentication_request_signing_alg_values_supported %v", doc["backchannel_authentication_request_signing_alg_values_supported"])
	}
}

func toString(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
