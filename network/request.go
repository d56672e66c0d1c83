package network

import (
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"

	"github.com/numverify/numverify/internal/phone"
)

// AllPorts is the port range of a session not behind CGNAT.
var AllPorts = PortRange{Low: 0, High: 65535}

// String renders the range as "lo-hi".
func (r PortRange) String() string { return fmt.Sprintf("%d-%d", r.Low, r.High) }

// Contains reports whether port lies in the range.
func (r PortRange) Contains(port uint16) bool { return r.Low <= port && port <= r.High }

// ParsePortRange reads "lo-hi" (inclusive) or a single port "p".
func ParsePortRange(s string) (PortRange, error) {
	lowText, highText, isRange := strings.Cut(strings.TrimSpace(s), "-")
	if !isRange {
		highText = lowText
	}
	low, errLow := strconv.ParseUint(strings.TrimSpace(lowText), 10, 16)
	high, errHigh := strconv.ParseUint(strings.TrimSpace(highText), 10, 16)
	if errLow != nil || errHigh != nil || low > high {
		return PortRange{}, fmt.Errorf("%w: ports %q: want lo-hi with 0 <= lo <= hi <= 65535", ErrInvalid, s)
	}
	return PortRange{Low: uint16(low), High: uint16(high)}, nil
}

// ParseAddress reads what a session can hold: an IPv4 address (or /32), an
// IPv6 address (or /128), or an IPv6 /64 prefix. IPv4-mapped IPv6 addresses
// are taken as IPv4.
func ParseAddress(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if !strings.Contains(s, "/") {
		addr, err := ParseHost(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		return netip.PrefixFrom(addr, addr.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%w: address %q: not an IP address or prefix", ErrInvalid, s)
	}
	if p.Addr().Is4In6() && p.Bits() == 128 {
		return netip.PrefixFrom(p.Addr().Unmap(), 32), nil
	}
	switch {
	case p.Addr().Is4() && p.Bits() == 32, p.Addr().Is6() && (p.Bits() == 128 || p.Bits() == 64):
		if p != p.Masked() {
			return netip.Prefix{}, fmt.Errorf("%w: address %q: host bits set in a /64 prefix", ErrInvalid, s)
		}
		return p, nil
	}
	return netip.Prefix{}, fmt.Errorf("%w: address %q: a session holds an IPv4 /32, an IPv6 /128 or an IPv6 /64", ErrInvalid, s)
}

// ParseHost reads one IP address (no prefix, no zone), unmapping
// IPv4-mapped IPv6.
func ParseHost(s string) (netip.Addr, error) {
	addr, err := netip.ParseAddr(strings.TrimSpace(s))
	if err != nil || addr.Zone() != "" {
		return netip.Addr{}, fmt.Errorf("%w: address %q: not an IP address", ErrInvalid, s)
	}
	return addr.Unmap(), nil
}

// FormatAddress renders a session's address: the plain address for a /32 or
// /128, the prefix for an IPv6 /64.
func FormatAddress(p netip.Prefix) string {
	if p.IsSingleIP() {
		return p.Addr().String()
	}
	return p.String()
}

// AttachRequest asks for a session. With IP empty an address is allocated
// from Pool (default ipv4); with IP set that exact address is taken, with
// Ports (default: every port).
type AttachRequest struct {
	MSISDN string
	IP     string   // optional: "127.10.0.7", "2001:db8:0:1::/64", …
	Ports  string   // optional: "lo-hi"
	Pool   PoolKind // optional: ipv4 (default), ipv6, cgnat; only without IP
	APN    string   // optional, default "internet"
	RAT    string   // optional, default "NR"
	IMSI   string   // optional
}

// attachSpec is a validated AttachRequest.
type attachSpec struct {
	msisdn string
	fixed  *candidate // nil: allocate from pool
	pool   PoolKind
	apn    string
	rat    string
	imsi   *string
}

var (
	apnPattern  = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9.-]{0,98}[A-Za-z0-9])?$`)
	imsiPattern = regexp.MustCompile(`^[0-9]{6,15}$`)
	rats        = map[string]bool{"NR": true, "LTE": true, "UMTS": true, "GSM": true, "NB-IOT": true, "LTE-M": true}
)

// validate checks every field and reports every problem at once; it never
// echoes the MSISDN or IMSI back.
func (r AttachRequest) validate() (attachSpec, error) {
	var problems []string
	spec := attachSpec{apn: "internet", rat: "NR", pool: PoolIPv4}
	msisdn, err := phone.Normalize(r.MSISDN)
	if err != nil {
		problems = append(problems, "msisdn: not a valid international (E.164) phone number")
	}
	spec.msisdn = msisdn
	if err := spec.setAddress(r); err != nil {
		problems = append(problems, strings.TrimPrefix(err.Error(), ErrInvalid.Error()+": "))
	}
	if r.APN != "" {
		if !apnPattern.MatchString(r.APN) {
			problems = append(problems, "apn: letters, digits, dots and dashes, at most 100")
		}
		spec.apn = strings.ToLower(r.APN)
	}
	if r.RAT != "" {
		spec.rat = strings.ToUpper(r.RAT)
		if !rats[spec.rat] {
			problems = append(problems, "rat: one of NR, LTE, UMTS, GSM, NB-IoT, LTE-M")
		}
	}
	if r.IMSI != "" {
		if !imsiPattern.MatchString(r.IMSI) {
			problems = append(problems, "imsi: 6 to 15 digits")
		}
		spec.imsi = &r.IMSI
	}
	if len(problems) > 0 {
		return attachSpec{}, fmt.Errorf("%w: %s", ErrInvalid, strings.Join(problems, "; "))
	}
	return spec, nil
}

func (spec *attachSpec) setAddress(r AttachRequest) error {
	if r.IP == "" {
		if r.Ports != "" {
			return fmt.Errorf("%w: ports: only with ip (allocated CGNAT blocks come from the pool)", ErrInvalid)
		}
		if r.Pool != "" {
			if _, known := map[PoolKind]bool{PoolIPv4: true, PoolIPv6: true, PoolCGNAT: true}[r.Pool]; !known {
				return fmt.Errorf("%w: pool %q: one of ipv4, ipv6, cgnat", ErrInvalid, r.Pool)
			}
			spec.pool = r.Pool
		}
		return nil
	}
	if r.Pool != "" {
		return fmt.Errorf("%w: pool: give either ip or pool, not both", ErrInvalid)
	}
	ip, err := ParseAddress(r.IP)
	if err != nil {
		return err
	}
	if err := CheckUnicast(ip); err != nil {
		return err
	}
	ports := AllPorts
	if r.Ports != "" {
		if ports, err = ParsePortRange(r.Ports); err != nil {
			return err
		}
	}
	spec.fixed = &candidate{ip: ip, ports: ports}
	return nil
}
