package store

import (
	"errors"
	"strings"
	"testing"
)

// TestClientIDTokenAlgorithm: the ID token algorithm is part of a client's
// registration: ES256 or RS256, kept through the store (and through the
// request records that carry the client), RS256 for a registration that
// names none and for a row written without the column; anything else is
// refused with the other problems.
func TestClientIDTokenAlgorithm(t *testing.T) {
	f := newFixture(t)
	for _, alg := range []string{"ES256", "RS256"} {
		spec := spClientSpec()
		spec.IDTokenSignedResponseAlg = alg
		created, _ := f.createClient(t, spec)
		got, err := f.store.GetClient(f.ctx, created.ID)
		if err != nil {
			t.Fatal(err)
		}
		if a := got.(*Client).GetIDTokenSignedResponseAlgorithm(); a != alg {
			t.Errorf("registered %s, stored client says %s", alg, a)
		}
	}

	unnamed, _ := f.createClient(t, spClientSpec())
	got, _ := f.store.GetClient(f.ctx, unnamed.ID)
	if c := got.(*Client); c.IDTokenSignedResponseAlg != DefaultIDTokenSigningAlgorithm || c.GetIDTokenSignedResponseAlgorithm() != "RS256" {
		t.Errorf("registration naming no algorithm stored %q, want RS256", c.IDTokenSignedResponseAlg)
	}
	f.db.Exec(t, `INSERT INTO oauth2_clients (id, name, secret_hash, token_endpoint_auth_method)
		VALUES ('written-without', 'SP', '\x00', 'client_secret_basic')`)
	got, err := f.store.GetClient(f.ctx, "written-without")
	if err != nil || got.(*Client).GetIDTokenSignedResponseAlgorithm() != "RS256" {
		t.Errorf("a row written without the column: %v, want RS256", err)
	}

	spec := spClientSpec()
	spec.IDTokenSignedResponseAlg = "HS256"
	spec.Name = ""
	err = spec.Validate()
	if !errors.Is(err, ErrInvalidClient) || !strings.Contains(err.Error(), `ID token signing algorithm "HS256"`) ||
		!strings.Contains(err.Error(), "name is required") {
		t.Errorf("Validate with HS256 and no name = %v, want both problems", err)
	}
	if _, _, err := f.store.CreateClient(f.ctx, spec); !errors.Is(err, ErrInvalidClient) {
		t.Errorf("CreateClient with HS256 = %v, want ErrInvalidClient", err)
	}
	if _, err := f.db.Pool.Exec(f.ctx, `UPDATE oauth2_clients SET id_token_signed_response_alg = 'none' WHERE id = $1`, unnamed.ID); err == nil {
		t.Errorf("the schema accepted id_token_signed_response_alg 'none'")
	}
}
