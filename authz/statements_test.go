package authz_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/numverify/numverify/authz/store"
	"github.com/numverify/numverify/internal/pgtest"
)

// A login (authorize + token, client cached) costs what the notes say: 3
// statements in 2 round trips (the resolver; at /token synchronous_commit on
// and one statement recording the code's single use with the access token).
// /authorize writes nothing: the code carries its records (sealedcode.go).
// With one read and two writes of records it was 6 in 4; with the store's
// own transaction engine 11 in 4; before that, 27 in about 20.
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
	if gotStatements != 3 || gotRoundTrips != 2 {
		t.Errorf("a login sent %d statements in %d round trips, want 3 in 2", gotStatements, gotRoundTrips)
	}
}
