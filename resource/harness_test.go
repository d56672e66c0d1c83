package resource

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"github.com/numverify/numverify/internal/syncbuf"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/numverify/numverify/internal/contract"
	"github.com/numverify/numverify/internal/httpx"
	"github.com/numverify/numverify/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

const (
	testPhone      = "+33612345678"
	otherPhone     = "+33698765432"
	testClientID   = "sp-client-1"
	testIntroID    = "resource-server"
	testIntroToken = "introspection-secret"
)

// testIssuer stands in for the authorization server: discovery, JWKS and
// introspection on a real port, and the keys to mint tokens with.
type testIssuer struct {
	t      testing.TB
	srv    *httptest.Server
	issuer string

	mu      sync.Mutex
	sigKeys []jose.JSONWebKey // private; published as public
	opaque  map[string]introspectionResponse

	encKey   *ecdsa.PrivateKey
	encKID   string
	dirKey   []byte
	dirKID   string
	jwksHits atomic.Int32
	introHit atomic.Int32
	down     atomic.Bool
}

func newTestIssuer(t testing.TB) *testIssuer {
	is := &testIssuer{t: t, opaque: map[string]introspectionResponse{}, encKID: "enc-1", dirKID: "dir-1"}
	is.encKey = must(ecdsa.GenerateKey(elliptic.P256(), rand.Reader))
	is.dirKey = make([]byte, 32)
	_, _ = rand.Read(is.dirKey)
	is.addSigningKey("sig-1", jose.ES256)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		if is.down.Load() {
			http.Error(w, "down", http.StatusBadGateway)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]string{"issuer": is.issuer, "jwks_uri": is.issuer + "/jwks",
			"introspection_endpoint": is.issuer + "/introspect"})
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, r *http.Request) {
		is.jwksHits.Add(1)
		is.mu.Lock()
		defer is.mu.Unlock()
		var set jose.JSONWebKeySet
		for _, k := range is.sigKeys {
			set.Keys = append(set.Keys, k.Public())
		}
		_ = json.NewEncoder(w).Encode(set)
	})
	mux.HandleFunc("POST /introspect", func(w http.ResponseWriter, r *http.Request) {
		is.introHit.Add(1)
		if is.down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		if id, secret, ok := r.BasicAuth(); !ok || id != testIntroID || secret != testIntroToken {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		is.mu.Lock()
		resp, ok := is.opaque[r.PostFormValue("token")]
		is.mu.Unlock()
		if !ok {
			resp = introspectionResponse{Active: false}
		}
		_ = json.NewEncoder(w).Encode(resp)
	})
	is.srv = httptest.NewServer(mux)
	is.issuer = is.srv.URL
	t.Cleanup(is.srv.Close)
	return is
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func (is *testIssuer) addSigningKey(kid string, alg jose.SignatureAlgorithm) {
	var key any
	if alg == jose.RS256 {
		key = must(rsa.GenerateKey(rand.Reader, 2048))
	} else {
		key = must(ecdsa.GenerateKey(elliptic.P256(), rand.Reader))
	}
	is.mu.Lock()
	is.sigKeys = append(is.sigKeys, jose.JSONWebKey{Key: key, KeyID: kid, Algorithm: string(alg), Use: "sig"})
	is.mu.Unlock()
}

func (is *testIssuer) signingKey(kid string) jose.SigningKey {
	is.mu.Lock()
	defer is.mu.Unlock()
	for _, k := range is.sigKeys {
		if k.KeyID == kid {
			return jose.SigningKey{Algorithm: jose.SignatureAlgorithm(k.Algorithm), Key: k}
		}
	}
	is.t.Fatalf("no signing key %q", kid)
	return jose.SigningKey{}
}

// decryptionKeys is the KeySource of the resource server under test.
func (is *testIssuer) decryptionKeys(context.Context) ([]jose.JSONWebKey, error) {
	return []jose.JSONWebKey{{Key: is.encKey, KeyID: is.encKID}, {Key: is.dirKey, KeyID: is.dirKID}}, nil
}

var jtiCounter atomic.Int64

// claims are those of a valid token for phone with both permissions.
func (is *testIssuer) claims(phone string) contract.AccessClaims {
	now := time.Now()
	return contract.AccessClaims{
		Issuer: is.issuer, Subject: "pairwise-sub", Audience: jwt.Audience{contract.DefaultAudience},
		ClientID: testClientID, Scope: "openid number-verification:verify number-verification:device-phone-number:read",
		AMR: []string{contract.AMRNetwork}, IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(5 * time.Minute)),
		ID: "jti-" + time.Now().Format("150405.000000") + "-" + itoa(jtiCounter.Add(1)), PhoneNumber: phone,
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// nested seals claims as the authorization server does by default.
func (is *testIssuer) nested(c contract.AccessClaims) string {
	return is.nestedWith(c, "sig-1")
}

func (is *testIssuer) nestedWith(c contract.AccessClaims, sigKID string) string {
	return must(contract.SealNested(c, is.signingKey(sigKID), jose.JSONWebKey{Key: &is.encKey.PublicKey, KeyID: is.encKID}))
}

func (is *testIssuer) direct(c contract.AccessClaims) string {
	return must(contract.SealDirect(c, is.dirKey, is.dirKID))
}

func (is *testIssuer) token(phone string) string { return is.nested(is.claims(phone)) }

// testServer is a resource server on a real port, wrapped as `serve` wraps
// it (httpx.Observe writes the access log line).
type testServer struct {
	*Server
	url    string
	issuer *testIssuer
	db     *pgtest.DB
	logs   *syncBuffer
}

// syncBuffer captures server output written from other goroutines.
type syncBuffer = syncbuf.Buffer

func startServer(t testing.TB, is *testIssuer, configure func(*Config)) *testServer {
	t.Helper()
	db := pgtest.New(t)
	return startServerOn(t, is, db, configure)
}

func startServerOn(t testing.TB, is *testIssuer, db *pgtest.DB, configure func(*Config)) *testServer {
	t.Helper()
	logs := &syncBuffer{}
	logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cfg := Config{
		Logger: logger, Pool: db.Pool, Registry: prometheus.NewRegistry(),
		Issuer: is.issuer, Audience: contract.DefaultAudience, TokenFormat: FormatJWT,
		DecryptionKeys: is.decryptionKeys, IntrospectionClientID: testIntroID, IntrospectionClientSecret: testIntroToken,
	}
	if configure != nil {
		configure(&cfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := New(ctx, cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(s.Close)
	if cfg.TokenFormat != FormatOpaque {
		waitFor(t, 5*time.Second, "keys loaded", func() bool { return s.Ready(ctx) == nil })
	}
	handler := httpx.Observe("resource", s.Handler(), logger, httpx.NewMetrics(prometheus.NewRegistry()))
	srv := httptest.NewServer(handler)
	t.Cleanup(srv.Close)
	return &testServer{Server: s, url: srv.URL, issuer: is, db: db, logs: logs}
}

func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// call is one request of the suite.
type call struct {
	method  string
	path    string
	token   string // Authorization: Bearer <token> when not empty
	headers map[string]string
	body    *string // nil: no body
}

type response struct {
	status int
	header http.Header
	body   []byte
	req    *http.Request
}

func str(s string) *string { return &s }

func (ts *testServer) do(t testing.TB, c call) *response {
	t.Helper()
	var body io.Reader
	if c.body != nil {
		body = strings.NewReader(*c.body)
	}
	req, err := http.NewRequest(c.method, ts.url+c.path, body)
	if err != nil {
		t.Fatal(err)
	}
	if c.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	for k, v := range c.headers {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", c.method, c.path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	r := &response{status: resp.StatusCode, header: resp.Header, body: b, req: req}
	checkContract(t, r)
	return r
}

// errorCode returns the code of an error body (string in v2, number in v0).
func (r *response) errorCode() string {
	var body struct {
		Code json.RawMessage `json:"code"`
	}
	_ = json.Unmarshal(r.body, &body)
	return strings.Trim(string(body.Code), `"`)
}

func (r *response) field(name string) any {
	var m map[string]any
	_ = json.Unmarshal(r.body, &m)
	return m[name]
}
