package pgcluster

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
)

// StartStandby makes a streaming hot standby of c, the primary: a base
// backup of c (pg_basebackup -R, which writes primary_conninfo and
// standby.signal; with a fast checkpoint, not a spread one of minutes) in a
// new temporary directory, started on a free port of 127.0.0.1. name is its
// cluster_name, which the standby's WAL receiver sends as its
// application_name: the name synchronous_standby_names lists.
func (c *Cluster) StartStandby(ctx context.Context, name string) (*Cluster, error) {
	// pg_basebackup beside the real pg_ctl: PATH may hold only links to
	// initdb and pg_ctl.
	bin := c.bin
	if real, err := filepath.EvalSymlinks(filepath.Join(c.bin, "pg_ctl")); err == nil {
		bin = filepath.Dir(real)
	}
	s, err := newCluster(ctx, "numverify-pg-standby-", bin, c.runAs)
	if err != nil {
		return nil, err
	}
	if err := s.run(ctx, "pg_basebackup", "-h", "127.0.0.1", "-p", strconv.Itoa(c.port), "-U", "postgres",
		"-D", s.dataDir(), "-R", "-X", "stream", "--no-sync", "--checkpoint=fast"); err != nil {
		os.RemoveAll(s.dir)
		return nil, err
	}
	// Appended to what pg_basebackup -R wrote; the file stays the server's.
	auto, err := os.OpenFile(filepath.Join(s.dataDir(), "postgresql.auto.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err == nil {
		_, err = fmt.Fprintf(auto, "cluster_name = '%s'\n", name)
		if cerr := auto.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		os.RemoveAll(s.dir)
		return nil, err
	}
	if err := s.Resume(ctx); err != nil {
		s.Remove()
		return nil, err
	}
	return s, nil
}

// Promote ends a standby's recovery: it becomes a primary that accepts
// writes (pg_ctl promote, waiting until it does).
func (c *Cluster) Promote(ctx context.Context) error {
	return c.run(ctx, "pg_ctl", "-D", c.dataDir(), "-w", "-t", "60", "promote")
}

// Crash stops the server in immediate mode: every process exits at once,
// without a checkpoint, connections cut, as when its machine fails.
func (c *Cluster) Crash(ctx context.Context) error {
	return c.run(ctx, "pg_ctl", "-D", c.dataDir(), "-m", "immediate", "-w", "stop")
}
