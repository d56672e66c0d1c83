package authz_test

import (
	"testing"

	"golang.org/x/oauth2"

	"github.com/numverify/numverify/authz/store"
)

// state is the client's value: any length is accepted and returned as sent
// (fosite's default refused fewer than 8 characters); it must be present.
func TestStateLength(t *testing.T) {
	srv := startServer(t)
	sp := srv.client(store.ClientSpec{})
	conf, _ := srv.oauthConfig(t, sp)
	for _, tc := range []struct {
		name, state string
		wantError   string
	}{
		{"one character", "x", ""},
		{"short", "abc", ""},
		{"seven characters", "1234567", ""},
		{"long", "state-" + randomString(), ""},
		{"missing", "", "invalid_state"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			verifier := oauth2.GenerateVerifier()
			q := srv.newDevice().authorize(t, conf.AuthCodeURL(tc.state, oauth2.S256ChallengeOption(verifier)), nil)
			if q.Get("error") != tc.wantError {
				t.Fatalf("error=%q (%s), want %q", q.Get("error"), q.Get("error_description"), tc.wantError)
			}
			if tc.wantError == "" && (q.Get("code") == "" || q.Get("state") != tc.state) {
				t.Fatalf("redirect %v, want a code and state %q", q, tc.state)
			}
		})
	}
}
