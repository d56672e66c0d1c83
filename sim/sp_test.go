package sim

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// startSP runs the SP backend against a fake operator and returns both.
func startSP(t *testing.T) (*fakeOperator, *httptest.Server) {
	t.Helper()
	var handler http.Handler
	spServer := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handler.ServeHTTP(w, r) }))
	t.Cleanup(spServer.Close)
	op := newFakeOperator(t, spServer.URL+"/callback")
	sp, err := NewSP(op.rpConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	handler = sp.Handler()
	return op, spServer
}

func TestSPVerifiesTheNumberTypedOnTheDevice(t *testing.T) {
	op, spServer := startSP(t)
	ctx := context.Background()
	held := netip.MustParseAddr("127.10.210.1")
	if _, err := op.network().Attach(ctx, "+33612345678", held); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		device   netip.Addr
		typed    string
		status   int
		wantText string
	}{
		{"own number", held, "+33612345678", 200, "Verified: +33612345678"},
		{"own number, typed with spaces", held, "+33 6 12 34 56 78", 200, "Verified: +33612345678"},
		{"someone else's number", held, "+33699999999", 200, "Not verified The device that made the request does not have this number."},
		{"device on Wi-Fi", netip.MustParseAddr("127.10.210.2"), "+33612345678", 200, "Not verified This device is not on the operator's mobile network"},
		{"not a number", held, "0612", 400, "Type the number in international form"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := NewDevice(tt.device, "", 0)
			defer d.Close()
			page, err := d.Browse(ctx, spServer.URL+"/start?"+url.Values{"phoneNumber": {tt.typed}}.Encode())
			if err != nil {
				t.Fatal(err)
			}
			if page.Status != tt.status || !strings.Contains(page.Text, tt.wantText) {
				t.Fatalf("status %d, page %q; want %d containing %q", page.Status, page.Text, tt.status, tt.wantText)
			}
		})
	}
}

func TestSPRefusesACallbackItDidNotStart(t *testing.T) {
	_, spServer := startSP(t)
	d := NewDevice(netip.MustParseAddr("127.10.210.3"), "", 0)
	defer d.Close()
	page, err := d.Browse(context.Background(), spServer.URL+"/callback?code=stolen&state=guessed")
	if err != nil {
		t.Fatal(err)
	}
	if page.Status != http.StatusBadRequest || !strings.Contains(page.Text, "state mismatch") {
		t.Fatalf("page %+v", page)
	}
}

func TestSPFormAndCookie(t *testing.T) {
	_, spServer := startSP(t)
	resp, err := http.Get(spServer.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	csp := resp.Header.Get("Content-Security-Policy")
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") || csp == "" {
		t.Fatalf("form: %d %v", resp.StatusCode, resp.Header)
	}
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err = noRedirect.PostForm(spServer.URL+"/start", url.Values{"phoneNumber": {"+33612345678"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, _ := url.Parse(resp.Header.Get("Location"))
	q := loc.Query()
	if resp.StatusCode != http.StatusFound || q.Get("code_challenge_method") != "S256" || q.Get("state") == "" ||
		q.Get("nonce") == "" || q.Get("scope") != DefaultScope || q.Get("response_type") != "code" {
		t.Fatalf("start redirect %d %s", resp.StatusCode, loc)
	}
	if strings.Contains(loc.String(), "33612345678") {
		t.Error("the typed number must not travel in the authorization request")
	}
	// Browsers apply form-action to the redirects after a submission: the
	// form's policy must allow where /start sends the browser.
	var formAction []string
	for _, directive := range strings.Split(csp, ";") {
		if f := strings.Fields(directive); len(f) > 0 && f[0] == "form-action" {
			formAction = f[1:]
		}
	}
	if origin := loc.Scheme + "://" + loc.Host; loc.Host == strings.TrimPrefix(spServer.URL, "http://") ||
		!slices.Contains(formAction, "'self'") || !slices.Contains(formAction, origin) {
		t.Errorf("form CSP %q: form-action must allow 'self' and the authorization endpoint's origin %s", csp, origin)
	}
	cookies := resp.Cookies()
	if len(cookies) != 1 || !cookies[0].HttpOnly || cookies[0].SameSite != http.SameSiteLaxMode {
		t.Fatalf("cookie %+v", cookies)
	}
}

func TestReadClientFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	// What `numverify client create --output` writes, other fields included.
	good := write("good.json", `{"client_id": "nv_abc", "client_secret": "s3cr3t-value", "client_name": "bank",
		"redirect_uris": ["http://localhost:8080/callback"], "scope": "openid", "created_at": "2026-01-02T03:04:05Z"}`)
	creds, err := ReadClientFile(good)
	if err != nil || creds.ClientID != "nv_abc" || creds.ClientSecret != "s3cr3t-value" {
		t.Fatalf("ReadClientFile = %+v, %v", creds, err)
	}
	for name, content := range map[string]string{
		"no-secret.json":  `{"client_id": "nv_abc", "client_name": "private_key_jwt client"}`,
		"no-id.json":      `{"client_secret": "s3cr3t-value"}`,
		"not-json.json":   `client_id=nv_abc client_secret=s3cr3t-value`,
		"wrong-type.json": `{"client_id": "nv_abc", "client_secret": ["s3cr3t-value"]}`,
		"big.json":        `{"client_id": "` + strings.Repeat("x", 70<<10) + `", "client_secret": "s3cr3t-value"}`,
	} {
		t.Run(name, func(t *testing.T) {
			creds, err := ReadClientFile(write(name, content))
			if err == nil {
				t.Fatalf("accepted: %+v", creds)
			}
			if creds != (ClientCredentials{}) {
				t.Errorf("returned credentials with the error: %+v", creds)
			}
			if strings.Contains(err.Error(), "s3cr3t") {
				t.Errorf("the error quotes the secret: %v", err)
			}
			if !strings.Contains(err.Error(), name) {
				t.Errorf("the error does not name the file: %v", err)
			}
		})
	}
	if _, err := ReadClientFile(filepath.Join(dir, "missing.json")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v, want os.ErrNotExist", err)
	}
}
