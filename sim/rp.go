package sim

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"
)

// DefaultScope is what an SP asks for number verification: openid and the
// verify permission in the purpose form the operator SDKs send.
const DefaultScope = "openid dpv:FraudPreventionAndDetection#number-verification:verify"

// RPConfig is a service provider's registration and the servers it talks to.
type RPConfig struct {
	Issuer       string // discovery at Issuer/.well-known/openid-configuration
	ClientID     string
	ClientSecret string // sent with client_secret_basic
	// ClientKey, when set, authenticates the client with private_key_jwt
	// instead of the secret (the CAMARA ICM method, required for the
	// operator-token grants).
	ClientKey   *ClientKey
	RedirectURL string
	Scopes      []string
	// APIURL is the Number Verification base URL, e.g.
	// http://localhost:9091/number-verification/v2.
	APIURL string
	// HTTP sends discovery, token and API requests (nil: a client with
	// timeouts). A context carrying oauth2.HTTPClient overrides it per call.
	HTTP *http.Client
	// IDTokenSigningAlg is the algorithm the client registered for its ID
	// tokens (id_token_signed_response_alg, e.g. ES256 or RS256): the only one
	// its ID tokens are accepted with. Empty: any the issuer's discovery lists.
	IDTokenSigningAlg string
	// IDTokenSignatureEvery, above 1, verifies the signature of one ID token
	// in that many (the first, then every that-many-th); the others are
	// checked for all the rest (a signed JWS of an accepted algorithm, not
	// "none"; issuer, audience, expiry, nonce), as they arrive straight from
	// the token endpoint over the connection the SP opened. For a load
	// generator that shares the machine with the server it measures: an
	// SP's signature check is the SP's CPU, not the operator's. 0 or 1:
	// every one, as an SP does.
	IDTokenSignatureEvery int
}

// RelyingParty is the SP backend's side of the flow: it builds authorization
// requests, exchanges codes (PKCE S256, client_secret_basic) through
// golang.org/x/oauth2, verifies ID tokens with go-oidc, and calls the API.
type RelyingParty struct {
	cfg      RPConfig
	oauth    oauth2.Config
	verifier *oidc.IDTokenVerifier
	// unsigned checks all but the signature (IDTokenSignatureEvery), and
	// signingAlgs the header of the tokens it checks: the algorithms the
	// verifier accepts.
	unsigned    *oidc.IDTokenVerifier
	signingAlgs []jose.SignatureAlgorithm
	idTokens    atomic.Uint64
	http        *http.Client
	// backchannelURL is the CIBA endpoint from discovery ("" when none).
	backchannelURL string
}

// NewRelyingParty discovers the issuer's endpoints and keys.
func NewRelyingParty(ctx context.Context, cfg RPConfig) (*RelyingParty, error) {
	if cfg.Issuer == "" || cfg.ClientID == "" || cfg.RedirectURL == "" || cfg.APIURL == "" {
		return nil, errors.New("relying party: issuer, client id, redirect URL and API URL are required")
	}
	client := cfg.HTTP
	if client == nil {
		client = &http.Client{Timeout: 15 * time.Second}
	}
	provider, err := oidc.NewProvider(oidc.ClientContext(ctx, client), cfg.Issuer)
	if err != nil {
		return nil, fmt.Errorf("discover %s: %w", cfg.Issuer, err)
	}
	endpoint := provider.Endpoint()
	endpoint.AuthStyle = oauth2.AuthStyleInHeader // client_secret_basic
	if cfg.ClientKey != nil {
		endpoint.AuthStyle = oauth2.AuthStyleInParams // client_id, and the assertion added per request
		cfg.ClientSecret = ""
	}
	var extra struct {
		Backchannel string   `json:"backchannel_authentication_endpoint"`
		IDTokenAlgs []string `json:"id_token_signing_alg_values_supported"`
	}
	_ = provider.Claims(&extra)
	return &RelyingParty{
		backchannelURL: extra.Backchannel,
		cfg:            cfg,
		oauth: oauth2.Config{
			ClientID:     cfg.ClientID,
			ClientSecret: cfg.ClientSecret,
			Endpoint:     endpoint,
			RedirectURL:  cfg.RedirectURL,
			Scopes:       cfg.Scopes,
		},
		verifier: provider.Verifier(&oidc.Config{ClientID: cfg.ClientID, SupportedSigningAlgs: idTokenAlgs(cfg.IDTokenSigningAlg)}),
		unsigned: provider.Verifier(&oidc.Config{ClientID: cfg.ClientID, SupportedSigningAlgs: idTokenAlgs(cfg.IDTokenSigningAlg),
			InsecureSkipSignatureCheck: true}),
		signingAlgs: signingAlgs(idTokenAlgs(cfg.IDTokenSigningAlg), extra.IDTokenAlgs),
		http:        client,
	}, nil
}

// idTokenAlgs is the algorithms go-oidc accepts: the registered one, or nil
// (what discovery lists).
func idTokenAlgs(registered string) []string {
	if registered == "" {
		return nil
	}
	return []string{registered}
}

// signingAlgs is what go-oidc's verifier accepts: the registered
// algorithm, else those discovery lists, else RS256 (its default); never
// "none".
func signingAlgs(registered, discovered []string) []jose.SignatureAlgorithm {
	names := registered
	if len(names) == 0 {
		names = discovered
	}
	var algs []jose.SignatureAlgorithm
	for _, name := range names {
		if !strings.EqualFold(name, "none") {
			algs = append(algs, jose.SignatureAlgorithm(name))
		}
	}
	if len(algs) == 0 {
		return []jose.SignatureAlgorithm{jose.RS256}
	}
	return algs
}

// AuthRequest is one authorization request and the secrets the SP keeps
// until the callback.
type AuthRequest struct {
	URL      string
	State    string
	Nonce    string
	Verifier string // PKCE code_verifier; the request carries its S256 challenge
}

// NewAuthRequest makes an authorization request with fresh state, nonce and
// PKCE verifier; prompt=none (the login is silent or fails). loginHint, when
// set, is sent as login_hint=tel:… (it never changes who is logged in).
func (rp *RelyingParty) NewAuthRequest(loginHint string) AuthRequest {
	r := AuthRequest{State: rand.Text(), Nonce: rand.Text(), Verifier: oauth2.GenerateVerifier()}
	opts := []oauth2.AuthCodeOption{
		oauth2.S256ChallengeOption(r.Verifier),
		oauth2.SetAuthURLParam("nonce", r.Nonce),
		oauth2.SetAuthURLParam("prompt", "none"),
	}
	if loginHint != "" {
		opts = append(opts, oauth2.SetAuthURLParam("login_hint", "tel:"+loginHint))
	}
	r.URL = rp.oauth.AuthCodeURL(r.State, opts...)
	return r
}

// AuthURL is the authorization endpoint from discovery.
func (rp *RelyingParty) AuthURL() string { return rp.oauth.Endpoint.AuthURL }

// Tokens are what a code exchange gave, the ID token verified.
type Tokens struct {
	AccessToken string
	Expiry      time.Time
	Scope       string
	RawIDToken  string
	Subject     string
	AMR         []string
}

// Exchange redeems code at the token endpoint with the request's PKCE
// verifier and verifies the ID token (signature, issuer, audience, expiry,
// nonce).
func (rp *RelyingParty) Exchange(ctx context.Context, code string, req AuthRequest) (*Tokens, error) {
	ctx = context.WithValue(ctx, oauth2.HTTPClient, rp.client(ctx))
	opts := []oauth2.AuthCodeOption{oauth2.VerifierOption(req.Verifier)}
	if rp.cfg.ClientKey != nil {
		auth, err := rp.cfg.ClientKey.ClientAuth(rp.cfg.ClientID, rp.cfg.Issuer)
		if err != nil {
			return nil, err
		}
		for name, value := range auth {
			opts = append(opts, oauth2.SetAuthURLParam(name, value))
		}
	}
	tok, err := rp.oauth.Exchange(ctx, code, opts...)
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) {
			status := 0
			if re.Response != nil {
				status = re.Response.StatusCode
			}
			return nil, &APIError{Method: http.MethodPost, URL: rp.oauth.Endpoint.TokenURL, Status: status,
				Code: re.ErrorCode, Message: re.ErrorDescription}
		}
		return nil, &ConnectionError{Method: http.MethodPost, URL: rp.oauth.Endpoint.TokenURL, Err: err}
	}
	out := &Tokens{AccessToken: tok.AccessToken, Expiry: tok.Expiry}
	if s, ok := tok.Extra("scope").(string); ok {
		out.Scope = s
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return out, &ProtocolError{Step: "token", Problem: "no id_token in the token response"}
	}
	idToken, amr, err := rp.verifyIDToken(ctx, raw)
	if err != nil {
		return out, err
	}
	if idToken.Nonce != req.Nonce {
		return out, &ProtocolError{Step: "token", Problem: "ID token nonce does not match the request's"}
	}
	out.RawIDToken, out.Subject, out.AMR = raw, idToken.Subject, amr
	return out, nil
}

// verifyIDToken verifies an ID token from the token endpoint and reads its
// amr claim.
func (rp *RelyingParty) verifyIDToken(ctx context.Context, raw string) (*oidc.IDToken, []string, error) {
	verifier := rp.verifier
	if every := uint64(rp.cfg.IDTokenSignatureEvery); every > 1 && (rp.idTokens.Add(1)-1)%every != 0 {
		// go-oidc skipping the signature also takes alg "none": refused here.
		if _, err := jose.ParseSigned(raw, rp.signingAlgs); err != nil {
			return nil, nil, &ProtocolError{Step: "token", Problem: "ID token: " + err.Error()}
		}
		verifier = rp.unsigned
	}
	idToken, err := verifier.Verify(oidc.ClientContext(ctx, rp.client(ctx)), raw)
	if err != nil {
		return nil, nil, &ProtocolError{Step: "token", Problem: "ID token: " + err.Error()}
	}
	var claims struct {
		AMR []string `json:"amr"`
	}
	if err := idToken.Claims(&claims); err != nil {
		return nil, nil, &ProtocolError{Step: "token", Problem: "ID token claims: " + err.Error()}
	}
	return idToken, claims.AMR, nil
}

// ProtocolError is an answer that arrived but breaks the protocol (a missing
// or invalid ID token, a malformed API body).
type ProtocolError struct {
	Step    string
	Problem string
}

func (e *ProtocolError) Error() string { return e.Step + ": " + e.Problem }

// Verify asks POST {APIURL}/verify whether phoneNumber is the device's
// number; with hashed it sends hashedPhoneNumber (SHA-256 hex of the E.164
// number) instead.
func (rp *RelyingParty) Verify(ctx context.Context, accessToken, phoneNumber string, hashed bool) (bool, error) {
	body := map[string]string{"phoneNumber": phoneNumber}
	if hashed {
		body = map[string]string{"hashedPhoneNumber": hashPhoneNumber(phoneNumber)}
	}
	var out struct {
		Verified *bool `json:"devicePhoneNumberVerified"`
	}
	if err := rp.api(ctx, http.MethodPost, "/verify", accessToken, body, &out); err != nil {
		return false, err
	}
	if out.Verified == nil {
		return false, &ProtocolError{Step: "verify", Problem: "no devicePhoneNumberVerified in the answer"}
	}
	return *out.Verified, nil
}

// DevicePhoneNumber asks GET {APIURL}/device-phone-number (share).
func (rp *RelyingParty) DevicePhoneNumber(ctx context.Context, accessToken string) (string, error) {
	var out struct {
		Number string `json:"devicePhoneNumber"`
	}
	if err := rp.api(ctx, http.MethodGet, "/device-phone-number", accessToken, nil, &out); err != nil {
		return "", err
	}
	if out.Number == "" {
		return "", &ProtocolError{Step: "share", Problem: "no devicePhoneNumber in the answer"}
	}
	return out.Number, nil
}

// hashPhoneNumber is CAMARA's hashedPhoneNumber: SHA-256, lower-case hex, of
// the E.164 number with its '+'.
func hashPhoneNumber(e164 string) string {
	sum := sha256.Sum256([]byte(e164))
	return hex.EncodeToString(sum[:])
}

func (rp *RelyingParty) api(ctx context.Context, method, path, accessToken string, in, out any) error {
	var body io.Reader
	if in != nil {
		raw, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(raw)
	}
	u := strings.TrimRight(rp.cfg.APIURL, "/") + path
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+accessToken)
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := rp.client(ctx).Do(req)
	if err != nil {
		return &ConnectionError{Method: method, URL: u, Err: err}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return &ConnectionError{Method: method, URL: u, Err: err}
	}
	if resp.StatusCode/100 != 2 {
		return apiError(method, u, resp.StatusCode, raw)
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return &ProtocolError{Step: path, Problem: "undecodable answer: " + err.Error()}
	}
	return nil
}

func (rp *RelyingParty) client(ctx context.Context) *http.Client {
	if c, ok := ctx.Value(oauth2.HTTPClient).(*http.Client); ok && c != nil {
		return c
	}
	return rp.http
}
