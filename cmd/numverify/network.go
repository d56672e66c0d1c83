package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/numverify/numverify/network"
)

// The `network` commands operate the simulated core directly on Postgres
// (DATABASE_URL), not through the admin API: they need no running server and
// no admin token, and the exclusion constraint arbitrates between them and
// the server exactly as between two servers.

// networkAttachCommand is `numverify network attach`.
type networkAttachCommand struct {
	db     databaseFlags
	pools  networkPoolFlags
	req    network.AttachRequest
	pool   string
	asJSON bool
}

func (c *networkAttachCommand) register(fs *flag.FlagSet) {
	c.db.register(fs)
	c.pools.register(fs)
	fs.StringVar(&c.req.MSISDN, "msisdn", "", "the subscriber's number, international format (+33612345678) (required)")
	fs.StringVar(&c.req.IP, "ip", "", "the address to hold: IPv4, IPv6, or an IPv6 /64 (default: allocated from --pool)")
	fs.StringVar(&c.req.Ports, "ports", "", "with --ip: the port block lo-hi held behind CGNAT (default: every port)")
	fs.StringVar(&c.pool, "pool", "", "without --ip: the pool to allocate from: ipv4, ipv6 (a /64) or cgnat (a port block) (default ipv4)")
	fs.StringVar(&c.req.APN, "apn", "", "access point name (default internet)")
	fs.StringVar(&c.req.RAT, "rat", "", "radio access technology: NR, LTE, UMTS, GSM, NB-IoT, LTE-M (default NR)")
	fs.StringVar(&c.req.IMSI, "imsi", "", "the subscriber's IMSI (optional)")
	fs.BoolVar(&c.asJSON, "json", false, "print the session as JSON")
}

func (c *networkAttachCommand) Run(ctx context.Context, args []string) error {
	if err := noArgs(args); err != nil {
		return err
	}
	if c.req.MSISDN == "" {
		return fmt.Errorf("--msisdn is required: %w", errUsage)
	}
	req := c.req
	req.Pool = network.PoolKind(c.pool)
	store, closeStore, err := openNetworkStore(ctx, &c.db, &c.pools)
	if err != nil {
		return err
	}
	defer closeStore()
	session, err := store.Attach(ctx, req)
	if err != nil {
		return err
	}
	return printSession(os.Stdout, session, c.asJSON)
}

// networkDetachCommand is `numverify network detach`.
type networkDetachCommand struct {
	db     databaseFlags
	id     int64
	asJSON bool
}

func (c *networkDetachCommand) register(fs *flag.FlagSet) {
	c.db.register(fs)
	fs.Int64Var(&c.id, "id", 0, "the session id (required)")
	fs.BoolVar(&c.asJSON, "json", false, "print the closed session as JSON")
}

func (c *networkDetachCommand) Run(ctx context.Context, args []string) error {
	if err := noArgs(args); err != nil {
		return err
	}
	if c.id <= 0 {
		return fmt.Errorf("--id is required: %w", errUsage)
	}
	store, closeStore, err := openNetworkStore(ctx, &c.db, nil)
	if err != nil {
		return err
	}
	defer closeStore()
	session, err := store.Detach(ctx, c.id)
	if err != nil {
		return err
	}
	return printSession(os.Stdout, session, c.asJSON)
}

// networkListCommand is `numverify network list`.
type networkListCommand struct {
	db     databaseFlags
	filter network.ListFilter
	asJSON bool
}

func (c *networkListCommand) register(fs *flag.FlagSet) {
	c.db.register(fs)
	fs.StringVar(&c.filter.MSISDN, "msisdn", "", "only this subscriber's sessions")
	fs.BoolVar(&c.filter.All, "all", false, "include detached sessions")
	fs.IntVar(&c.filter.Limit, "limit", network.DefaultListLimit, fmt.Sprintf("at most this many sessions (up to %d)", network.MaxListLimit))
	fs.BoolVar(&c.asJSON, "json", false, "print a JSON array of sessions")
}

func (c *networkListCommand) Run(ctx context.Context, args []string) error {
	if err := noArgs(args); err != nil {
		return err
	}
	store, closeStore, err := openNetworkStore(ctx, &c.db, nil)
	if err != nil {
		return err
	}
	defer closeStore()
	sessions, err := store.List(ctx, c.filter)
	if err != nil {
		return err
	}
	return printSessions(os.Stdout, sessions, c.asJSON)
}

// networkLookupCommand is `numverify network lookup`.
type networkLookupCommand struct {
	db     databaseFlags
	ip     string
	port   int
	at     string
	asJSON bool
}

func (c *networkLookupCommand) register(fs *flag.FlagSet) {
	c.db.register(fs)
	fs.StringVar(&c.ip, "ip", "", "the address (required)")
	fs.IntVar(&c.port, "port", -1, "the port (required for an address shared behind CGNAT)")
	fs.StringVar(&c.at, "at", "", "the instant, RFC 3339 (default now)")
	fs.BoolVar(&c.asJSON, "json", false, "print the session as JSON")
}

func (c *networkLookupCommand) Run(ctx context.Context, args []string) error {
	if err := noArgs(args); err != nil {
		return err
	}
	if c.ip == "" {
		return fmt.Errorf("--ip is required: %w", errUsage)
	}
	addr, err := network.ParseHost(c.ip)
	if err != nil {
		return err
	}
	instant := time.Now()
	if c.at != "" {
		if instant, err = time.Parse(time.RFC3339Nano, c.at); err != nil {
			return fmt.Errorf("--at %q: not an RFC 3339 instant (2026-03-01T14:02:00Z)", c.at)
		}
	}
	if c.port < -1 || c.port > 65535 {
		return fmt.Errorf("--port %d: between 0 and 65535", c.port)
	}
	store, closeStore, err := openNetworkStore(ctx, &c.db, nil)
	if err != nil {
		return err
	}
	defer closeStore()
	var session network.Session
	if c.port >= 0 {
		session, err = store.Resolve(ctx, addr, uint16(c.port), instant)
	} else {
		session, err = store.LookupAddress(ctx, addr, instant)
	}
	if err != nil {
		return err
	}
	return printSession(os.Stdout, session, c.asJSON)
}

// openNetworkStore connects to Postgres; poolFlags is nil for commands that
// allocate nothing.
func openNetworkStore(ctx context.Context, db *databaseFlags, poolFlags *networkPoolFlags) (*network.Store, func(), error) {
	var pools network.Pools
	if poolFlags != nil {
		var err error
		if pools, err = poolFlags.pools(); err != nil {
			return nil, nil, err
		}
	}
	pool, err := db.open(ctx, "network", true)
	if err != nil {
		return nil, nil, err
	}
	store, err := network.NewStore(pool, pools)
	if err != nil {
		pool.Close()
		return nil, nil, err
	}
	return store, pool.Close, nil
}

func printSession(out io.Writer, s network.Session, asJSON bool) error {
	if asJSON {
		return printJSON(out, s)
	}
	return printSessions(out, []network.Session{s}, false)
}

func printSessions(out io.Writer, sessions []network.Session, asJSON bool) error {
	if asJSON {
		if sessions == nil {
			sessions = []network.Session{}
		}
		return printJSON(out, sessions)
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tMSISDN\tIP\tPORTS\tSTARTED\tENDED\tAPN\tRAT")
	for _, s := range sessions {
		ended := "-"
		if s.End != nil {
			ended = s.End.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.ID, s.MSISDN, network.FormatAddress(s.IP), s.Ports,
			s.Start.UTC().Format(time.RFC3339), ended, s.APN, strings.ToUpper(s.RAT))
	}
	return tw.Flush()
}
