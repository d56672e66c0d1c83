package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"strings"

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

func (d *databaseFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&d.url, "database-url", pg.DefaultURL, "PostgreSQL connection URL")
	fs.IntVar(&d.maxConns, "database-max-conns", 0,
		"maximum connections in the pool (0: for the servers of `serve`, 8 per CPU and at least 16, unless the URL sets pool_max_conns; for one-shot commands, pgx's max(4, CPUs))")
}

// open connects to Postgres; with checkSchema it refuses a database whose
// schema is not the one this binary expects (naming `numverify migrate up`).
func (d *databaseFlags) open(ctx context.Context, app string, checkSchema bool) (*pgxpool.Pool, error) {
	maxConns := d.maxConns
	if maxConns == 0 && strings.HasPrefix(app, "serve") && !strings.Contains(d.url, "pool_max_conns") {
		maxConns = serverPoolSize()
	}
	pool, err := pg.Open(ctx, d.url, pg.Options{MaxConns: int32(maxConns), ApplicationName: "numverify-" + app})
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

// serverPoolSize is the default pool of a serving process: a login holds a
// connection for a few round trips while its CPU work (signing, sealing)
// runs, the resource server's LISTEN holds one for good, and single-use
// records are written per call, so pgx's max(4, CPUs) left the CPUs idle
// waiting for connections (401 flows/s with 4 connections, 683 with 16, on
// 2 cores). Eight per CPU keeps four replicas of two cores under Postgres's
// default max_connections of 100.
func serverPoolSize() int { return max(16, 8*runtime.GOMAXPROCS(0)) }

// logFlags are the logging settings of every long-running command.
type logFlags struct {
	level  string
	format string
}

func (l *logFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&l.level, "log-level", "info", "log level: debug, info, warn, error")
	fs.StringVar(&l.format, "log-format", "auto", "log format: text, json, or auto (text on a terminal, JSON otherwise)")
}

func (l *logFlags) logger() *slog.Logger { return logging.New(os.Stderr, l.level, l.format) }

// noArgs fails when positional arguments were given to a command taking none.
func noArgs(args []string) error {
	if len(args) > 0 {
		return fmt.Errorf("unexpected arguments %q: %w", args, errUsage)
	}
	return nil
}

// printJSON writes v as indented JSON: what every --json flag prints, and
// the files commands write. URLs keep their & (no HTML escaping: the output
// is read by tools and people, never embedded in a page).
func printJSON(out io.Writer, v any) error {
	enc := json.NewEncoder(out)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}
