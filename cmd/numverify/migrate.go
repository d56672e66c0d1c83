package main

import (
	"context"
	"flag"
	"fmt"
	"strconv"

	"github.com/numverify/numverify/migrations"
)

func migrateUpCommand() command {
	return command{name: "migrate up", summary: "apply every pending schema migration",
		setup: func(fs *flag.FlagSet) func(context.Context, []string) error {
			db := addDatabaseFlags(fs)
			return func(ctx context.Context, args []string) error {
				if err := noArgs(args); err != nil {
					return err
				}
				if err := migrations.Up(db.url); err != nil {
					return err
				}
				v, _, err := migrations.Version(db.url)
				if err != nil {
					return err
				}
				fmt.Printf("schema at version %d\n", v)
				return nil
			}
		}}
}

func migrateDownCommand() command {
	return command{name: "migrate down", summary: "revert migrations (all, or --steps N)",
		setup: func(fs *flag.FlagSet) func(context.Context, []string) error {
			db := addDatabaseFlags(fs)
			steps := fs.Int("steps", 0, "number of migrations to revert (0: all)")
			return func(ctx context.Context, args []string) error {
				if err := noArgs(args); err != nil {
					return err
				}
				if err := migrations.Down(db.url, *steps); err != nil {
					return err
				}
				v, _, err := migrations.Version(db.url)
				if err != nil {
					return err
				}
				fmt.Printf("schema at version %d\n", v)
				return nil
			}
		}}
}

func migrateVersionCommand() command {
	return command{name: "migrate version", summary: "print the schema version of the database and of this binary",
		setup: func(fs *flag.FlagSet) func(context.Context, []string) error {
			db := addDatabaseFlags(fs)
			return func(ctx context.Context, args []string) error {
				if err := noArgs(args); err != nil {
					return err
				}
				v, dirty, err := migrations.Version(db.url)
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
		}}
}

func migrateForceCommand() command {
	return command{name: "migrate force", summary: "record a schema version without running migrations (repair after a failed one)",
		setup: func(fs *flag.FlagSet) func(context.Context, []string) error {
			db := addDatabaseFlags(fs)
			return func(ctx context.Context, args []string) error {
				if len(args) != 1 {
					return fmt.Errorf("want one version argument: %w", errUsage)
				}
				v, err := strconv.Atoi(args[0])
				if err != nil {
					return fmt.Errorf("version %q: %w", args[0], err)
				}
				return migrations.Force(db.url, v)
			}
		}}
}
