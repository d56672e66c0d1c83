package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/numverify/numverify/internal/logging"
	"github.com/numverify/numverify/internal/pg"
	"github.com/numverify/numverify/migrations"
)

// databaseFlags are the settings of every command that talks to Postgres.
type databaseFlags struct {
	url      string
	maxConns int
}

func addDatabaseFlags(fs *flag.FlagSet) *databaseFlags {
	d := &databaseFlags{}
	fs.StringVar(&d.url, "database-url", pg.DefaultURL, "PostgreSQL connection URL")
	fs.IntVar(&d.maxConns, "database-max-conns", 0, "maximum connections in the pool (0: pgx default, max(4, CPUs))")
	return d
}

// open connects to Postgres; with checkSchema it refuses a database whose
// schema is not the one this binary expects (naming `numverify migrate up`).
func (d *databaseFlags) open(ctx context.Context, app string, checkSchema bool) (*pgxpool.Pool, error) {
	pool, err := pg.Open(ctx, d.url, pg.Options{MaxConns: int32(d.maxConns), ApplicationName: "numverify-" + app})
	if err != nil {
		return nil, err
	}
	if checkSchema {
		if err := migrations.Check(ctx, pool); err != nil {
			pool.Close()
			return nil, err
		}
	}
	return pool, nil
}

// logFlags are the logging settings of every long-running command.
type logFlags struct {
	level  string
	format string
}

func addLogFlags(fs *flag.FlagSet) *logFlags {
	l := &logFlags{}
	fs.StringVar(&l.level, "log-level", "info", "log level: debug, info, warn, error")
	fs.StringVar(&l.format, "log-format", "auto", "log format: text, json, or auto (text on a terminal, JSON otherwise)")
	return l
}

func (l *logFlags) logger() *slog.Logger { return logging.New(os.Stderr, l.level, l.format) }

// noArgs fails when positional arguments were given to a command taking none.
func noArgs(args []string) error {
	if len(args) > 0 {
		return fmt.Errorf("unexpected arguments %q: %w", args, errUsage)
	}
	return nil
}

// printJSON writes v as indented JSON: what every --json flag prints.
func printJSON(out io.Writer, v any) error {
	enc := json.NewEncoder(out)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
