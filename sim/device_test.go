package sim

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"testing"
)

// fakeAuthz logs in by the TCP peer's address, like numverify's authz: the
// held address gets a code, any other access_denied; it first bounces
// through a second URL of its own, as a server that normalises requests does.
func fakeAuthz(t *testing.T, held netip.Addr) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /authorize", func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor != 1 {
			t.Errorf("device spoke %s, want HTTP/1.x", r.Proto)
		}
		if r.URL.Query().Get("client_id") != "sp" {
			http.Error(w, "unknown client", http.StatusBadRequest)
			return
		}
		http.Redirect(w, r, "/authorize/resume?"+r.URL.RawQuery, http.StatusFound)
	})
	mux.HandleFunc("GET /authorize/resume", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		peer := netip.MustParseAddrPort(r.RemoteAddr).Addr()
		back := url.Values{"state": {q.Get("state")}}
		if peer == held {
			back.Set("code", "code-for-"+peer.String())
		} else {
			back.Set("error", "access_denied")
			back.Set("error_description", "not on the mobile network")
		}
		http.Redirect(w, r, q.Get("redirect_uri")+"?"+back.Encode(), http.StatusFound)
	})
	return httptest.NewServer(mux)
}

func TestDeviceAuthorizeFollowsRedirectsUntilTheCallback(t *testing.T) {
	held := netip.MustParseAddr("127.10.200.7")
	authz := fakeAuthz(t, held)
	defer authz.Close()
	callbackHit := false
	sp := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { callbackHit = true }))
	defer sp.Close()

	tests := []struct {
		name      string
		device    netip.Addr
		clientID  string
		wantCode  string
		wantError string
		wantPage  int
	}{
		{"held address gets a code", held, "sp", "code-for-127.10.200.7", "", 0},
		{"address no session holds is denied", netip.MustParseAddr("127.10.200.8"), "sp", "", "access_denied", 0},
		{"unknown client ends on the server's page", held, "nobody", "", "", http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := NewDevice(tt.device, "", 0)
			defer d.Close()
			q := url.Values{"client_id": {tt.clientID}, "state": {"s1"}, "redirect_uri": {sp.URL + "/callback"}}
			out, err := d.Authorize(context.Background(), authz.URL+"/authorize?"+q.Encode())
			if err != nil {
				t.Fatal(err)
			}
			if out.Code != tt.wantCode || out.Error != tt.wantError || out.Status != tt.wantPage {
				t.Fatalf("outcome %+v", out)
			}
			if tt.wantPage == 0 {
				if out.State != "s1" || !strings.HasPrefix(out.Callback, sp.URL+"/callback?") || len(out.Hops) != 2 {
					t.Fatalf("outcome %+v", out)
				}
			} else if !strings.Contains(out.Page, "unknown client") {
				t.Fatalf("page %q", out.Page)
			}
		})
	}
	if callbackHit {
		t.Error("the device requested the SP callback; it must stop at the Location")
	}
}

func TestDeviceBrowseKeepsCookiesAcrossTheFlow(t *testing.T) {
	held := netip.MustParseAddr("127.10.200.9")
	authz := fakeAuthz(t, held)
	defer authz.Close()
	mux := http.NewServeMux()
	var sp *httptest.Server
	mux.HandleFunc("GET /start", func(w http.ResponseWriter, r *http.Request) {
		http.SetCookie(w, &http.Cookie{Name: "sid", Value: "xyz", HttpOnly: true, SameSite: http.SameSiteLaxMode})
		q := url.Values{"client_id": {"sp"}, "state": {"s2"}, "redirect_uri": {sp.URL + "/callback"}}
		http.Redirect(w, r, authz.URL+"/authorize?"+q.Encode(), http.StatusFound)
	})
	mux.HandleFunc("GET /callback", func(w http.ResponseWriter, r *http.Request) {
		c, err := r.Cookie("sid")
		if err != nil || c.Value != "xyz" {
			http.Error(w, "no session cookie", http.StatusBadRequest)
			return
		}
		w.Write([]byte("<html><title>t</title><body><h1>Verified &amp; done</h1><p>code " + r.URL.Query().Get("code") + "</p></body></html>"))
	})
	sp = httptest.NewServer(mux)
	defer sp.Close()

	d := NewDevice(held, "", 0)
	defer d.Close()
	page, err := d.Browse(context.Background(), sp.URL+"/start")
	if err != nil {
		t.Fatal(err)
	}
	if page.Status != 200 || page.Text != "Verified & done code code-for-127.10.200.9" || len(page.Hops) != 4 {
		t.Fatalf("page %+v", page)
	}
}

func TestDeviceSendsFromItsAddress(t *testing.T) {
	var peer string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		peer, _, _ = net.SplitHostPort(r.RemoteAddr)
	}))
	defer srv.Close()
	addr := netip.MustParseAddr("127.10.201.3")
	if err := CheckLocal(addr); err != nil {
		t.Fatal(err)
	}
	d := NewDevice(addr, "", 0)
	defer d.Close()
	if _, err := d.Browse(context.Background(), srv.URL); err != nil {
		t.Fatal(err)
	}
	if peer != addr.String() {
		t.Fatalf("server saw %s, want %s", peer, addr)
	}
	if err := CheckLocal(netip.MustParseAddr("192.0.2.1")); err == nil {
		t.Error("192.0.2.1 (TEST-NET) should not be local")
	}
}

// TestOutboundAddr: the address found is the one a server at the URL's host
// really sees as the peer of a TCP connection from this machine.
func TestOutboundAddr(t *testing.T) {
	peers := make(chan netip.Addr, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		peers <- netip.MustParseAddrPort(r.RemoteAddr).Addr()
	}))
	defer srv.Close()
	addr, err := OutboundAddr(context.Background(), srv.URL+"/start?phoneNumber=x")
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(srv.URL) // an unbound client: the kernel picks the source
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if seen := <-peers; addr != seen.Unmap() {
		t.Fatalf("OutboundAddr = %s, the server saw %s", addr, seen)
	}
	// Linux: 127.0.0.1 is the source for every 127.0.0.0/8 destination.
	if got, err := OutboundAddr(context.Background(), "http://127.10.0.7:9090/authorize"); err != nil || got != netip.MustParseAddr("127.0.0.1") {
		t.Errorf("OutboundAddr(127.10.0.7) = %s, %v; want 127.0.0.1", got, err)
	}
	if got, err := OutboundAddr(context.Background(), "http://[::1]/authorize"); err == nil && got != netip.IPv6Loopback() {
		t.Errorf("OutboundAddr([::1]) = %s, want ::1", got)
	}
	for _, bad := range []string{"", "/authorize", "http://", "http://no-such-host.invalid/authorize"} {
		if got, err := OutboundAddr(context.Background(), bad); err == nil {
			t.Errorf("OutboundAddr(%q) = %s, want an error", bad, got)
		}
	}
}

// TestConnectTo: a name that does not resolve reaches the server it is
// mapped to, and the request keeps the name (Host header, cookies).
func TestConnectTo(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/set" {
			http.SetCookie(w, &http.Cookie{Name: "s", Value: "1", Path: "/"})
			http.Redirect(w, r, "/get", http.StatusFound)
			return
		}
		c, err := r.Cookie("s")
		if err != nil {
			http.Error(w, "no cookie", http.StatusBadRequest)
			return
		}
		w.Write([]byte("host " + r.Host + " cookie " + c.Value))
	}))
	defer srv.Close()
	from, to, err := ParseConnectTo("sp.invalid:8080:" + srv.Listener.Addr().String())
	if err != nil || from != "sp.invalid:8080" || to != srv.Listener.Addr().String() {
		t.Fatalf("ParseConnectTo = %q, %q, %v", from, to, err)
	}
	d := NewDevice(netip.MustParseAddr("127.0.0.1"), "", 0)
	defer d.Close()
	if _, err := d.Browse(context.Background(), "http://sp.invalid:8080/set"); err == nil {
		t.Fatal("sp.invalid resolved without ConnectTo: the test proves nothing")
	}
	d.ConnectTo(from, to)
	page, err := d.Browse(context.Background(), "http://sp.invalid:8080/set")
	if err != nil || page.Status != 200 || page.Text != "host sp.invalid:8080 cookie 1" {
		t.Fatalf("Browse through ConnectTo = %+v, %v", page, err)
	}

	for spec, want := range map[string][2]string{
		"localhost:8080:sp:8080":      {"localhost:8080", "sp:8080"},
		"[::1]:80:[fd00::7]:8080":     {"[::1]:80", "[fd00::7]:8080"},
		"a.example:443:10.0.0.1:8443": {"a.example:443", "10.0.0.1:8443"},
	} {
		if from, to, err := ParseConnectTo(spec); err != nil || from != want[0] || to != want[1] {
			t.Errorf("ParseConnectTo(%q) = %q, %q, %v; want %q", spec, from, to, err, want)
		}
	}
	for _, bad := range []string{"", "localhost:8080", "localhost:8080:sp", "localhost::sp:8080", "[::1:80:sp:80", "a:1:b:2:3"} {
		if from, to, err := ParseConnectTo(bad); err == nil {
			t.Errorf("ParseConnectTo(%q) = %q, %q; want an error", bad, from, to)
		}
	}
}
