package httpx

import (
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/pires/go-proxyproto"
)

// ProxyProtocolListener wraps l for a server behind L4 balancers that speak
// the PROXY protocol (v1 or v2, github.com/pires/go-proxyproto):
//
//   - a connection from a trusted balancer must open with a PROXY header,
//     or it is closed before any request is read; its RemoteAddr is then the
//     header's source address and port (the client's). A v2 LOCAL header (the
//     balancer's own health check) or a v1 UNKNOWN keeps the balancer's
//     address;
//   - a connection from anyone else that sends a PROXY header is closed
//     (nobody else may say who the client is); without one it is served as
//     a direct connection, its RemoteAddr the TCP peer.
//
// The header must arrive within timeout (0: the library's default, 10 s).
func ProxyProtocolListener(l net.Listener, trusted []netip.Prefix, timeout time.Duration) net.Listener {
	return &proxyproto.Listener{
		Listener:          l,
		ConnPolicy:        proxyProtocolPolicy(trusted),
		ReadHeaderTimeout: timeout,
	}
}

// proxyProtocolPolicy is REQUIRE for trusted peers, REJECT for the others.
func proxyProtocolPolicy(trusted []netip.Prefix) proxyproto.ConnPolicyFunc {
	return func(opts proxyproto.ConnPolicyOptions) (proxyproto.Policy, error) {
		peer, err := netip.ParseAddrPort(opts.Upstream.String())
		if err != nil {
			// Drops this connection only; the listener keeps accepting.
			return proxyproto.REJECT, fmt.Errorf("%w: peer %q", proxyproto.ErrInvalidUpstream, opts.Upstream.String())
		}
		addr := peer.Addr().Unmap()
		for _, p := range trusted {
			if p.Contains(addr) {
				return proxyproto.REQUIRE, nil
			}
		}
		return proxyproto.REJECT, nil
	}
}
