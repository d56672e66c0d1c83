package authz

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/numverify/numverify/internal/contract"
)

// Access-token formats (Config.AccessTokenFormat).
const (
	// FormatJWT: RFC 9068 JWT signed with the authorization server's key and
	// encrypted to the resource server's public key (contract.SealNested).
	FormatJWT = "jwt"
	// FormatJWTDirect: the claims encrypted with the key both servers share
	// (contract.SealDirect, alg dir).
	FormatJWTDirect = "jwt-dir"
	// FormatOpaque: fosite's HMAC token, resolved by /introspect.
	FormatOpaque = "opaque"
)

// accessTokenFormats lists the accepted values of Config.AccessTokenFormat.
var accessTokenFormats = []string{FormatJWT, FormatJWTDirect, FormatOpaque}

// minSecretsKeyLength is the shortest Config.SecretsKey accepted.
const minSecretsKeyLength = 32

// Config is what the authorization server needs to know; every field is
// checked by Validate, which reports all problems at once.
type Config struct {
	// Issuer is the server's public base URL (the "iss" of every token); the
	// endpoints are below it. https, or http on a loopback host.
	Issuer string
	// TrustedProxies are the peers whose word on the client's address
	// (ClientAddressFrom) is believed; from anyone else it is ignored.
	TrustedProxies []netip.Prefix
	// ClientAddressFrom is the one source of the device's address (see
	// clientaddr.go): AddressFromPeer (default), AddressFromProxyProtocol,
	// AddressFromForwarded or AddressFromXForwardedFor. Every source but the
	// peer needs TrustedProxies; the peer refuses them.
	ClientAddressFrom string
	// ClientPortHeader names a header the nearest trusted proxy sets to the
	// client's source port (e.g. X-Real-Port from nginx's $remote_port);
	// read only with AddressFromForwarded or AddressFromXForwardedFor.
	ClientPortHeader string
	// AccessTokenFormat is FormatJWT (default), FormatJWTDirect or FormatOpaque.
	AccessTokenFormat string
	// AccessTokenAudience is the "aud" of JWT access tokens.
	AccessTokenAudience []string
	// Lifetimes.
	AccessTokenLifetime   time.Duration
	AuthorizeCodeLifetime time.Duration
	IDTokenLifetime       time.Duration
	RefreshTokenLifetime  time.Duration
	// SecretsKey is NUMVERIFY_SECRETS_KEY (decoded): the server keys for
	// pairwise subjects and fosite's HMAC tokens are derived from it.
	SecretsKey []byte
	// Abuse limits at /authorize and /token (see limits.go): requests per
	// second, with bursts, per source address at /authorize (IPv6 by /64),
	// per client and subscriber session at /authorize, per authenticated
	// client at /token, and failed client authentications per address at
	// /token. Zero is the default (limits.go), NoRateLimit (any negative
	// rate) turns a limit off; a zero burst is the rate rounded up.
	RateLimitPerIP                  float64
	RateLimitPerIPBurst             int
	RateLimitPerDevice              float64
	RateLimitPerDeviceBurst         int
	RateLimitPerClient              float64
	RateLimitPerClientBurst         int
	RateLimitAuthFailuresPerIP      float64
	RateLimitAuthFailuresPerIPBurst int
	// CIBA in poll mode (handle_backchannel.go): how long an auth_req_id
	// lives, the least interval between two polls, and how long after the
	// request its decision is ready (the simulated approval step).
	BackchannelRequestLifetime time.Duration
	BackchannelPollInterval    time.Duration
	BackchannelApprovalDelay   time.Duration
	// Playground logs in by login_hint=tel:+… at /authorize, without the
	// network, for SP developers without a SIM (playground.go); its tokens'
	// amr is "playground", which the resource server refuses unless told.
	Playground bool
}

// Defaults of the optional fields.
const (
	DefaultIssuer                = "http://localhost:9090"
	DefaultAccessTokenLifetime   = 300 * time.Second
	DefaultAuthorizeCodeLifetime = 60 * time.Second
	DefaultIDTokenLifetime       = 300 * time.Second
	DefaultRefreshTokenLifetime  = 24 * time.Hour
)

// WithDefaults returns c with every unset optional field at its default.
func (c Config) WithDefaults() Config {
	if c.Issuer == "" {
		c.Issuer = DefaultIssuer
	}
	if c.AccessTokenFormat == "" {
		c.AccessTokenFormat = FormatJWT
	}
	if c.ClientAddressFrom == "" {
		c.ClientAddressFrom = AddressFromPeer
	}
	if len(c.AccessTokenAudience) == 0 {
		c.AccessTokenAudience = []string{contract.DefaultAudience}
	}
	if c.AccessTokenLifetime == 0 {
		c.AccessTokenLifetime = DefaultAccessTokenLifetime
	}
	if c.AuthorizeCodeLifetime == 0 {
		c.AuthorizeCodeLifetime = DefaultAuthorizeCodeLifetime
	}
	if c.IDTokenLifetime == 0 {
		c.IDTokenLifetime = DefaultIDTokenLifetime
	}
	if c.RefreshTokenLifetime == 0 {
		c.RefreshTokenLifetime = DefaultRefreshTokenLifetime
	}
	return c.withRateLimitDefaults().withBackchannelDefaults()
}

// Validate reports every problem of c (after defaults) in one error.
func (c Config) Validate() error {
	var problems []error
	add := func(format string, args ...any) { problems = append(problems, fmt.Errorf(format, args...)) }

	if err := checkIssuer(c.Issuer); err != nil {
		add("issuer %q: %v", c.Issuer, err)
	}
	if !slices.Contains(accessTokenFormats, c.AccessTokenFormat) {
		add("access token format %q: want one of %s", c.AccessTokenFormat, strings.Join(accessTokenFormats, ", "))
	}
	for _, aud := range c.AccessTokenAudience {
		if u, err := url.Parse(aud); err != nil || !u.IsAbs() {
			add("access token audience %q: not an absolute URL", aud)
		}
	}
	for _, l := range []struct {
		name     string
		value    time.Duration
		min, max time.Duration
	}{
		{"access token lifetime", c.AccessTokenLifetime, 10 * time.Second, 24 * time.Hour},
		{"authorization code lifetime", c.AuthorizeCodeLifetime, time.Second, 10 * time.Minute},
		{"ID token lifetime", c.IDTokenLifetime, 10 * time.Second, 24 * time.Hour},
		{"refresh token lifetime", c.RefreshTokenLifetime, time.Minute, 90 * 24 * time.Hour},
	} {
		if l.value < l.min || l.value > l.max {
			add("%s %s: want between %s and %s", l.name, l.value, l.min, l.max)
		}
	}
	for _, p := range c.TrustedProxies {
		if !p.IsValid() {
			add("trusted proxy %q: not a valid CIDR", p.String())
		}
	}
	problems = append(problems, c.validateClientAddress()...)
	problems = append(problems, c.validateRateLimits()...)
	problems = append(problems, c.validateBackchannel()...)
	if len(c.SecretsKey) < minSecretsKeyLength {
		add("secrets key: %d bytes, want at least %d", len(c.SecretsKey), minSecretsKeyLength)
	}
	return errors.Join(problems...)
}

// checkIssuer accepts an absolute https URL, or http on a loopback host,
// without query or fragment (OpenID Connect Discovery §3).
func checkIssuer(issuer string) error {
	u, err := url.Parse(issuer)
	if err != nil || !u.IsAbs() || u.Host == "" {
		return errors.New("not an absolute URL")
	}
	if u.RawQuery != "" || u.Fragment != "" || strings.Contains(issuer, "#") {
		return errors.New("must not have a query or fragment")
	}
	if strings.HasSuffix(u.Path, "/") {
		return errors.New("must not end with /")
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		host := u.Hostname()
		if host == "localhost" || strings.HasSuffix(host, ".localhost") {
			return nil
		}
		if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
			return nil
		}
		return errors.New("http is allowed only on a loopback host; use https")
	default:
		return errors.New("scheme must be https")
	}
}

// ParseTrustedProxies parses a list of CIDRs or single addresses.
func ParseTrustedProxies(values []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	var problems []error
	for _, v := range values {
		v = strings.TrimSpace(v)
		if v == "" {
			continue
		}
		if p, err := netip.ParsePrefix(v); err == nil {
			out = append(out, p.Masked())
			continue
		}
		if a, err := netip.ParseAddr(v); err == nil {
			out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
			continue
		}
		problems = append(problems, fmt.Errorf("trusted proxy %q: not a CIDR or an address", v))
	}
	return out, errors.Join(problems...)
}
