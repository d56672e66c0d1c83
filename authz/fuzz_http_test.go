package authz_test

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/numverify/numverify/authz/store"
)

// FuzzAuthorizeHTTP reads arbitrary bytes (request line, query, headers and
// body, possibly several pipelined requests) with net/http's own parser,
// http.ReadRequest, as the server's connection does, and serves each request
// it yields to the authorization server's handler, over a real store, from
// the address of a device a session holds. (A real socket cannot be used:
// closing its write side to end the input makes the server cancel the
// request's context, and leaving it open waits for a read timeout.)
// Whatever the bytes: no 5xx, nor a 5xx redirected to the client
// (server_error, temporarily_unavailable, or fosite's "error" for an error
// it does not know); a redirect goes to a registered redirect URI,
// or (ServeMux cleaning a path) to a path on this server; a code only for a
// request that sent an S256 challenge. $CLIENT becomes a registered client's
// id.
func FuzzAuthorizeHTTP(f *testing.F) {
	srv := startServer(f, unlimited())
	sp := srv.client(store.ClientSpec{})
	other := srv.client(store.ClientSpec{RedirectURIs: []string{"https://other.example/cb?tenant=a"}})
	registered := []string{sp.redirectURI + "?", other.redirectURI + "&"}
	dev := srv.newDevice()
	handler := srv.server.Handler()

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
	send := func(raw []byte) []*httptest.ResponseRecorder {
		raw = bytes.ReplaceAll(raw, []byte("$CLIENT"), []byte(sp.id))
		reader := bufio.NewReader(bytes.NewReader(raw))
		var responses []*httptest.ResponseRecorder
		for range 4 {
			req, err := http.ReadRequest(reader)
			if err != nil {
				return responses // net/http answers 400 or closes
			}
			req.RemoteAddr = dev.addr.String() + ":40000"
			rec := httptest.NewRecorder()
			handler.ServeHTTP(rec, req)
			_, _ = io.Copy(io.Discard, req.Body) // as the server does before the next request
			responses = append(responses, rec)
			if req.Close {
				break
			}
		}
		return responses
	}
	if rs := send([]byte(good)); len(rs) != 1 || !strings.Contains(rs[0].Header().Get("Location"), "code=") {
		f.Fatalf("the good seed did not log in: %v", rs)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		for _, resp := range send(raw) {
			if resp.Code >= 500 {
				t.Fatalf("status %d for %q", resp.Code, raw)
			}
			location := resp.Header().Get("Location")
			if resp.Code/100 != 3 {
				if location != "" {
					t.Fatalf("Location %q on a %d for %q", location, resp.Code, raw)
				}
				continue
			}
			if !redirectsTo(location, registered) {
				if resp.Code == http.StatusFound || !samePath(location) { // ServeMux answers 301 or 307
					t.Fatalf("%d to %q for %q", resp.Code, location, raw)
				}
				continue
			}
			if target, err := url.Parse(location); err != nil {
				t.Fatalf("unparseable Location %q", location)
			} else if e := target.Query().Get("error"); e == "server_error" || e == "temporarily_unavailable" || e == "error" {
				t.Fatalf("redirected %s (a 5xx in the query) for %q", e, raw)
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
