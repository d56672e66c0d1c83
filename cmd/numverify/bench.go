package main

import (
	"context"
	"errors"
	"flag"
)

// TODO(placeholder): replaced by the real command.
func benchCommand() command {
	return command{name: "bench", summary: "(not built yet)",
		setup: func(fs *flag.FlagSet) func(context.Context, []string) error {
			return func(context.Context, []string) error { return errors.New("not built yet") }
		}}
}
