package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/numverify/numverify/network"
	"github.com/numverify/numverify/network/radius"
)

// radiusFlags are the RADIUS accounting server's settings: the feed through
// which packet gateways report who holds which address (`serve network`).
type radiusFlags struct {
	addr, secret, clientsFile string
	rememberStops             time.Duration
	historyRetention          time.Duration
	openSessions              int
}

// defaultRadiusAddr is the accounting port (RFC 2866).
const defaultRadiusAddr = ":1813"

func (f *radiusFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.addr, "radius-addr", defaultRadiusAddr,
		"UDP address of the RADIUS accounting server the packet gateways send Start/Interim-Update/Stop to; empty disables it (so does the default address with no secret)")
	fs.StringVar(&f.secret, "radius-secret", "", "RADIUS shared secret of every packet gateway not listed in --radius-clients")
	fs.StringVar(&f.clientsFile, "radius-clients", "",
		"file of the packet gateways allowed to send accounting, one per line: CIDR SECRET [name] (# comments); others are not answered")
	fs.DurationVar(&f.rememberStops, "radius-remember-stops", network.DefaultRememberStops,
		"how long a Stop (or a closed session) keeps a late Start or Interim-Update of that session from opening it")
	fs.IntVar(&f.openSessions, "radius-open-sessions", radius.DefaultOpenSessions,
		"sessions committed as open that the accounting server remembers (about 64 bytes each), answering their Interim-Updates without the table; 0 disables")
	fs.DurationVar(&f.historyRetention, "network-history-retention", network.DefaultHistoryRetention,
		"keep closed network sessions (who held which address when) this long; they leave the hot table for daily partitions, dropped a day at a time (at least 24h)")
}

// historyInterval is how often closed sessions move to history and
// partitions are made and dropped.
const historyInterval = 30 * time.Second

// maintainHistory runs network.Store.MaintainHistory every historyInterval
// until ctx ends (one replica at a time).
func (f *radiusFlags) maintainHistory(ctx context.Context, store *network.Store, deps serveDeps) {
	ticker := time.NewTicker(historyInterval)
	defer ticker.Stop()
	for {
		report, err := store.MaintainHistory(ctx, time.Now(), f.historyRetention)
		switch {
		case err != nil && ctx.Err() == nil:
			deps.Logger.Warn("network history", "err", err)
		case report.Created > 0 || report.Dropped > 0:
			deps.Logger.Info("network history partitions", "created", report.Created, "dropped", report.Dropped, "moved", report.Moved)
		case !report.Skipped:
			deps.Logger.Debug("network history", "moved", report.Moved, "move_took", report.MoveTook, "vacuum_took", report.VacuumTook)
		}
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

// start opens the UDP socket and returns the accounting server, with the
// history's maintenance, as a background task.
func (f *radiusFlags) start(store *network.Store, deps serveDeps) (func(context.Context), error) {
	if f.historyRetention < 24*time.Hour {
		return nil, errors.New("--network-history-retention must be at least 24h")
	}
	accounting, err := f.startAccounting(deps)
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context) {
		done := make(chan struct{})
		go func() {
			defer close(done)
			f.maintainHistory(ctx, store, deps)
		}()
		if accounting != nil {
			accounting(ctx)
		}
		<-done
	}, nil
}

// startAccounting opens the UDP socket and returns the accounting server as
// a background task, or nil when RADIUS is disabled.
func (f *radiusFlags) startAccounting(deps serveDeps) (func(context.Context), error) {
	if f.addr == "" {
		return nil, nil
	}
	var clients []radius.Client
	if f.clientsFile != "" {
		file, err := os.Open(f.clientsFile)
		if err != nil {
			return nil, fmt.Errorf("--radius-clients: %w", err)
		}
		clients, err = radius.ParseClients(file)
		file.Close()
		if err != nil {
			return nil, fmt.Errorf("--radius-clients %s: %w", f.clientsFile, err)
		}
	}
	if f.secret == "" && len(clients) == 0 {
		if f.addr != defaultRadiusAddr {
			return nil, errors.New("--radius-addr needs --radius-secret (NUMVERIFY_RADIUS_SECRET) or --radius-clients")
		}
		deps.Logger.Info("RADIUS accounting disabled: no --radius-secret or --radius-clients")
		return nil, nil
	}
	if f.rememberStops <= 0 {
		return nil, errors.New("--radius-remember-stops must be positive")
	}
	if f.secret != "" && len(f.secret) < radius.MinSecretLength {
		deps.Logger.Warn("the RADIUS shared secret is short; RFC 2865 asks for at least 16 characters")
	}
	feed, feedPool, err := openAccountingStore(deps)
	if err != nil {
		return nil, err
	}
	srv, err := radius.NewServer(feed, radius.Config{Clients: radius.NewClients(f.secret, clients), Logger: deps.Logger,
		Registerer: deps.Registry, RememberStops: f.rememberStops, OpenSessions: cmp.Or(f.openSessions, -1),
		Committers: accountingCommitters})
	if err != nil {
		feedPool.Close()
		return nil, err
	}
	conn, err := radius.Listen(f.addr)
	if err != nil {
		feedPool.Close()
		return nil, err
	}
	deps.Logger.Info("listening", "server", "radius", "addr", conn.LocalAddr().String(), "clients", len(clients))
	return func(ctx context.Context) {
		defer feedPool.Close()
		if err := srv.Serve(ctx, conn); err != nil {
			deps.Logger.Warn("radius: close", "err", err)
		}
	}, nil
}

// accountingCommitters is how many transactions of the feed are in flight
// at once (radius.Config.Committers; each committer's read of the sessions
// open already comes before its transaction, on the same turn);
// accountingPoolSize adds one connection for the housekeeping beside them
// (the open-session count, the purge of remembered Stops).
const (
	accountingCommitters = 2
	accountingPoolSize   = accountingCommitters + 1
)

// openAccountingStore opens the store the accounting server commits to, on
// a pool of its own. From the shared pool, each batch would wait for a
// connection behind every login and verification queued for one, and a
// gateway retransmits after a few seconds and gives up after a few tries:
// the feed must not queue behind the HTTP traffic
// (TestAccountingDoesNotWaitForTheSharedPool).
//
// pg.Open bounds its first connection by the URL's connect timeout, so no
// deadline is added here.
func openAccountingStore(deps serveDeps) (*network.Store, *pgxpool.Pool, error) {
	store, pool, err := openNetworkStoreAlone(context.Background(), deps, "radius", accountingPoolSize)
	if err != nil {
		return nil, nil, fmt.Errorf("radius: %w", err)
	}
	return store, pool, nil
}
