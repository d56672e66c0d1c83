package main

import (
	"context"
	"flag"
	"fmt"
	"time"

	"github.com/numverify/numverify/internal/janitor"
)

// purgeFlags are the settings of the purge timer that runs with the
// authorization server: expired codes, tokens, jtis, revocations and retired
// keys are deleted by the servers themselves, one replica at a time.
type purgeFlags struct {
	interval time.Duration
}

func (f *purgeFlags) register(fs *flag.FlagSet) {
	fs.DurationVar(&f.interval, "purge-interval", time.Minute,
		"delete expired codes, tokens, jtis, revocations and retired keys at this interval, one replica at a time (0: never; then run `numverify janitor`)")
}

func (f *purgeFlags) validate() error {
	if f.interval < 0 {
		return fmt.Errorf("--purge-interval %s: want 0 (never) or more", f.interval)
	}
	return nil
}

// purger returns the purge loop for an authorization server whose access
// tokens live accessTokenLifetime (nil when disabled). The margin on
// revocations and used jtis is clockSkew: the resource server's when it is
// served by this process, otherwise the largest a resource server accepts.
func (f *purgeFlags) purger(deps serveDeps, accessTokenLifetime, clockSkew time.Duration) func(context.Context) {
	if f.interval <= 0 {
		return nil
	}
	p := janitor.NewPurger(deps.Pool, janitor.Tasks(janitor.Lifetimes{AccessToken: accessTokenLifetime, ClockSkew: clockSkew}),
		janitor.WithLogger(deps.Logger))
	return func(ctx context.Context) { p.Run(ctx, f.interval) }
}
