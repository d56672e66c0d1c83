package network

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/numverify/numverify/internal/testclock"
)

// An operator token is redeemed once, by its client, before it expires, and
// only its hash is stored.
func TestOperatorTokenRedemption(t *testing.T) {
	store, db := newTestStore(t, Pools{})
	now := time.Now().UTC()
	clock := testclock.New(now)
	store.ConfigureOperatorTokens(0, clock.Now)
	ctx := context.Background()

	token, expiresAt, err := store.MintOperatorToken(ctx, "+33612345678", "sp-1")
	if err != nil {
		t.Fatal(err)
	}
	if len(token) != 43 {
		t.Errorf("token of %d characters, want 43 (256 bits, base64url)", len(token))
	}
	if got := expiresAt.Sub(now); got < DefaultOperatorTokenLifetime-time.Millisecond || got > DefaultOperatorTokenLifetime+time.Millisecond {
		t.Errorf("expires %s after minting, want %s", got, DefaultOperatorTokenLifetime)
	}
	var stored int
	db.Pool.QueryRow(ctx, `SELECT count(*) FROM operator_tokens WHERE position(convert_to($1, 'UTF8') in token_hash) > 0 OR msisdn = $1`, token).Scan(&stored)
	if stored != 0 {
		t.Error("the token is stored in plain")
	}

	if _, err := store.RedeemOperatorToken(ctx, token, "sp-2"); !errors.Is(err, ErrOperatorTokenInvalid) {
		t.Errorf("another client's redemption: %v, want ErrOperatorTokenInvalid", err)
	}
	msisdn, err := store.RedeemOperatorToken(ctx, token, "sp-1")
	if err != nil || msisdn != "+33612345678" {
		t.Fatalf("redeem = %q, %v", msisdn, err)
	}
	if _, err := store.RedeemOperatorToken(ctx, token, "sp-1"); !errors.Is(err, ErrOperatorTokenInvalid) {
		t.Errorf("second redemption: %v, want ErrOperatorTokenInvalid", err)
	}

	expiring, _, err := store.MintOperatorToken(ctx, "+33612345679", "sp-1")
	if err != nil {
		t.Fatal(err)
	}
	clock.Advance(DefaultOperatorTokenLifetime)
	if _, err := store.RedeemOperatorToken(ctx, expiring, "sp-1"); !errors.Is(err, ErrOperatorTokenInvalid) {
		t.Errorf("expired redemption: %v, want ErrOperatorTokenInvalid", err)
	}
	for _, bad := range []string{"", strings.Repeat("a", 200), "not-a-token"} {
		if _, err := store.RedeemOperatorToken(ctx, bad, "sp-1"); !errors.Is(err, ErrOperatorTokenInvalid) {
			t.Errorf("redeem %q: %v, want ErrOperatorTokenInvalid", bad, err)
		}
	}
	for _, c := range []struct{ msisdn, client string }{{"0612345678", "sp"}, {"+33612345678", ""}, {"+33612345678", "a b"}} {
		if _, _, err := store.MintOperatorToken(ctx, c.msisdn, c.client); !errors.Is(err, ErrInvalid) {
			t.Errorf("mint(%q, %q): %v, want ErrInvalid", c.msisdn, c.client, err)
		}
	}
}

// Of 32 concurrent redemptions of one token exactly one gets the number.
func TestOperatorTokenConcurrentRedemptions(t *testing.T) {
	store, _ := newTestStore(t, Pools{})
	ctx := context.Background()
	token, _, err := store.MintOperatorToken(ctx, "+33612345678", "sp")
	if err != nil {
		t.Fatal(err)
	}
	var wins, losses atomic.Int32
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			_, err := store.RedeemOperatorToken(ctx, token, "sp")
			switch {
			case err == nil:
				wins.Add(1)
			case errors.Is(err, ErrOperatorTokenInvalid):
				losses.Add(1)
			default:
				t.Error(err)
			}
		}()
	}
	close(start)
	wg.Wait()
	if wins.Load() != 1 || losses.Load() != 31 {
		t.Errorf("%d redemptions won and %d lost, want 1 and 31", wins.Load(), losses.Load())
	}
}

// POST /operator-tokens mints a token a real entitlement server hands to the
// device; bearer-protected like the rest of the admin API.
func TestAdminMintOperatorToken(t *testing.T) {
	store, _ := newTestStore(t, Pools{})
	var logs bytes.Buffer
	baseURL := newTestAdmin(t, store, &logs)
	var minted operatorTokenAnswer
	for _, tt := range []apiCase{
		{name: "no token", method: "POST", path: "/operator-tokens", body: `{"msisdn":"+33612345678","client_id":"sp"}`, wantStatus: 401, wantError: "unauthenticated"},
		{name: "bad number", method: "POST", path: "/operator-tokens", token: testToken, body: `{"msisdn":"12","client_id":"sp"}`, wantStatus: 400, wantError: "invalid_argument"},
		{name: "no client", method: "POST", path: "/operator-tokens", token: testToken, body: `{"msisdn":"+33612345678"}`, wantStatus: 400, wantError: "invalid_argument"},
		{name: "unknown field", method: "POST", path: "/operator-tokens", token: testToken, body: `{"msisdn":"+33612345678","client_id":"sp","imsi":"1"}`, wantStatus: 400, wantError: "invalid_argument"},
		{name: "minted", method: "POST", path: "/operator-tokens", token: testToken, body: `{"msisdn":"+33612345678","client_id":"sp"}`, wantStatus: 201,
			check: func(t *testing.T, raw []byte) {
				if err := json.Unmarshal(raw, &minted); err != nil || minted.Token == "" || minted.ExpiresIn != 120 {
					t.Errorf("answer %s: want a token and expires_in 120", raw)
				}
			}},
	} {
		t.Run(tt.name, func(t *testing.T) { tt.run(t, baseURL) })
	}
	if msisdn, err := store.RedeemOperatorToken(context.Background(), minted.Token, "sp"); err != nil || msisdn != "+33612345678" {
		t.Errorf("redeem the minted token = %q, %v", msisdn, err)
	}
	if strings.Contains(logs.String(), "+3361") || (minted.Token != "" && strings.Contains(logs.String(), minted.Token)) {
		t.Errorf("the log holds a number or a token: %s", logs.String())
	}
}
