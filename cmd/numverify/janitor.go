package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"time"

	"github.com/numverify/numverify/authz"
	"github.com/numverify/numverify/internal/janitor"
)

// janitorCommand is `numverify janitor`: by hand (or from cron) the purge
// `numverify serve` runs on its timer: the same tasks, the same lock (one
// purger at a time).
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
	fs.DurationVar(&c.retention, "session-retention", 90*24*time.Hour, "keep closed network sessions this long (who held which address when)")
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
	pool, err := c.db.open(ctx, "janitor", true)
	if err != nil {
		return err
	}
	defer pool.Close()
	tasks := janitor.Tasks(janitor.Lifetimes{AccessToken: c.accessLifetime, ClockSkew: c.clockSkew, SessionRetention: c.retention})
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
