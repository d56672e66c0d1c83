package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"time"
)

// healthcheckCommand probes a server's /readyz or /healthz: container images
// without a shell or curl (distroless) use it for their health checks.
func healthcheckCommand() command {
	return command{name: "healthcheck", summary: "exit 0 when the URL answers 2xx (for container health checks)",
		setup: func(fs *flag.FlagSet) func(context.Context, []string) error {
			url := fs.String("url", "http://127.0.0.1:9090/readyz", "URL to probe")
			timeout := fs.Duration("timeout", 3*time.Second, "time allowed for the answer")
			return func(ctx context.Context, args []string) error {
				if err := noArgs(args); err != nil {
					return err
				}
				client := &http.Client{Timeout: *timeout}
				resp, err := client.Get(*url)
				if err != nil {
					return err
				}
				resp.Body.Close()
				if resp.StatusCode/100 != 2 {
					return fmt.Errorf("%s answered %s", *url, resp.Status)
				}
				return nil
			}
		}}
}
