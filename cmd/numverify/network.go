package main

import (
	"context"
	"errors"
	"flag"
)

// TODO(placeholder): replaced by the real command.
func networkAttachCommand() command {
	return command{name: "network attach", summary: "(not built yet)",
		setup: func(fs *flag.FlagSet) func(context.Context, []string) error {
			return func(context.Context, []string) error { return errors.New("not built yet") }
		}}
}

// TODO(placeholder): replaced by the real command.
func networkDetachCommand() command {
	return command{name: "network detach", summary: "(not built yet)",
		setup: func(fs *flag.FlagSet) func(context.Context, []string) error {
			return func(context.Context, []string) error { return errors.New("not built yet") }
		}}
}

// TODO(placeholder): replaced by the real command.
func networkListCommand() command {
	return command{name: "network list", summary: "(not built yet)",
		setup: func(fs *flag.FlagSet) func(context.Context, []string) error {
			return func(context.Context, []string) error { return errors.New("not built yet") }
		}}
}

// TODO(placeholder): replaced by the real command.
func networkLookupCommand() command {
	return command{name: "network lookup", summary: "(not built yet)",
		setup: func(fs *flag.FlagSet) func(context.Context, []string) error {
			return func(context.Context, []string) error { return errors.New("not built yet") }
		}}
}
