package httpx

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/pires/go-proxyproto"
)

func TestProxyProtocolListener(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := ProxyProtocolListener(raw, []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}, 2*time.Second)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, r.RemoteAddr)
	}), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	target := raw.Addr().(*net.TCPAddr)

	v2 := func(command proxyproto.ProtocolVersionAndCommand) []byte {
		h := &proxyproto.Header{Version: 2, Command: command, TransportProtocol: proxyproto.TCPv4,
			SourceAddr:      &net.TCPAddr{IP: net.ParseIP("198.51.100.7"), Port: 40001},
			DestinationAddr: target}
		var b bytes.Buffer
		if _, err := h.WriteTo(&b); err != nil {
			t.Fatal(err)
		}
		return b.Bytes()
	}
	v1 := []byte("PROXY TCP4 198.51.100.7 127.0.0.1 40001 443\r\n")
	v1Unknown := []byte("PROXY UNKNOWN\r\n")
	for _, tc := range []struct {
		name   string
		from   string // local address to dial from
		header []byte
		want   string // RemoteAddr seen by the handler; "" when the connection must be closed
	}{
		{"trusted, v1", "127.0.0.1", v1, "198.51.100.7:40001"},
		{"trusted, v2", "127.0.0.1", v2(proxyproto.PROXY), "198.51.100.7:40001"},
		{"trusted, v2 LOCAL: the balancer itself", "127.0.0.1", v2(proxyproto.LOCAL), "127.0.0.1:"},
		{"trusted, v1 UNKNOWN: the balancer itself", "127.0.0.1", v1Unknown, "127.0.0.1:"},
		{"trusted, no header: closed", "127.0.0.1", nil, ""},
		{"untrusted, v1: closed", "127.0.0.2", v1, ""},
		{"untrusted, v2: closed", "127.0.0.2", v2(proxyproto.PROXY), ""},
		{"untrusted, no header: the peer", "127.0.0.2", nil, "127.0.0.2:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(tc.from)}, Timeout: 5 * time.Second}
			conn, err := d.Dial("tcp", target.String())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
			if _, err := conn.Write(append(tc.header, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"...)); err != nil {
				t.Fatal(err)
			}
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if tc.want == "" {
				if err == nil {
					body, _ := io.ReadAll(resp.Body)
					t.Fatalf("answered %d %q; want the connection closed", resp.StatusCode, body)
				}
				return
			}
			if err != nil {
				t.Fatalf("no response: %v", err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if got := string(body); !strings.HasPrefix(got, tc.want) || (strings.HasSuffix(tc.want, ":") && got == tc.want) {
				t.Fatalf("RemoteAddr %q, want %q", got, tc.want)
			}
		})
	}
}
