package resource

import (
	"context"
	"io"
	"net"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/numverify/numverify/internal/pgtest"
)

// pgProxy is a TCP proxy to Postgres that a test can cut and restore, to
// play Postgres going away without stopping the shared server.
type pgProxy struct {
	target string
	ln     net.Listener
	mu     sync.Mutex
	open   bool
	conns  []net.Conn
}

func newPGProxy(t *testing.T, target string) *pgProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &pgProxy{target: target, ln: ln, open: true}
	t.Cleanup(func() { ln.Close(); p.cut() })
	go p.serve()
	return p
}

func (p *pgProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if !p.open {
			p.mu.Unlock()
			c.Close()
			continue
		}
		upstream, err := net.Dial("tcp", p.target)
		if err != nil {
			p.mu.Unlock()
			c.Close()
			continue
		}
		p.conns = append(p.conns, c, upstream)
		p.mu.Unlock()
		go func() { _, _ = io.Copy(upstream, c); upstream.Close() }()
		go func() { _, _ = io.Copy(c, upstream); c.Close() }()
	}
}

// cut closes every proxied connection and refuses new ones.
func (p *pgProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.open = false
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

func (p *pgProxy) restore() {
	p.mu.Lock()
	p.open = true
	p.mu.Unlock()
}

// TestPostgresDown: when Postgres is needed and gone, 503 UNAVAILABLE (v0
// code 5), never a 500; back to normal when it returns. Needed means:
// single-use tokens (every call), and revocations once the feed has been
// down longer than RevocationMaxStaleness.
func TestPostgresDown(t *testing.T) {
	is := newTestIssuer(t)
	db := pgtest.New(t)
	u, err := url.Parse(db.URL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := newPGProxy(t, u.Host)
	u.Host = proxy.ln.Addr().String()
	cfg, err := pgxpool.ParseConfig(u.String())
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.ConnectTimeout = time.Second
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	proxied := &pgtest.DB{Name: db.Name, URL: u.String(), Pool: pool}

	for _, tc := range []struct {
		name      string
		configure func(*Config)
	}{
		{"single_use", func(c *Config) { c.SingleUseTokens = true }},
		{"revocation_feed_stale", func(c *Config) { c.RevocationMaxStaleness = 300 * time.Millisecond }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			proxy.restore()
			ts := startServerOn(t, is, proxied, tc.configure)
			if r := ts.do(t, verifyCall(is.token(testPhone))); r.status != 200 {
				t.Fatalf("with Postgres: %d %s", r.status, r.body)
			}
			proxy.cut()
			waitFor(t, 5*time.Second, "503 with Postgres gone", func() bool {
				r := ts.do(t, verifyCall(is.token(testPhone)))
				if r.status != 200 && r.status != 503 {
					t.Fatalf("Postgres gone: %d %s\n%s", r.status, r.body, ts.logs.String())
				}
				return r.status == 503 && r.errorCode() == "UNAVAILABLE"
			})
			v0 := verifyCall(is.token(testPhone))
			v0.path = basePathV0 + "/verify"
			if r := ts.do(t, v0); r.status != 503 || r.errorCode() != "5" {
				t.Errorf("v0 with Postgres gone: %d %s", r.status, r.body)
			}
			proxy.restore()
			waitFor(t, 15*time.Second, "recovery", func() bool { return ts.do(t, verifyCall(is.token(testPhone))).status == 200 })
		})
	}
}
