package pg

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

func TestMapErrorAndConnectionErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want error
	}{
		{"no rows", pgx.ErrNoRows, ErrNotFound},
		{"unique", &pgconn.PgError{Code: "23505"}, ErrAlreadyExists},
		{"exclusion", &pgconn.PgError{Code: "23P01"}, ErrConflict},
		{"admin shutdown", &pgconn.PgError{Code: "57P01"}, ErrUnavailable},
		{"unexpected EOF mid-query", fmt.Errorf("read: %w", io.ErrUnexpectedEOF), ErrUnavailable},
	} {
		if got := MapError(tc.err); !errors.Is(got, tc.want) {
			t.Errorf("%s: MapError = %v, want %v", tc.name, got, tc.want)
		}
	}
	if IsConnectionError(&pgconn.PgError{Code: "22P02"}) {
		t.Error("a refused statement is not a connection error")
	}
	if IsConnectionError(nil) {
		t.Error("nil is not a connection error")
	}
}

func TestOpenRefusedPortIsConnectionError(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := Open(ctx, "postgres://postgres@127.0.0.1:1/x?sslmode=disable&connect_timeout=1", Options{})
	if err == nil || !IsConnectionError(err) {
		t.Fatalf("Open on a closed port: %v (connection error: %v)", err, IsConnectionError(err))
	}
}
