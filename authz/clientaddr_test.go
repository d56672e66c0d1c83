package authz

import (
	"net/http"
	"net/netip"
	"strings"
	"testing"
)

func TestClientAddress(t *testing.T) {
	trusted := trustedProxies{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8:ffff::/48")}
	for _, tc := range []struct {
		name, peer string
		header     http.Header
		want       string
		wantErr    bool
	}{
		{"untrusted peer, headers ignored", "203.0.113.9:5555", http.Header{"X-Forwarded-For": {"198.51.100.1"}, "Forwarded": {"for=198.51.100.1"}}, "203.0.113.9:5555", false},
		{"trusted peer, no header", "10.0.0.1:4000", nil, "10.0.0.1:4000", false},
		{"XFF", "10.0.0.1:4000", http.Header{"X-Forwarded-For": {"198.51.100.1"}}, "198.51.100.1:0", false},
		{"XFF right-most untrusted", "10.0.0.1:4000", http.Header{"X-Forwarded-For": {"1.2.3.4, 198.51.100.1, 10.0.0.2"}}, "198.51.100.1:0", false},
		{"XFF over two lines", "10.0.0.1:4000", http.Header{"X-Forwarded-For": {"1.2.3.4", "198.51.100.1"}}, "198.51.100.1:0", false},
		{"XFF port for the last hop", "10.0.0.1:4000", http.Header{"X-Forwarded-For": {"198.51.100.1"}, "X-Forwarded-Port": {"40001"}}, "198.51.100.1:40001", false},
		{"XFF port not for a deeper hop", "10.0.0.1:4000", http.Header{"X-Forwarded-For": {"198.51.100.1, 10.0.0.2"}, "X-Forwarded-Port": {"40001"}}, "198.51.100.1:0", false},
		{"XFF all trusted: left-most", "10.0.0.1:4000", http.Header{"X-Forwarded-For": {"10.1.1.1, 10.0.0.2"}}, "10.1.1.1:0", false},
		{"XFF garbage", "10.0.0.1:4000", http.Header{"X-Forwarded-For": {"198.51.100.1, nonsense"}}, "", true},
		{"Forwarded", "10.0.0.1:4000", http.Header{"Forwarded": {`for=198.51.100.1;proto=https`}}, "198.51.100.1:0", false},
		{"Forwarded with port", "10.0.0.1:4000", http.Header{"Forwarded": {`for="198.51.100.1:40001"`}}, "198.51.100.1:40001", false},
		{"Forwarded IPv6", "10.0.0.1:4000", http.Header{"Forwarded": {`For="[2001:db8:cafe::17]:4711"`}}, "[2001:db8:cafe::17]:4711", false},
		{"Forwarded chain", "10.0.0.1:4000", http.Header{"Forwarded": {`for=1.2.3.4, for=198.51.100.1;by=10.0.0.9, for=10.0.0.2`}}, "198.51.100.1:0", false},
		{"Forwarded preferred over XFF", "10.0.0.1:4000", http.Header{"Forwarded": {`for=198.51.100.1`}, "X-Forwarded-For": {"1.2.3.4"}}, "198.51.100.1:0", false},
		{"Forwarded unknown", "10.0.0.1:4000", http.Header{"Forwarded": {`for=unknown`}}, "", true},
		{"Forwarded obfuscated", "10.0.0.1:4000", http.Header{"Forwarded": {`for=_hidden`}}, "", true},
		{"Forwarded without for", "10.0.0.1:4000", http.Header{"Forwarded": {`proto=https`}}, "", true},
		{"Forwarded quoted semicolon", "10.0.0.1:4000", http.Header{"Forwarded": {`for="198.51.100.1";by="a;b"`}}, "198.51.100.1:0", false},
		{"IPv4-mapped peer", "[::ffff:10.0.0.1]:4000", http.Header{"X-Forwarded-For": {"198.51.100.1"}}, "198.51.100.1:0", false},
		{"zone refused", "10.0.0.1:4000", http.Header{"X-Forwarded-For": {"fe80::1%eth0"}}, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &http.Request{RemoteAddr: tc.peer, Header: tc.header}
			got, err := clientAddress(r, trusted)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("got %v, want an error", got)
				}
				return
			}
			if err != nil || got.String() != tc.want {
				t.Fatalf("got %v, %v; want %s", got, err, tc.want)
			}
		})
	}
}

// FuzzForwarded: whatever the headers, clientAddress never panics, and the
// address it returns is the peer or one written in the headers; from an
// untrusted peer it is always the peer.
func FuzzForwarded(f *testing.F) {
	for _, seed := range [][3]string{
		{"10.0.0.1:4000", `for=198.51.100.1;proto=https, for="[2001:db8::1]:4711"`, ""},
		{"10.0.0.1:4000", "", "198.51.100.1, 10.0.0.2"},
		{"10.0.0.1:4000", `for="\"quoted\"", for=unknown`, "x"},
		{"203.0.113.9:5555", "for=1.2.3.4", "1.2.3.4"},
		{"10.0.0.1:4000", `for="198.51.100.1:40001";by="a;b,c"`, ""},
	} {
		f.Add(seed[0], seed[1], seed[2])
	}
	trusted := trustedProxies{netip.MustParsePrefix("10.0.0.0/8")}
	f.Fuzz(func(t *testing.T, peer, forwarded, xff string) {
		header := http.Header{}
		if forwarded != "" {
			header.Set("Forwarded", forwarded)
		}
		if xff != "" {
			header.Set("X-Forwarded-For", xff)
		}
		got, err := clientAddress(&http.Request{RemoteAddr: peer, Header: header}, trusted)
		if err != nil {
			return
		}
		if !got.Addr().IsValid() || got.Addr().Zone() != "" || got.Addr().Is4In6() {
			t.Fatalf("invalid address %v", got)
		}
		p, perr := netip.ParseAddrPort(peer)
		if perr == nil && !trusted.contains(p.Addr()) && got.Addr() != p.Addr().Unmap() {
			t.Fatalf("untrusted peer %s, but %v chosen", peer, got)
		}
		if perr == nil && got.Addr() == p.Addr().Unmap() {
			return
		}
		if !mentions(forwarded+","+xff, got.Addr()) {
			t.Fatalf("address %v is neither the peer nor in the headers", got)
		}
	})
}

// mentions reports whether some token of the header text parses as a (also
// non-canonical, bracketed, ported or IPv4-mapped) form of a.
func mentions(s string, a netip.Addr) bool {
	for _, token := range strings.FieldsFunc(s, func(r rune) bool { return strings.ContainsRune(",; =\"\t", r) }) {
		if ap, err := netip.ParseAddrPort(token); err == nil && ap.Addr().Unmap() == a {
			return true
		}
		if b, err := netip.ParseAddr(strings.Trim(token, "[]")); err == nil && b.Unmap() == a {
			return true
		}
	}
	return false
}

func TestParseLoginHint(t *testing.T) {
	for _, tc := range []struct {
		in   string
		kind loginHintKind
		ok   bool
	}{
		{"", hintNone, true},
		{"tel:+33612345678", hintPhone, true},
		{"+33612345678", hintPhone, true},
		{"ipport:203.0.113.7:40001", hintAddress, true},
		{"ipport:[2001:db8::1]:40001", hintAddress, true},
		{"ipport:2001:db8::1", hintAddress, true},
		{"ipport:203.0.113.7", hintAddress, true},
		{"tel:0612345678", hintNone, false},
		{"33612345678", hintNone, false},
		{"user@example.com", hintNone, false},
		{"ipport:nonsense", hintNone, false},
		{"tel:+33 6 12 34 56 78", hintNone, false},
		{"ipport:" + strings.Repeat("1", 200), hintNone, false},
	} {
		got, err := parseLoginHint(tc.in)
		if (err == nil) != tc.ok || got.kind != tc.kind {
			t.Errorf("parseLoginHint(%q) = %+v, %v; want kind %d ok %v", tc.in, got, err, tc.kind, tc.ok)
		}
	}
}

// FuzzLoginHint: never panics; an accepted phone hint is E.164 and an
// accepted address hint a valid address.
func FuzzLoginHint(f *testing.F) {
	for _, s := range []string{"tel:+33612345678", "+33612345678", "ipport:[2001:db8::1]:40001", "ipport:203.0.113.7", "tel:", "ipport:", "+"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		h, err := parseLoginHint(s)
		if err != nil {
			return
		}
		switch h.kind {
		case hintPhone:
			if !strings.HasPrefix(h.phone, "+") || len(h.phone) > 16 {
				t.Fatalf("%q accepted as %q", s, h.phone)
			}
		case hintAddress:
			if !h.address.Addr().IsValid() {
				t.Fatalf("%q accepted as %v", s, h.address)
			}
		case hintNone:
			if s != "" {
				t.Fatalf("%q accepted as no hint", s)
			}
		}
	})
}
