package sim

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/numverify/numverify/internal/phone"
)

// SP is the reference service-provider backend: a server-rendered page
// with a phone-number form; "Verify" starts the authorization code flow
// (PKCE S256, state and nonce kept server-side under an HttpOnly SameSite=Lax
// cookie); the callback checks state, exchanges the code, verifies the ID
// token and calls verify with the typed number; a result page says the
// answer.
//
// The authorization request must come from the device's own address: on a
// real deployment the browser is on the phone, on mobile data. In the
// testbed the browser's source address is whatever the kernel picks, which
// on Linux is 127.0.0.1 for every 127.0.0.0/8 destination, so a browser test
// attaches a network session on 127.0.0.1 (see the README); `numverify
// device --follow` binds its own 127.10.x.y address instead.
type SP struct {
	cfg          RPConfig
	logger       *slog.Logger
	callbackPath string
	secureCookie bool

	mu       sync.Mutex
	rp       *RelyingParty // discovered on first use, so the SP may start before authz
	sessions map[string]*spSession
}

type spSession struct {
	request AuthRequest
	number  string
	expires time.Time
}

const (
	spCookie      = "nv_sp_session"
	spSessionLife = 10 * time.Minute
	spMaxSessions = 100_000
)

// NewSP makes the SP backend for cfg (discovery happens on first use).
func NewSP(cfg RPConfig, logger *slog.Logger) (*SP, error) {
	redirect, err := url.Parse(cfg.RedirectURL)
	if err != nil || redirect.Host == "" {
		return nil, errors.New("sp: the redirect URL must be absolute (http://host:port/callback)")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	path := redirect.Path
	if path == "" {
		path = "/"
	}
	return &SP{cfg: cfg, logger: logger, callbackPath: path, secureCookie: redirect.Scheme == "https",
		sessions: map[string]*spSession{}}, nil
}

// Handler serves the SP's pages.
func (s *SP) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", s.handleForm)
	mux.HandleFunc("POST /start", s.handleStart)
	mux.HandleFunc("GET /start", s.handleStart) // a link or a device: /start?phoneNumber=%2B33…
	mux.HandleFunc("GET "+s.callbackPath, s.handleCallback)
	mux.HandleFunc("POST /wifi", s.handleWiFi) // a device off mobile data hands over its operator token (sp_wifi.go)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok\n")) })
	return s.securityHeaders(mux)
}

func (s *SP) securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", s.contentSecurityPolicy())
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer") // the callback URL carries the code
		h.Set("Cache-Control", "no-store")
		r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
		next.ServeHTTP(w, r)
	})
}

// contentSecurityPolicy allows no script and no external resource. Its
// form-action must also allow the authorization server: browsers apply it to
// the redirects that follow a form's submission, and "Verify" posts to /start,
// which redirects to the authorization endpoint (Chromium blocks the flow
// with form-action 'self' alone).
func (s *SP) contentSecurityPolicy() string {
	targets := []string{"'self'"}
	add := func(raw string) {
		u, err := url.Parse(raw)
		if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
			return
		}
		origin := u.Scheme + "://" + u.Host
		if !slices.Contains(targets, origin) {
			targets = append(targets, origin)
		}
	}
	add(s.cfg.Issuer)
	s.mu.Lock()
	if s.rp != nil {
		add(s.rp.oauth.Endpoint.AuthURL)
	}
	s.mu.Unlock()
	return "default-src 'none'; style-src 'unsafe-inline'; form-action " + strings.Join(targets, " ")
}

func (s *SP) handleForm(w http.ResponseWriter, r *http.Request) {
	// Discover now (once), so the form's policy names the authorization
	// endpoint even when it is not on the issuer's origin; a failure shows
	// up when the form is submitted.
	_, _ = s.relyingParty(r.Context())
	w.Header().Set("Content-Security-Policy", s.contentSecurityPolicy())
	s.render(w, http.StatusOK, pageData{Form: true, Number: r.URL.Query().Get("phoneNumber")})
}

func (s *SP) handleStart(w http.ResponseWriter, r *http.Request) {
	typed := r.FormValue("phoneNumber")
	number, err := phone.Normalize(typed)
	if err != nil {
		s.render(w, http.StatusBadRequest, pageData{Form: true, Number: typed,
			Problem: "Type the number in international form, with + and the country code."})
		return
	}
	rp, err := s.relyingParty(r.Context())
	if err != nil {
		s.logger.Warn("sp: discovery failed", "err", err)
		s.render(w, http.StatusServiceUnavailable, pageData{Result: true, Title: "Not verified",
			Detail: "The operator's authorization server cannot be reached; try again."})
		return
	}
	req := rp.NewAuthRequest("")
	id := rand.Text()
	if !s.putSession(id, &spSession{request: req, number: number, expires: time.Now().Add(spSessionLife)}) {
		s.render(w, http.StatusServiceUnavailable, pageData{Result: true, Title: "Not verified", Detail: "Too many verifications in progress; try again."})
		return
	}
	http.SetCookie(w, &http.Cookie{Name: spCookie, Value: id, Path: "/", MaxAge: int(spSessionLife.Seconds()),
		HttpOnly: true, Secure: s.secureCookie, SameSite: http.SameSiteLaxMode})
	http.Redirect(w, r, req.URL, http.StatusFound)
}

func (s *SP) handleCallback(w http.ResponseWriter, r *http.Request) {
	session := s.takeSession(r)
	http.SetCookie(w, &http.Cookie{Name: spCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true,
		Secure: s.secureCookie, SameSite: http.SameSiteLaxMode})
	q := r.URL.Query()
	if session == nil || subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(session.request.State)) != 1 {
		s.logger.Info("sp: callback refused", "reason", "unknown session or state mismatch")
		s.render(w, http.StatusBadRequest, pageData{Result: true, Title: "Not verified",
			Detail: "This answer does not belong to a verification started here (state mismatch); start again."})
		return
	}
	if e := q.Get("error"); e != "" {
		s.logger.Info("sp: authorization refused", "error", e)
		s.render(w, http.StatusOK, pageData{Result: true, Title: "Not verified", Number: session.number,
			Detail: explainAuthorizationError(e, q.Get("error_description")), Code: e})
		return
	}
	rp, err := s.relyingParty(r.Context())
	if err != nil {
		s.render(w, http.StatusServiceUnavailable, pageData{Result: true, Title: "Not verified", Detail: "The operator cannot be reached; try again."})
		return
	}
	tokens, err := rp.Exchange(r.Context(), q.Get("code"), session.request)
	if err != nil {
		s.logger.Warn("sp: code exchange failed", "err", err)
		s.render(w, http.StatusBadGateway, pageData{Result: true, Title: "Not verified", Number: session.number,
			Detail: "The operator refused the code exchange: " + errorSummary(err)})
		return
	}
	verified, err := rp.Verify(r.Context(), tokens.AccessToken, session.number, false)
	if err != nil {
		s.logger.Warn("sp: verify failed", "err", err)
		s.render(w, http.StatusBadGateway, pageData{Result: true, Title: "Not verified", Number: session.number,
			Detail: "The Number Verification API answered with an error: " + errorSummary(err)})
		return
	}
	s.logger.Info("sp: verification done", "verified", verified)
	if verified {
		s.render(w, http.StatusOK, pageData{Result: true, Verified: true, Title: "Verified: " + session.number, Number: session.number,
			Detail: "The operator confirms this is the number of the device that made the request."})
		return
	}
	s.render(w, http.StatusOK, pageData{Result: true, Title: "Not verified", Number: session.number,
		Detail: "The device that made the request does not have this number."})
}

func explainAuthorizationError(code, description string) string {
	detail := "The operator did not log this device in (" + code + ")."
	if code == "access_denied" {
		detail = "This device is not on the operator's mobile network (Wi-Fi, VPN or another operator), so it cannot be verified silently (access_denied)."
	}
	if description != "" {
		detail += " " + description
	}
	return detail
}

func errorSummary(err error) string {
	var apiErr *APIError
	if errors.As(err, &apiErr) {
		return strings.TrimSpace(apiErr.Code + " " + apiErr.Message)
	}
	var connErr *ConnectionError
	if errors.As(err, &connErr) {
		return "connection failed"
	}
	return err.Error()
}

func (s *SP) relyingParty(ctx context.Context) (*RelyingParty, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rp != nil {
		return s.rp, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	rp, err := NewRelyingParty(ctx, s.cfg)
	if err != nil {
		return nil, err
	}
	s.rp = rp
	return rp, nil
}

func (s *SP) putSession(id string, session *spSession) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.sessions) >= spMaxSessions {
		now := time.Now()
		for k, v := range s.sessions {
			if now.After(v.expires) {
				delete(s.sessions, k)
			}
		}
		if len(s.sessions) >= spMaxSessions {
			return false
		}
	}
	s.sessions[id] = session
	return true
}

// takeSession removes and returns the cookie's session (single use).
func (s *SP) takeSession(r *http.Request) *spSession {
	c, err := r.Cookie(spCookie)
	if err != nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	session := s.sessions[c.Value]
	delete(s.sessions, c.Value)
	if session == nil || time.Now().After(session.expires) {
		return nil
	}
	return session
}

type pageData struct {
	Form     bool
	Result   bool
	Verified bool
	Title    string
	Number   string
	Detail   string
	Code     string
	Problem  string
}

func (s *SP) render(w http.ResponseWriter, status int, data pageData) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if err := spPage.Execute(w, data); err != nil {
		s.logger.Warn("sp: render", "err", err)
	}
}

var spPage = template.Must(template.New("sp").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{if .Result}}{{.Title}}{{else}}Verify your phone number{{end}} · Example SP</title>
<style>
body{font-family:system-ui,sans-serif;max-width:28rem;margin:3rem auto;padding:0 1rem;color:#1a1a1a}
h1{font-size:1.4rem}
label{display:block;margin:1rem 0 .3rem}
input{font-size:1.1rem;padding:.4rem;width:100%;box-sizing:border-box}
button{margin-top:1rem;font-size:1.1rem;padding:.5rem 1.5rem}
.ok{color:#146c2e}.no{color:#a4161a}.problem{color:#a4161a}
</style>
</head>
<body>
{{if .Form}}
<h1>Verify your phone number</h1>
<p>Your operator confirms the number from your mobile data connection: no SMS, no code to type.</p>
<form method="post" action="/start">
<label for="phoneNumber">Phone number</label>
<input id="phoneNumber" name="phoneNumber" type="tel" inputmode="tel" autocomplete="tel" placeholder="+33612345678" value="{{.Number}}" required>
{{if .Problem}}<p class="problem" id="problem">{{.Problem}}</p>{{end}}
<button id="verify" type="submit">Verify</button>
</form>
<details>
<summary>On Wi-Fi? Your operator's app gives a one-time operator token</summary>
<form method="post" action="/wifi">
<label for="wifiPhoneNumber">Phone number</label>
<input id="wifiPhoneNumber" name="phoneNumber" type="tel" inputmode="tel" autocomplete="tel" placeholder="+33612345678" value="{{.Number}}" required>
<label for="operatorToken">Operator token</label>
<input id="operatorToken" name="operatorToken" autocomplete="off" required>
<label for="flow">Exchanged by</label>
<select id="flow" name="flow"><option value="jwt-bearer">JWT-bearer grant</option><option value="ciba">CIBA (poll)</option></select>
<button id="verifyWifi" type="submit">Verify with the token</button>
</form>
</details>
{{else}}
<h1 id="result" class="{{if .Verified}}ok{{else}}no{{end}}" data-verified="{{.Verified}}">{{.Title}}</h1>
<p id="detail">{{.Detail}}</p>
<p><a href="/">Verify another number</a></p>
{{end}}
</body>
</html>
`))

// ClientCredentials are an SP's client id and secret.
type ClientCredentials struct {
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret"`
}

// maxClientFile bounds what ReadClientFile reads.
const maxClientFile = 64 << 10

// ReadClientFile reads the client_id and client_secret of the JSON that
// `numverify client create --output FILE` writes (other fields are
// ignored). Its errors never quote the file's content.
func ReadClientFile(path string) (ClientCredentials, error) {
	var c ClientCredentials
	f, err := os.Open(path)
	if err != nil {
		return c, fmt.Errorf("client file: %w", err)
	}
	defer f.Close()
	raw, err := io.ReadAll(io.LimitReader(f, maxClientFile+1))
	if err != nil {
		return c, fmt.Errorf("client file %s: %w", path, err)
	}
	if len(raw) > maxClientFile {
		return c, fmt.Errorf("client file %s: larger than %d bytes, not a client's credentials", path, maxClientFile)
	}
	if err := json.Unmarshal(raw, &c); err != nil {
		// The decoder's message may quote a value; say where, not what.
		return ClientCredentials{}, fmt.Errorf("client file %s: not the JSON of `numverify client create --output`", path)
	}
	if c.ClientID == "" || c.ClientSecret == "" {
		return ClientCredentials{}, fmt.Errorf("client file %s: client_id or client_secret is missing (a client without a secret, private_key_jwt, cannot drive the reference SP)", path)
	}
	return c, nil
}
