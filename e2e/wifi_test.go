package e2e

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/numverify/numverify/internal/testbed"
	"github.com/numverify/numverify/network"
	"github.com/numverify/numverify/sim"
)

// A phone on Wi-Fi (an address no session holds) over real listeners:
// `numverify network sim add` provisions its SIM, `numverify device --wifi`
// gets an operator token by EAP-AKA from the real entitlement server, and
// the SP backend redeems operator tokens by JWT-bearer and by CIBA at the
// real authorization server; the resource server verifies the number. Every
// documented refusal, and 32 concurrent redemptions of one token.
func TestWiFiOperatorToken(t *testing.T) {
	s := testbed.NewStack(t, "")
	entitlementPort := testbed.FreePorts(t, 1)[0]
	sv := s.Serve("--entitlement-addr", "127.0.0.1:"+entitlementPort)
	entitlementURL := "http://127.0.0.1:" + entitlementPort + "/"
	testbed.WaitHealthy(t, sv.Proc, entitlementURL+"readyz")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	sp, key, keyFile := wifiClient(t, s, "wifi-sp")
	other, _, _ := wifiClient(t, s, "other-sp")
	const msisdn = "+33611223344"
	provisioned := simAdd(t, s, "208011234567890", msisdn)
	wifiAddr := testbed.NthAddr(testbed.DevicePrefix(), 9) // no session ever holds it
	rp, err := sim.NewRelyingParty(ctx, sim.RPConfig{Issuer: sv.Authz, ClientID: sp, ClientKey: key,
		RedirectURL: wifiRedirectURI, APIURL: sv.API("v2")})
	if err != nil {
		t.Fatal(err)
	}
	phone := &sim.WiFiDevice{SIM: provisioned, EntitlementURL: entitlementURL, LocalAddr: wifiAddr}
	acquire := func(t *testing.T) string {
		t.Helper()
		token, err := phone.AcquireOperatorToken(ctx, sp, "")
		if err != nil {
			t.Fatalf("operator token: %v", err)
		}
		return token.Token
	}
	verified := func(t *testing.T, tokens *sim.Tokens, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("redeem: %v", err)
		}
		if ok, err := rp.Verify(ctx, tokens.AccessToken, msisdn, false); err != nil || !ok {
			t.Fatalf("verify with the operator token's access token: %v %v", ok, err)
		}
	}

	t.Run("off the mobile network the silent login is refused", func(t *testing.T) {
		u := sv.Authz + "/authorize?" + url.Values{"response_type": {"code"}, "client_id": {sp}, "redirect_uri": {wifiRedirectURI},
			"scope": {"openid " + testbed.ScopeVerify}, "state": {"st4te-wifi"}, "nonce": {"n0nce-wifi"}, "code_challenge_method": {"S256"},
			"code_challenge": {"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"}, "prompt": {"none"}}.Encode()
		device := sim.NewDevice(wifiAddr, "", 0)
		defer device.Close()
		if out, err := device.Authorize(ctx, u); err != nil || out.Error != "access_denied" {
			t.Fatalf("authorize from %s: %+v %v, want access_denied", wifiAddr, out, err)
		}
	})
	t.Run("device --wifi, then JWT-bearer with the assertions of sp assert", func(t *testing.T) {
		var report struct {
			LoginHint string `json:"login_hint"`
			SQN       uint64 `json:"sqn"`
		}
		out := s.Run("device", "--wifi", "--entitlement-url", entitlementURL, "--ip", wifiAddr.String(), "--imsi", provisioned.IMSI,
			"--k", hexOf(provisioned.K), "--opc", hexOf(provisioned.OPc), "--client-id", sp, "--json")
		if err := json.Unmarshal([]byte(out), &report); err != nil || !strings.HasPrefix(report.LoginHint, "operatortoken:") || report.SQN == 0 {
			t.Fatalf("device --wifi printed %q: %v", out, err)
		}
		phone.SIM.SQN = report.SQN // the SIM moved on
		grant := strings.TrimSpace(s.Run("sp", "assert", "--key", keyFile, "--client-id", sp, "--issuer", sv.Authz,
			"--operator-token", report.LoginHint))
		client := strings.TrimSpace(s.Run("sp", "assert", "--key", keyFile, "--client-id", sp, "--issuer", sv.Authz))
		status, body := postTokenForm(t, sv.Authz, url.Values{"grant_type": {sim.GrantTypeJWTBearer}, "assertion": {grant},
			"client_assertion_type": {sim.ClientAssertionType}, "client_assertion": {client}})
		if status != http.StatusOK || body["refresh_token"] != nil || body["id_token"] != nil {
			t.Fatalf("JWT-bearer: %d %v", status, body)
		}
		at, _ := body["access_token"].(string)
		if ok, err := rp.Verify(ctx, at, msisdn, false); err != nil || !ok {
			t.Fatalf("verify: %v %v", ok, err)
		}
	})
	t.Run("CIBA poll", func(t *testing.T) {
		tokens, err := rp.CIBA(ctx, acquire(t), "")
		if err == nil && (tokens.Subject == "" || tokens.Subject == msisdn || !strings.Contains(strings.Join(tokens.AMR, " "), "sim")) {
			t.Errorf("ID token sub %q amr %v: want a pseudonym and amr sim", tokens.Subject, tokens.AMR)
		}
		verified(t, tokens, err)
	})

	used := acquire(t)
	tokens, err := rp.JWTBearer(ctx, used, "")
	verified(t, tokens, err)
	expired := mintExpired(t, ctx, s.DatabaseURL, msisdn, sp)
	othersToken := mintOnAdminAPI(t, s, sv.Network, msisdn, other)
	for _, c := range []struct {
		name, token, scope, wantJWT, wantCIBA string
	}{
		{"the same token a second time", used, "", "invalid_grant", "unknown_user_id"},
		{"an expired token", expired, "", "invalid_grant", "unknown_user_id"},
		{"a token minted for another client", othersToken, "", "invalid_grant", "unknown_user_id"},
		{"a missing purpose", "", "number-verification:verify", "invalid_scope", "invalid_scope"},
		{"two purposes", "", "dpv:FraudPreventionAndDetection dpv:Marketing number-verification:verify", "invalid_scope", "invalid_scope"},
	} {
		t.Run(c.name, func(t *testing.T) {
			token := c.token
			if token == "" {
				token = acquire(t)
			}
			_, err := rp.JWTBearer(ctx, token, c.scope)
			wantOAuthError(t, "JWT-bearer", err, c.wantJWT)
			if c.token == "" {
				token = acquire(t)
			}
			_, err = rp.CIBA(ctx, token, c.scope)
			wantOAuthError(t, "CIBA", err, c.wantCIBA)
		})
	}
	t.Run("a replayed assertion jti", func(t *testing.T) {
		assertion := func(token string) string {
			now := time.Now()
			a, err := key.Sign(map[string]any{"iss": sp, "sub": "operatortoken:" + token, "aud": sv.Authz, "iat": now.Unix(),
				"exp": now.Add(time.Minute).Unix(), "jti": "replayed-jti-" + sp, "scope": sim.OperatorTokenScope})
			if err != nil {
				t.Fatal(err)
			}
			return a
		}
		if _, err := rp.TokenRequest(ctx, url.Values{"grant_type": {sim.GrantTypeJWTBearer}, "assertion": {assertion(acquire(t))}}); err != nil {
			t.Fatalf("first use of the jti: %v", err)
		}
		fresh := acquire(t)
		_, err := rp.TokenRequest(ctx, url.Values{"grant_type": {sim.GrantTypeJWTBearer}, "assertion": {assertion(fresh)}})
		wantOAuthError(t, "replayed jti", err, "invalid_grant")
		tokens, err := rp.JWTBearer(ctx, fresh, "") // refused for the jti: the token is still unspent
		verified(t, tokens, err)
	})
	t.Run("a wrong RES (a SIM with another K)", func(t *testing.T) {
		wrong := *provisioned
		wrong.K = bytes.Repeat([]byte{0x5a}, 16)
		device := &sim.WiFiDevice{SIM: &wrong, EntitlementURL: entitlementURL, LocalAddr: wifiAddr}
		if _, err := device.AcquireOperatorToken(ctx, sp, ""); !errors.Is(err, sim.ErrEntitlementRefused) {
			t.Fatalf("another K: %v, want the entitlement server's EAP-Failure", err)
		}
		out, code := runExit(t, s, "device", "--wifi", "--entitlement-url", entitlementURL, "--ip", wifiAddr.String(), "--imsi", provisioned.IMSI,
			"--k", hexOf(wrong.K), "--opc", hexOf(provisioned.OPc), "--client-id", sp)
		if code == 0 || !strings.Contains(out, "refused") || strings.Contains(out, "operatortoken:") {
			t.Fatalf("device --wifi with another K: exit %d: %s", code, out)
		}
	})
	t.Run("a CIBA poll faster than interval", func(t *testing.T) {
		var started struct {
			AuthReqID string `json:"auth_req_id"`
			Interval  int    `json:"interval"`
		}
		auth, _ := key.ClientAuth(sp, sv.Authz)
		form := url.Values{"login_hint": {"operatortoken:" + acquire(t)}, "scope": {"openid " + sim.OperatorTokenScope}}
		for k, v := range auth {
			form.Set(k, v)
		}
		resp, err := http.PostForm(sv.Authz+"/bc-authorize", form)
		if err != nil {
			t.Fatal(err)
		}
		err = json.NewDecoder(resp.Body).Decode(&started)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || err != nil || started.AuthReqID == "" || started.Interval < 1 {
			t.Fatalf("bc-authorize: %d %+v %v", resp.StatusCode, started, err)
		}
		_, err = rp.PollCIBA(ctx, started.AuthReqID)
		wantOAuthError(t, "first poll, at once", err, "authorization_pending")
		_, err = rp.PollCIBA(ctx, started.AuthReqID)
		wantOAuthError(t, "second poll within the interval", err, "slow_down")
	})
	t.Run("32 concurrent redemptions of one token give one token", func(t *testing.T) {
		token := acquire(t)
		var wg sync.WaitGroup
		var mu sync.Mutex
		outcomes := map[string]int{}
		for range 32 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := rp.JWTBearer(ctx, token, "")
				outcome := "token"
				var apiErr *sim.APIError
				if errors.As(err, &apiErr) {
					outcome = apiErr.Code
				} else if err != nil {
					outcome = err.Error()
				}
				mu.Lock()
				outcomes[outcome]++
				mu.Unlock()
			}()
		}
		wg.Wait()
		if outcomes["token"] != 1 || outcomes["invalid_grant"] != 31 {
			t.Fatalf("outcomes %v: want 1 token and 31 invalid_grant", outcomes)
		}
	})
	t.Run("device --wifi hands the token to numverify sp", func(t *testing.T) {
		port := testbed.FreePorts(t, 1)[0]
		spProc := s.Start("sp", "--sp-addr", "127.0.0.1:"+port, "--sp-issuer", sv.Authz, "--sp-client-id", sp,
			"--sp-client-key", keyFile, "--sp-api-url", sv.API("v2"))
		testbed.WaitHealthy(t, spProc, "http://127.0.0.1:"+port+"/healthz")
		for _, flow := range []string{"jwt-bearer", "ciba"} {
			out := s.Run("device", "--wifi", "--entitlement-url", entitlementURL, "--ip", wifiAddr.String(), "--imsi", provisioned.IMSI,
				"--k", hexOf(provisioned.K), "--opc", hexOf(provisioned.OPc), "--sqn", "0", "--client-id", sp,
				"--sp-url", "http://127.0.0.1:"+port, "--phone-number", msisdn, "--flow", flow, "--json")
			var result sim.WiFiResult
			if err := json.Unmarshal([]byte(out), &result); err != nil || !result.Verified || result.Flow != flow {
				t.Fatalf("%s through the SP: %q %v", flow, out, err)
			}
		}
	})
}

// `numverify network sim add` refuses what is not a SIM and provisions one
// only once.
func TestNetworkSIMAddCLI(t *testing.T) {
	s := testbed.NewStack(t, "")
	provisioned := simAdd(t, s, "20801000000042", "+33600000042")
	if len(provisioned.K) != 16 || len(provisioned.OPc) != 16 {
		t.Fatalf("K %x OPc %x", provisioned.K, provisioned.OPc)
	}
	for _, c := range []struct {
		name string
		args []string
	}{
		{"again", []string{"--imsi", "20801000000042", "--msisdn", "+33600000042"}},
		{"no msisdn", []string{"--imsi", "20801000000043"}},
		{"bad imsi", []string{"--imsi", "2080x", "--msisdn", "+33600000043"}},
		{"short K", []string{"--imsi", "20801000000044", "--msisdn", "+33600000044", "--k", "00ff"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if out, code := runExit(t, s, append([]string{"network", "sim", "add"}, c.args...)...); code == 0 {
				t.Fatalf("exit 0: %s", out)
			}
		})
	}
}

// wifiRedirectURI is the redirect URI the SP clients here register.
const wifiRedirectURI = "http://localhost:8080/callback"

// wifiClient registers an SP for the operator-token grants with a fresh
// private_key_jwt key; it returns its id, key and the key's PEM file.
func wifiClient(t *testing.T, s *testbed.Stack, name string) (string, *sim.ClientKey, string) {
	t.Helper()
	key, err := sim.GenerateClientKey()
	if err != nil {
		t.Fatal(err)
	}
	pemKey, _ := key.PEM()
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "sp.pem")
	if err := os.WriteFile(keyFile, pemKey, 0o600); err != nil {
		t.Fatal(err)
	}
	jwks := s.Run("sp", "jwks", "--key", keyFile)
	if err := os.WriteFile(filepath.Join(dir, "sp.jwks.json"), []byte(jwks), 0o600); err != nil {
		t.Fatal(err)
	}
	out := s.Run("client", "create", "--name", name, "--redirect-uri", wifiRedirectURI, "--scope", "openid", "--scope", testbed.ScopeVerify, "--scope", "number-verification:verify",
		"--auth-method", "private_key_jwt", "--jwks-file", filepath.Join(dir, "sp.jwks.json"),
		"--grant", "authorization_code", "--grant", sim.GrantTypeJWTBearer, "--grant", sim.GrantTypeCIBA, "--json")
	var created struct {
		ID string `json:"client_id"`
	}
	if err := json.Unmarshal([]byte(out), &created); err != nil || created.ID == "" {
		t.Fatalf("client create printed %q: %v", out, err)
	}
	return created.ID, key, keyFile
}

// simAdd runs `numverify network sim add --json` and returns the SIM.
func simAdd(t *testing.T, s *testbed.Stack, imsi, msisdn string) *sim.SIM {
	t.Helper()
	var out struct {
		IMSI, MSISDN, K, OPc string
		EAPID                string `json:"eap_id"`
	}
	raw := s.Run("network", "sim", "add", "--imsi", imsi, "--msisdn", msisdn, "--json")
	if err := json.Unmarshal([]byte(raw), &out); err != nil || out.IMSI != imsi || out.MSISDN != msisdn || !strings.HasPrefix(out.EAPID, "0"+imsi+"@") {
		t.Fatalf("network sim add printed %q: %v", raw, err)
	}
	return &sim.SIM{IMSI: imsi, MNCDigits: 2, K: unhex(t, out.K), OPc: unhex(t, out.OPc)}
}

// runExit runs a command that may fail: its output and exit code.
func runExit(t *testing.T, s *testbed.Stack, args ...string) (string, int) {
	t.Helper()
	out, err := testbed.RunErr(t, s.Env, args...)
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return out, exit.ExitCode()
	}
	if err != nil {
		t.Fatal(err)
	}
	return out, 0
}

// mintOnAdminAPI mints a token as a real entitlement server does (POST
// /operator-tokens).
func mintOnAdminAPI(t *testing.T, s *testbed.Stack, networkURL, msisdn, clientID string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, networkURL+"/operator-tokens",
		strings.NewReader(`{"msisdn":"`+msisdn+`","client_id":"`+clientID+`"}`))
	req.Header.Set("Authorization", "Bearer "+s.AdminToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var answer struct {
		Token string `json:"token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&answer); err != nil || resp.StatusCode != http.StatusCreated || answer.Token == "" {
		t.Fatalf("POST /operator-tokens: %d %v", resp.StatusCode, err)
	}
	return answer.Token
}

// mintExpired mints a token whose two minutes ended a minute ago (the
// network store's clock set back three minutes).
func mintExpired(t *testing.T, ctx context.Context, dbURL, msisdn, clientID string) string {
	t.Helper()
	pool, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	store, err := network.NewStore(pool, network.Pools{})
	if err != nil {
		t.Fatal(err)
	}
	store.ConfigureOperatorTokens(0, func() time.Time { return time.Now().Add(-3 * time.Minute) })
	token, expires, err := store.MintOperatorToken(ctx, msisdn, clientID)
	if err != nil || !expires.Before(time.Now()) {
		t.Fatalf("mint an expired token: %v (expires %s)", err, expires)
	}
	return token
}

// postTokenForm posts form to /token and decodes the JSON answer.
func postTokenForm(t *testing.T, authz string, form url.Values) (int, map[string]any) {
	t.Helper()
	resp, err := http.PostForm(authz+"/token", form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body
}

// wantOAuthError checks an RFC 6749 §5.2 error (400).
func wantOAuthError(t *testing.T, what string, err error, code string) {
	t.Helper()
	var apiErr *sim.APIError
	if !errors.As(err, &apiErr) || apiErr.Status != http.StatusBadRequest || apiErr.Code != code {
		t.Errorf("%s: %v, want 400 %s", what, err, code)
	}
}

func hexOf(b []byte) string { return hex.EncodeToString(b) }

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
