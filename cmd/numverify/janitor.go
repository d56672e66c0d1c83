package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"time"

	"github.com/numverify/numverify/authz"
	"github.com/numverify/numverify/internal/janitor"
	"github.com/numverify/numverify/network"
)

// janitorCommand is `numverify janitor`: by hand (or from cron) the purge
// `numverify serve` runs on its timer: the same tasks, the same lock (one
// purger at a time); then the network history's upkeep `serve network` runs
// (closed sessions moved out of the hot table, partitions past retention
// dropped), for databases no network server maintains.
type janitorCommand struct {
	db             databaseFlags
	logs           logFlags
	retention      time.Duration
	accessLifetime time.Duration
	clockSkew      time.Duration
	batch          int
	pause          time.Duration
	every          time.Duration
}

func (c *janitorCommand) register(fs *flag.FlagSet) {
	c.db.register(fs)
	c.logs.register(fs)
	fs.DurationVar(&c.retention, "network-history-retention", network.DefaultHistoryRetention,
		"keep closed network sessions (who held which address when) this long: older daily partitions of the history are dropped (at least 24h; as serve network's flag)")
	fs.DurationVar(&c.accessLifetime, "access-token-lifetime", authz.DefaultAccessTokenLifetime,
		"the authorization server's access token lifetime: a redeemed code is kept that long past its expiry, so a replay revokes what it issued")
	fs.DurationVar(&c.clockSkew, "resource-clock-skew", 30*time.Second,
		"the resource server's leeway on token exp: revocations and used jtis are kept that long past the token's expiry")
	fs.IntVar(&c.batch, "batch-size", 1000, "rows deleted per statement")
	fs.DurationVar(&c.pause, "batch-pause", 10*time.Millisecond, "pause between batches")
	fs.DurationVar(&c.every, "every", 0, "run again at this interval until stopped (0: once)")
}

func (c *janitorCommand) Run(ctx context.Context, args []string) error {
	if err := noArgs(args); err != nil {
		return err
	}
	if c.batch <= 0 {
		return fmt.Errorf("--batch-size must be positive")
	}
	if c.retention < 24*time.Hour {
		return errors.New("--network-history-retention must be at least 24h")
	}
	pool, err := c.db.open(ctx, "janitor", true)
	if err != nil {
		return err
	}
	defer pool.Close()
	tasks := janitor.Tasks(janitor.Lifetimes{AccessToken: c.accessLifetime, ClockSkew: c.clockSkew})
	sessions, err := network.NewStore(pool, network.Pools{})
	if err != nil {
		return err
	}
	purger := janitor.NewPurger(pool, tasks, janitor.WithBatches(c.batch, c.pause), janitor.WithLogger(c.logs.logger()))
	for {
		results, err := purger.Once(ctx)
		switch {
		case errors.Is(err, janitor.ErrBusy):
			fmt.Println("another purger (a server's, or another janitor) is running on this database: skipped")
		case err != nil:
			return err
		}
		for _, r := range results {
			fmt.Printf("%-28s %-28s %8d rows deleted in %d batches\n", r.Name, r.Table, r.Deleted, r.Batches)
		}
		history, err := sessions.MaintainHistory(ctx, time.Now(), c.retention)
		switch {
		case err != nil:
			return err
		case history.Skipped:
			fmt.Println("another process (a network server, or another janitor) is maintaining the network history: skipped")
		default:
			fmt.Printf("%-28s %-28s %8d sessions moved, %d partitions dropped, %d made\n", "closed network sessions",
				"network_session_history", history.Moved, history.Dropped, history.Created)
		}
		if c.every <= 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(c.every):
		}
	}
}
