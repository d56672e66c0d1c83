package authz_test

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/numverify/numverify/authz/store"
)

// FuzzAuthorizeHTTP writes arbitrary bytes (request line, query, headers and
// body) to the authorization server's real TCP listener from the address of
// a device a session holds, and reads every response the server writes.
// Whatever the bytes: no 5xx from the server's handler (net/http's own
// parser may answer 501 to an unknown transfer coding and 505 to an
// unknown HTTP version, as RFC 9112 says it should); a redirect goes to a
// registered redirect URI, or (ServeMux cleaning a path) to a path on this
// server; a code only for a request that sent an S256 challenge. The
// placeholder $CLIENT becomes a registered client's id.
func FuzzAuthorizeHTTP(f *testing.F) {
	srv := startServer(f, unlimited())
	sp := srv.client(store.ClientSpec{})
	other := srv.client(store.ClientSpec{RedirectURIs: []string{"https://other.example/cb?tenant=a"}})
	registered := []string{sp.redirectURI + "?", other.redirectURI + "&"}
	dev := srv.newDevice()
	addr := strings.TrimPrefix(srv.issuer, "http://")
	dialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: dev.addr}, Timeout: 5 * time.Second}

	const good = "GET /authorize?client_id=$CLIENT&response_type=code&redirect_uri=https%3A%2F%2Fsp.example%2Fcallback" +
		"&scope=openid+number-verification%3Averify&state=abcdefgh" +
		"&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256 HTTP/1.1\r\nHost: as\r\n\r\n"
	seeds := []string{
		good,
		"POST /authorize HTTP/1.1\r\nHost: as\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 200\r\n\r\n" +
			"client_id=$CLIENT&response_type=code&redirect_uri=https%3A%2F%2Fsp.example%2Fcallback&scope=openid&state=abcdefgh" +
			"&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256",
		"POST /authorize?client_id=$CLIENT HTTP/1.1\r\nHost: as\r\nContent-Type: multipart/form-data; boundary=b\r\nContent-Length: 60\r\n\r\n" +
			"--b\r\nContent-Disposition: form-data; name=\"state\"\r\n\r\nab",
		"POST /authorize HTTP/1.1\r\nHost: as\r\nTransfer-Encoding: chunked\r\nContent-Type: application/x-www-form-urlencoded\r\n\r\n" +
			"a\r\nclient_id=\r\n0\r\n\r\n",
		"GET /authorize?client_id=$CLIENT&redirect_uri=https%3A%2F%2Fevil.example%2F&response_type=code&state=x HTTP/1.1\r\nHost: as\r\n\r\n",
		"GET /authorize?client_id=$CLIENT&response_type=code&redirect_uri=https%3A%2F%2Fother.example%2Fcb%3Ftenant%3Da&response_mode=form_post&state=x HTTP/1.1\r\nHost: as\r\n\r\n",
		"GET /authorize?client_id=$CLIENT&nonce=%00&state=%ff HTTP/1.1\r\nHost: as\r\nForwarded: for=10.0.0.1\r\nX-Forwarded-For: 10.0.0.1\r\n\r\n",
		"GET /./authorize/../authorize?client_id=$CLIENT HTTP/1.1\r\nHost: as\r\n\r\n",
		"GET //evil.example/authorize HTTP/1.1\r\nHost: as\r\n\r\n",
		"GET /authorize?client_id=$CLIENT&client_id=x HTTP/1.0\r\n\r\n" + good,
		"GET /authorize HTTP/9.9\r\nHost: as\r\n\r\n",
	}
	for _, seed := range seeds {
		f.Add([]byte(seed))
	}
	send := func(t testing.TB, raw []byte) []*http.Response {
		conn, err := dialer.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		raw = bytes.ReplaceAll(raw, []byte("$CLIENT"), []byte(sp.id))
		if testing.Verbose() {
			println(string(raw))
		}
		if _, err := conn.Write(raw); err != nil {
			return nil // the server closed first: it refused the bytes
		}
		_ = conn.(*net.TCPConn).CloseWrite()
		var responses []*http.Response
		reader := bufio.NewReader(conn)
		for {
			resp, err := http.ReadResponse(reader, nil)
			if err != nil {
				return responses
			}
			body, _ := io.ReadAll(resp.Body)
			if testing.Verbose() {
				println(string(body))
			}
			resp.Body.Close()
			responses = append(responses, resp)
		}
	}
	if rs := send(f, []byte(good)); len(rs) != 1 || !strings.Contains(rs[0].Header.Get("Location"), "code=") {
		for _, r := range rs {
			f.Logf("%d %q", r.StatusCode, r.Header.Get("Location"))
		}
		f.Fatalf("the good seed did not log in")
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		for _, resp := range send(t, raw) {
			ours := resp.Header.Get("X-Frame-Options") != "" // securityHeaders: the handler wrote it
			if resp.StatusCode >= 500 && (ours || (resp.StatusCode != http.StatusNotImplemented && resp.StatusCode != http.StatusHTTPVersionNotSupported)) {
				t.Fatalf("status %d for %q", resp.StatusCode, raw)
			}
			location := resp.Header.Get("Location")
			if resp.StatusCode/100 != 3 {
				if location != "" {
					t.Fatalf("Location %q on a %d for %q", location, resp.StatusCode, raw)
				}
				continue
			}
			if !redirectsTo(location, registered) {
				if resp.StatusCode != http.StatusMovedPermanently || !samePath(location) {
					t.Fatalf("%d to %q for %q", resp.StatusCode, location, raw)
				}
				continue
			}
			if strings.Contains(location, "code=") && !bytes.Contains(raw, []byte("S256")) {
				t.Fatalf("code issued without an S256 challenge for %q", raw)
			}
		}
	})
}

// redirectsTo reports whether location starts with one of the prefixes.
func redirectsTo(location string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(location, p) {
			return true
		}
	}
	return false
}

// samePath reports whether location is a path on the same server (not
// "//host" nor "/\host", which browsers take for another host).
func samePath(location string) bool {
	return strings.HasPrefix(location, "/") && !strings.HasPrefix(location, "//") && !strings.HasPrefix(location, "/\\")
}
