package authz_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/numverify/numverify/authz/store"
	"github.com/numverify/numverify/internal/pgtest"
)

// A login (authorize + token, client cached) costs what the notes say: 11
// statements in 4 round trips (resolver; code, PKCE and OIDC rows in one
// INSERT; BEGIN + one locking read; the writes, one per row found by its key,
// + COMMIT). Before the store pipelined its transactions it was 27
// statements in about 20 round trips.
func TestStatementsPerLogin(t *testing.T) {
	counter := &pgtest.Tracer{}
	srv := startServer(t, func(s *serverSetup) { s.tracer = counter })
	sp := srv.client(store.ClientSpec{})
	conf, _ := srv.oauthConfig(t, sp)
	d := srv.newDevice()
	spHTTP := &http.Client{Timeout: 10 * time.Second}
	if _, err := loadLogin(d, conf.Endpoint.AuthURL, conf.Endpoint.TokenURL, sp, spHTTP); err != nil {
		t.Fatal(err) // warms the client cache
	}
	statements, roundTrips := counter.Statements(), counter.RoundTrips()
	if _, err := loadLogin(d, conf.Endpoint.AuthURL, conf.Endpoint.TokenURL, sp, spHTTP); err != nil {
		t.Fatal(err)
	}
	gotStatements, gotRoundTrips := counter.Statements()-statements, counter.RoundTrips()-roundTrips
	if gotStatements != 11 || gotRoundTrips != 4 {
		t.Errorf("a login sent %d statements in %d round trips, want 11 in 4", gotStatements, gotRoundTrips)
	}
}
