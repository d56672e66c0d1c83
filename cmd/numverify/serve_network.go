package main

import (
	"errors"
	"flag"
	"fmt"
	"net/netip"

	"github.com/numverify/numverify/network"
)

// networkPoolFlags are where the simulated core allocates addresses; `serve
// network` and `network attach` share them (and their NUMVERIFY_NETWORK_…
// variables), so both allocate from the same pools. An empty value disables
// that pool.
type networkPoolFlags struct {
	ipv4, ipv6, cgnatAddress string
	cgnatBlockSize           int
}

func (f *networkPoolFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.ipv4, "network-ipv4-pool", "127.10.0.0/16", "IPv4 CIDR whose host addresses are allocated to sessions (on loopback each simulated device can send from its own)")
	fs.StringVar(&f.ipv6, "network-ipv6-pool", "fd00:6e76::/48", "IPv6 prefix (a /48) carved into the /64 prefixes allocated to sessions")
	fs.StringVar(&f.cgnatAddress, "network-cgnat-address", "127.20.0.1", "public IPv4 address shared behind CGNAT; each session gets a block of its ports")
	fs.IntVar(&f.cgnatBlockSize, "network-cgnat-block-size", network.DefaultCGNATBlockSize, "ports per CGNAT session (blocks 1024-2047, 2048-3071, … for 1024)")
}

// pools parses and validates the flags, reporting every problem at once.
func (f *networkPoolFlags) pools() (network.Pools, error) {
	var p network.Pools
	var problems []error
	var err error
	if f.ipv4 != "" {
		if p.IPv4, err = netip.ParsePrefix(f.ipv4); err != nil {
			problems = append(problems, fmt.Errorf("--network-ipv4-pool %q: not a CIDR", f.ipv4))
		}
	}
	if f.ipv6 != "" {
		if p.IPv6, err = netip.ParsePrefix(f.ipv6); err != nil {
			problems = append(problems, fmt.Errorf("--network-ipv6-pool %q: not a prefix", f.ipv6))
		}
	}
	if f.cgnatAddress != "" {
		if p.CGNATAddress, err = netip.ParseAddr(f.cgnatAddress); err != nil {
			problems = append(problems, fmt.Errorf("--network-cgnat-address %q: not an IP address", f.cgnatAddress))
		}
	}
	p.CGNATBlockSize = f.cgnatBlockSize
	if len(problems) == 0 {
		if err := p.Validate(); err != nil {
			problems = append(problems, err)
		}
	}
	return p, errors.Join(problems...)
}

// networkFlags are the network admin API's settings, with the servers
// `serve network` runs beside it (RADIUS accounting, entitlement).
type networkFlags struct {
	addr        string
	token       string
	insecure    bool
	pools       networkPoolFlags
	radius      radiusFlags
	entitlement entitlementFlags
}

func (f *networkFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.addr, "network-addr", "127.0.0.1:9092",
		"listen address of the network admin API (loopback by default: whoever reaches it decides who is logged in; e.g. :9092 in a container)")
	fs.StringVar(&f.token, "network-admin-token", "", fmt.Sprintf(
		"bearer token the network admin API requires, at least %d characters (required unless --insecure-dev)", network.MinAdminTokenLength))
	fs.BoolVar(&f.insecure, "insecure-dev", false, "development only: relax security checks (the network admin API runs without a token when none is set)")
	f.pools.register(fs)
	f.radius.register(fs)
	f.entitlement.register(fs)
}

// checkToken refuses a missing or short admin token unless --insecure-dev.
func (f *networkFlags) checkToken() error {
	if f.token == "" && !f.insecure {
		return errors.New("network: --network-admin-token (NUMVERIFY_NETWORK_ADMIN_TOKEN) is required; --insecure-dev runs the admin API without one")
	}
	if len(f.token) < network.MinAdminTokenLength && f.token != "" && !f.insecure {
		return fmt.Errorf("network: --network-admin-token (NUMVERIFY_NETWORK_ADMIN_TOKEN) must be at least %d characters (openssl rand -hex 16); --insecure-dev accepts a shorter one",
			network.MinAdminTokenLength)
	}
	return nil
}

// build wires the network admin API, the accounting server and the
// entitlement server (a companion on its own address) on one store.
func (f *networkFlags) build(deps serveDeps) (*server, error) {
	pools, err := f.pools.pools()
	if err != nil {
		return nil, fmt.Errorf("network: %w", err)
	}
	if err := f.checkToken(); err != nil {
		return nil, err
	}
	store, err := network.NewStore(deps.Pool, pools)
	if err != nil {
		return nil, fmt.Errorf("network: %w", err)
	}
	admin, err := network.NewAdmin(store, network.AdminConfig{Token: f.token, Insecure: f.insecure, Logger: deps.Logger})
	if err != nil {
		return nil, fmt.Errorf("network: %w", err)
	}
	switch {
	case f.token == "":
		deps.Logger.Warn("network admin API runs without authentication (--insecure-dev)")
	case len(f.token) < network.MinAdminTokenLength:
		deps.Logger.Warn("network admin API runs with a short token (--insecure-dev)")
	}
	entitlementServer, err := f.entitlement.server(store, deps)
	if err != nil {
		return nil, fmt.Errorf("network: %w", err)
	}
	// Last: it opens the UDP socket, which nothing closes if a later
	// setting is refused.
	accounting, err := f.radius.start(store, deps)
	if err != nil {
		return nil, fmt.Errorf("network: %w", err)
	}
	s := &server{name: "network", addr: f.addr, handler: admin, background: accounting}
	if entitlementServer != nil {
		s.companions = []*server{entitlementServer}
	}
	return s, nil
}
