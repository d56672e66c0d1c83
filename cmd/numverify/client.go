package main

import (
	"context"
	"errors"
	"flag"
)

// TODO(placeholder): replaced by the real command.
func clientCreateCommand() command {
	return command{name: "client create", summary: "(not built yet)",
		setup: func(fs *flag.FlagSet) func(context.Context, []string) error {
			return func(context.Context, []string) error { return errors.New("not built yet") }
		}}
}

// TODO(placeholder): replaced by the real command.
func clientListCommand() command {
	return command{name: "client list", summary: "(not built yet)",
		setup: func(fs *flag.FlagSet) func(context.Context, []string) error {
			return func(context.Context, []string) error { return errors.New("not built yet") }
		}}
}

// TODO(placeholder): replaced by the real command.
func clientDeleteCommand() command {
	return command{name: "client delete", summary: "(not built yet)",
		setup: func(fs *flag.FlagSet) func(context.Context, []string) error {
			return func(context.Context, []string) error { return errors.New("not built yet") }
		}}
}
