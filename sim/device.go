// Package sim drives numverify purely over HTTP, the way the outside world
// does: simulated handsets (Device), the reference service-provider backend
// (SP, RelyingParty), a load generator (Bench) and the scripted demo
// (RunDemo). It imports none of the servers.
//
// On Linux every address of 127.0.0.0/8 reaches loopback, so each simulated
// device binds its connections to its own source address (127.10.x.y), and the
// authorization server sees that address as the TCP peer, exactly as an
// operator's server sees a handset's address on the mobile data network.
package sim

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// maxRedirects bounds every redirect chain a device follows.
const maxRedirects = 10

// Device is one simulated handset: a source address and the HTTP client that
// sends every request from it (HTTP/1.1, keep-alive, its own connections).
type Device struct {
	Addr   netip.Addr
	MSISDN string // E.164; empty when unknown (a device on Wi-Fi)
	// Client sends from Addr and never follows redirects by itself: Authorize
	// and Browse follow them as an operator SDK or a browser would.
	Client *http.Client
	// Transport is Client's transport, kept to close idle connections.
	Transport *http.Transport
}

// NewDevice makes a device whose connections leave from addr. maxConns bounds
// its idle keep-alive connections (0: 2).
func NewDevice(addr netip.Addr, msisdn string, maxConns int) *Device {
	if maxConns <= 0 {
		maxConns = 2
	}
	dialer := &net.Dialer{
		LocalAddr: &net.TCPAddr{IP: addr.AsSlice()},
		Timeout:   5 * time.Second,
		KeepAlive: 30 * time.Second,
	}
	transport := &http.Transport{
		DialContext:         dialer.DialContext,
		Protocols:           http1Only(),
		MaxIdleConns:        maxConns,
		MaxIdleConnsPerHost: maxConns,
		IdleConnTimeout:     50 * time.Second,
		DisableCompression:  true,
	}
	jar, _ := cookiejar.New(nil) // never fails with nil options
	return &Device{
		Addr:      addr,
		MSISDN:    msisdn,
		Transport: transport,
		Client: &http.Client{
			Transport:     transport,
			Jar:           jar,
			Timeout:       15 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}
}

func http1Only() *http.Protocols {
	var p http.Protocols
	p.SetHTTP1(true) // what operator SDKs speak; never HTTP/2
	return &p
}

// ConnectTo makes the device connect to to (host:port) whenever a request is
// for from (host:port), as curl --connect-to does: URLs, the Host header and
// cookies keep from's name. In the compose testbed the SP's registered
// redirect URI is http://localhost:8080/callback (authz accepts plain http
// only on loopback names) while the handset reaches the SP as sp:8080. Call
// it before the device sends anything.
func (d *Device) ConnectTo(from, to string) {
	dial := d.Transport.DialContext
	d.Transport.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		if strings.EqualFold(addr, from) {
			addr = to
		}
		return dial(ctx, network, addr)
	}
}

// ParseConnectTo reads curl's --connect-to syntax, HOST1:PORT1:HOST2:PORT2,
// into the from and to of ConnectTo (IPv6 addresses in brackets).
func ParseConnectTo(spec string) (from, to string, err error) {
	parts, rest := []string{}, spec
	for len(parts) < 3 && rest != "" {
		var part string
		if strings.HasPrefix(rest, "[") {
			end := strings.Index(rest, "]")
			if end < 0 {
				return "", "", fmt.Errorf("connect-to %q: unclosed [", spec)
			}
			part, rest = rest[1:end], strings.TrimPrefix(rest[end+1:], ":")
		} else {
			part, rest, _ = strings.Cut(rest, ":")
		}
		parts = append(parts, part)
	}
	parts = append(parts, rest)
	if len(parts) != 4 || slices.Contains(parts, "") || !isPort(parts[1]) || !isPort(parts[3]) {
		return "", "", fmt.Errorf("connect-to %q: want HOST1:PORT1:HOST2:PORT2", spec)
	}
	return net.JoinHostPort(parts[0], parts[1]), net.JoinHostPort(parts[2], parts[3]), nil
}

func isPort(s string) bool {
	n, err := strconv.Atoi(s)
	return err == nil && n > 0 && n < 65536
}

// Close drops the device's idle connections.
func (d *Device) Close() { d.Transport.CloseIdleConnections() }

// Outcome is where an authorization request ended.
type Outcome struct {
	// Hops are the URLs requested, in order (the authorization server's own
	// redirects included).
	Hops []string `json:"hops"`
	// Callback is the first Location outside the authorization server: the
	// client's redirect URI with code and state, or with error.
	Callback         string `json:"callback,omitempty"`
	Code             string `json:"code,omitempty"`
	State            string `json:"state,omitempty"`
	Error            string `json:"error,omitempty"`
	ErrorDescription string `json:"error_description,omitempty"`
	// Status and Page are set when the authorization server answered with a
	// page instead of a redirect (an unknown client, an unregistered
	// redirect URI): it must never redirect then.
	Status int    `json:"status,omitempty"`
	Page   string `json:"page,omitempty"`
}

// Authorize sends the authorization request from the device's address and
// follows redirects the way the operator SDKs do (Location header, plain
// HTTP/1.1) while they stay on the authorization server (the origin of
// authorizeURL); it stops at the first Location elsewhere, the client's
// redirect URI, without requesting it.
func (d *Device) Authorize(ctx context.Context, authorizeURL string) (*Outcome, error) {
	start, err := url.Parse(authorizeURL)
	if err != nil || start.Host == "" {
		return nil, fmt.Errorf("authorization URL %q: not an absolute URL", authorizeURL)
	}
	out := &Outcome{}
	next := start
	for range maxRedirects {
		out.Hops = append(out.Hops, next.String())
		resp, err := d.get(ctx, next.String())
		if err != nil {
			return out, err
		}
		location, err := resp.Location()
		if err != nil || !isRedirect(resp.StatusCode) {
			out.Status = resp.StatusCode
			out.Page = pageText(resp.Body, 300)
			resp.Body.Close()
			return out, nil
		}
		drain(resp)
		if sameOrigin(location, start) && !hasAuthorizationResponse(location) {
			next = location
			continue
		}
		out.Callback = location.String()
		q := location.Query()
		if frag, ferr := url.ParseQuery(location.Fragment); ferr == nil && q.Get("code") == "" && q.Get("error") == "" {
			q = frag // response_mode=fragment
		}
		out.Code, out.State = q.Get("code"), q.Get("state")
		out.Error, out.ErrorDescription = q.Get("error"), q.Get("error_description")
		return out, nil
	}
	return out, fmt.Errorf("more than %d redirects", maxRedirects)
}

// Page is the last response of Browse.
type Page struct {
	Hops   []string `json:"hops"`
	URL    string   `json:"url"`
	Status int      `json:"status"`
	Text   string   `json:"text"` // the visible text, whitespace collapsed
	// Verified is the verdict a result page states in its data-verified
	// attribute (the reference SP's <h1 id="result" data-verified="…">):
	// nil when the page states none.
	Verified *bool `json:"verified,omitempty"`
}

// Browse fetches startURL as a browser on the device would: cookies kept,
// every redirect followed (at most 10), and returns the final page. With the
// SP backend it is the whole flow: the SP's start URL, the authorization
// server, the SP's callback, its result page.
func (d *Device) Browse(ctx context.Context, startURL string) (*Page, error) {
	page := &Page{}
	next, err := url.Parse(startURL)
	if err != nil || next.Host == "" {
		return nil, fmt.Errorf("URL %q: not an absolute URL", startURL)
	}
	for range maxRedirects {
		page.Hops = append(page.Hops, next.String())
		resp, err := d.get(ctx, next.String())
		if err != nil {
			return page, err
		}
		location, lerr := resp.Location()
		if lerr != nil || !isRedirect(resp.StatusCode) {
			page.URL, page.Status = next.String(), resp.StatusCode
			raw, _ := io.ReadAll(io.LimitReader(resp.Body, 256<<10))
			resp.Body.Close()
			page.Text, page.Verified = pageText(bytes.NewReader(raw), 2000), pageVerdict(raw)
			return page, nil
		}
		drain(resp)
		next = location
	}
	return page, fmt.Errorf("more than %d redirects", maxRedirects)
}

func (d *Device) get(ctx context.Context, u string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "text/html,application/xhtml+xml")
	req.Header.Set("User-Agent", "numverify-device/1 (simulated handset)")
	resp, err := d.Client.Do(req)
	if err != nil {
		return nil, &ConnectionError{URL: u, Err: err}
	}
	return resp, nil
}

// ConnectionError is a request that got no HTTP answer (refused, reset,
// timed out, or the device address cannot be bound).
type ConnectionError struct {
	Method, URL string
	Err         error
}

func (e *ConnectionError) Error() string {
	method := e.Method
	if method == "" {
		method = http.MethodGet
	}
	return fmt.Sprintf("%s %s: %v", method, e.URL, e.Err)
}
func (e *ConnectionError) Unwrap() error { return e.Err }

func isRedirect(status int) bool {
	switch status {
	case http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther,
		http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		return true
	}
	return false
}

func sameOrigin(a, b *url.URL) bool {
	return strings.EqualFold(a.Scheme, b.Scheme) && strings.EqualFold(a.Host, b.Host)
}

// hasAuthorizationResponse: a redirect URI registered on the authorization
// server's own origin (a test setup) still ends the chain once it carries
// the response.
func hasAuthorizationResponse(u *url.URL) bool {
	q := u.Query()
	return q.Get("code") != "" || q.Get("error") != ""
}

func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
}

// pageText reads at most 256 KiB of an HTML or text body and returns its
// visible text with whitespace collapsed, cut at limit runes.
func pageText(body io.Reader, limit int) string {
	raw, _ := io.ReadAll(io.LimitReader(body, 256<<10))
	var b strings.Builder
	inTag, inScript := false, false
	s := string(raw)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '<':
			inTag = true
			rest := strings.ToLower(s[i:min(len(s), i+8)])
			if strings.HasPrefix(rest, "<style") || strings.HasPrefix(rest, "<script") || strings.HasPrefix(rest, "<title") {
				inScript = true
			} else if strings.HasPrefix(rest, "</style") || strings.HasPrefix(rest, "</script") || strings.HasPrefix(rest, "</title") {
				inScript = false
			}
			b.WriteByte(' ')
		case c == '>' && inTag:
			inTag = false
		case !inTag && !inScript:
			b.WriteByte(c)
		}
	}
	text := strings.Join(strings.Fields(unescapeEntities(b.String())), " ")
	if r := []rune(text); len(r) > limit {
		text = string(r[:limit]) + "…"
	}
	return text
}

// pageVerdict reads the data-verified="true|false" attribute of a result
// page; nil when there is none, or when two disagree.
func pageVerdict(raw []byte) *bool {
	var verdict *bool
	for _, m := range verdictAttr.FindAllSubmatch(raw, -1) {
		v := string(m[1]) == "true"
		if verdict != nil && *verdict != v {
			return nil
		}
		verdict = &v
	}
	return verdict
}

var verdictAttr = regexp.MustCompile(`\sdata-verified="(true|false)"`)

var entities = strings.NewReplacer("&amp;", "&", "&lt;", "<", "&gt;", ">", "&#34;", `"`, "&quot;", `"`, "&#39;", "'", "&nbsp;", " ", "&#43;", "+")

func unescapeEntities(s string) string { return entities.Replace(s) }

// errNotLocal means an address cannot be a device here: this machine cannot
// send from it (not in 127.0.0.0/8 nor assigned to an interface).
var errNotLocal = errors.New("address is not local to this machine")

// CheckLocal verifies that the machine can send from addr, so a device's
// first request does not fail with a puzzling bind error.
func CheckLocal(addr netip.Addr) error {
	l, err := net.ListenTCP("tcp", &net.TCPAddr{IP: addr.AsSlice()})
	if err != nil {
		return fmt.Errorf("%s: %w (on Linux every 127.0.0.0/8 address is; attach the device there): %v", addr, errNotLocal, err)
	}
	return l.Close()
}

// OutboundAddr is the source address this machine uses for connections to
// rawURL's host: the address a server there sees as the TCP peer (in a
// container, the container's own address on the network that reaches it).
// It "connects" a UDP socket, which only chooses a route and a source
// address: no packet is sent. A host name resolving to several addresses
// gives the source for the first one.
func OutboundAddr(ctx context.Context, rawURL string) (netip.Addr, error) {
	u, err := url.Parse(rawURL)
	if err != nil || u.Hostname() == "" {
		return netip.Addr{}, fmt.Errorf("URL %q: not an absolute URL", rawURL)
	}
	port := u.Port()
	if port == "" {
		port = "80"
		if strings.EqualFold(u.Scheme, "https") {
			port = "443"
		}
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "udp", net.JoinHostPort(u.Hostname(), port))
	if err != nil {
		return netip.Addr{}, fmt.Errorf("no route to %s: %w", u.Host, err)
	}
	defer conn.Close()
	local, ok := conn.LocalAddr().(*net.UDPAddr)
	if !ok {
		return netip.Addr{}, fmt.Errorf("no local address for %s", u.Host)
	}
	addr, ok := netip.AddrFromSlice(local.IP)
	if !ok || !addr.IsValid() || addr.IsUnspecified() {
		return netip.Addr{}, fmt.Errorf("no local address for %s", u.Host)
	}
	return addr.Unmap(), nil
}
