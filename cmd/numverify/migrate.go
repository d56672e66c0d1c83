package main

import (
	"context"
	"flag"
	"fmt"
	"strconv"

	"github.com/numverify/numverify/migrations"
)

// migrateUpCommand is `numverify migrate up`.
type migrateUpCommand struct{ db databaseFlags }

func (c *migrateUpCommand) register(fs *flag.FlagSet) { c.db.register(fs) }

func (c *migrateUpCommand) Run(_ context.Context, args []string) error {
	if err := noArgs(args); err != nil {
		return err
	}
	if err := migrations.Up(c.db.url); err != nil {
		return err
	}
	return printSchemaVersion(c.db.url)
}

// migrateDownCommand is `numverify migrate down`.
type migrateDownCommand struct {
	db    databaseFlags
	steps int
}

func (c *migrateDownCommand) register(fs *flag.FlagSet) {
	c.db.register(fs)
	fs.IntVar(&c.steps, "steps", 0, "number of migrations to revert (0: all)")
}

func (c *migrateDownCommand) Run(_ context.Context, args []string) error {
	if err := noArgs(args); err != nil {
		return err
	}
	if err := migrations.Down(c.db.url, c.steps); err != nil {
		return err
	}
	return printSchemaVersion(c.db.url)
}

// printSchemaVersion says where the schema is after a migration.
func printSchemaVersion(databaseURL string) error {
	v, _, err := migrations.Version(databaseURL)
	if err != nil {
		return err
	}
	fmt.Printf("schema at version %d\n", v)
	return nil
}

// migrateVersionCommand is `numverify migrate version`.
type migrateVersionCommand struct{ db databaseFlags }

func (c *migrateVersionCommand) register(fs *flag.FlagSet) { c.db.register(fs) }

func (c *migrateVersionCommand) Run(_ context.Context, args []string) error {
	if err := noArgs(args); err != nil {
		return err
	}
	v, dirty, err := migrations.Version(c.db.url)
	if err != nil {
		return err
	}
	state := ""
	if dirty {
		state = " (dirty: a migration failed half-way)"
	}
	fmt.Printf("database %d%s, binary %d\n", v, state, migrations.Latest())
	return nil
}

// migrateForceCommand is `numverify migrate force VERSION`.
type migrateForceCommand struct{ db databaseFlags }

func (c *migrateForceCommand) register(fs *flag.FlagSet) { c.db.register(fs) }

func (c *migrateForceCommand) Run(_ context.Context, args []string) error {
	if len(args) != 1 {
		return fmt.Errorf("want one version argument: %w", errUsage)
	}
	v, err := strconv.Atoi(args[0])
	if err != nil {
		return fmt.Errorf("version %q: %w", args[0], err)
	}
	return migrations.Force(c.db.url, v)
}
