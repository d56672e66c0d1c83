package authz_test

import (
	"context"
	"errors"
	"net/http"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/numverify/numverify/authz"
	"github.com/numverify/numverify/authz/store"
	"github.com/numverify/numverify/internal/contract"
)

func TestTrustedProxyHeaders(t *testing.T) {
	// The proxy is 127.20.0.0/16; devices are elsewhere in 127/8.
	srv := startServer(t, config(func(c *authz.Config) {
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.20.0.0/16")}
		c.ClientAddressFrom = authz.AddressFromXForwardedFor
	}))
	sp := srv.client(store.ClientSpec{})
	dev := srv.newDevice()
	proxy := newDetachedDeviceAt(netip.MustParseAddr("127.20.0.1"))
	conf, _ := srv.oauthConfig(t, sp)
	ctx := context.Background()

	loginVia := func(t *testing.T, header http.Header) string {
		t.Helper()
		verifier := oauth2.GenerateVerifier()
		q := proxy.authorize(t, authorizeURL(conf, verifier), header)
		if q.Get("error") != "" {
			return q.Get("error")
		}
		token, err := conf.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier))
		if err != nil {
			t.Fatal(err)
		}
		claims, err := contract.Open(token.AccessToken, srv.openKey)
		if err != nil || claims.PhoneNumber != dev.msisdn {
			t.Fatalf("logged in %+v, %v; want the device behind the proxy", claims, err)
		}
		return ""
	}
	for name, tc := range map[string]struct {
		header http.Header
		want   string
	}{
		"X-Forwarded-For":                 {http.Header{"X-Forwarded-For": {dev.addr.String()}}, ""},
		"X-Forwarded-For with port":       {http.Header{"X-Forwarded-For": {dev.addr.String()}, "X-Forwarded-Port": {"40001"}}, ""},
		"Forwarded is not the source":     {http.Header{"Forwarded": {`for="` + dev.addr.String() + `:40001";proto=https`}}, "access_denied"},
		"spoofed left of the real client": {http.Header{"X-Forwarded-For": {"10.9.9.9, " + dev.addr.String()}}, ""},
		"client spoofing a trusted hop":   {http.Header{"X-Forwarded-For": {dev.addr.String() + ", 127.10.250.250"}}, "access_denied"},
		"no header: the proxy itself":     {nil, "access_denied"},
		"garbage":                         {http.Header{"Forwarded": {`for=unknown`}}, "access_denied"},
	} {
		t.Run(name, func(t *testing.T) {
			if got := loginVia(t, tc.header); got != tc.want {
				t.Fatalf("error %q, want %q", got, tc.want)
			}
		})
	}
}

// failingResolver is a network that cannot answer.
type failingResolver struct{}

func (failingResolver) Resolve(context.Context, netip.Addr, uint16, time.Time) (networkSession, error) {
	return networkSession{}, errors.New("connection refused")
}

func TestDependenciesDown(t *testing.T) {
	t.Run("network resolver", func(t *testing.T) {
		srv := startServer(t, withResolver(failingResolver{}))
		sp := srv.client(store.ClientSpec{})
		conf, _ := srv.oauthConfig(t, sp)
		wantRedirectError(t, srv.newDevice(), authorizeURL(conf, oauth2.GenerateVerifier()), nil, "temporarily_unavailable")
	})
	t.Run("postgres at the token endpoint", func(t *testing.T) {
		srv := startServer(t)
		sp := srv.client(store.ClientSpec{})
		conf, code, verifier := srv.code(t, sp, srv.newDevice())
		srv.cutDatabase(t)
		_, err := conf.Exchange(context.Background(), code, oauth2.VerifierOption(verifier))
		if e, status := tokenError(t, err); e != "temporarily_unavailable" || status != http.StatusServiceUnavailable {
			t.Fatalf("got %s %d, want temporarily_unavailable 503", e, status)
		}
	})
	t.Run("postgres at the authorization endpoint", func(t *testing.T) {
		srv := startServer(t)
		sp := srv.client(store.ClientSpec{})
		conf, _ := srv.oauthConfig(t, sp)
		dev := srv.newDevice()
		srv.cutDatabase(t)
		resp := dev.get(t, authorizeURL(conf, oauth2.GenerateVerifier()), nil)
		if resp.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("status %d, want 503", resp.StatusCode)
		}
	})
}
