package testbed

import (
	"context"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/numverify/numverify/sim"
)

// SP is a service provider's backend logging devices in with sim's relying
// party: PKCE S256, prompt=none, client_secret_basic, and the ID token
// verified (signature, issuer, audience, expiry, nonce). Its API calls
// (Verify, DevicePhoneNumber) are not wired: the tests call the API
// themselves, with the status codes and bodies they check.
type SP struct {
	*sim.RelyingParty
	issuer string
	client Client
	scopes []string
	via    *url.URL // where the device and the SP send their requests; nil: the issuer
}

// NewSP discovers issuer for client c asking scopes.
func NewSP(t testing.TB, issuer string, c Client, scopes ...string) *SP {
	t.Helper()
	return newSP(t, issuer, c, scopes, nil)
}

// Via is the same SP sending every request (the device's authorization
// request, discovery, token, keys) to base instead of the issuer: a replica
// of the authorization server, or a proxy in front of one.
func (sp *SP) Via(t testing.TB, base string) *SP {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	return newSP(t, sp.issuer, sp.client, sp.scopes, u)
}

func newSP(t testing.TB, issuer string, c Client, scopes []string, via *url.URL) *SP {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var transport http.RoundTripper = http.DefaultTransport
	if via != nil {
		transport = redirectHost{to: via, next: transport}
	}
	rp, err := sim.NewRelyingParty(ctx, sim.RPConfig{Issuer: issuer, ClientID: c.ID, ClientSecret: c.Secret,
		RedirectURL: c.Redirect, Scopes: scopes, APIURL: issuer + "/no-api",
		HTTP: &http.Client{Timeout: 10 * time.Second, Transport: transport}})
	if err != nil {
		t.Fatalf("relying party: %v", err)
	}
	return &SP{RelyingParty: rp, issuer: issuer, client: c, scopes: scopes, via: via}
}

// NewAuthRequest is the relying party's, sent to Via's base when set.
func (sp *SP) NewAuthRequest(loginHint string) sim.AuthRequest {
	req := sp.RelyingParty.NewAuthRequest(loginHint)
	if sp.via != nil {
		u, _ := url.Parse(req.URL)
		u.Scheme, u.Host = sp.via.Scheme, sp.via.Host
		req.URL = u.String()
	}
	return req
}

// Authorize sends a fresh authorization request (with loginHint when not
// "") from the device and returns the code and the request to redeem it
// with. A redirect without a code is a *sim.OutcomeError; one with another
// state a *sim.ProtocolError.
func (sp *SP) Authorize(ctx context.Context, d *sim.Device, loginHint string) (string, sim.AuthRequest, error) {
	req := sp.NewAuthRequest(loginHint)
	out, err := d.Authorize(ctx, req.URL)
	if err != nil {
		return "", req, err
	}
	if out.Code == "" {
		return "", req, &sim.OutcomeError{Outcome: out}
	}
	if out.State != req.State {
		return "", req, &sim.ProtocolError{Step: "authorize", Problem: "state in the callback is not the request's"}
	}
	return out.Code, req, nil
}

// Login is the whole silent login: authorize from the device, then the code
// exchanged and the ID token verified. Failures are of sim's kinds, so
// sim.ErrorKindOf names them.
func (sp *SP) Login(ctx context.Context, d *sim.Device) (*sim.Tokens, error) {
	code, req, err := sp.Authorize(ctx, d, "")
	if err != nil {
		return nil, err
	}
	return sp.Exchange(ctx, code, req)
}

// redirectHost sends every request to another host (the relying party
// discovers the issuer, and the issuer's document names its own URLs).
type redirectHost struct {
	to   *url.URL
	next http.RoundTripper
}

func (r redirectHost) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	req.URL.Scheme, req.URL.Host, req.Host = r.to.Scheme, r.to.Host, r.to.Host
	return r.next.RoundTrip(req)
}
