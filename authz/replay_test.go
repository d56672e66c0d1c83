package authz_test

import (
	"context"
	"net/http"
	"net/url"
	"sync"
	"testing"

	"golang.org/x/oauth2"

	"github.com/numverify/numverify/authz/store"
	"github.com/numverify/numverify/internal/contract"
)

// resourceServer registers the client a resource server introspects with.
func (s *testServer) resourceServer(t testing.TB) testClient {
	return s.client(store.ClientSpec{Name: "resource server", RedirectURIs: []string{}, Scopes: []string{}, CanReadPhoneNumber: true})
}

func (s *testServer) introspect(t testing.TB, caller testClient, token string) map[string]any {
	t.Helper()
	status, body := postForm(t, s.issuer+"/introspect", url.Values{"token": {token}}, caller.id, caller.secret)
	if status != http.StatusOK {
		t.Fatalf("introspect: %d %v", status, body)
	}
	return body
}

func (s *testServer) revoked(t testing.TB, jti string) bool {
	t.Helper()
	var n int
	if err := s.db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM revoked_tokens WHERE jti = $1`, jti).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n == 1
}

func TestCodeUsedTwiceRevokesItsToken(t *testing.T) {
	srv := startServer(t)
	sp := srv.client(store.ClientSpec{})
	rs := srv.resourceServer(t)
	dev := srv.newDevice()
	ctx := context.Background()

	conf, code, verifier := srv.code(t, sp, dev)
	first, err := conf.Exchange(ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	claims, err := contract.Open(first.AccessToken, srv.openKey)
	if err != nil {
		t.Fatal(err)
	}
	if got := srv.introspect(t, rs, first.AccessToken); got["active"] != true || got["phone_number"] != dev.msisdn || got["jti"] != claims.ID {
		t.Fatalf("before the replay: %v", got)
	}
	if srv.revoked(t, claims.ID) {
		t.Fatal("revoked before the replay")
	}

	_, err = conf.Exchange(ctx, code, oauth2.VerifierOption(verifier))
	if e, status := tokenError(t, err); e != "invalid_grant" || status != http.StatusBadRequest {
		t.Fatalf("replay: %s %d, want invalid_grant 400", e, status)
	}
	if got := srv.introspect(t, rs, first.AccessToken); got["active"] != false {
		t.Errorf("after the replay the first token is still active: %v", got)
	}
	if !srv.revoked(t, claims.ID) {
		t.Error("the first token's jti is not in revoked_tokens")
	}
}

func TestConcurrentRedemptionsOfOneCode(t *testing.T) {
	srv := startServer(t)
	sp := srv.client(store.ClientSpec{})
	dev := srv.newDevice()
	conf, code, verifier := srv.code(t, sp, dev)

	const n = 32
	var wg sync.WaitGroup
	results := make(chan error, n)
	start := make(chan struct{})
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			_, err := conf.Exchange(context.Background(), code, oauth2.VerifierOption(verifier))
			results <- err
		}()
	}
	close(start)
	wg.Wait()
	close(results)
	won := 0
	for err := range results {
		if err == nil {
			won++
			continue
		}
		if e, _ := tokenError(t, err); e != "invalid_grant" {
			t.Errorf("loser: %s, want invalid_grant", e)
		}
	}
	if won != 1 {
		t.Fatalf("%d redemptions got a token, want exactly 1", won)
	}
	var tokens int
	if err := srv.db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM oauth2_requests WHERE kind = 'access'`).Scan(&tokens); err != nil {
		t.Fatal(err)
	}
	if tokens != 1 {
		t.Errorf("%d access-token records, want 1", tokens)
	}
}

func TestIntrospectionAndRevocation(t *testing.T) {
	srv := startServer(t)
	sp := srv.client(store.ClientSpec{})
	otherSP := srv.client(store.ClientSpec{RedirectURIs: []string{"https://other.example/callback"}})
	rs := srv.resourceServer(t)
	dev := srv.newDevice()
	token := srv.login(t, sp, dev, "ES256").token.AccessToken
	claims, _ := contract.Open(token, srv.openKey)

	own := srv.introspect(t, sp, token)
	if own["active"] != true || own["sub"] != claims.Subject || own["client_id"] != sp.id {
		t.Errorf("own token: %v", own)
	}
	if _, leaked := own["phone_number"]; leaked {
		t.Error("an SP was told the phone number")
	}
	if got := srv.introspect(t, otherSP, token); got["active"] != false || len(got) != 1 {
		t.Errorf("another SP's token: %v", got)
	}
	if got := srv.introspect(t, rs, token); got["phone_number"] != dev.msisdn {
		t.Errorf("resource server: %v", got)
	}
	if status, body := postForm(t, srv.issuer+"/introspect", url.Values{"token": {token}}, sp.id, "wrong"); status != http.StatusUnauthorized || body["error"] != "invalid_client" {
		t.Errorf("bad credentials: %d %v", status, body)
	}

	// userinfo: the pairwise subject, nothing else.
	req, _ := http.NewRequest(http.MethodGet, srv.issuer+"/userinfo", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("userinfo: %d", resp.StatusCode)
	}

	postForm(t, srv.issuer+"/revoke", url.Values{"token": {token}}, otherSP.id, otherSP.secret)
	if srv.introspect(t, rs, token)["active"] != true {
		t.Fatal("another client revoked the token")
	}
	if status, body := postForm(t, srv.issuer+"/revoke", url.Values{"token": {token}, "token_type_hint": {"access_token"}}, sp.id, sp.secret); status != http.StatusOK {
		t.Fatalf("revoke: %d %v", status, body)
	}
	if got := srv.introspect(t, rs, token); got["active"] != false {
		t.Errorf("revoked token still active: %v", got)
	}
	if !srv.revoked(t, claims.ID) {
		t.Error("revoked token not in revoked_tokens")
	}
}
