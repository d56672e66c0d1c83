// Command numverify is the one binary of numverify: the authorization server,
// the resource server, the simulated mobile network, and their tools.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

// commands is the command table: each command's words, its summary, and the
// struct (in its own file) whose fields are its flags.
func commands() []command {
	return []command{
		{name: "migrate up", summary: "apply every pending schema migration", cmd: &migrateUpCommand{}},
		{name: "migrate down", summary: "revert migrations (all, or --steps N)", cmd: &migrateDownCommand{}},
		{name: "migrate version", summary: "print the schema version of the database and of this binary", cmd: &migrateVersionCommand{}},
		{name: "migrate force", summary: "record a schema version without running migrations (repair after a failed one)",
			cmd: &migrateForceCommand{}},
		{name: "serve", summary: "run the authorization, resource and network servers in one process",
			cmd: newServeCommand("serve", &authzFlags{}, &resourceFlags{}, &networkFlags{})},
		{name: "serve authz", summary: "run the OAuth2/OpenID Connect authorization server (default :9090)",
			cmd: newServeCommand("serve authz", &authzFlags{}, nil, nil)},
		{name: "serve resource", summary: "run the Number Verification resource server (default :9091)",
			cmd: newServeCommand("serve resource", nil, &resourceFlags{}, nil)},
		{name: "serve network", summary: "run the simulated mobile network's admin API (default :9092)",
			cmd: newServeCommand("serve network", nil, nil, &networkFlags{})},
		{name: "network attach", summary: "attach a subscriber: open a session at an address (given, or allocated from a pool)",
			cmd: &networkAttachCommand{}},
		{name: "network detach", summary: "detach a session: close its period now (its history stays)", cmd: &networkDetachCommand{}},
		{name: "network list", summary: "list sessions (attached ones, or with --all the history too), newest first", cmd: &networkListCommand{}},
		{name: "network lookup", summary: "who held an address (and port, behind CGNAT) at an instant (default now)", cmd: &networkLookupCommand{}},
		{name: "network gateway start", summary: "play the packet gateway: send a RADIUS Accounting-Request Start for a subscriber's data session to `serve network`; prints its Acct-Session-Id",
			cmd: &networkGatewayStartCommand{}},
		{name: "network gateway stop", summary: "play the packet gateway: send the RADIUS Accounting-Request Stop of a session `network gateway start` opened",
			cmd: &networkGatewayStopCommand{}},
		{name: "network sim add", summary: "provision a SIM (IMSI, MSISDN, MILENAGE K and OPc) for EAP-AKA at the entitlement server; prints K and OPc once",
			cmd: &networkSIMAddCommand{}},
		{name: "client create", summary: "register a service-provider client and print its credentials (the secret is shown once)",
			cmd: &clientCreateCommand{}},
		{name: "client list", summary: "list the registered clients (never their secrets)", cmd: &clientListCommand{}},
		{name: "client delete", summary: "delete a client and every code and token issued to it; the resource servers refuse its tokens at once",
			cmd: &clientDeleteCommand{}},
		{name: "keys rotate", summary: "add a new signing key of each algorithm (or of --alg): published now, signing after --publish-ahead; old keys retire after --grace",
			cmd: &keysRotateCommand{}},
		{name: "keys resource-secrets-key",
			summary: "print the resource secrets key an authz server derives from --secrets-key when --resource-secrets-key is unset (for resource servers run apart)",
			cmd:     &keysResourceSecretsKeyCommand{}},
		{name: "device", summary: "one simulated handset: send an authorization request from its session address and print where it ended",
			cmd: &deviceCommand{}},
		{name: "demo", summary: "show the whole flow on this machine: servers, a client, two devices, one on Wi-Fi, and what each call answered",
			cmd: &demoCommand{}},
		{name: "sp", summary: "serve a minimal service-provider web page that verifies a number through the operator (the SP reference)",
			cmd: &spCommand{}},
		{name: "sp jwks", summary: "print the JWKS (public key set) of an SP's P-256 private key, for client create --jwks-file",
			cmd: &spJWKSCommand{}},
		{name: "sp assert", summary: "sign an SP's JWT for curl: a private_key_jwt client assertion, or with --operator-token a JWT-bearer grant assertion",
			cmd: &spAssertCommand{}},
		{name: "bench", summary: "load generator: many devices, each from its own loopback address, through the flow or verify alone, in a closed or open loop",
			cmd: &benchCommand{}},
		{name: "janitor", summary: "delete expired codes, tokens, used jtis, revocations and retired keys in bounded batches; move closed network sessions to history and drop its partitions past retention",
			cmd: &janitorCommand{}},
		{name: "healthcheck", summary: "exit 0 when the URL answers 2xx (for container health checks)", cmd: &healthcheckCommand{}},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := execute(ctx, commands(), os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}
