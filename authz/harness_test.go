package authz_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/go-jose/go-jose/v4"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/oauth2"

	"github.com/numverify/numverify/authz"
	"github.com/numverify/numverify/authz/store"
	"github.com/numverify/numverify/internal/contract"
	"github.com/numverify/numverify/internal/httpx"
	"github.com/numverify/numverify/internal/keystore"
	"github.com/numverify/numverify/internal/pgtest"
	"github.com/numverify/numverify/network"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// clientCacheTTL is the client cache of the test servers, as serve_authz
// sets it by default.
const clientCacheTTL = 5 * time.Second

// testServer is a real authorization server on a real port, on its own
// migrated database.
type testServer struct {
	t       testing.TB
	db      *pgtest.DB
	store   *store.Store
	keys    authz.Keys
	openKey contract.Keys // opens access tokens as the resource server does
	server  *authz.Server
	issuer  string
	proxy   *http.Server
	// secretsKey opens the key store, as `numverify keys rotate` does.
	secretsKey []byte
}

// serverOption changes the server's configuration or collaborators.
type serverOption func(*serverSetup)

type serverSetup struct {
	cfg       authz.Config
	resolver  network.Resolver
	tracer    pgx.QueryTracer      // when set, the server's pool traces the statements it sends
	registry  *prometheus.Registry // when set, the server's metrics and httpx's are registered on it
	accessLog io.Writer            // when set, the handler is wrapped in httpx.Observe logging here
	now       func() time.Time     // the abuse limits' clock; nil: time.Now
	keysNow   func() time.Time     // the key store's clock; nil: time.Now
	consent   authz.Consent        // decides operator-token requests; nil: all allowed
}

// traceStatements makes the server's pool report every statement it sends
// to tracer.
func traceStatements(tracer *pgtest.Tracer) serverOption {
	return func(s *serverSetup) { s.tracer = tracer }
}

func config(f func(*authz.Config)) serverOption { return func(s *serverSetup) { f(&s.cfg) } }

func withResolver(r network.Resolver) serverOption {
	return func(s *serverSetup) { s.resolver = r }
}

type networkSession = network.Session

func startServer(t testing.TB, opts ...serverOption) *testServer {
	t.Helper()
	db := pgtest.New(t)
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	issuer := "http://" + listener.Addr().String()
	secretsKey := make([]byte, 32)
	rand.Read(secretsKey)

	hasher, err := store.NewSecretHasher(keystore.DeriveKey(secretsKey, keystore.LabelClientSecretHMAC))
	if err != nil {
		t.Fatal(err)
	}
	st := store.New(db.Pool, hasher, store.WithClientCache(clientCacheTTL))
	resolver, err := network.NewStore(db.Pool, network.Pools{})
	if err != nil {
		t.Fatal(err)
	}
	setup := serverSetup{
		cfg:      authz.Config{Issuer: issuer, SecretsKey: secretsKey},
		resolver: resolver,
	}
	for _, o := range opts {
		o(&setup)
	}
	cfg := setup.cfg
	if setup.tracer != nil {
		poolCfg, err := pgxpool.ParseConfig(db.URL)
		if err != nil {
			t.Fatal(err)
		}
		poolCfg.MaxConns = 32
		poolCfg.ConnConfig.Tracer = setup.tracer
		pool, err := pgxpool.NewWithConfig(context.Background(), poolCfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(pool.Close)
		st = store.New(pool, hasher, store.WithClientCache(clientCacheTTL))
		if setup.resolver, err = network.NewStore(pool, network.Pools{}); err != nil {
			t.Fatal(err)
		}
		db = &pgtest.DB{Name: db.Name, URL: db.URL, Pool: pool}
	}
	keys, openKeys := newTestKeys(t, db, secretsKey, keystore.WithClock(setup.keysNow))
	logOut := io.Discard
	if setup.accessLog != nil {
		logOut = setup.accessLog
	}
	logger := slog.New(slog.NewTextHandler(logOut, nil))
	deps := authz.Deps{Store: st, Keys: keys, Resolver: setup.resolver, Logger: logger, Now: setup.now, Consent: setup.consent}
	if setup.registry != nil {
		deps.Registerer = setup.registry
	}
	srv, err := authz.New(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	handler := srv.Handler()
	if setup.accessLog != nil {
		reg := prometheus.NewRegistry()
		if setup.registry != nil {
			reg = setup.registry
		}
		handler = httpx.Observe("authz", handler, logger, httpx.NewMetrics(reg))
	}
	hs := &http.Server{Handler: handler, ReadHeaderTimeout: 5 * time.Second}
	go hs.Serve(listener)
	t.Cleanup(func() { hs.Close() })
	return &testServer{t: t, db: db, store: st, keys: keys, openKey: openKeys, server: srv, issuer: issuer, secretsKey: secretsKey}
}

// client registers a client; spec fields left empty get test defaults.
type testClient struct {
	id, secret  string
	redirectURI string
	key         *ecdsa.PrivateKey // for private_key_jwt and request objects
	kid         string
}

func (s *testServer) client(spec store.ClientSpec) testClient {
	s.t.Helper()
	if spec.Name == "" {
		spec.Name = "test SP"
	}
	if len(spec.RedirectURIs) == 0 {
		spec.RedirectURIs = []string{"https://sp.example/callback"}
	}
	if len(spec.Scopes) == 0 {
		spec.Scopes = []string{"openid", contract.ScopeVerify, contract.ScopeShare}
	}
	if spec.IDTokenSignedResponseAlg == "" {
		spec.IDTokenSignedResponseAlg = "ES256" // as `numverify client create` registers
	}
	var key *ecdsa.PrivateKey
	kid := ""
	if spec.TokenEndpointAuthMethod == store.AuthMethodPrivateKeyJWT || spec.JWKS != nil {
		key, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		kid = "client-key-1"
		set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: kid, Algorithm: "ES256", Use: "sig"}}}
		spec.JWKS, _ = json.Marshal(set)
	}
	c, secret, err := s.store.CreateClient(context.Background(), spec)
	if err != nil {
		s.t.Fatalf("create client: %v", err)
	}
	return testClient{id: c.ID, secret: secret, redirectURI: spec.RedirectURIs[0], key: key, kid: kid}
}

var deviceCounter atomic.Uint32

// device is a subscriber's phone: an MSISDN attached to the network at its
// own loopback address, from which its HTTP requests leave.
type device struct {
	msisdn string
	addr   net.IP
	http   *http.Client
}

// newDevice attaches a new subscriber at the next 127.10.x.y address.
func (s *testServer) newDevice() device {
	s.t.Helper()
	d := newDetachedDevice()
	s.db.Exec(s.t, `INSERT INTO network_sessions (msisdn, ip) VALUES ($1, $2::inet)`, d.msisdn, d.addr.String())
	return d
}

// newDetachedDevice is a device at an address no session holds.
func newDetachedDevice() device {
	n := deviceCounter.Add(1)
	return newDetachedDeviceAt(netip.AddrFrom4([4]byte{127, 10, byte(n >> 8), byte(n)}))
}

// newDetachedDeviceAt is a device (or proxy) sending from addr.
func newDetachedDeviceAt(a netip.Addr) device {
	n := deviceCounter.Add(1)
	addr := net.IP(a.AsSlice())
	dialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: addr}, Timeout: 5 * time.Second}
	return device{
		msisdn: fmt.Sprintf("+3361%07d", n),
		addr:   addr,
		http: &http.Client{
			Transport: &http.Transport{DialContext: dialer.DialContext, MaxIdleConnsPerHost: 4},
			// The device reports where it is sent; it does not follow.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
			Timeout:       10 * time.Second,
		},
	}
}

// authorize sends the device to authURL and returns the redirect's query
// (or fails the test when there is no redirect).
func (d device) authorize(t testing.TB, authURL string, header http.Header) url.Values {
	t.Helper()
	resp := d.get(t, authURL, header)
	if resp.StatusCode != http.StatusFound {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("authorize: status %d, want 302: %s", resp.StatusCode, body)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	return loc.Query()
}

func (d device) get(t testing.TB, rawURL string, header http.Header) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, rawURL, nil)
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := d.http.Do(req)
	if err != nil {
		t.Fatalf("device request: %v", err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// oauthConfig is the SP's x/oauth2 configuration, from discovery.
func (s *testServer) oauthConfig(t testing.TB, c testClient, scopes ...string) (*oauth2.Config, *oidc.Provider) {
	t.Helper()
	provider, err := oidc.NewProvider(context.Background(), s.issuer)
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	if len(scopes) == 0 {
		scopes = []string{oidc.ScopeOpenID, contract.ScopeVerify}
	}
	endpoint := provider.Endpoint()
	endpoint.AuthStyle = oauth2.AuthStyleInHeader
	return &oauth2.Config{ClientID: c.id, ClientSecret: c.secret, Endpoint: endpoint, RedirectURL: c.redirectURI, Scopes: scopes}, provider
}

// tokenError is the RFC 6749 §5.2 error of a failed exchange.
func tokenError(t testing.TB, err error) (code string, status int) {
	t.Helper()
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		t.Fatalf("want an OAuth2 error, got %v", err)
	}
	return re.ErrorCode, re.Response.StatusCode
}

// postForm posts form to the endpoint as an SP would.
func postForm(t testing.TB, endpoint string, form url.Values, user, password string) (int, map[string]any) {
	t.Helper()
	status, _, body := postToken(t, endpoint, form, user, password)
	return status, body
}

// postToken posts form (with Basic client credentials when user is set) and
// returns the status, headers and JSON body.
func postToken(t testing.TB, endpoint string, form url.Values, user, password string) (int, http.Header, map[string]any) {
	t.Helper()
	return doRequest(t, http.DefaultClient, http.MethodPost, endpoint, form.Encode(), formHeader(user, password))
}

// formHeader is a form body's Content-Type, with Basic client credentials
// when user is set.
func formHeader(user, password string) http.Header {
	header := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}
	if user != "" {
		header.Set("Authorization", basic(user, password).Get("Authorization"))
	}
	return header
}

// basic is an Authorization header with HTTP Basic client credentials,
// form-encoded first (RFC 6749 §2.3.1).
func basic(user, password string) http.Header {
	req, _ := http.NewRequest(http.MethodGet, "/", nil)
	req.SetBasicAuth(url.QueryEscape(user), url.QueryEscape(password))
	return req.Header
}

// doRequest sends a request with client, with header and, when body is set,
// a form body, and returns the status, headers and JSON body (nil when the
// body is not a JSON object).
func doRequest(t testing.TB, client *http.Client, method, target, body string, header http.Header) (int, http.Header, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, target, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		out = nil
	}
	return resp.StatusCode, resp.Header, out
}

func s256(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

func randomString() string {
	b := make([]byte, 16)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// cutDatabase makes Postgres unreachable for this server's database: every
// connection is ended and no new one accepted (until the test ends).
func (s *testServer) cutDatabase(t testing.TB) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, pgtest.ServerURL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	name := pgx.Identifier{s.db.Name}.Sanitize()
	if _, err := conn.Exec(ctx, "ALTER DATABASE "+name+" ALLOW_CONNECTIONS false"); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", s.db.Name); err != nil {
		t.Fatal(err)
	}
}

func jsonDecode(resp *http.Response, v any) error { return json.NewDecoder(resp.Body).Decode(v) }
