// Package migrations holds numverify's schema as numbered golang-migrate files,
// embedded in the binary, and the functions that apply them.
package migrations

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/golang-migrate/migrate/v4"
	_ "github.com/golang-migrate/migrate/v4/database/pgx/v5" // registers the pgx5:// driver
	"github.com/golang-migrate/migrate/v4/source/iofs"
	"github.com/jackc/pgx/v5"
)

//go:embed *.sql
var files embed.FS

// ErrOutOfDate is returned by Check when the database schema is not the one
// this binary was built for.
var ErrOutOfDate = errors.New("database schema is out of date: run `numverify migrate up`")

// Latest is the highest migration version embedded in this binary.
func Latest() uint {
	entries, err := fs.ReadDir(files, ".")
	if err != nil {
		panic(err) // embedded at build time; cannot fail
	}
	var latest uint
	re := regexp.MustCompile(`^(\d+)_.*\.up\.sql$`)
	for _, e := range entries {
		if m := re.FindStringSubmatch(e.Name()); m != nil {
			n, _ := strconv.ParseUint(m[1], 10, 32)
			latest = max(latest, uint(n))
		}
	}
	return latest
}

// Names lists the embedded migration files, in order.
func Names() []string {
	entries, _ := fs.ReadDir(files, ".")
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	return names
}

// driverURL turns a postgres:// URL into the pgx5:// URL golang-migrate expects.
func driverURL(databaseURL string) (string, error) {
	u, err := url.Parse(databaseURL)
	if err != nil {
		return "", fmt.Errorf("parse database URL: %w", err)
	}
	switch u.Scheme {
	case "postgres", "postgresql", "pgx5":
		u.Scheme = "pgx5"
	default:
		return "", fmt.Errorf("database URL scheme %q is not postgres://", u.Scheme)
	}
	q := u.Query()
	// Migrations table name; one per database.
	if q.Get("x-migrations-table") == "" {
		q.Set("x-migrations-table", "schema_migrations")
	}
	u.RawQuery = q.Encode()
	return u.String(), nil
}

func open(databaseURL string) (*migrate.Migrate, error) {
	src, err := iofs.New(files, ".")
	if err != nil {
		return nil, fmt.Errorf("open embedded migrations: %w", err)
	}
	target, err := driverURL(databaseURL)
	if err != nil {
		return nil, err
	}
	m, err := migrate.NewWithSourceInstance("iofs", src, target)
	if err != nil {
		return nil, fmt.Errorf("connect for migrations: %w", err)
	}
	return m, nil
}

func closeMigrate(m *migrate.Migrate, err error) error {
	srcErr, dbErr := m.Close()
	return errors.Join(err, srcErr, dbErr)
}

// Up applies every migration not yet applied.
func Up(databaseURL string) error {
	m, err := open(databaseURL)
	if err != nil {
		return err
	}
	err = m.Up()
	if errors.Is(err, migrate.ErrNoChange) {
		err = nil
	}
	if err != nil {
		err = fmt.Errorf("migrate up: %w", err)
	}
	return closeMigrate(m, err)
}

// Down reverts migrations: steps of them, or all when steps <= 0.
func Down(databaseURL string, steps int) error {
	m, err := open(databaseURL)
	if err != nil {
		return err
	}
	if steps > 0 {
		err = m.Steps(-steps)
	} else {
		err = m.Down()
	}
	if errors.Is(err, migrate.ErrNoChange) {
		err = nil
	}
	if err != nil {
		err = fmt.Errorf("migrate down: %w", err)
	}
	return closeMigrate(m, err)
}

// Version reports the applied version (0 when none) and whether the last
// migration failed half-way (dirty).
func Version(databaseURL string) (version uint, dirty bool, err error) {
	m, err := open(databaseURL)
	if err != nil {
		return 0, false, err
	}
	version, dirty, err = m.Version()
	if errors.Is(err, migrate.ErrNilVersion) {
		version, dirty, err = 0, false, nil
	}
	return version, dirty, closeMigrate(m, err)
}

// Querier is the part of pgx (a pool, a connection or a transaction) Check needs.
type Querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Check returns ErrOutOfDate (wrapped with the versions) unless the database
// is at exactly Latest() and not dirty. Servers call it at start.
func Check(ctx context.Context, q Querier) error {
	var version int64
	var dirty bool
	err := q.QueryRow(ctx, `SELECT version, dirty FROM schema_migrations LIMIT 1`).Scan(&version, &dirty)
	if err != nil {
		if errors.Is(err, pgx.ErrNoRows) || strings.Contains(err.Error(), "does not exist") {
			return fmt.Errorf("%w (database has no schema, binary expects version %d)", ErrOutOfDate, Latest())
		}
		return fmt.Errorf("read schema version: %w", err)
	}
	if dirty {
		return fmt.Errorf("%w (version %d is dirty: a migration failed half-way; fix it, then `numverify migrate force`)", ErrOutOfDate, version)
	}
	if uint(version) != Latest() {
		return fmt.Errorf("%w (database at version %d, binary expects %d)", ErrOutOfDate, version, Latest())
	}
	return nil
}

// Force sets the recorded version without running anything, to recover from a
// dirty state after the operator has repaired the schema by hand.
func Force(databaseURL string, version int) error {
	m, err := open(databaseURL)
	if err != nil {
		return err
	}
	return closeMigrate(m, m.Force(version))
}
