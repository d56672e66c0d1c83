// Command numverify is the one binary of numverify: the authorization server,
// the resource server, the simulated mobile network, and their tools.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

// commands lists every subcommand; each is wired in its own file.
func commands() []command {
	return []command{
		migrateUpCommand(), migrateDownCommand(), migrateVersionCommand(), migrateForceCommand(),
		serveCommand(), serveAuthzCommand(), serveResourceCommand(), serveNetworkCommand(),
		networkAttachCommand(), networkDetachCommand(), networkListCommand(), networkLookupCommand(), networkSIMAddCommand(),
		clientCreateCommand(), clientListCommand(), clientDeleteCommand(),
		keysRotateCommand(), keysResourceSecretsKeyCommand(),
		demoCommand(), deviceCommand(), spCommand(), spJWKSCommand(), spAssertCommand(), benchCommand(), janitorCommand(), healthcheckCommand(),
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := execute(ctx, commands(), os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}
