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
	fs       *flag.FlagSet // to read --resource-clock-skew, when the resource server is served too
	interval time.Duration
}

func addPurgeFlags(fs *flag.FlagSet) *purgeFlags {
	f := &purgeFlags{fs: fs}
	fs.DurationVar(&f.interval, "purge-interval", time.Minute,
		"delete expired codes, tokens, jtis, revocations and retired keys at this interval, one replica at a time (0: never; then run `numverify janitor`)")
	return f
}

// purger returns the purge loop for an authorization server whose access
// tokens live accessTokenLifetime (nil when disabled). The margin on
// revocations and used jtis is the resource server's clock skew when it is
// served by this process, otherwise the largest a resource server accepts.
func (f *purgeFlags) purger(deps serveDeps, accessTokenLifetime time.Duration) (func(context.Context), error) {
	if f.interval < 0 {
		return nil, fmt.Errorf("--purge-interval %s: want 0 (never) or more", f.interval)
	}
	if f.interval == 0 {
		return nil, nil
	}
	skew := janitor.MaxClockSkew
	if flag := f.fs.Lookup("resource-clock-skew"); flag != nil {
		if d, err := time.ParseDuration(flag.Value.String()); err == nil && d >= 0 {
			skew = d
		}
	}
	p := janitor.NewPurger(deps.Pool, janitor.Tasks(janitor.Lifetimes{AccessToken: accessTokenLifetime, ClockSkew: skew}),
		janitor.WithLogger(deps.Logger))
	return func(ctx context.Context) { p.Run(ctx, f.interval) }, nil
}
