package authz_test

import (
	"context"
	"github.com/numverify/numverify/internal/syncbuf"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"golang.org/x/oauth2"

	"github.com/numverify/numverify/authz/store"
)

// syncBuffer captures server output written from other goroutines.
type syncBuffer = syncbuf.Buffer

func observed(reg *prometheus.Registry, log *syncBuffer) serverOption {
	return func(s *serverSetup) { s.registry, s.accessLog = reg, log }
}

// counter is the value of the counter name{labels}; 0 when absent.
func counter(t testing.TB, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if hasLabels(m, labels) {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

func hasLabels(m *dto.Metric, want map[string]string) bool {
	got := map[string]string{}
	for _, l := range m.GetLabel() {
		got[l.GetName()] = l.GetValue()
	}
	for k, v := range want {
		if got[k] != v {
			return false
		}
	}
	return true
}

// A login, a refused login and a refused exchange show in the metrics, and
// the access log names the route and client of each request, never the
// number, the code or a token.
func TestMetricsAndAccessLog(t *testing.T) {
	reg, log := prometheus.NewRegistry(), &syncBuffer{}
	srv := startServer(t, observed(reg, log))
	sp := srv.client(store.ClientSpec{})
	dev := srv.newDevice()
	res := srv.login(t, sp, dev, "ES256")

	conf, _ := srv.oauthConfig(t, sp)
	wantRedirectError(t, newDetachedDevice(), authorizeURL(conf, oauth2.GenerateVerifier()), nil, "access_denied")
	_, code, verifier := srv.code(t, sp, srv.newDevice())
	if _, err := conf.Exchange(context.Background(), code, oauth2.VerifierOption(verifier+"x")); err == nil {
		t.Fatal("a wrong verifier was accepted")
	}

	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"numverify_authz_logins_total", map[string]string{"outcome": "success", "reason": ""}, 2},
		{"numverify_authz_logins_total", map[string]string{"outcome": "access_denied", "reason": "not_on_network"}, 1},
		{"numverify_authz_tokens_issued_total", map[string]string{"format": "jwt", "grant_type": "authorization_code"}, 1},
		{"numverify_authz_token_errors_total", map[string]string{"error": "invalid_grant"}, 1},
		{"numverify_http_requests_total", map[string]string{"route": "/token", "status": "200"}, 1},
		{"numverify_http_requests_total", map[string]string{"route": "/authorize", "status": "302"}, 3},
	} {
		if got := counter(t, reg, c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}

	lines := log.String()
	for _, want := range []string{"route=/token", "route=/authorize", "client_id=" + sp.id} {
		if !strings.Contains(lines, want) {
			t.Errorf("access log lacks %q:\n%s", want, lines)
		}
	}
	secrets := map[string]string{
		"MSISDN": strings.TrimPrefix(dev.msisdn, "+"), "code": code, "verifier": verifier,
		"access token": res.token.AccessToken, "client secret": sp.secret,
	}
	for what, v := range secrets {
		if strings.Contains(lines, v) {
			t.Errorf("the log contains the %s", what)
		}
	}
}
