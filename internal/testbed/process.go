package testbed

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/numverify/numverify/internal/pgcluster"
	"github.com/numverify/numverify/internal/syncbuf"
)

// Process is a running numverify command.
type Process struct {
	Args []string
	Cmd  *exec.Cmd // to signal or kill it
	stdout,
	stderr syncbuf.Buffer
	done chan struct{}
	err  error // once done
}

// Start starts `numverify args…` with env added to this process's
// environment. When the test ends it gets SIGTERM (SIGKILL after 15 s), and
// its last lines are logged if the test failed.
func Start(t testing.TB, env []string, args ...string) *Process {
	t.Helper()
	p := &Process{Args: args, done: make(chan struct{})}
	p.Cmd = exec.Command(Binary(t), args...)
	p.Cmd.Env = append(os.Environ(), env...)
	p.Cmd.Stdout, p.Cmd.Stderr = &p.stdout, &p.stderr
	if err := p.Cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = p.Cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		_ = p.Cmd.Process.Signal(syscall.SIGTERM)
		if !p.Exited(15 * time.Second) {
			_ = p.Cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("numverify %s (last lines):\n%s", strings.Join(args, " "), p.Tail(40))
		}
	})
	return p
}

// Exited waits at most d for the process to exit.
func (p *Process) Exited(d time.Duration) bool {
	select { // first without waiting: with both ready, select picks at random
	case <-p.done:
		return true
	default:
	}
	select {
	case <-p.done:
		return true
	case <-time.After(d):
		return false
	}
}

// Err is how the process ended (nil while it runs, or after exit 0).
func (p *Process) Err() error {
	select {
	case <-p.done:
		return p.err
	default:
		return nil
	}
}

// ExitCode is the exit status, -1 for a signal or while it runs.
func (p *Process) ExitCode() int {
	if !p.Exited(0) {
		return -1
	}
	var exit *exec.ExitError
	if errors.As(p.err, &exit) {
		return exit.ExitCode()
	}
	if p.err != nil {
		return -1
	}
	return 0
}

// Stdout is what the process wrote on its standard output so far.
func (p *Process) Stdout() string { return p.stdout.String() }

// Output is its standard output, then its standard error, so far.
func (p *Process) Output() string { return p.stdout.String() + p.stderr.String() }

// Tail is the last n lines of the output, for failure messages.
func (p *Process) Tail(n int) string {
	lines := strings.Split(strings.TrimRight(p.Output(), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Run runs `numverify args…` to completion (at most a minute) and returns
// its standard output; a non-zero exit fails the test.
func Run(t testing.TB, env []string, args ...string) string {
	t.Helper()
	out, err := RunErr(t, env, args...)
	if err != nil {
		t.Fatalf("numverify %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// RunErr runs `numverify args…` to completion: its standard output, or on
// failure its standard output and error, and how it failed.
func RunErr(t testing.TB, env []string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, Binary(t), args...)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String() + stderr.String(), err
	}
	return stdout.String(), nil
}

// WaitHealthy waits up to 30 s until each URL answers 200; p (nil for
// none) exiting meanwhile fails the test at once.
func WaitHealthy(t testing.TB, p *Process, urls ...string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	client := &http.Client{Timeout: 2 * time.Second}
	for _, u := range urls {
		for {
			resp, err := client.Get(u)
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					break
				}
			}
			if p != nil && p.Exited(0) {
				t.Fatalf("numverify %s exited: %v\n%s", strings.Join(p.Args, " "), p.err, p.Tail(30))
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s did not answer 200 in 30 s (last: %v)", u, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// FreePorts returns n distinct free TCP ports on 127.0.0.1.
func FreePorts(t testing.TB, n int) []string {
	t.Helper()
	seen := map[int]bool{}
	var ports []string
	for len(ports) < n {
		p, err := pgcluster.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		if !seen[p] {
			seen[p] = true
			ports = append(ports, strconv.Itoa(p))
		}
	}
	return ports
}
