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

func networkAttachCommand() command {
	return command{name: "network attach", summary: "attach a subscriber: open a session at an address (given, or allocated from a pool)",
		setup: func(fs *flag.FlagSet) func(context.Context, []string) error {
			db := addDatabaseFlags(fs)
			poolFlags := addNetworkPoolFlags(fs)
			var req network.AttachRequest
			fs.StringVar(&req.MSISDN, "msisdn", "", "the subscriber's number, international format (+33612345678) (required)")
			fs.StringVar(&req.IP, "ip", "", "the address to hold: IPv4, IPv6, or an IPv6 /64 (default: allocated from --pool)")
			fs.StringVar(&req.Ports, "ports", "", "with --ip: the port block lo-hi held behind CGNAT (default: every port)")
			pool := fs.String("pool", "", "without --ip: the pool to allocate from: ipv4, ipv6 (a /64) or cgnat (a port block) (default ipv4)")
			fs.StringVar(&req.APN, "apn", "", "access point name (default internet)")
			fs.StringVar(&req.RAT, "rat", "", "radio access technology: NR, LTE, UMTS, GSM, NB-IoT, LTE-M (default NR)")
			fs.StringVar(&req.IMSI, "imsi", "", "the subscriber's IMSI (optional)")
			asJSON := fs.Bool("json", false, "print the session as JSON")
			return func(ctx context.Context, args []string) error {
				if err := noArgs(args); err != nil {
					return err
				}
				if req.MSISDN == "" {
					return fmt.Errorf("--msisdn is required: %w", errUsage)
				}
				req.Pool = network.PoolKind(*pool)
				store, closeStore, err := openNetworkStore(ctx, db, poolFlags)
				if err != nil {
					return err
				}
				defer closeStore()
				session, err := store.Attach(ctx, req)
				if err != nil {
					return err
				}
				return printSession(os.Stdout, session, *asJSON)
			}
		}}
}

func networkDetachCommand() command {
	return command{name: "network detach", summary: "detach a session: close its period now (its history stays)",
		setup: func(fs *flag.FlagSet) func(context.Context, []string) error {
			db := addDatabaseFlags(fs)
			id := fs.Int64("id", 0, "the session id (required)")
			asJSON := fs.Bool("json", false, "print the closed session as JSON")
			return func(ctx context.Context, args []string) error {
				if err := noArgs(args); err != nil {
					return err
				}
				if *id <= 0 {
					return fmt.Errorf("--id is required: %w", errUsage)
				}
				store, closeStore, err := openNetworkStore(ctx, db, nil)
				if err != nil {
					return err
				}
				defer closeStore()
				session, err := store.Detach(ctx, *id)
				if err != nil {
					return err
				}
				return printSession(os.Stdout, session, *asJSON)
			}
		}}
}

func networkListCommand() command {
	return command{name: "network list", summary: "list sessions (attached ones, or with --all the history too), newest first",
		setup: func(fs *flag.FlagSet) func(context.Context, []string) error {
			db := addDatabaseFlags(fs)
			var filter network.ListFilter
			fs.StringVar(&filter.MSISDN, "msisdn", "", "only this subscriber's sessions")
			fs.BoolVar(&filter.All, "all", false, "include detached sessions")
			fs.IntVar(&filter.Limit, "limit", network.DefaultListLimit, fmt.Sprintf("at most this many sessions (up to %d)", network.MaxListLimit))
			asJSON := fs.Bool("json", false, "print a JSON array of sessions")
			return func(ctx context.Context, args []string) error {
				if err := noArgs(args); err != nil {
					return err
				}
				store, closeStore, err := openNetworkStore(ctx, db, nil)
				if err != nil {
					return err
				}
				defer closeStore()
				sessions, err := store.List(ctx, filter)
				if err != nil {
					return err
				}
				return printSessions(os.Stdout, sessions, *asJSON)
			}
		}}
}

func networkLookupCommand() command {
	return command{name: "network lookup", summary: "who held an address (and port, behind CGNAT) at an instant (default now)",
		setup: func(fs *flag.FlagSet) func(context.Context, []string) error {
			db := addDatabaseFlags(fs)
			ip := fs.String("ip", "", "the address (required)")
			port := fs.Int("port", -1, "the port (required for an address shared behind CGNAT)")
			at := fs.String("at", "", "the instant, RFC 3339 (default now)")
			asJSON := fs.Bool("json", false, "print the session as JSON")
			return func(ctx context.Context, args []string) error {
				if err := noArgs(args); err != nil {
					return err
				}
				if *ip == "" {
					return fmt.Errorf("--ip is required: %w", errUsage)
				}
				addr, err := network.ParseHost(*ip)
				if err != nil {
					return err
				}
				instant := time.Now()
				if *at != "" {
					if instant, err = time.Parse(time.RFC3339Nano, *at); err != nil {
						return fmt.Errorf("--at %q: not an RFC 3339 instant (2026-03-01T14:02:00Z)", *at)
					}
				}
				if *port < -1 || *port > 65535 {
					return fmt.Errorf("--port %d: between 0 and 65535", *port)
				}
				store, closeStore, err := openNetworkStore(ctx, db, nil)
				if err != nil {
					return err
				}
				defer closeStore()
				var session network.Session
				if *port >= 0 {
					session, err = store.Resolve(ctx, addr, uint16(*port), instant)
				} else {
					session, err = store.LookupAddress(ctx, addr, instant)
				}
				if err != nil {
					return err
				}
				return printSession(os.Stdout, session, *asJSON)
			}
		}}
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
