package main

import (
	"os"
	"runtime/debug"
)

// serverGCPercent is the garbage collector's target for the servers (Go's
// default is 100): a login leaves much short-lived garbage (fosite's
// requests, JSON, JOSE) on a small live heap, so collecting when the heap
// has grown by 400% rather than 100% spends less CPU on the collector for
// a few tens of megabytes more. Measured on the 2-core machine of the
// README, `bench --mode flow+verify --devices 64 --duration 15s` against
// `serve` with GOGC=100 and GOGC=400 alternately: 411, 432, 445 and 470,
// 472, 539 complete verifications/s; over 30 s the server's RSS held at
// 55-57 MiB and 91-94 MiB.
const serverGCPercent = 400

// tuneGC sets the collector's target of a server process, unless the
// operator set GOGC (which wins, as for any Go program; GOMEMLIMIT caps the
// heap as usual).
//
// The load tool (`bench`) calls it too: it shares the machine with the
// servers it measures, and every core it spends collecting is taken from
// them.
func tuneGC() {
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(serverGCPercent)
	}
}
