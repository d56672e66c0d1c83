package authz_test

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/numverify/numverify/authz"
	"github.com/numverify/numverify/authz/store"
	"github.com/numverify/numverify/internal/contract"
	"github.com/numverify/numverify/internal/pgtest"
)

// BenchmarkLogin is the whole silent login, authorize then token, as 64
// devices at once against Postgres: each device requests from its own
// address, the SP exchanges with client_secret_basic and PKCE, the ID token
// is signed with the client's registered algorithm, ES256 (or RS256), and
// the access token (always ES256) sealed as configured.
// It reports flows/s, p50 and p99 of a flow, and the statements per flow
// the server's pool sent to Postgres (counted by a pgx tracer, batched
// statements included).
func BenchmarkLogin(b *testing.B) {
	for _, tc := range []struct{ name, alg, format string }{
		{"ES256/jwt", "ES256", authz.FormatJWT},
		{"ES256/jwt-dir", "ES256", authz.FormatJWTDirect},
		{"ES256/opaque", "ES256", authz.FormatOpaque},
		{"RS256/jwt", "RS256", authz.FormatJWT},
	} {
		b.Run(tc.name, func(b *testing.B) { benchmarkLogin(b, tc.alg, tc.format) })
	}
}

func benchmarkLogin(b *testing.B, alg, format string) {
	const devices = 64
	var statements pgtest.Tracer
	srv := startServer(b, traceStatements(&statements), config(func(c *authz.Config) { c.AccessTokenFormat = format }))
	sp := srv.client(store.ClientSpec{IDTokenSignedResponseAlg: alg}) // the access token is ES256 whatever alg is
	conf, _ := srv.oauthConfig(b, sp)
	phones := make([]device, devices)
	for i := range phones {
		phones[i] = srv.newDevice()
	}
	// The SP's connections are reused, as a real backend's would be.
	spHTTP := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: devices}, Timeout: 10 * time.Second}

	flow := func(d device) error {
		verifier := randomString() + randomString() + randomString()
		q := url.Values{
			"client_id": {sp.id}, "response_type": {"code"}, "redirect_uri": {sp.redirectURI},
			"scope": {"openid " + contract.ScopeVerify}, "state": {"state-" + verifier[:8]}, "nonce": {"nonce-" + verifier[8:16]},
			"code_challenge": {s256(verifier)}, "code_challenge_method": {"S256"},
		}
		resp, err := d.http.Get(conf.Endpoint.AuthURL + "?" + q.Encode())
		if err != nil {
			return err
		}
		resp.Body.Close()
		loc, err := url.Parse(resp.Header.Get("Location"))
		if err != nil || loc.Query().Get("code") == "" {
			return fmt.Errorf("authorize: %d %s", resp.StatusCode, resp.Header.Get("Location"))
		}
		form := url.Values{"grant_type": {"authorization_code"}, "code": {loc.Query().Get("code")},
			"redirect_uri": {sp.redirectURI}, "code_verifier": {verifier}}
		req, _ := http.NewRequest(http.MethodPost, conf.Endpoint.TokenURL, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(sp.id, sp.secret)
		resp, err = spHTTP.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("token: %d", resp.StatusCode)
		}
		var body struct {
			AccessToken string `json:"access_token"`
			IDToken     string `json:"id_token"`
		}
		if err := jsonDecode(resp, &body); err != nil || body.AccessToken == "" || body.IDToken == "" {
			return fmt.Errorf("token response: %v", err)
		}
		return nil
	}
	for _, d := range phones { // warm connections and caches
		if err := flow(d); err != nil {
			b.Fatal(err)
		}
	}
	statementsBefore := statements.Statements()

	var next atomic.Int64
	durations := make([]time.Duration, b.N)
	var failed atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for _, d := range phones {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(b.N) {
					return
				}
				t0 := time.Now()
				if err := flow(d); err != nil {
					failed.Add(1)
					b.Error(err)
				}
				durations[i] = time.Since(t0)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if failed.Load() > 0 {
		b.Fatalf("%d flows failed", failed.Load())
	}
	slices.Sort(durations)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "flows/s")
	b.ReportMetric(float64(durations[len(durations)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(durations[len(durations)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(statements.Statements()-statementsBefore)/float64(b.N), "stmts/flow")
}
