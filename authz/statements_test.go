package authz_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

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

// The rows a login writes carry time-ordered keys (UUIDv7): the request ID
// of the used code and the access token, and the token's jti, which keys
// its single-use record at the resource server. Inserted in time order,
// they fill their indexes' right edge rather than pages all over them.
func TestLoginKeysAreTimeOrdered(t *testing.T) {
	srv := startServer(t)
	sp := srv.client(store.ClientSpec{})
	conf, _ := srv.oauthConfig(t, sp)
	d := srv.newDevice()
	spHTTP := &http.Client{Timeout: 10 * time.Second}
	for range 3 {
		if _, err := loadLogin(d, conf.Endpoint.AuthURL, conf.Endpoint.TokenURL, sp, spHTTP); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Millisecond) // the next millisecond at least
	}
	rows, err := srv.db.Pool.Query(context.Background(),
		`SELECT request_id, coalesce(jti, '') FROM oauth2_requests WHERE kind = 'access' ORDER BY requested_at`)
	if err != nil {
		t.Fatal(err)
	}
	type keys struct{ Request, JTI string }
	got, err := pgx.CollectRows(rows, pgx.RowToStructByPos[keys])
	if err != nil || len(got) != 3 {
		t.Fatalf("%d access token rows (%v), want 3", len(got), err)
	}
	for i, k := range got {
		for _, id := range []string{k.Request, k.JTI} {
			if u, err := uuid.Parse(id); err != nil || u.Version() != 7 {
				t.Errorf("row %d: key %q is not a UUIDv7 (%v)", i, id, err)
			}
		}
		if i > 0 && (k.Request <= got[i-1].Request || k.JTI <= got[i-1].JTI) {
			t.Errorf("row %d's keys %+v do not sort after row %d's %+v", i, k, i-1, got[i-1])
		}
	}
}
