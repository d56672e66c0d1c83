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

// janitorCommand runs by hand (or from cron) the purge `numverify serve`
// runs on its timer: the same tasks, the same lock (one purger at a time).
func janitorCommand() command {
	return command{name: "janitor", summary: "delete expired codes, tokens, used jtis, revocations, retired keys and old closed network sessions, in bounded batches",
		setup: func(fs *flag.FlagSet) func(context.Context, []string) error {
			db := addDatabaseFlags(fs)
			logs := addLogFlags(fs)
			retention := fs.Duration("session-retention", 90*24*time.Hour, "keep closed network sessions this long (who held which address when)")
			accessLifetime := fs.Duration("access-token-lifetime", authz.DefaultAccessTokenLifetime,
				"the authorization server's access token lifetime: a redeemed code is kept that long past its expiry, so a replay revokes what it issued")
			clockSkew := fs.Duration("resource-clock-skew", 30*time.Second,
				"the resource server's leeway on token exp: revocations and used jtis are kept that long past the token's expiry")
			batch := fs.Int("batch-size", 1000, "rows deleted per statement")
			pause := fs.Duration("batch-pause", 10*time.Millisecond, "pause between batches")
			every := fs.Duration("every", 0, "run again at this interval until stopped (0: once)")
			return func(ctx context.Context, args []string) error {
				if err := noArgs(args); err != nil {
					return err
				}
				if *batch <= 0 {
					return fmt.Errorf("--batch-size must be positive")
				}
				pool, err := db.open(ctx, "janitor", true)
				if err != nil {
					return err
				}
				defer pool.Close()
				tasks := janitor.Tasks(janitor.Lifetimes{AccessToken: *accessLifetime, ClockSkew: *clockSkew, SessionRetention: *retention})
				purger := janitor.NewPurger(pool, tasks, janitor.WithBatches(*batch, *pause), janitor.WithLogger(logs.logger()))
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
					if *every <= 0 {
						return nil
					}
					select {
					case <-ctx.Done():
						return nil
					case <-time.After(*every):
					}
				}
			}
		}}
}
