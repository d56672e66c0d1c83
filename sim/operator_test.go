package sim

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// fakeOperator is a hand-written stand-in for numverify's three servers in
// one: the network admin API, an OIDC provider that logs in by the TCP peer
// (PKCE S256, client_secret_basic, RS256 ID tokens), and the verify and share
// API. It lets the simulators be tested without the real servers; the tests
// in cmd/numverify run them against the real ones.
type fakeOperator struct {
	t        *testing.T
	srv      *httptest.Server
	key      *rsa.PrivateKey
	clientID string
	secret   string
	redirect string

	mu       sync.Mutex
	nextID   int64
	sessions map[int64]Session
	codes    map[string]fakeCode
	tokens   map[string]string // access token → MSISDN
	// lieAbout makes verify answer false for this number (a broken
	// server, to see the bench count wrong-subscriber).
	lieAbout string
	// verifyDelay makes each verify take this long (a slow server).
	verifyDelay time.Duration
	// singleUse makes each access token answer one call, as numverify's
	// resource server does by default (CAMARA NV 2.1.1).
	singleUse bool
}

type fakeCode struct {
	msisdn, challenge, nonce, redirect string
}

func newFakeOperator(t *testing.T, redirect string) *fakeOperator {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	op := &fakeOperator{t: t, key: key, clientID: "demo-sp", secret: "s3cr3t-of-the-sp", redirect: redirect,
		sessions: map[int64]Session{}, codes: map[string]fakeCode{}, tokens: map[string]string{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", op.discovery)
	mux.HandleFunc("GET /jwks", op.jwks)
	mux.HandleFunc("GET /authorize", op.authorize)
	mux.HandleFunc("POST /token", op.token)
	mux.HandleFunc("POST /api/verify", op.verify)
	mux.HandleFunc("GET /api/device-phone-number", op.share)
	mux.HandleFunc("POST /sessions", op.attach)
	mux.HandleFunc("DELETE /sessions/{id}", op.detach)
	mux.HandleFunc("GET /lookup", op.lookup)
	op.srv = httptest.NewServer(mux)
	t.Cleanup(op.srv.Close)
	return op
}

func (op *fakeOperator) rpConfig(scopes ...string) RPConfig {
	if len(scopes) == 0 {
		scopes = strings.Fields(DefaultScope)
	}
	return RPConfig{Issuer: op.srv.URL, ClientID: op.clientID, ClientSecret: op.secret, RedirectURL: op.redirect,
		Scopes: scopes, APIURL: op.srv.URL + "/api"}
}

func (op *fakeOperator) network() *NetworkAdmin {
	return &NetworkAdmin{BaseURL: op.srv.URL, Token: "admin-token"}
}

func (op *fakeOperator) discovery(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, 200, map[string]any{
		"issuer": op.srv.URL, "authorization_endpoint": op.srv.URL + "/authorize",
		"token_endpoint": op.srv.URL + "/token", "jwks_uri": op.srv.URL + "/jwks",
		"id_token_signing_alg_values_supported": []string{"RS256"},
	})
}

func (op *fakeOperator) jwks(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, 200, jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &op.key.PublicKey, KeyID: "k1", Algorithm: "RS256", Use: "sig"}}})
}

func (op *fakeOperator) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("client_id") != op.clientID || q.Get("redirect_uri") != op.redirect {
		http.Error(w, "unknown client or redirect URI", http.StatusBadRequest)
		return
	}
	back := url.Values{"state": {q.Get("state")}}
	peer := netip.MustParseAddrPort(r.RemoteAddr).Addr()
	msisdn := op.holder(peer)
	switch {
	case q.Get("code_challenge_method") != "S256" || q.Get("response_type") != "code" || q.Get("prompt") != "none":
		back.Set("error", "invalid_request")
	case msisdn == "":
		back.Set("error", "access_denied")
	default:
		code := rand.Text()
		op.mu.Lock()
		op.codes[code] = fakeCode{msisdn: msisdn, challenge: q.Get("code_challenge"), nonce: q.Get("nonce"), redirect: q.Get("redirect_uri")}
		op.mu.Unlock()
		back.Set("code", code)
	}
	http.Redirect(w, r, q.Get("redirect_uri")+"?"+back.Encode(), http.StatusFound)
}

func (op *fakeOperator) holder(addr netip.Addr) string {
	op.mu.Lock()
	defer op.mu.Unlock()
	for _, s := range op.sessions {
		if s.IP == addr.String() {
			return s.MSISDN
		}
	}
	return ""
}

func (op *fakeOperator) token(w http.ResponseWriter, r *http.Request) {
	id, secret, ok := r.BasicAuth()
	if !ok || id != op.clientID || secret != op.secret {
		writeJSON(w, 401, map[string]string{"error": "invalid_client"})
		return
	}
	op.mu.Lock()
	code, found := op.codes[r.FormValue("code")]
	delete(op.codes, r.FormValue("code"))
	op.mu.Unlock()
	sum := sha256.Sum256([]byte(r.FormValue("code_verifier")))
	if !found || base64.RawURLEncoding.EncodeToString(sum[:]) != code.challenge || r.FormValue("redirect_uri") != code.redirect {
		writeJSON(w, 400, map[string]string{"error": "invalid_grant"})
		return
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: op.key, KeyID: "k1"}}, nil)
	if err != nil {
		op.t.Error(err)
		return
	}
	subject := sha256.Sum256([]byte("sector|" + code.msisdn))
	now := time.Now()
	idToken, err := jwt.Signed(signer).Claims(map[string]any{
		"iss": op.srv.URL, "aud": op.clientID, "sub": base64.RawURLEncoding.EncodeToString(subject[:16]),
		"iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(), "auth_time": now.Unix(),
		"nonce": code.nonce, "amr": []string{"nba"},
	}).Serialize()
	if err != nil {
		op.t.Error(err)
		return
	}
	access := rand.Text()
	op.mu.Lock()
	op.tokens[access] = code.msisdn
	op.mu.Unlock()
	writeJSON(w, 200, map[string]any{"access_token": access, "token_type": "Bearer", "expires_in": 300,
		"id_token": idToken, "scope": "openid number-verification:verify"})
}

func (op *fakeOperator) tokenNumber(w http.ResponseWriter, r *http.Request) (string, bool) {
	op.mu.Lock()
	token := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	msisdn, ok := op.tokens[token]
	if ok && op.singleUse {
		delete(op.tokens, token)
	}
	op.mu.Unlock()
	if !ok {
		writeJSON(w, 401, map[string]any{"status": 401, "code": "UNAUTHENTICATED", "message": "no valid token"})
	}
	return msisdn, ok
}

func (op *fakeOperator) verify(w http.ResponseWriter, r *http.Request) {
	msisdn, ok := op.tokenNumber(w, r)
	if !ok {
		return
	}
	time.Sleep(op.verifyDelay)
	var body struct{ PhoneNumber, HashedPhoneNumber string }
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		writeJSON(w, 400, map[string]any{"status": 400, "code": "INVALID_ARGUMENT", "message": "bad body"})
		return
	}
	verified := body.PhoneNumber == msisdn || strings.EqualFold(body.HashedPhoneNumber, hashPhoneNumber(msisdn))
	op.mu.Lock()
	if msisdn == op.lieAbout {
		verified = false
	}
	op.mu.Unlock()
	writeJSON(w, 200, map[string]bool{"devicePhoneNumberVerified": verified})
}

func (op *fakeOperator) share(w http.ResponseWriter, r *http.Request) {
	if msisdn, ok := op.tokenNumber(w, r); ok {
		writeJSON(w, 200, map[string]string{"devicePhoneNumber": msisdn})
	}
}

func (op *fakeOperator) attach(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "Bearer admin-token" {
		writeJSON(w, 401, map[string]string{"message": "missing or wrong admin token"})
		return
	}
	var body struct{ MSISDN, IP string }
	_ = json.NewDecoder(r.Body).Decode(&body)
	op.mu.Lock()
	defer op.mu.Unlock()
	for _, s := range op.sessions {
		if s.IP == body.IP {
			writeJSON(w, 409, map[string]string{"message": "address in use"})
			return
		}
	}
	op.nextID++
	s := Session{ID: op.nextID, MSISDN: body.MSISDN, IP: body.IP, Ports: json.RawMessage(`"0-65535"`), StartedAt: time.Now()}
	op.sessions[s.ID] = s
	writeJSON(w, 201, s)
}

func (op *fakeOperator) detach(w http.ResponseWriter, r *http.Request) {
	id, _ := strconv.ParseInt(r.PathValue("id"), 10, 64)
	op.mu.Lock()
	_, ok := op.sessions[id]
	delete(op.sessions, id)
	op.mu.Unlock()
	if !ok {
		writeJSON(w, 404, map[string]string{"message": "no such session"})
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (op *fakeOperator) lookup(w http.ResponseWriter, r *http.Request) {
	msisdn := op.holder(netip.MustParseAddr(r.URL.Query().Get("ip")))
	if msisdn == "" {
		writeJSON(w, 404, map[string]string{"message": "not found"})
		return
	}
	writeJSON(w, 200, Session{MSISDN: msisdn, IP: r.URL.Query().Get("ip")})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if err := json.NewEncoder(w).Encode(v); err != nil {
		panic(fmt.Sprint("encode: ", err))
	}
}
