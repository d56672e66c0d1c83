package main

import (
	"bytes"
	"context"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/numverify/numverify/internal/pgcluster"
	"github.com/numverify/numverify/internal/pgtest"
)

// TestDemo runs `numverify demo` in-process against the test Postgres server
// (DATABASE_URL, or the local one): every step must give its expected answer,
// and the transcript must say so without showing a number, secret or token.
func TestDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the three servers against Postgres")
	}
	server := pgtest.ServerURL(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out bytes.Buffer
	err := runDemo(ctx, server, &out, slog.New(slog.DiscardHandler))
	transcript := out.String()
	t.Log("\n" + transcript)
	if err != nil {
		t.Fatalf("demo failed: %v", err)
	}
	checkTranscript(t, transcript)
}

func checkTranscript(t *testing.T, transcript string) {
	t.Helper()
	for _, want := range []string{
		"All 37 steps gave the expected answer.",
		"Accounting-Request Start {Calling-Station-Id 33•••••••78",
		"Accounting-Response: session closed",
		"404: no session holds it",
		"401 UNAUTHENTICATED: a token answers one call (single-use)",
		"POST /token (private_key_jwt",
		"POST /token (jwt-bearer, assertion sub=operatortoken:",
		"400 invalid_grant: an operator token is redeemed once",
		"POST /bc-authorize (login_hint=operatortoken:",
		"(the same pseudonym as on mobile data), amr [sim]",
		"devicePhoneNumberVerified: true (expected true)",
		"devicePhoneNumberVerified: false (expected false)",
		"hashedPhoneNumber",
		"devicePhoneNumber: +33•••••••78 (expected +33•••••••78)",
		"with error=access_denied",
		"database numverify_demo_",
	} {
		if !strings.Contains(transcript, want) {
			t.Errorf("transcript lacks %q", want)
		}
	}
	// Digits alone: the gateway sends the number without '+'.
	for _, clear := range []string{"33612345678", "33698765432", "FAIL"} {
		if strings.Contains(transcript, clear) {
			t.Errorf("transcript contains %q", clear)
		}
	}
}

// TestDemoStartsItsOwnCluster: with nothing answering at DATABASE_URL and
// PostgreSQL's binaries present, the demo runs on a throwaway cluster.
func TestDemoStartsItsOwnCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("initdb takes seconds")
	}
	if _, err := pgcluster.FindBinaries(); err != nil {
		t.Skip(err)
	}
	port, err := pgcluster.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	closed := "postgres://postgres@127.0.0.1:" + strconv.Itoa(port) + "/numverify?sslmode=disable"
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var out bytes.Buffer
	err = runDemo(ctx, closed, &out, slog.New(slog.DiscardHandler))
	t.Log("\n" + out.String())
	if err != nil {
		t.Fatalf("demo failed: %v", err)
	}
	if !strings.Contains(out.String(), "a throwaway cluster") {
		t.Error("the transcript should say the demo used its own cluster")
	}
	checkTranscript(t, out.String())
}
