//go:build pprof

// Built with -tags pprof, the binary serves net/http/pprof on
// NUMVERIFY_PPROF_ADDR (default 127.0.0.1:6060): how the figures in the
// README's "Measuring" section were profiled. Release builds leave it out.
package main

import (
	"fmt"
	"net/http"
	_ "net/http/pprof"
	"os"
)

func init() {
	addr := os.Getenv("NUMVERIFY_PPROF_ADDR")
	if addr == "" {
		addr = "127.0.0.1:6060"
	}
	go func() {
		// Said on stderr: a taken port would otherwise leave a profiling
		// run without its profile and no word why.
		fmt.Fprintf(os.Stderr, "pprof on %s: %v\n", addr, http.ListenAndServe(addr, nil))
	}()
}
