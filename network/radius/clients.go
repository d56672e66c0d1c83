package radius

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strings"
)

// Client is a NAS (a packet gateway) allowed to send accounting: the
// addresses it sends from and the secret it shares with us.
type Client struct {
	Prefix netip.Prefix
	Secret []byte
	Name   string // for logs; the prefix when none is given
}

// Clients says which secret authenticates a request from an address: the
// most specific client whose prefix holds it, else the secret every client
// shares (when set). Requests from elsewhere are not answered.
type Clients struct {
	list   []Client // most specific first
	shared []byte
}

// NewClients combines the shared secret (may be empty) and the client list.
func NewClients(shared string, list []Client) *Clients {
	sorted := slices.Clone(list)
	slices.SortStableFunc(sorted, func(a, b Client) int { return b.Prefix.Bits() - a.Prefix.Bits() })
	c := &Clients{list: sorted}
	if shared != "" {
		c.shared = []byte(shared)
	}
	return c
}

// Empty reports whether no request can be authenticated.
func (c *Clients) Empty() bool { return len(c.list) == 0 && len(c.shared) == 0 }

// secret returns the secret and name of the client at addr.
func (c *Clients) secret(addr netip.Addr) (secret []byte, name string, ok bool) {
	addr = addr.Unmap()
	for _, client := range c.list {
		if client.Prefix.Contains(addr) {
			return client.Secret, client.Name, true
		}
	}
	if len(c.shared) > 0 {
		return c.shared, addr.String(), true
	}
	return nil, "", false
}

// MinSecretLength is the shortest secret accepted (RFC 2865 §3 asks for at
// least 16 octets; radclient's examples use "testing123", so shorter ones
// are refused only where the caller chooses to).
const MinSecretLength = 16

// ParseClients reads lines `CIDR SECRET [name]` (an address alone is one
// host; # starts a comment). Every problem is reported at once, without
// echoing a secret.
func ParseClients(r io.Reader) ([]Client, error) {
	var clients []Client
	var problems []error
	scanner := bufio.NewScanner(r)
	for line := 1; scanner.Scan(); line++ {
		text, _, _ := strings.Cut(scanner.Text(), "#")
		fields := strings.Fields(text)
		if len(fields) == 0 {
			continue
		}
		if len(fields) < 2 || len(fields) > 3 {
			problems = append(problems, fmt.Errorf("line %d: want CIDR SECRET [name]", line))
			continue
		}
		prefix, err := parsePrefix(fields[0])
		if err != nil {
			problems = append(problems, fmt.Errorf("line %d: %q: not an address or CIDR", line, fields[0]))
			continue
		}
		name := prefix.String()
		if len(fields) == 3 {
			name = fields[2]
		}
		clients = append(clients, Client{Prefix: prefix, Secret: []byte(fields[1]), Name: name})
	}
	if err := scanner.Err(); err != nil {
		problems = append(problems, err)
	}
	return clients, errors.Join(problems...)
}

func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		if p.Addr().Is4In6() {
			p = netip.PrefixFrom(p.Addr().Unmap(), max(p.Bits()-96, 0))
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}
