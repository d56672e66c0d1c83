package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/ory/fosite"
)

// sealedCode collects the records of one authorization (as /authorize does
// for a sealed code) without writing them; as with fosite, the three
// records share one session.
func sealedCode(t *testing.T, st *Store, ctx context.Context, client *Client, requestID string) []byte {
	t.Helper()
	r := newRequest(client, requestID, "sub", "")
	records, err := st.CollectAuthorizeRecords(ctx, func(ctx context.Context) error {
		if err := st.CreateAuthorizeCodeSession(ctx, "placeholder", r); err != nil {
			return err
		}
		if err := st.CreatePKCERequestSession(ctx, "placeholder", r); err != nil {
			return err
		}
		return st.CreateOpenIDConnectSession(ctx, "placeholder", r)
	})
	if err != nil {
		t.Fatal(err)
	}
	return records
}

// exchangeSealed runs what fosite does in a successful exchange (with
// wrongVerifier, a PKCE check that fails) and stores an access token.
func exchangeSealed(st *Store, ctx context.Context, client *Client, records []byte, code, token string, wrongVerifier bool) error {
	return st.WithSealedCodeExchange(ctx, records, code, code, func(ctx context.Context) error {
		if _, err := st.GetAuthorizeCodeSession(ctx, code, emptySession()); err != nil {
			return err
		}
		if _, err := st.GetPKCERequestSession(ctx, code, emptySession()); err != nil {
			return err
		}
		if err := st.DeletePKCERequestSession(ctx, code); err != nil {
			return err
		}
		if wrongVerifier {
			return fosite.ErrInvalidGrant.WithHint("The code_verifier does not match the code_challenge.")
		}
		if err := st.InvalidateAuthorizeCodeSession(ctx, code); err != nil {
			return err
		}
		if err := st.CreateAccessTokenSession(ctx, token, newRequest(client, "r-sealed", "sub", "")); err != nil {
			return err
		}
		if _, err := st.GetOpenIDConnectSession(ctx, code, fosite.NewAuthorizeRequest()); err != nil {
			return err
		}
		return st.DeleteOpenIDConnectSession(ctx, code)
	})
}

// testSealedCodeExchange: a code carrying its records costs no statement at
// /authorize and, at /token, the client's read (uncached here) and one write
// batch; a second use of the code stores no token, is invalid_grant and
// revokes the first use's token; a failed PKCE check spends the code, a
// refusal before it does not.
func testSealedCodeExchange(t *testing.T, f *fixture) {
	client, _ := f.createClient(t, spClientSpec())
	st, tracer := tracedStore(t, f)
	before := tracer.Statements()
	records := sealedCode(t, st, f.ctx, client, "r-sealed")
	if n := tracer.Statements() - before; n != 0 {
		t.Errorf("collecting the records sent %d statements, want 0", n)
	}
	var rows int
	if err := f.db.Pool.QueryRow(f.ctx, `SELECT count(*) FROM oauth2_requests`).Scan(&rows); err != nil || rows != 0 {
		t.Fatalf("%d rows stored at /authorize (%v), want 0", rows, err)
	}
	// The session the three records share travels once, and each record
	// gets it back.
	if n := bytes.Count(records, []byte(`"ss":`)); n != 1 {
		t.Errorf("the records carry %d sessions, want 1: %s", n, records)
	}
	checked := st.WithSealedCodeExchange(f.ctx, records, "nv1.code-s", "nv1.code-s", func(ctx context.Context) error {
		for _, get := range []func(context.Context, string, fosite.Session) (fosite.Requester, error){st.GetAuthorizeCodeSession, st.GetPKCERequestSession} {
			r, err := get(ctx, "nv1.code-s", emptySession())
			if err != nil {
				return err
			}
			if sub := r.GetSession().GetSubject(); sub != "sub" {
				t.Errorf("a record's session has subject %q, want sub", sub)
			}
		}
		return fosite.ErrInvalidClient // refused before the PKCE check: nothing spent
	})
	if !errors.Is(checked, fosite.ErrInvalidClient) {
		t.Fatalf("reading the records back: %v", checked)
	}
	// Records without any session are a malformed code.
	var stripped []map[string]any
	if err := json.Unmarshal(records, &stripped); err != nil {
		t.Fatal(err)
	}
	for _, r := range stripped {
		delete(r, "ss")
	}
	bare, _ := json.Marshal(stripped)
	if err := exchangeSealed(st, f.ctx, client, bare, "nv1.code-t", "token-t", false); !errors.Is(err, fosite.ErrInvalidGrant) {
		t.Errorf("records without a session: %v, want invalid_grant", err)
	}

	before = tracer.Statements()
	tracer.Take()
	if err := exchangeSealed(st, f.ctx, client, records, "nv1.code-a", "token-a", false); err != nil {
		t.Fatalf("first use: %v", err)
	}
	if n := tracer.Statements() - before; n != 3 {
		t.Errorf("the exchange sent %d statements, want 3 (client; synchronous_commit on and the write)", n)
	}
	// The code's use must survive a crash: its batch commits durably.
	sent := tracer.Take()
	if len(sent) != 3 || len(sent[1].Args) != 1 || sent[1].Args[0] != "on" {
		t.Errorf("the exchange sent %v, want the client's read, then synchronous_commit on and the write", sent)
	}
	if _, err := f.store.GetAccessTokenSession(f.ctx, "token-a", emptySession()); err != nil {
		t.Fatalf("token of the first use: %v", err)
	}
	if err := exchangeSealed(st, f.ctx, client, records, "nv1.code-a", "token-b", false); !errors.Is(err, fosite.ErrInvalidGrant) {
		t.Errorf("second use: %v, want invalid_grant", err)
	}
	if _, err := f.store.GetAccessTokenSession(f.ctx, "token-b", emptySession()); !errors.Is(err, fosite.ErrNotFound) {
		t.Errorf("token of the second use: %v, want none", err)
	}
	if _, err := f.store.GetAccessTokenSession(f.ctx, "token-a", emptySession()); !errors.Is(err, fosite.ErrInactiveToken) {
		t.Errorf("first token after the replay: %v, want revoked", err)
	}

	// A refusal before the PKCE check (a wrong client secret) does not
	// spend the code; a failed PKCE check does.
	records = sealedCode(t, st, f.ctx, client, "r-sealed")
	refused := st.WithSealedCodeExchange(f.ctx, records, "nv1.code-c", "nv1.code-c", func(ctx context.Context) error {
		return fosite.ErrInvalidClient
	})
	if !errors.Is(refused, fosite.ErrInvalidClient) {
		t.Fatalf("refused exchange: %v", refused)
	}
	if err := exchangeSealed(st, f.ctx, client, records, "nv1.code-c", "token-c", true); !errors.Is(err, fosite.ErrInvalidGrant) {
		t.Fatalf("wrong verifier: %v, want invalid_grant", err)
	}
	if err := exchangeSealed(st, f.ctx, client, records, "nv1.code-c", "token-c", false); !errors.Is(err, fosite.ErrInvalidGrant) {
		t.Errorf("after a wrong verifier: %v, want the code spent", err)
	}
	if _, err := f.store.GetAccessTokenSession(f.ctx, "token-c", emptySession()); !errors.Is(err, fosite.ErrNotFound) {
		t.Errorf("token after a wrong verifier: %v, want none", err)
	}
}
