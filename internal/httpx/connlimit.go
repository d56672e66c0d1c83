package httpx

import (
	"net"
	"net/netip"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// DefaultMaxConnsPerAddress is how many connections one peer address may
// hold open at once on one server by default: far above what a device, an
// SP backend or a NAT of a few hundred users keeps, far below what it takes
// to exhaust the process's descriptors.
const DefaultMaxConnsPerAddress = 256

// ConnLimit caps the concurrent connections of each peer address.
type ConnLimit struct {
	// PerAddress is the cap per peer address; 0 or less disables the limit.
	PerAddress int
	// Exempt are the peers not capped: the trusted proxies, which carry
	// every client behind them on their own connections.
	Exempt []netip.Prefix
	// Rejected counts the connections closed for being over the cap.
	Rejected prometheus.Counter
}

// LimitConnections wraps l so that a peer address holding PerAddress
// connections has its next one closed at once (counted in Rejected) until
// one of them closes. The peer is the TCP peer, read before anything the
// connection sends (a PROXY header is parsed on top of this listener).
func LimitConnections(l net.Listener, limit ConnLimit) net.Listener {
	if limit.PerAddress <= 0 {
		return l
	}
	return &limitedListener{Listener: l, limit: limit, open: map[netip.Addr]int{}}
}

type limitedListener struct {
	net.Listener
	limit ConnLimit

	mu   sync.Mutex
	open map[netip.Addr]int // peer → connections open
}

// Accept returns the next connection within its peer's cap; connections
// over it are closed here and never reach the server.
func (l *limitedListener) Accept() (net.Conn, error) {
	for {
		conn, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		peer, ok := peerAddr(conn)
		if !ok || l.exempt(peer) {
			return conn, nil
		}
		if !l.acquire(peer) {
			// Counted before the close: whoever sees the connection end
			// (a client, a test) then also sees it counted.
			if l.limit.Rejected != nil {
				l.limit.Rejected.Inc()
			}
			conn.Close()
			continue
		}
		return &limitedConn{Conn: conn, release: func() { l.release(peer) }}, nil
	}
}

func (l *limitedListener) exempt(peer netip.Addr) bool {
	for _, p := range l.limit.Exempt {
		if p.Contains(peer) {
			return true
		}
	}
	return false
}

func (l *limitedListener) acquire(peer netip.Addr) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open[peer] >= l.limit.PerAddress {
		return false
	}
	l.open[peer]++
	return true
}

func (l *limitedListener) release(peer netip.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open[peer]--; l.open[peer] <= 0 {
		delete(l.open, peer)
	}
}

// peerAddr is the connection's remote IP address (IPv4-mapped unmapped).
func peerAddr(conn net.Conn) (netip.Addr, bool) {
	if tcp, ok := conn.RemoteAddr().(*net.TCPAddr); ok {
		return tcp.AddrPort().Addr().Unmap(), true
	}
	ap, err := netip.ParseAddrPort(conn.RemoteAddr().String())
	if err != nil {
		return netip.Addr{}, false
	}
	return ap.Addr().Unmap(), true
}

// limitedConn gives its peer's slot back once, on the first Close.
type limitedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

// CloseWrite half-closes the connection when the underlying one can (the
// HTTP server uses it to close gracefully).
func (c *limitedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
