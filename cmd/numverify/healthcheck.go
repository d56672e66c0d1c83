package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"time"
)

// healthcheckCommand is `numverify healthcheck`: it probes a server's
// /readyz or /healthz, for container images without a shell or curl
// (distroless).
type healthcheckCommand struct {
	url     string
	timeout time.Duration
}

func (c *healthcheckCommand) register(fs *flag.FlagSet) {
	fs.StringVar(&c.url, "url", "http://127.0.0.1:9090/readyz", "URL to probe")
	fs.DurationVar(&c.timeout, "timeout", 3*time.Second, "time allowed for the answer")
}

func (c *healthcheckCommand) Run(_ context.Context, args []string) error {
	if err := noArgs(args); err != nil {
		return err
	}
	client := &http.Client{Timeout: c.timeout}
	resp, err := client.Get(c.url)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s answered %s", c.url, resp.Status)
	}
	return nil
}
