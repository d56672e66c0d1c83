package main

import (
	"context"
	"flag"
	"fmt"
	"time"

	"github.com/numverify/numverify/internal/janitor"
)

// janitorTasks lists what expires, table by table.
func janitorTasks(sessionRetention time.Duration) []janitor.Task {
	return []janitor.Task{
		// Expired login records stay an hour past expiry: a replayed code must
		// still find the tokens it issued to revoke them.
		{Table: "oauth2_requests", Where: "expires_at < $1", Retention: time.Hour},
		{Table: "oauth2_client_assertion_jtis", Where: "expires_at < $1"},
		{Table: "keys", Where: "use = 'sig' AND retire_at < $1", Retention: 24 * time.Hour},
		{Table: "revoked_tokens", Where: "expires_at < $1"},
		{Table: "used_access_tokens", Where: "expires_at < $1"},
		{Table: "network_sessions", Where: "upper(period) < $1", Retention: sessionRetention},
	}
}

func janitorCommand() command {
	return command{name: "janitor", summary: "delete expired codes, tokens, used jtis and old closed network sessions, in bounded batches",
		setup: func(fs *flag.FlagSet) func(context.Context, []string) error {
			db := addDatabaseFlags(fs)
			logs := addLogFlags(fs)
			retention := fs.Duration("session-retention", 90*24*time.Hour, "keep closed network sessions this long (who held which address when)")
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
				logger := logs.logger()
				for {
					results, err := janitor.Run(ctx, pool, janitorTasks(*retention), *batch, *pause, logger)
					if err != nil {
						return err
					}
					for _, r := range results {
						fmt.Printf("%-28s %8d rows deleted in %d batches\n", r.Table, r.Deleted, r.Batches)
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
