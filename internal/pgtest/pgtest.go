// Package pgtest gives each test its own freshly created, migrated database on
// the server DATABASE_URL names (default: the local server), and drops it
// afterwards. When no server answers and initdb/pg_ctl are available, it starts
// a throwaway cluster for the test binary instead (stopped by Main).
//
// Use it from a package's TestMain:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
//
// and in a test:
//
//	db := pgtest.New(t)   // db.Pool, db.URL
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/numverify/numverify/internal/pgcluster"
	"github.com/numverify/numverify/migrations"
)

// DB is one test's database.
type DB struct {
	Name string
	URL  string
	Pool *pgxpool.Pool
}

var (
	serverOnce sync.Once
	serverURL  string // URL of the maintenance database ("postgres") on the chosen server
	serverErr  error
	cluster    *pgcluster.Cluster
)

// Main runs the package's tests, then the cleanups, and stops a throwaway
// cluster if one was started.
func Main(m *testing.M, cleanups ...func()) {
	code := m.Run()
	for _, cleanup := range cleanups {
		cleanup()
	}
	if cluster != nil {
		cluster.Remove()
	}
	os.Exit(code)
}

// ServerURL returns the maintenance-database URL of the server tests use,
// starting a throwaway cluster when none answers. It fails the test when
// neither is possible.
func ServerURL(t testing.TB) string {
	t.Helper()
	serverOnce.Do(func() { serverURL, serverErr = chooseServer() })
	if serverErr != nil {
		t.Fatalf("pgtest: %v", serverErr)
	}
	return serverURL
}

func chooseServer() (string, error) {
	base := os.Getenv("DATABASE_URL")
	if base == "" {
		base = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
	}
	maintenance, err := withDatabase(base, "postgres")
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, maintenance)
	if err == nil {
		conn.Close(ctx)
		return maintenance, nil
	}
	c, startErr := pgcluster.Start(context.Background())
	if startErr != nil {
		return "", fmt.Errorf("no Postgres at DATABASE_URL (%v) and no throwaway cluster (%v)", err, startErr)
	}
	cluster = c
	return c.URL("postgres"), nil
}

func withDatabase(raw, database string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("parse DATABASE_URL: %w", err)
	}
	u.Path = "/" + database
	return u.String(), nil
}

func uniqueName() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return fmt.Sprintf("nvtest_%d_%s", time.Now().Unix(), hex.EncodeToString(b))
}

// NewEmpty creates a database with no schema (for migration tests) and drops
// it when the test ends.
func NewEmpty(t testing.TB) (name, dbURL string) {
	t.Helper()
	maintenance := ServerURL(t)
	name = uniqueName()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, maintenance)
	if err != nil {
		t.Fatalf("pgtest: connect: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatalf("pgtest: create database: %v", err)
	}
	t.Cleanup(func() { drop(t, maintenance, name) })
	dbURL, err = withDatabase(maintenance, name)
	if err != nil {
		t.Fatal(err)
	}
	return name, dbURL
}

func drop(t testing.TB, maintenance, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, maintenance)
	if err != nil {
		t.Logf("pgtest: drop %s: %v", name, err)
		return
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
		t.Logf("pgtest: drop %s: %v", name, err)
	}
}

// New creates a migrated database with a pool (closed, and the database
// dropped, when the test ends).
func New(t testing.TB) *DB {
	t.Helper()
	name, dbURL := NewEmpty(t)
	if err := migrations.Up(dbURL); err != nil {
		t.Fatalf("pgtest: migrate: %v", err)
	}
	cfg, err := pgxpool.ParseConfig(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxConns = 32
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatalf("pgtest: pool: %v", err)
	}
	t.Cleanup(pool.Close) // runs before the drop registered earlier
	return &DB{Name: name, URL: dbURL, Pool: pool}
}

// Exec runs SQL on the test database, failing the test on error.
func (db *DB) Exec(t testing.TB, sql string, args ...any) {
	t.Helper()
	if _, err := db.Pool.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("pgtest: %s: %v", strings.SplitN(sql, "\n", 2)[0], err)
	}
}
