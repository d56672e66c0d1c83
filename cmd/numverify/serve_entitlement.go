package main

import (
	"flag"
	"fmt"
	"time"

	"github.com/numverify/numverify/network"
	"github.com/numverify/numverify/network/entitlement"
)

// entitlementFlags are the simulated TS.43 entitlement server's settings;
// `serve network` runs it on its own address.
type entitlementFlags struct {
	addr       string
	sessionTTL time.Duration
}

func (f *entitlementFlags) register(fs *flag.FlagSet) {
	// Off unless asked: it is the simulator's stand-in for the operator's own
	// entitlement server (a real one mints through the admin API), and a
	// fixed default port would collide between processes on one host.
	fs.StringVar(&f.addr, "entitlement-addr", "",
		"listen address of the simulated TS.43 entitlement server (EAP-AKA over HTTP, AcquireTemporaryToken → operator token), e.g. 127.0.0.1:9093; empty (the default) disables it")
	fs.DurationVar(&f.sessionTTL, "entitlement-session-ttl", entitlement.DefaultSessionTTL,
		"how long the entitlement server waits for a device's answer to its EAP-AKA challenge")
}

// server builds the entitlement server, minting through store; nil when disabled.
func (f *entitlementFlags) server(store *network.Store, deps serveDeps) (*server, error) {
	if f.addr == "" {
		return nil, nil
	}
	if f.sessionTTL <= 0 {
		return nil, fmt.Errorf("--entitlement-session-ttl must be positive")
	}
	srv, err := entitlement.NewServer(entitlement.Config{SIMs: entitlement.NewSIMStore(deps.Pool), Tokens: store,
		Logger: deps.Logger, Registerer: deps.Registry, SessionTTL: f.sessionTTL})
	if err != nil {
		return nil, err
	}
	return &server{name: "entitlement", addr: f.addr, handler: srv}, nil
}
