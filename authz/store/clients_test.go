package store

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/ory/fosite"

	"github.com/numverify/numverify/internal/contract"
	"github.com/numverify/numverify/internal/pg"
)

func testClientCRUD(t *testing.T, f *fixture) {
	spec := spClientSpec()
	spec.SectorIdentifier = "sp.example.com"
	spec.CanReadPhoneNumber = true
	spec.AllowMissingRedirectURI = true
	created, secret := f.createClient(t, spec)

	raw, err := base64.RawURLEncoding.DecodeString(secret)
	if err != nil || len(raw) != 32 {
		t.Fatalf("secret %d bytes (err %v), want 32 random bytes base64url", len(raw), err)
	}
	got, err := f.store.GetClient(f.ctx, created.ID)
	if err != nil {
		t.Fatalf("GetClient: %v", err)
	}
	c := got.(*Client)
	if c.Name != spec.Name || c.SectorIdentifier != "sp.example.com" || !c.CanReadPhoneNumber ||
		!c.AllowMissingRedirectURI || !slices.Equal(c.RedirectURIs, spec.RedirectURIs) ||
		!slices.Equal(c.Scopes, spec.Scopes) || c.GetTokenEndpointAuthMethod() != AuthMethodClientSecretBasic ||
		!slices.Equal(c.GetGrantTypes(), []string{"authorization_code"}) || !slices.Equal(c.GetResponseTypes(), []string{"code"}) {
		t.Errorf("GetClient = %+v, want the registered fields", c)
	}
	if slices.Contains([]string{string(c.SecretHash)}, secret) || len(c.SecretHash) != 32 {
		t.Errorf("stored secret hash %d bytes, want a 32-byte HMAC, not the secret", len(c.SecretHash))
	}
	if err := f.hasher.Compare(f.ctx, c.GetHashedSecret(), []byte(secret)); err != nil {
		t.Errorf("Compare(stored hash, secret) = %v, want nil", err)
	}
	if c.IsPublic() || c.GetJSONWebKeys() != nil || c.GetRequestObjectSigningAlgorithm() != "RS256" {
		t.Errorf("public %v jwks %v request object alg %q", c.IsPublic(), c.GetJSONWebKeys(), c.GetRequestObjectSigningAlgorithm())
	}

	second, _ := f.createClient(t, spClientSpec())
	list, err := f.store.ListClients(f.ctx)
	if err != nil || len(list) != 2 || list[0].ID != created.ID || list[1].ID != second.ID {
		t.Fatalf("ListClients = %v, %v; want both, oldest first", list, err)
	}

	dup := spClientSpec()
	dup.ID = created.ID
	if _, _, err := f.store.CreateClient(f.ctx, dup); !errors.Is(err, pg.ErrAlreadyExists) {
		t.Errorf("CreateClient with a taken id = %v, want ErrAlreadyExists", err)
	}

	for i, want := range []error{nil, ErrNotFound} {
		if err := f.store.DeleteClient(f.ctx, created.ID); !errors.Is(err, want) {
			t.Errorf("DeleteClient #%d = %v, want %v", i+1, err, want)
		}
	}
	if _, err := f.store.GetClient(f.ctx, created.ID); !errors.Is(err, fosite.ErrNotFound) {
		t.Errorf("GetClient after delete = %v, want fosite.ErrNotFound", err)
	}
	if _, err := f.store.GetClient(f.ctx, "no-such-client"); !errors.Is(err, fosite.ErrNotFound) {
		t.Errorf("GetClient(unknown) = %v, want fosite.ErrNotFound", err)
	}
}

func testJWKS(t *testing.T, withAlg bool) (json.RawMessage, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	jwk := jose.JSONWebKey{Key: &key.PublicKey, KeyID: "sp-key-1", Use: "sig"}
	if withAlg {
		jwk.Algorithm = string(jose.ES256)
	}
	raw, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{jwk}})
	if err != nil {
		t.Fatal(err)
	}
	return raw, key
}

func testClientPrivateKeyJWT(t *testing.T, f *fixture) {
	jwks, _ := testJWKS(t, false)
	spec := spClientSpec()
	spec.TokenEndpointAuthMethod = AuthMethodPrivateKeyJWT
	spec.JWKS = jwks
	created, secret := f.createClient(t, spec)
	if secret != "" {
		t.Errorf("private_key_jwt client got a secret")
	}
	got, err := f.store.GetClient(f.ctx, created.ID)
	if err != nil {
		t.Fatal(err)
	}
	c := got.(*Client)
	if c.GetHashedSecret() != nil {
		t.Errorf("private_key_jwt client has a secret hash")
	}
	keys := c.GetJSONWebKeys()
	if keys == nil || len(keys.Key("sp-key-1")) != 1 {
		t.Fatalf("GetJSONWebKeys = %v, want the registered key", keys)
	}
	if alg := c.GetTokenEndpointAuthSigningAlgorithm(); alg != "ES256" {
		t.Errorf("token endpoint signing alg = %q, want ES256 (from the P-256 key)", alg)
	}
	if alg := c.GetRequestObjectSigningAlgorithm(); alg != "ES256" {
		t.Errorf("request object signing alg = %q, want ES256", alg)
	}
	if c.GetJSONWebKeysURI() != "" || c.GetRequestURIs() != nil {
		t.Errorf("jwks_uri %q request_uris %v, want none", c.GetJSONWebKeysURI(), c.GetRequestURIs())
	}
}

func testClientValidation(t *testing.T, f *fixture) {
	jwks, priv := testJWKS(t, true)
	privateJWKS, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: priv, KeyID: "oops"}}})
	for _, tc := range []struct {
		name   string
		modify func(*ClientSpec)
		want   []string // substrings of the error; none means valid
	}{
		{"valid", func(*ClientSpec) {}, nil},
		{"loopback http", func(s *ClientSpec) {
			s.RedirectURIs = []string{"http://127.0.0.1:8080/cb", "http://localhost/cb"}
			s.SectorIdentifier = "dev.example.com"
		}, nil},
		{"private-use scheme", func(s *ClientSpec) { s.RedirectURIs = []string{"com.example.app:/cb"} }, nil},
		{"v0 and purpose scopes", func(s *ClientSpec) {
			s.Scopes = []string{contract.ScopeVerifyV0, contract.Purpose + "#" + contract.ScopeShare}
		}, nil},
		{"introspection-only client", func(s *ClientSpec) {
			s.RedirectURIs, s.Scopes, s.CanReadPhoneNumber = nil, nil, true
		}, nil},
		{"private_key_jwt with jwks", func(s *ClientSpec) {
			s.TokenEndpointAuthMethod, s.JWKS = AuthMethodPrivateKeyJWT, jwks
		}, nil},
		{"no name", func(s *ClientSpec) { s.Name = " " }, []string{"name is required"}},
		{"no redirect", func(s *ClientSpec) { s.RedirectURIs = nil }, []string{"at least one redirect URI"}},
		{"relative redirect", func(s *ClientSpec) { s.RedirectURIs = []string{"/cb"} }, []string{"not absolute"}},
		{"plain http", func(s *ClientSpec) { s.RedirectURIs = []string{"http://sp.example.com/cb"} }, []string{"use https"}},
		{"fragment", func(s *ClientSpec) { s.RedirectURIs = []string{"https://sp.example.com/cb#x"} }, []string{"fragment"}},
		{"javascript", func(s *ClientSpec) { s.RedirectURIs = []string{"javascript:alert(1)"} }, []string{"cannot be a redirect URI"}},
		{"hosts need sector", func(s *ClientSpec) {
			s.RedirectURIs = []string{"https://a.example.com/cb", "https://b.example.com/cb"}
		}, []string{"sector identifier"}},
		{"unknown scope", func(s *ClientSpec) { s.Scopes = []string{"email"} }, []string{`scope "email"`}},
		{"unknown auth method", func(s *ClientSpec) { s.TokenEndpointAuthMethod = "none" }, []string{`auth method "none"`}},
		{"private_key_jwt without jwks", func(s *ClientSpec) { s.TokenEndpointAuthMethod = AuthMethodPrivateKeyJWT }, []string{"needs the client's public keys"}},
		{"private key in jwks", func(s *ClientSpec) { s.JWKS = privateJWKS }, []string{"private key"}},
		{"jwks not json", func(s *ClientSpec) { s.JWKS = json.RawMessage(`{"keys":`) }, []string{"not a JWK Set"}},
		{"every problem at once", func(s *ClientSpec) {
			s.Name, s.RedirectURIs, s.Scopes, s.TokenEndpointAuthMethod = "", []string{"ftp://x"}, []string{"bogus"}, "pw"
		}, []string{"name is required", `redirect URI "ftp://x"`, `scope "bogus"`, `auth method "pw"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec := spClientSpec()
			tc.modify(&spec)
			_, _, err := f.store.CreateClient(f.ctx, spec)
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("CreateClient = %v, want success", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidClient) {
				t.Fatalf("CreateClient = %v, want ErrInvalidClient", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func testSecretHasher(t *testing.T, f *fixture) {
	if _, err := NewSecretHasher(make([]byte, 16)); err == nil {
		t.Errorf("NewSecretHasher(16 bytes) succeeded, want an error")
	}
	other, _ := NewSecretHasher(append(make([]byte, 31), 1))
	hash, _ := f.hasher.Hash(f.ctx, []byte("s3cret"))
	for _, tc := range []struct {
		name   string
		hasher *SecretHasher
		hash   []byte
		secret string
		ok     bool
	}{
		{"match", f.hasher, hash, "s3cret", true},
		{"wrong secret", f.hasher, hash, "s3cres", false},
		{"other key", other, hash, "s3cret", false},
		{"empty hash", f.hasher, nil, "", false},
		{"truncated hash", f.hasher, hash[:16], "s3cret", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.hasher.Compare(f.ctx, tc.hash, []byte(tc.secret))
			if (err == nil) != tc.ok {
				t.Errorf("Compare = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

func testClientAssertionJTIReplay(t *testing.T, f *fixture) {
	s, ctx := f.store, f.ctx
	exp := time.Now().Add(5 * time.Minute)
	steps := []struct {
		name string
		run  func() error
		want error
	}{
		{"unknown jti is valid", func() error { return s.ClientAssertionJWTValid(ctx, "jti-1") }, nil},
		{"first use recorded", func() error { return s.SetClientAssertionJWT(ctx, "jti-1", exp) }, nil},
		{"now known", func() error { return s.ClientAssertionJWTValid(ctx, "jti-1") }, fosite.ErrJTIKnown},
		{"replay refused", func() error { return s.SetClientAssertionJWT(ctx, "jti-1", exp) }, fosite.ErrJTIKnown},
		{"expired jti recorded", func() error { return s.SetClientAssertionJWT(ctx, "jti-2", time.Now().Add(-time.Second)) }, nil},
		{"expired jti valid again", func() error { return s.ClientAssertionJWTValid(ctx, "jti-2") }, nil},
		{"expired jti reusable", func() error { return s.SetClientAssertionJWT(ctx, "jti-2", exp) }, nil},
		{"and then known", func() error { return s.ClientAssertionJWTValid(ctx, "jti-2") }, fosite.ErrJTIKnown},
	}
	for _, step := range steps {
		if err := step.run(); !errors.Is(err, step.want) || (step.want == nil && err != nil) {
			t.Fatalf("%s: %v, want %v", step.name, err, step.want)
		}
	}
}
