package main

import (
	"context"
	"errors"
	"flag"
)

// TODO(placeholder): replaced by the real command.
func keysRotateCommand() command {
	return command{name: "keys rotate", summary: "(not built yet)",
		setup: func(fs *flag.FlagSet) func(context.Context, []string) error {
			return func(context.Context, []string) error { return errors.New("not built yet") }
		}}
}
