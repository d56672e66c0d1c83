package e2e

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/numverify/numverify/internal/testbed"
	"github.com/numverify/numverify/sim"
)

// camaraTokens are the tokens the CAMARA cases need, every one from a real
// silent login of the device (except the malformed ones). Tokens are
// single-use (NV 2.1.1): valid, verifyOnly and shareOnly serve only cases
// refused before the token is used (400, 403); a case answered 200 logs in
// afresh (login); used has answered one call already.
type camaraTokens struct {
	valid, verifyOnly, shareOnly, expired, tampered, used string

	login func(t *testing.T, scopes ...string) string
}

// TestCAMARAWithRealAuthorizationServer is issue 4's "same cases against the
// real authorization server and real Postgres, with tokens obtained through
// the silent login": the CAMARA test definitions' cases for verify and share,
// on /v2 and /v0, with the jwt-dir format (the default: validated offline
// with the shared key), the jwt format (signed, then encrypted to the
// resource server; validated offline with authz's public keys) and the
// opaque one (introspected by a resource-server client). Each format has its
// authorization server, a second one with a one-second access-token lifetime
// on the same issuer and database (for the expired token), and a resource
// server with no clock skew; one network server and one device on its own
// loopback address serve both.
func TestCAMARAWithRealAuthorizationServer(t *testing.T) {
	t.Parallel()
	s := testbed.NewStack(t, "")
	noSkew := []string{"--resource-clock-skew", "0s"}
	a := s.ServeApart(nil, noSkew, nil)
	sp := s.CreateClient("camara-sp")
	rs := s.CreateClient("camara-rs", "--can-read-phone-number")

	const number, other = "+33612300001", "+33612300002"
	d := s.Attach(a.Network, number, testbed.NthAddr(testbed.DevicePrefix(), 1))

	opaqueIssuer, _ := s.StartAuthz("", "", "--access-token-format", "opaque")
	opaqueAPI, _ := s.StartResource("", opaqueIssuer, append(noSkew, "--resource-token-format", "opaque",
		"--resource-introspection-client-id", rs.ID, "--resource-introspection-client-secret", rs.Secret)...)
	jwtShort, _ := s.StartAuthz("", a.Authz, "--access-token-lifetime", "10s")
	opaqueShort, _ := s.StartAuthz("", opaqueIssuer, "--access-token-format", "opaque", "--access-token-lifetime", "10s")
	nestedIssuer, _ := s.StartAuthz("", "", "--access-token-format", "jwt")
	nestedAPI, _ := s.StartResource("", nestedIssuer, append(noSkew, "--resource-token-format", "jwt")...)
	nestedShort, _ := s.StartAuthz("", nestedIssuer, "--access-token-format", "jwt", "--access-token-lifetime", "10s")

	formats := []struct {
		name          string
		issuer, short string // the authorization server, and its short-lived twin
		api           string // resource server base URL
		expiredV0     string // the v0 code for an expired token
	}{
		{name: "jwt-dir", issuer: a.Authz, short: jwtShort, api: a.Resource, expiredV0: "42"},
		{name: "jwt", issuer: nestedIssuer, short: nestedShort, api: nestedAPI, expiredV0: "42"},
		// Introspection says only "not active": the resource server cannot
		// tell expired from revoked or unknown, hence 41.
		{name: "opaque", issuer: opaqueIssuer, short: opaqueShort, api: opaqueAPI, expiredV0: "41"},
	}
	tokens := make([]camaraTokens, len(formats))
	var lastExpiry time.Time
	for i, f := range formats {
		both := testbed.NewSP(t, f.issuer, sp, "openid", testbed.ScopeVerify, testbed.ScopeShare)
		short := mustLogin(t, both.Via(t, f.short), d)
		if short.Expiry.After(lastExpiry) {
			lastExpiry = short.Expiry
		}
		valid := mustLogin(t, both, d).AccessToken
		mid := len(valid) / 2
		flip := "A"
		if valid[mid] == 'A' {
			flip = "B"
		}
		used := mustLogin(t, both, d).AccessToken
		if r, err := callAPI(&http.Client{Timeout: 10 * time.Second}, http.MethodPost, f.api+"/number-verification/v2/verify", used,
			str(`{"phoneNumber":"`+number+`"}`), nil); err != nil || r.Status != http.StatusOK {
			t.Fatalf("%s: the first use of a token: %v %+v", f.name, err, r)
		}
		tokens[i] = camaraTokens{
			used: used,
			login: func(t *testing.T, scopes ...string) string {
				return mustLogin(t, testbed.NewSP(t, f.issuer, sp, scopes...), d).AccessToken
			},
			valid:      valid,
			verifyOnly: mustLogin(t, testbed.NewSP(t, f.issuer, sp, "openid", testbed.ScopeVerify), d).AccessToken,
			shareOnly:  mustLogin(t, testbed.NewSP(t, f.issuer, sp, "openid", testbed.ScopeShare), d).AccessToken,
			expired:    short.AccessToken,
			tampered:   valid[:mid] + flip + valid[mid+1:],
		}
	}

	hash := sha(number)
	type verifyCase struct {
		name         string
		token        func(*testing.T, camaraTokens) string
		body         *string
		status       int
		code, orange string
		verified     any
	}
	valid := func(_ *testing.T, tk camaraTokens) string { return tk.valid }
	// fresh logs in for a case that uses its token up (200).
	fresh := func(scopes ...string) func(*testing.T, camaraTokens) string {
		return func(t *testing.T, tk camaraTokens) string {
			return tk.login(t, append([]string{"openid"}, scopes...)...)
		}
	}
	both := fresh(testbed.ScopeVerify, testbed.ScopeShare)
	numberBody := str(`{"phoneNumber":"` + number + `"}`)
	verifyCases := []verifyCase{
		{"match_true_plain", both, numberBody, 200, "", "", true},
		{"match_false_plain", both, str(`{"phoneNumber":"` + other + `"}`), 200, "", "", false},
		{"match_true_hashed_lower", both, str(`{"hashedPhoneNumber":"` + hash + `"}`), 200, "", "", true},
		{"match_true_hashed_upper", both, str(`{"hashedPhoneNumber":"` + strings.ToUpper(hash) + `"}`), 200, "", "", true},
		{"match_false_hashed_lower", both, str(`{"hashedPhoneNumber":"` + sha(other) + `"}`), 200, "", "", false},
		{"match_false_hashed_upper", both, str(`{"hashedPhoneNumber":"` + strings.ToUpper(sha(other)) + `"}`), 200, "", "", false},
		{"no_body", valid, nil, 400, "INVALID_ARGUMENT", "21", nil},
		{"empty_body", valid, str(""), 400, "INVALID_ARGUMENT", "21", nil},
		{"empty_object", valid, str(`{}`), 400, "INVALID_ARGUMENT", "23", nil},
		{"unknown_property", valid, str(`{"phoneNumber":"` + number + `","foo":"bar"}`), 400, "INVALID_ARGUMENT", "22", nil},
		{"both_properties", valid, str(`{"phoneNumber":"` + number + `","hashedPhoneNumber":"` + hash + `"}`), 400, "INVALID_ARGUMENT", "22", nil},
		{"pattern_letters", valid, str(`{"phoneNumber":"+12334foo22222"}`), 400, "INVALID_ARGUMENT", "24", nil},
		{"pattern_too_short", valid, str(`{"phoneNumber":"123"}`), 400, "INVALID_ARGUMENT", "24", nil},
		{"pattern_leading_zeros", valid, str(`{"phoneNumber":"+00012230304913849"}`), 400, "INVALID_ARGUMENT", "24", nil},
		{"hash_pattern_short", valid, str(`{"hashedPhoneNumber":"` + hash[:63] + `"}`), 400, "INVALID_ARGUMENT", "24", nil},
		{"no_authorization", func(*testing.T, camaraTokens) string { return "" }, numberBody, 401, "UNAUTHENTICATED", "40", nil},
		{"expired_token", func(_ *testing.T, tk camaraTokens) string { return tk.expired }, numberBody, 401, "UNAUTHENTICATED", "42", nil},
		{"invalid_token", func(*testing.T, camaraTokens) string { return "bm90LWEtdG9rZW4" }, numberBody, 401, "UNAUTHENTICATED", "41", nil},
		{"tampered_token", func(_ *testing.T, tk camaraTokens) string { return tk.tampered }, numberBody, 401, "UNAUTHENTICATED", "41", nil},
		{"missing_scope", func(_ *testing.T, tk camaraTokens) string { return tk.shareOnly }, numberBody, 403, "PERMISSION_DENIED", "50", nil},
		{"verify_only_token", fresh(testbed.ScopeVerify), numberBody, 200, "", "", true},
		{"token_already_used", func(_ *testing.T, tk camaraTokens) string { return tk.used }, numberBody, 401, "UNAUTHENTICATED", "41", nil},
	}
	type shareCase struct {
		name         string
		token        func(*testing.T, camaraTokens) string
		status       int
		code, orange string
	}
	shareCases := []shareCase{
		{"success", both, 200, "", ""},
		{"share_only_token", fresh(testbed.ScopeShare), 200, "", ""},
		{"token_already_used", func(_ *testing.T, tk camaraTokens) string { return tk.used }, 401, "UNAUTHENTICATED", "41"},
		{"no_authorization", func(*testing.T, camaraTokens) string { return "" }, 401, "UNAUTHENTICATED", "40"},
		{"expired_token", func(_ *testing.T, tk camaraTokens) string { return tk.expired }, 401, "UNAUTHENTICATED", "42"},
		{"invalid_token", func(*testing.T, camaraTokens) string { return "bm90LWEtdG9rZW4" }, 401, "UNAUTHENTICATED", "41"},
		{"tampered_token", func(_ *testing.T, tk camaraTokens) string { return tk.tampered }, 401, "UNAUTHENTICATED", "41"},
		{"missing_scope", func(_ *testing.T, tk camaraTokens) string { return tk.verifyOnly }, 403, "PERMISSION_DENIED", "50"},
	}

	hc := &http.Client{Timeout: 10 * time.Second}
	headers := map[string]string{"x-correlator": "camara-e2e-correlator"}
	// Two passes: every case but the expired token's while the short-lived
	// tokens live (the authorization server's minimum lifetime is 10 s), then
	// the expired ones.
	for _, expiredPass := range []bool{false, true} {
		if expiredPass {
			time.Sleep(time.Until(lastExpiry) + 1100*time.Millisecond) // exp is in whole seconds
		}
		for i, f := range formats {
			for _, edition := range []string{"v2", "v0"} {
				base := f.api + "/number-verification/" + edition
				orange := func(code, name string) string {
					if name == "expired_token" {
						return f.expiredV0
					}
					return code
				}
				for _, c := range verifyCases {
					if (c.name == "expired_token") != expiredPass {
						continue
					}
					t.Run(f.name+"/"+edition+"/verify/"+c.name, func(t *testing.T) {
						r, err := callAPI(hc, http.MethodPost, base+"/verify", c.token(t, tokens[i]), c.body, headers)
						if err != nil {
							t.Fatal(err)
						}
						checkCAMARA(t, r, c.status, c.code, orange(c.orange, c.name), edition == "v0")
						if c.verified != nil && r.JSON["devicePhoneNumberVerified"] != c.verified {
							t.Errorf("devicePhoneNumberVerified %v, want %v: %s", r.JSON["devicePhoneNumberVerified"], c.verified, r.Body)
						}
					})
				}
				for _, c := range shareCases {
					if (c.name == "expired_token") != expiredPass {
						continue
					}
					t.Run(f.name+"/"+edition+"/share/"+c.name, func(t *testing.T) {
						r, err := callAPI(hc, http.MethodGet, base+"/device-phone-number", c.token(t, tokens[i]), nil, headers)
						if err != nil {
							t.Fatal(err)
						}
						checkCAMARA(t, r, c.status, c.code, orange(c.orange, c.name), edition == "v0")
						if c.status == 200 && r.JSON["devicePhoneNumber"] != number {
							t.Errorf("devicePhoneNumber %v, want %s", r.JSON["devicePhoneNumber"], number)
						}
					})
				}
			}
		}
	}

	// Each resource server accepts its own format only: a token sealed
	// another way is an invalid token, whatever the number inside.
	t.Run("a_token_of_another_format_is_refused", func(t *testing.T) {
		for i, f := range formats {
			for _, g := range formats {
				if g.name == f.name {
					continue
				}
				token := tokens[i].login(t, "openid", testbed.ScopeVerify)
				r, err := callAPI(hc, http.MethodPost, g.api+"/number-verification/v2/verify", token,
					str(`{"phoneNumber":"`+number+`"}`), headers)
				if err != nil {
					t.Fatal(err)
				}
				if r.Status != http.StatusUnauthorized || r.field("code") != "UNAUTHENTICATED" {
					t.Errorf("a %s token at the %s resource server: %d %s, want 401 UNAUTHENTICATED", f.name, g.name, r.Status, r.Body)
				}
			}
		}
	})

	// The login itself: a device on Wi-Fi gets no token at all.
	t.Run("device_not_on_the_network", func(t *testing.T) {
		wifi := sim.NewDevice(testbed.NthAddr(testbed.DevicePrefix(), 250), "", 1)
		defer wifi.Close()
		_, err := testbed.NewSP(t, a.Authz, sp, "openid", testbed.ScopeVerify).Login(t.Context(), wifi)
		if kind := sim.ErrorKindOf(err); kind != "oauth access_denied" {
			t.Fatalf("got %s (%v), want access_denied", kind, err)
		}
	})
}

func checkCAMARA(t *testing.T, r *apiResponse, status int, code, orange string, v0 bool) {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status %d, want %d: %s", r.Status, status, r.Body)
	}
	if got := r.Header.Get("x-correlator"); got != "camara-e2e-correlator" {
		t.Errorf("x-correlator %q not echoed", got)
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type %q", ct)
	}
	if status == 200 {
		return
	}
	want := code
	if v0 {
		want = orange
	}
	if got := r.field("code"); got != want {
		t.Errorf("code %v, want %s: %s", got, want, r.Body)
	}
	if !v0 && r.field("status") != strconv.Itoa(status) {
		t.Errorf("ErrorInfo status %v, want %d", r.field("status"), status)
	}
	if status == 401 && !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "Bearer") {
		t.Errorf("WWW-Authenticate %q", r.Header.Get("WWW-Authenticate"))
	}
}
