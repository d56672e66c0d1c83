package pg

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

// TestIsConnectionErrorOnlyForConnections: a *url.Error is a net.Error, and
// url.Parse returns one for whatever a client sent (audience=%00 was a 503);
// neither it nor a message that merely quotes a connection error is one.
func TestIsConnectionErrorOnlyForConnections(t *testing.T) {
	_, parseErr := url.Parse("\x00")
	var urlErr *url.Error
	if !errors.As(parseErr, &urlErr) {
		t.Fatalf("url.Parse: %T", parseErr)
	}
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"url.Parse of client input", fmt.Errorf("audience: %w", parseErr), false},
		{"url.Error of a refused dial", &url.Error{Op: "Get", URL: "http://x", Err: &net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}}, true},
		{"message quoting closed pool", errors.New("parse \"closed pool\": invalid"), false},
		{"message quoting conn closed", fmt.Errorf("bad value %q", "conn closed"), false},
		{"closed pool", fmt.Errorf("acquire: %w", errors.New("closed pool")), true},
		{"conn closed", fmt.Errorf("query: %w", pgconn.ErrConnClosed), true},
		{"dial refused", &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}, true},
		{"DNS", &net.DNSError{Err: "no such host", Name: "db"}, true},
		{"deadline", fmt.Errorf("acquire: %w", context.DeadlineExceeded), true},
		{"canceled by the client", fmt.Errorf("query: %w", context.Canceled), false},
		{"joined", errors.Join(errors.New("first"), errors.New("closed pool")), true},
		{"undefined column", &pgconn.PgError{Code: "42703"}, false},
		{"invalid byte sequence", &pgconn.PgError{Code: "22021"}, false},
		{"connection failure", &pgconn.PgError{Code: "08006"}, true},
	} {
		if got := IsConnectionError(tc.err); got != tc.want {
			t.Errorf("%s: IsConnectionError(%v) = %v, want %v", tc.name, tc.err, got, tc.want)
		}
	}
}
