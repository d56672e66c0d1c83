package pg

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// A database closed to connections (ALTER DATABASE … ALLOW_CONNECTIONS
// false, as an operator does during maintenance) answers the connection
// with SQLSTATE 55000: an outage (503, temporarily_unavailable), not a
// refused statement (which made /authorize answer invalid_client and /token
// a 500). A write on a primary that has become a standby is one too.
func TestClosedDatabaseIsConnectionError(t *testing.T) {
	if !IsConnectionError(&pgconn.PgError{Code: "25006"}) {
		t.Error("read_only_sql_transaction (a demoted primary) is not a connection error")
	}
	if IsConnectionError(&pgconn.PgError{Code: "55000"}) {
		t.Error("55000 outside a connection attempt counted as a connection error")
	}
	serverURL := os.Getenv("DATABASE_URL")
	if serverURL == "" {
		serverURL = DefaultURL
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	u, err := url.Parse(serverURL)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/postgres" // the server's maintenance database
	admin, err := pgx.Connect(ctx, u.String())
	if err != nil {
		t.Fatalf("Postgres at DATABASE_URL's server: %v", err)
	}
	// Cleanups, not defers: they run after the function's defers, and last
	// registered first, so the drop below still has its connection (a
	// deferred Close ran before it, and every run left its database behind).
	t.Cleanup(func() { admin.Close(context.Background()) })
	name := fmt.Sprintf("numverify_pg_closed_%d", time.Now().UnixNano())
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := admin.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name); err != nil {
			t.Errorf("drop the test's database %s: %v", name, err)
		}
	})
	if _, err := admin.Exec(ctx, "ALTER DATABASE "+name+" ALLOW_CONNECTIONS false"); err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	_, err = Open(ctx, u.String(), Options{})
	if err == nil || !IsConnectionError(err) {
		t.Fatalf("Open on a database closed to connections: %v (connection error: %v)", err, IsConnectionError(err))
	}
}
