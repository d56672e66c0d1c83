package store

import (
	"errors"
	"testing"
	"time"

	"github.com/ory/fosite"

	"github.com/numverify/numverify/internal/janitor"
)

// deleted sums what a purge deleted.
func deleted(results []janitor.Result) int64 {
	var n int64
	for _, r := range results {
		n += r.Deleted
	}
	return n
}

// A redeemed code stays, refused as used, for its own lifetime and then one
// access-token lifetime (a replay must find it to revoke what it issued);
// longer while a refresh token of its login lives; then it goes. The
// purger's clock moves; nothing waits.
func testPurgeKeepsRedeemedCodesForReplay(t *testing.T, f *fixture) {
	client, _ := f.createClient(t, spClientSpec())
	lifetimes := janitor.Lifetimes{AccessToken: 5 * time.Minute, ClockSkew: 30 * time.Second}
	now := time.Now()
	codeExpiry := now.Add(time.Minute) // the code lifetime
	for _, id := range []string{"plain", "offline"} {
		r := newRequest(client, id, "sub", "")
		r.Session.SetExpiresAt(fosite.AuthorizeCode, codeExpiry)
		r.Session.SetExpiresAt(fosite.RefreshToken, now.Add(24*time.Hour))
		if err := f.store.CreateAuthorizeCodeSession(f.ctx, id+"-code", r); err != nil {
			t.Fatal(err)
		}
		if err := f.store.InvalidateAuthorizeCodeSession(f.ctx, id+"-code"); err != nil {
			t.Fatal(err)
		}
		if id == "offline" {
			if err := f.store.CreateRefreshTokenSession(f.ctx, id+"-refresh", "", r); err != nil {
				t.Fatal(err)
			}
		}
	}
	replay := func(sig string) error {
		_, err := f.store.GetAuthorizeCodeSession(f.ctx, sig, emptySession())
		return err
	}
	purgeAt := func(at time.Time) {
		t.Helper()
		p := janitor.NewPurger(f.db.Pool, janitor.Tasks(lifetimes), janitor.WithClock(func() time.Time { return at }))
		if _, err := p.Once(f.ctx); err != nil {
			t.Fatal(err)
		}
	}
	for _, step := range []struct {
		name        string
		at          time.Time
		plain       error
		offline     error
		refreshLive bool
	}{
		{"within the code lifetime", now, fosite.ErrInvalidatedAuthorizeCode, fosite.ErrInvalidatedAuthorizeCode, true},
		{"expired, within an access token lifetime", codeExpiry.Add(lifetimes.AccessToken - time.Second), fosite.ErrInvalidatedAuthorizeCode, fosite.ErrInvalidatedAuthorizeCode, true},
		{"past both", codeExpiry.Add(lifetimes.AccessToken + time.Second), fosite.ErrNotFound, fosite.ErrInvalidatedAuthorizeCode, true},
		{"refresh token expired", now.Add(24*time.Hour + time.Second), fosite.ErrNotFound, fosite.ErrNotFound, false},
	} {
		purgeAt(step.at)
		if err := replay("plain-code"); !errors.Is(err, step.plain) {
			t.Errorf("%s: replayed code: %v, want %v", step.name, err, step.plain)
		}
		if err := replay("offline-code"); !errors.Is(err, step.offline) {
			t.Errorf("%s: replayed code of a login with a refresh token: %v, want %v", step.name, err, step.offline)
		}
		_, err := f.store.GetRefreshTokenSession(f.ctx, "offline-refresh", emptySession())
		if live := err == nil; live != step.refreshLive {
			t.Errorf("%s: refresh token: %v, want live %v", step.name, err, step.refreshLive)
		}
	}
}
