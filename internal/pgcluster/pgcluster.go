// Package pgcluster runs a throwaway PostgreSQL cluster in a temporary
// directory, with the server binaries of the machine (initdb, pg_ctl). The demo
// uses it when no server answers, the test harness likewise, and the fault tests
// stop and start it at will.
package pgcluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
)

// ErrNoBinaries means initdb/pg_ctl were found neither on PATH nor in Debian's
// /usr/lib/postgresql/<version>/bin.
var ErrNoBinaries = errors.New("PostgreSQL server binaries (initdb, pg_ctl) not found: install PostgreSQL (Debian: apt-get install postgresql) or set DATABASE_URL to a running server")

// Cluster is a running (or stopped) throwaway cluster.
type Cluster struct {
	dir    string // owns data/ and the socket
	bin    string // directory of initdb and pg_ctl
	port   int
	runAs  string // "postgres" when we are root, else ""
	logOut string
}

// FindBinaries returns the directory holding initdb and pg_ctl.
func FindBinaries() (string, error) {
	if p, err := exec.LookPath("pg_ctl"); err == nil {
		if _, err := exec.LookPath("initdb"); err == nil {
			return filepath.Dir(p), nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Sort(sort.Reverse(sort.StringSlice(dirs)))
	for _, d := range dirs {
		if fileExists(filepath.Join(d, "initdb")) && fileExists(filepath.Join(d, "pg_ctl")) {
			return d, nil
		}
	}
	return "", ErrNoBinaries
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// FreePort asks the kernel for a free TCP port on 127.0.0.1.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Start creates a cluster in a new temporary directory and starts it on a
// free port of 127.0.0.1, with trust authentication for user postgres.
func Start(ctx context.Context) (*Cluster, error) {
	bin, err := FindBinaries()
	if err != nil {
		return nil, err
	}
	runAs := ""
	if os.Geteuid() == 0 {
		runAs = "postgres"
		if _, err := user.Lookup("postgres"); err != nil {
			return nil, fmt.Errorf("running as root needs a postgres user to own the cluster: %w", err)
		}
	}
	c, err := newCluster(ctx, "numverify-pg-", bin, runAs)
	if err != nil {
		return nil, err
	}
	if err := c.run(ctx, "initdb", "-D", c.dataDir(), "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8", "--locale=C"); err != nil {
		os.RemoveAll(c.dir)
		return nil, err
	}
	if err := c.Resume(ctx); err != nil {
		c.Remove()
		return nil, err
	}
	return c, nil
}

// newCluster is a cluster not yet made: a new temporary directory (prefix)
// owned by runAs ("": this process's user) and a free port of 127.0.0.1.
func newCluster(ctx context.Context, prefix, bin, runAs string) (*Cluster, error) {
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		return nil, err
	}
	c := &Cluster{dir: dir, bin: bin, runAs: runAs, logOut: filepath.Join(dir, "postgres.log")}
	if runAs != "" {
		if out, err := exec.CommandContext(ctx, "chown", runAs+":", dir).CombinedOutput(); err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("chown %s: %v: %s", dir, err, out)
		}
	}
	if c.port, err = FreePort(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return c, nil
}

func (c *Cluster) dataDir() string { return filepath.Join(c.dir, "data") }

func (c *Cluster) run(ctx context.Context, tool string, args ...string) error {
	path := filepath.Join(c.bin, tool)
	var cmd *exec.Cmd
	if c.runAs != "" {
		cmd = exec.CommandContext(ctx, "runuser", append([]string{"-u", c.runAs, "--", path}, args...)...)
	} else {
		cmd = exec.CommandContext(ctx, path, args...)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.Dir = c.dir
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: %w: %s", tool, err, bytes.TrimSpace(out.Bytes()))
	}
	return nil
}

// Resume starts the server again (after Stop) on the same port and data.
func (c *Cluster) Resume(ctx context.Context) error {
	opts := "-p " + strconv.Itoa(c.port) + " -k " + c.dir + " -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
	if err := c.run(ctx, "pg_ctl", "-D", c.dataDir(), "-l", c.logOut, "-o", opts, "-w", "-t", "60", "start"); err != nil {
		return err
	}
	return c.waitReady(ctx)
}

func (c *Cluster) waitReady(ctx context.Context) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		conn, err := pgx.Connect(ctx, c.URL("postgres"))
		if err == nil {
			conn.Close(ctx)
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("cluster did not accept connections: %w", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Stop stops the server (fast mode: connections are cut), keeping its data.
func (c *Cluster) Stop(ctx context.Context) error {
	return c.run(ctx, "pg_ctl", "-D", c.dataDir(), "-m", "fast", "-w", "stop")
}

// Remove stops the server if it runs and deletes the directory.
func (c *Cluster) Remove() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_ = c.run(ctx, "pg_ctl", "-D", c.dataDir(), "-m", "immediate", "-w", "stop")
	return os.RemoveAll(c.dir)
}

// Port is the TCP port the cluster listens on.
func (c *Cluster) Port() int { return c.port }

// URL is the connection URL for database name.
func (c *Cluster) URL(database string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", c.port, database)
}

// CreateDatabase creates a database on the cluster and returns its URL.
func (c *Cluster) CreateDatabase(ctx context.Context, name string) (string, error) {
	conn, err := pgx.Connect(ctx, c.URL("postgres"))
	if err != nil {
		return "", err
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return "", err
	}
	return c.URL(name), nil
}
