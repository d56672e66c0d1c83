package resource

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/numverify/numverify/internal/contract"
)

// tokenKinds are the tokens of the CAMARA test definitions, made by mint.
type tokenKinds struct {
	valid, expired, invalid, verifyOnly, shareOnly, notNetwork func() string
}

func nestedTokenKinds(is *testIssuer) tokenKinds {
	return tokenKinds{
		valid: func() string { return is.token(testPhone) },
		expired: func() string {
			c := is.claims(testPhone)
			c.IssuedAt = jwt.NewNumericDate(time.Now().Add(-time.Hour))
			c.Expiry = jwt.NewNumericDate(time.Now().Add(-10 * time.Minute))
			return is.nested(c)
		},
		invalid: func() string { return "bm90LWEtdG9rZW4" },
		verifyOnly: func() string {
			c := is.claims(testPhone)
			c.Scope = "openid dpv:FraudPreventionAndDetection#number-verification:verify"
			return is.nested(c)
		},
		shareOnly: func() string {
			c := is.claims(testPhone)
			c.Scope = "openid number-verification-share-read"
			return is.nested(c)
		},
		notNetwork: func() string {
			c := is.claims(testPhone)
			c.AMR = []string{contract.AMRPlayground}
			return is.nested(c)
		},
	}
}

func sha(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// TestCAMARACases runs the CAMARA test definitions' cases for verify and
// share on both editions, with tokens of the jwt format; every response also
// passes checkContract.
func TestCAMARACases(t *testing.T) {
	is := newTestIssuer(t)
	ts := startServer(t, is, nil)
	runCAMARACases(t, ts, nestedTokenKinds(is))
	// No number and no token ever reaches the log; the correlator does.
	logs := ts.logs.String()
	for _, secret := range []string{testPhone, otherPhone, strings.TrimPrefix(testPhone, "+"), sha(testPhone)[:16]} {
		if strings.Contains(logs, secret) {
			t.Errorf("the log carries %q", secret)
		}
	}
	if !strings.Contains(logs, "camara-case-correlator") {
		t.Errorf("the request log lines lack the x-correlator")
	}
}

func runCAMARACases(t *testing.T, ts *testServer, tokens tokenKinds) {
	for _, base := range []string{basePathV2, basePathV0} {
		orange := base == basePathV0
		verify := func(name, token string, body *string, wantStatus int, wantCode, wantOrange string, wantVerified any) {
			t.Helper()
			t.Run(strings.TrimPrefix(base, "/number-verification/")+"/verify/"+name, func(t *testing.T) {
				r := ts.do(t, call{method: http.MethodPost, path: base + "/verify", token: token, body: body,
					headers: map[string]string{"x-correlator": "camara-case-correlator"}})
				checkCase(t, r, wantStatus, wantCode, wantOrange, orange)
				if wantVerified != nil && r.field("devicePhoneNumberVerified") != wantVerified {
					t.Errorf("devicePhoneNumberVerified = %v, want %v (%s)", r.field("devicePhoneNumberVerified"), wantVerified, r.body)
				}
			})
		}
		v := tokens.valid
		verify("match_true_plain", v(), str(`{"phoneNumber":"`+testPhone+`"}`), 200, "", "", true)
		verify("match_false_plain", v(), str(`{"phoneNumber":"`+otherPhone+`"}`), 200, "", "", false)
		verify("match_true_hashed_lower", v(), str(`{"hashedPhoneNumber":"`+sha(testPhone)+`"}`), 200, "", "", true)
		verify("match_true_hashed_upper", v(), str(`{"hashedPhoneNumber":"`+strings.ToUpper(sha(testPhone))+`"}`), 200, "", "", true)
		verify("match_false_hashed_lower", v(), str(`{"hashedPhoneNumber":"`+sha(otherPhone)+`"}`), 200, "", "", false)
		verify("match_false_hashed_upper", v(), str(`{"hashedPhoneNumber":"`+strings.ToUpper(sha(otherPhone))+`"}`), 200, "", "", false)
		verify("no_body", v(), nil, 400, "INVALID_ARGUMENT", "21", nil)
		verify("empty_body", v(), str(""), 400, "INVALID_ARGUMENT", "21", nil)
		verify("empty_object", v(), str(`{}`), 400, "INVALID_ARGUMENT", "23", nil)
		verify("unknown_property", v(), str(`{"phoneNumber":"`+testPhone+`","foo":"bar"}`), 400, "INVALID_ARGUMENT", "22", nil)
		verify("only_unknown_property", v(), str(`{"msisdn":"`+testPhone+`"}`), 400, "INVALID_ARGUMENT", "22", nil)
		verify("both_properties", v(), str(`{"phoneNumber":"`+testPhone+`","hashedPhoneNumber":"`+sha(testPhone)+`"}`), 400, "INVALID_ARGUMENT", "22", nil)
		bad := []string{"string_value", "+12334foo22222", "+00012230304913849", "123", "++49565456787", "+3361", "+336123456789012345"}
		if !orange {
			bad = append(bad, "1234567890") // v0 numbers may omit the '+'
		}
		for _, number := range bad {
			verify("pattern_"+number, v(), str(`{"phoneNumber":"`+number+`"}`), 400, "INVALID_ARGUMENT", "24", nil)
		}
		verify("hash_pattern_short", v(), str(`{"hashedPhoneNumber":"`+sha(testPhone)[:63]+`"}`), 400, "INVALID_ARGUMENT", "24", nil)
		verify("hash_pattern_not_hex", v(), str(`{"hashedPhoneNumber":"`+strings.Repeat("g", 64)+`"}`), 400, "INVALID_ARGUMENT", "24", nil)
		body := str(`{"phoneNumber":"` + testPhone + `"}`)
		verify("no_authorization", "", body, 401, "UNAUTHENTICATED", "40", nil)
		verify("expired_token", tokens.expired(), body, 401, "UNAUTHENTICATED", "42", nil)
		verify("invalid_token", tokens.invalid(), body, 401, "UNAUTHENTICATED", "41", nil)
		verify("missing_scope", tokens.shareOnly(), body, 403, "PERMISSION_DENIED", "50", nil)
		verify("not_network_authenticated", tokens.notNetwork(), body, 403, "NUMBER_VERIFICATION.USER_NOT_AUTHENTICATED_BY_MOBILE_NETWORK", "52", nil)

		share := func(name, token string, wantStatus int, wantCode, wantOrange string) {
			t.Helper()
			t.Run(strings.TrimPrefix(base, "/number-verification/")+"/share/"+name, func(t *testing.T) {
				r := ts.do(t, call{method: http.MethodGet, path: base + "/device-phone-number", token: token,
					headers: map[string]string{"x-correlator": "camara-case-correlator"}})
				checkCase(t, r, wantStatus, wantCode, wantOrange, orange)
				if wantStatus == 200 && r.field("devicePhoneNumber") != testPhone {
					t.Errorf("devicePhoneNumber = %v, want %s", r.field("devicePhoneNumber"), testPhone)
				}
			})
		}
		share("success", v(), 200, "", "")
		share("no_authorization", "", 401, "UNAUTHENTICATED", "40")
		share("expired_token", tokens.expired(), 401, "UNAUTHENTICATED", "42")
		share("invalid_token", tokens.invalid(), 401, "UNAUTHENTICATED", "41")
		share("missing_scope", tokens.verifyOnly(), 403, "PERMISSION_DENIED", "50")
		share("not_network_authenticated", tokens.notNetwork(), 403, "NUMBER_VERIFICATION.USER_NOT_AUTHENTICATED_BY_MOBILE_NETWORK", "52")
	}
}

func checkCase(t *testing.T, r *response, wantStatus int, wantCode, wantOrange string, orange bool) {
	t.Helper()
	if r.status != wantStatus {
		t.Fatalf("status %d, want %d: %s", r.status, wantStatus, r.body)
	}
	if got := r.header.Get("x-correlator"); got != "camara-case-correlator" {
		t.Errorf("x-correlator %q not echoed", got)
	}
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type %q", ct)
	}
	if wantStatus == 200 {
		return
	}
	want := wantCode
	if orange {
		want = wantOrange
	}
	if got := r.errorCode(); got != want {
		t.Errorf("code %s, want %s: %s", got, want, r.body)
	}
	if !orange {
		switch wantStatus {
		case 401:
			if r.field("message") != "Request not authenticated due to missing, invalid, or expired credentials. A new authentication is required." {
				t.Errorf("401 message %v", r.field("message"))
			}
		case 403:
			if wantCode == "PERMISSION_DENIED" && r.field("message") != "Client does not have sufficient permissions to perform this action." {
				t.Errorf("403 message %v", r.field("message"))
			}
		}
	}
	if wantStatus == 401 {
		challenge := r.header.Get("WWW-Authenticate")
		if !strings.HasPrefix(challenge, "Bearer ") {
			t.Errorf("WWW-Authenticate %q", challenge)
		}
		if wantCode != "" && (wantOrange == "41" || wantOrange == "42") && !strings.Contains(challenge, `error="invalid_token"`) {
			t.Errorf("WWW-Authenticate %q lacks error=\"invalid_token\"", challenge)
		}
	}
}
