package main

import (
	"context"
	"errors"
	"flag"
)

// TODO(placeholder): replaced by the real component.
func resourceServeFlags(fs *flag.FlagSet) buildServer {
	return func(ctx context.Context, deps serveDeps) (*server, error) {
		return nil, errors.New("resource server not built yet")
	}
}
