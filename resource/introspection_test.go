package resource

import (
	"context"
	"testing"
	"time"

	"github.com/numverify/numverify/internal/contract"
	"github.com/numverify/numverify/internal/testclock"
)

// TestOpaqueTokens: the opaque format is introspected (RFC 7662, client
// credentials), answers are cached no longer than the token lives, inactive
// and refresh tokens are refused, and an unreachable authorization server
// is a 503, not a 401 or a 500.
func TestOpaqueTokens(t *testing.T) {
	is := newTestIssuer(t)
	clock := &testclock.Offset{}
	ts := startServer(t, is, func(c *Config) { c.TokenFormat = FormatOpaque; c.Now = clock.Now })
	exp := time.Now().Add(time.Minute).Unix()
	active := introspectionResponse{Active: true, Scope: contract.ScopeVerify + " " + contract.ScopeShare, ClientID: testClientID,
		Exp: exp, Iat: time.Now().Unix(), Iss: is.issuer, Aud: audience{contract.DefaultAudience}, Jti: "opaque-jti-1",
		TokenUse: "access_token", PhoneNumber: testPhone, AMR: []string{contract.AMRNetwork}}
	fositeStyle := active
	fositeStyle.Jti, fositeStyle.PhoneNumber, fositeStyle.AMR, fositeStyle.Aud = "opaque-jti-2", "", nil, nil
	fositeStyle.Ext = &struct {
		PhoneNumber string   `json:"phone_number"`
		AMR         []string `json:"amr"`
	}{PhoneNumber: testPhone, AMR: []string{contract.AMRNetwork}}
	refresh := active
	refresh.TokenUse = "refresh_token"
	wrongAud := active
	wrongAud.Aud = audience{"https://other.example"}
	is.mu.Lock()
	is.opaque["ory_at_active"] = active
	is.opaque["ory_at_ext"] = fositeStyle
	is.opaque["ory_rt_refresh"] = refresh
	is.opaque["ory_at_wrongaud"] = wrongAud
	is.mu.Unlock()

	for token, want := range map[string]int{"ory_at_active": 200, "ory_at_ext": 200, "ory_rt_refresh": 401, "ory_at_unknown": 401, "ory_at_wrongaud": 401} {
		if r := ts.do(t, verifyCall(token)); r.status != want {
			t.Errorf("%s: %d, want %d: %s\n%s", token, r.status, want, r.body, ts.logs.String())
		}
	}
	hits := is.introHit.Load()
	for i := 0; i < 5; i++ {
		if r := ts.do(t, verifyCall("ory_at_active")); r.status != 200 {
			t.Fatalf("cached: %d", r.status)
		}
	}
	if is.introHit.Load() != hits {
		t.Errorf("cached answers still introspected: %d more calls", is.introHit.Load()-hits)
	}
	// Past the token's expiry the cache is not used: the server asks again
	// (and the authorization server now says inactive).
	clock.Advance(2 * time.Minute)
	is.mu.Lock()
	delete(is.opaque, "ory_at_active")
	is.mu.Unlock()
	if r := ts.do(t, verifyCall("ory_at_active")); r.status != 401 {
		t.Errorf("after expiry: %d", r.status)
	}
	if is.introHit.Load() == hits {
		t.Error("an expired cache entry was used")
	}
	// Revocations apply to introspected tokens too (by jti).
	clock.Advance(-2 * time.Minute)
	if err := contract.RecordRevocation(context.Background(), ts.db.Pool, "opaque-jti-2", time.Unix(exp, 0)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Second, "revocation of an opaque token", func() bool { return ts.do(t, verifyCall("ory_at_ext")).status == 401 })
	// The authorization server down: 503.
	is.down.Store(true)
	if r := ts.do(t, verifyCall("ory_at_new")); r.status != 503 || r.errorCode() != "UNAVAILABLE" {
		t.Errorf("introspection down: %d %s", r.status, r.body)
	}
}
