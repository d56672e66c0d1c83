package store

import (
	"context"
	"crypto/sha256"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/ory/fosite"

	"github.com/numverify/numverify/internal/contract"
	"github.com/numverify/numverify/internal/janitor"
)

// kindOps are the create/get/delete of one kind of request record.
type kindOps struct {
	kind   kind
	create func(ctx context.Context, s *Store, sig string, r fosite.Requester) error
	get    func(ctx context.Context, s *Store, sig string, session fosite.Session) (fosite.Requester, error)
	delete func(ctx context.Context, s *Store, sig string) error
}

var allKinds = []kindOps{
	{kindCode,
		func(ctx context.Context, s *Store, sig string, r fosite.Requester) error {
			return s.CreateAuthorizeCodeSession(ctx, sig, r)
		},
		func(ctx context.Context, s *Store, sig string, ss fosite.Session) (fosite.Requester, error) {
			return s.GetAuthorizeCodeSession(ctx, sig, ss)
		}, nil},
	{kindPKCE,
		func(ctx context.Context, s *Store, sig string, r fosite.Requester) error {
			return s.CreatePKCERequestSession(ctx, sig, r)
		},
		func(ctx context.Context, s *Store, sig string, ss fosite.Session) (fosite.Requester, error) {
			return s.GetPKCERequestSession(ctx, sig, ss)
		},
		func(ctx context.Context, s *Store, sig string) error { return s.DeletePKCERequestSession(ctx, sig) }},
	{kindOIDC,
		func(ctx context.Context, s *Store, sig string, r fosite.Requester) error {
			return s.CreateOpenIDConnectSession(ctx, sig, r)
		},
		func(ctx context.Context, s *Store, sig string, ss fosite.Session) (fosite.Requester, error) {
			return s.GetOpenIDConnectSession(ctx, sig, &fosite.Request{Session: ss})
		},
		func(ctx context.Context, s *Store, sig string) error { return s.DeleteOpenIDConnectSession(ctx, sig) }},
	{kindAccess,
		func(ctx context.Context, s *Store, sig string, r fosite.Requester) error {
			return s.CreateAccessTokenSession(ctx, sig, r)
		},
		func(ctx context.Context, s *Store, sig string, ss fosite.Session) (fosite.Requester, error) {
			return s.GetAccessTokenSession(ctx, sig, ss)
		},
		func(ctx context.Context, s *Store, sig string) error { return s.DeleteAccessTokenSession(ctx, sig) }},
	{kindRefresh,
		func(ctx context.Context, s *Store, sig string, r fosite.Requester) error {
			return s.CreateRefreshTokenSession(ctx, sig, "access-sig", r)
		},
		func(ctx context.Context, s *Store, sig string, ss fosite.Session) (fosite.Requester, error) {
			return s.GetRefreshTokenSession(ctx, sig, ss)
		},
		func(ctx context.Context, s *Store, sig string) error { return s.DeleteRefreshTokenSession(ctx, sig) }},
}

func testRequestKinds(t *testing.T, f *fixture) {
	client, _ := f.createClient(t, spClientSpec())
	for _, k := range allKinds {
		t.Run(string(k.kind), func(t *testing.T) {
			sig := "sig-" + string(k.kind)
			want := newRequest(client, "req-"+string(k.kind), "pairwise-sub", "")
			if err := k.create(f.ctx, f.store, sig, want); err != nil {
				t.Fatalf("create: %v", err)
			}
			session := emptySession()
			got, err := k.get(f.ctx, f.store, sig, session)
			if err != nil {
				t.Fatalf("get: %v", err)
			}
			wantSession := want.Session.(*testSession)
			switch {
			case got.GetID() != want.ID:
				t.Errorf("id %q, want %q", got.GetID(), want.ID)
			case got.GetClient().GetID() != client.ID:
				t.Errorf("client %q, want %q", got.GetClient().GetID(), client.ID)
			case !got.GetRequestedAt().Equal(want.RequestedAt):
				t.Errorf("requested at %v, want %v", got.GetRequestedAt(), want.RequestedAt)
			case !slices.Equal(got.GetRequestedScopes(), want.RequestedScope) || !slices.Equal(got.GetGrantedScopes(), want.GrantedScope):
				t.Errorf("scopes %v / %v", got.GetRequestedScopes(), got.GetGrantedScopes())
			case !slices.Equal(got.GetRequestedAudience(), want.RequestedAudience) || !slices.Equal(got.GetGrantedAudience(), want.GrantedAudience):
				t.Errorf("audiences %v / %v", got.GetRequestedAudience(), got.GetGrantedAudience())
			case got.GetRequestForm().Get("state") != "state-12345678" || got.GetRequestForm().Get("redirect_uri") == "":
				t.Errorf("form %v lost state or redirect_uri", got.GetRequestForm())
			case got.GetSession() != session:
				t.Errorf("session was not decoded into the caller's session")
			case session.GetSubject() != "pairwise-sub" || session.Claims.Subject != "pairwise-sub":
				t.Errorf("session subject %q", session.GetSubject())
			case !session.Claims.AuthTime.Equal(wantSession.Claims.AuthTime) || !session.Claims.RequestedAt.Equal(wantSession.Claims.RequestedAt):
				t.Errorf("auth time %v requested at %v, want %v", session.Claims.AuthTime, session.Claims.RequestedAt, wantSession.Claims.AuthTime)
			case !session.GetExpiresAt(fosite.AccessToken).Equal(wantSession.GetExpiresAt(fosite.AccessToken)):
				t.Errorf("session expiry lost")
			}
			if k.delete == nil {
				return
			}
			if err := k.delete(f.ctx, f.store, sig); err != nil {
				t.Fatalf("delete: %v", err)
			}
			if _, err := k.get(f.ctx, f.store, sig, emptySession()); !errors.Is(err, fosite.ErrNotFound) {
				t.Errorf("get after delete = %v, want fosite.ErrNotFound", err)
			}
			if err := k.delete(f.ctx, f.store, sig); err != nil {
				t.Errorf("second delete = %v, want nil", err)
			}
		})
	}
	if _, err := f.store.GetAccessTokenSession(f.ctx, "never-stored", emptySession()); !errors.Is(err, fosite.ErrNotFound) {
		t.Errorf("get of an unknown signature = %v, want fosite.ErrNotFound", err)
	}
	if _, err := f.store.GetPKCERequestSession(f.ctx, "sig-code", emptySession()); !errors.Is(err, fosite.ErrNotFound) {
		t.Errorf("a code's signature found as PKCE = %v, want kinds kept apart", err)
	}
}

func testSignatureHashedAndFormSanitised(t *testing.T, f *fixture) {
	client, _ := f.createClient(t, spClientSpec())
	if err := f.store.CreateAuthorizeCodeSession(f.ctx, "the-signature", newRequest(client, "r1", "sub", "")); err != nil {
		t.Fatal(err)
	}
	var stored []byte
	var form string
	err := f.db.Pool.QueryRow(f.ctx, `SELECT signature, form::text FROM oauth2_requests WHERE request_id = 'r1'`).Scan(&stored, &form)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte("the-signature"))
	if string(stored) != string(sum[:]) {
		t.Errorf("stored signature %x, want SHA-256 of the signature", stored)
	}
	for _, secret := range []string{"must-not-be-stored", "client_secret", "code_verifier"} {
		if strings.Contains(form, secret) {
			t.Errorf("stored form %s contains %q", form, secret)
		}
	}
}

func testCodeInvalidation(t *testing.T, f *fixture) {
	client, _ := f.createClient(t, spClientSpec())
	if err := f.store.CreateAuthorizeCodeSession(f.ctx, "code-sig", newRequest(client, "r1", "sub", "")); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name string
		run  func() error
		want error
	}{
		{"first redemption", func() error { return f.store.InvalidateAuthorizeCodeSession(f.ctx, "code-sig") }, nil},
		{"second redemption", func() error { return f.store.InvalidateAuthorizeCodeSession(f.ctx, "code-sig") }, fosite.ErrInvalidatedAuthorizeCode},
		{"unknown code", func() error { return f.store.InvalidateAuthorizeCodeSession(f.ctx, "nope") }, fosite.ErrNotFound},
	}
	for _, step := range steps {
		if err := step.run(); !errors.Is(err, step.want) || (step.want == nil && err != nil) {
			t.Errorf("%s = %v, want %v", step.name, err, step.want)
		}
	}
	session := emptySession()
	req, err := f.store.GetAuthorizeCodeSession(f.ctx, "code-sig", session)
	if !errors.Is(err, fosite.ErrInvalidatedAuthorizeCode) {
		t.Fatalf("get of a used code = %v, want ErrInvalidatedAuthorizeCode", err)
	}
	if req == nil || req.GetID() != "r1" || session.GetSubject() != "sub" {
		t.Fatalf("get of a used code returned %v, want the request with it (fosite revokes by its id)", req)
	}
	var rows int
	_ = f.db.Pool.QueryRow(f.ctx, `SELECT count(*) FROM oauth2_requests WHERE kind = 'code' AND NOT active`).Scan(&rows)
	if rows != 1 {
		t.Errorf("%d inactive code rows, want the code kept, marked inactive", rows)
	}
}

func testExpiry(t *testing.T, f *fixture) {
	client, _ := f.createClient(t, spClientSpec())
	expired := newRequest(client, "old", "sub", "")
	expired.Session.SetExpiresAt(fosite.AccessToken, time.Now().Add(-2*time.Hour))
	live := newRequest(client, "new", "sub", "")
	for sig, r := range map[string]*fosite.Request{"old-sig": expired, "new-sig": live} {
		if err := f.store.CreateAccessTokenSession(f.ctx, sig, r); err != nil {
			t.Fatal(err)
		}
	}
	var expiresAt time.Time
	if err := f.db.Pool.QueryRow(f.ctx, `SELECT expires_at FROM oauth2_requests WHERE request_id = 'new'`).Scan(&expiresAt); err != nil {
		t.Fatal(err)
	}
	if want := live.Session.GetExpiresAt(fosite.AccessToken); !expiresAt.Equal(want) {
		t.Errorf("expires_at %v, want the session's access-token expiry %v", expiresAt, want)
	}
	_ = f.store.SetClientAssertionJWT(f.ctx, "old-jti", time.Now().Add(-time.Minute))
	_ = f.store.SetClientAssertionJWT(f.ctx, "new-jti", time.Now().Add(time.Minute))

	purger := janitor.NewPurger(f.db.Pool, janitor.Tasks(janitor.Lifetimes{AccessToken: 5 * time.Minute, ClockSkew: 30 * time.Second}))
	results, err := purger.Once(f.ctx)
	if n := deleted(results); err != nil || n != 2 {
		t.Fatalf("purge = %d, %v; want 2 (one access token, one jti)", n, err)
	}
	if _, err := f.store.GetAccessTokenSession(f.ctx, "old-sig", emptySession()); !errors.Is(err, fosite.ErrNotFound) {
		t.Errorf("expired record after purge: %v, want fosite.ErrNotFound", err)
	}
	if _, err := f.store.GetAccessTokenSession(f.ctx, "new-sig", emptySession()); err != nil {
		t.Errorf("live record after purge: %v", err)
	}
	if err := f.store.ClientAssertionJWTValid(f.ctx, "new-jti"); !errors.Is(err, fosite.ErrJTIKnown) {
		t.Errorf("live jti after purge: %v, want ErrJTIKnown", err)
	}
}

func testRevokeAccessTokenAnnounces(t *testing.T, f *fixture) {
	client, _ := f.createClient(t, spClientSpec())
	listener, err := pgx.Connect(f.ctx, f.db.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer listener.Close(context.Background())
	if _, err := listener.Exec(f.ctx, "LISTEN "+contract.RevocationChannel); err != nil {
		t.Fatal(err)
	}
	withJTI := newRequest(client, "req-1", "sub", "jti-abc")
	if err := f.store.CreateAccessTokenSession(f.ctx, "at-1", withJTI); err != nil {
		t.Fatal(err)
	}
	// An opaque token of another request, without a jti.
	if err := f.store.CreateAccessTokenSession(f.ctx, "at-2", newRequest(client, "req-2", "sub", "")); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"req-1", "req-2", "req-1", "no-such-request"} {
		if err := f.store.RevokeAccessToken(f.ctx, id); err != nil {
			t.Fatalf("RevokeAccessToken(%s): %v", id, err)
		}
	}
	for _, sig := range []string{"at-1", "at-2"} {
		req, err := f.store.GetAccessTokenSession(f.ctx, sig, emptySession())
		if !errors.Is(err, fosite.ErrInactiveToken) || req == nil {
			t.Errorf("revoked %s: %v, %v; want the request with ErrInactiveToken", sig, req, err)
		}
	}
	var jtis []string
	rows, _ := f.db.Pool.Query(f.ctx, `SELECT jti FROM revoked_tokens`)
	jtis, err = pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil || !slices.Equal(jtis, []string{"jti-abc"}) {
		t.Errorf("revoked_tokens = %v, %v; want [jti-abc]", jtis, err)
	}
	var expiresAt time.Time
	_ = f.db.Pool.QueryRow(f.ctx, `SELECT expires_at FROM revoked_tokens`).Scan(&expiresAt)
	if want := withJTI.Session.GetExpiresAt(fosite.AccessToken); !expiresAt.Equal(want) {
		t.Errorf("revocation kept until %v, want the token's expiry %v", expiresAt, want)
	}
	waitCtx, cancel := context.WithTimeout(f.ctx, 5*time.Second)
	defer cancel()
	n, err := listener.WaitForNotification(waitCtx)
	if err != nil {
		t.Fatalf("no notification on %s: %v", contract.RevocationChannel, err)
	}
	if n.Payload != "jti-abc" {
		t.Errorf("notification payload %q, want the jti", n.Payload)
	}
	// Revoking again announces nothing new (the token is already inactive).
	shortCtx, cancel2 := context.WithTimeout(f.ctx, 300*time.Millisecond)
	defer cancel2()
	if n, err := listener.WaitForNotification(shortCtx); err == nil {
		t.Errorf("second notification %q, want one per revocation", n.Payload)
	}
}

func testRevokeRefreshToken(t *testing.T, f *fixture) {
	client, _ := f.createClient(t, spClientSpec())
	r := newRequest(client, "req-r", "sub", "jti-r")
	if err := f.store.CreateRefreshTokenSession(f.ctx, "rt", "at", r); err != nil {
		t.Fatal(err)
	}
	if err := f.store.CreateAccessTokenSession(f.ctx, "at", r); err != nil {
		t.Fatal(err)
	}
	if err := f.store.RotateRefreshToken(f.ctx, "req-r", "rt"); err != nil {
		t.Fatalf("RotateRefreshToken: %v", err)
	}
	if _, err := f.store.GetRefreshTokenSession(f.ctx, "rt", emptySession()); !errors.Is(err, fosite.ErrInactiveToken) {
		t.Errorf("rotated refresh token: %v, want ErrInactiveToken", err)
	}
	if _, err := f.store.GetAccessTokenSession(f.ctx, "at", emptySession()); !errors.Is(err, fosite.ErrInactiveToken) {
		t.Errorf("access token of a rotated refresh token: %v, want ErrInactiveToken", err)
	}
	r2 := newRequest(client, "req-r2", "sub", "")
	if err := f.store.CreateRefreshTokenSession(f.ctx, "rt2", "", r2); err != nil {
		t.Fatal(err)
	}
	if err := f.store.RevokeRefreshTokenMaybeGracePeriod(f.ctx, "req-r2", "rt2"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.GetRefreshTokenSession(f.ctx, "rt2", emptySession()); !errors.Is(err, fosite.ErrInactiveToken) {
		t.Errorf("revoked refresh token: %v, want ErrInactiveToken", err)
	}
}
