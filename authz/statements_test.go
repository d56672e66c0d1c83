package authz_test

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/numverify/numverify/authz/store"
)

// roundTripCounter counts statements and round trips (a batch is one).
type roundTripCounter struct{ statements, roundTrips atomic.Int64 }

func (c *roundTripCounter) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	c.statements.Add(1)
	c.roundTrips.Add(1)
	return ctx
}
func (*roundTripCounter) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}
func (c *roundTripCounter) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	c.roundTrips.Add(1)
	return ctx
}
func (c *roundTripCounter) TraceBatchQuery(context.Context, *pgx.Conn, pgx.TraceBatchQueryData) {
	c.statements.Add(1)
}
func (*roundTripCounter) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData) {}

// A login (authorize + token, client cached) costs what the notes say: 11
// statements in 4 round trips (resolver; code, PKCE and OIDC rows in one
// INSERT; BEGIN + one locking read; the writes, one per row found by its key,
// + COMMIT). Before the store pipelined its transactions it was 27
// statements in about 20 round trips.
func TestStatementsPerLogin(t *testing.T) {
	counter := &roundTripCounter{}
	srv := startServer(t, func(s *serverSetup) { s.tracer = counter })
	sp := srv.client(store.ClientSpec{})
	conf, _ := srv.oauthConfig(t, sp)
	d := srv.newDevice()
	spHTTP := &http.Client{Timeout: 10 * time.Second}
	if _, err := loadLogin(d, conf.Endpoint.AuthURL, conf.Endpoint.TokenURL, sp, spHTTP); err != nil {
		t.Fatal(err) // warms the client cache
	}
	statements, roundTrips := counter.statements.Load(), counter.roundTrips.Load()
	if _, err := loadLogin(d, conf.Endpoint.AuthURL, conf.Endpoint.TokenURL, sp, spHTTP); err != nil {
		t.Fatal(err)
	}
	gotStatements, gotRoundTrips := counter.statements.Load()-statements, counter.roundTrips.Load()-roundTrips
	if gotStatements != 11 || gotRoundTrips != 4 {
		t.Errorf("a login sent %d statements in %d round trips, want 11 in 4", gotStatements, gotRoundTrips)
	}
}
