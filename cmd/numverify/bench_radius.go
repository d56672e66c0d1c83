package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"time"

	"github.com/numverify/numverify/sim"
)

// radiusBenchFlags are `bench --mode radius`'s own settings: the bench plays
// a packet gateway sending accounting to `serve network`.
type radiusBenchFlags struct {
	addr, secret string
	open         int
	verify       bool
	db           databaseFlags
}

func (f *radiusBenchFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.addr, "radius-addr", "127.0.0.1:1813", "--mode radius: the RADIUS accounting server to send to")
	fs.StringVar(&f.secret, "radius-secret", "", "--mode radius: the RADIUS shared secret")
	fs.IntVar(&f.open, "radius-open", 0, "--mode radius: sessions opened before the timed run (0: 80% of --devices)")
	fs.BoolVar(&f.verify, "verify", false, "--mode radius: afterwards, compare the open sessions in Postgres (--database-url) with the generator's model")
	f.db.register(fs)
}

// radiusBenchRun is the common bench settings radius mode reads.
type radiusBenchRun struct {
	devices     int
	rate        float64
	duration    time.Duration
	reportEvery time.Duration
	prefix      string
	firstMSISDN string
	asJSON      bool
	output      string
}

// run sends the accounting load and prints the report; with --verify a
// mismatch is an error after the report.
func (f *radiusBenchFlags) run(ctx context.Context, c radiusBenchRun) error {
	report, err := f.bench(ctx, c)
	if report != nil {
		out := io.Writer(os.Stdout)
		if c.output != "" {
			file, err := os.Create(c.output)
			if err != nil {
				return err
			}
			defer file.Close()
			out = file
		}
		if c.asJSON {
			if err := printJSON(out, report); err != nil {
				return err
			}
		} else {
			report.Print(out)
		}
	}
	return err
}

func (f *radiusBenchFlags) bench(ctx context.Context, c radiusBenchRun) (*sim.RadiusBenchReport, error) {
	if c.rate <= 0 {
		return nil, fmt.Errorf("--mode radius needs --rate (Accounting-Requests per second): %w", errUsage)
	}
	prefix, err := netip.ParsePrefix(c.prefix)
	if err != nil {
		return nil, fmt.Errorf("--device-prefix %q: %w", c.prefix, err)
	}
	cfg := sim.RadiusBenchConfig{Addr: f.addr, Secret: f.secret, Subscribers: c.devices, Open: f.open, Rate: c.rate,
		Duration: c.duration, FirstMSISDN: c.firstMSISDN, Prefix: prefix, Progress: os.Stderr, ReportEvery: c.reportEvery}
	if f.verify {
		store, closeStore, err := openNetworkStore(ctx, &f.db, nil)
		if err != nil {
			return nil, err
		}
		defer closeStore()
		cfg.OpenSessions = func(ctx context.Context, nas string) (map[string]netip.Prefix, error) {
			sessions, err := store.OpenSessionsOfNAS(ctx, nas)
			open := make(map[string]netip.Prefix, len(sessions))
			for _, s := range sessions {
				open[s.MSISDN] = s.IP
			}
			return open, err
		}
	}
	report, err := sim.RunRadiusBench(ctx, cfg)
	if err == nil && report.Verify != nil && !report.Verify.Exact() {
		err = errors.New("radius bench: the session table does not match the generator's model")
	}
	return report, err
}
