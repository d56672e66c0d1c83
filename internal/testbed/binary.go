// Package testbed runs numverify as real processes for tests: the binary
// built once per `go test` process, servers started on free ports and
// stopped with SIGTERM when the test ends (their output shown when it
// failed), a Stack of servers on a fresh database, /metrics read with
// Prometheus's own parser, and service providers logging devices in with
// sim's relying party (ID tokens verified).
//
// It is a non-test package used only by tests (e2e's): nothing in the
// binary imports it. A package using it calls Main from its TestMain so
// that the built binary and a throwaway Postgres cluster are removed:
//
//	func TestMain(m *testing.M) { testbed.Main(m) }
package testbed

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/numverify/numverify/internal/pgtest"
)

var (
	buildOnce sync.Once
	buildDir  string
	binPath   string
	buildErr  error
)

// Main runs the package's tests, then removes the built binary and any
// throwaway Postgres cluster pgtest started.
func Main(m *testing.M) {
	pgtest.Main(m, func() {
		if buildDir != "" {
			_ = os.RemoveAll(buildDir)
		}
	})
}

// Binary returns the path of cmd/numverify, built on the first call of the
// test process into a directory kept until Main ends. Tests run with -short
// are skipped: they start no process.
func Binary(t testing.TB) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the binary and starts servers as processes")
	}
	buildOnce.Do(func() {
		if buildDir, buildErr = os.MkdirTemp("", "numverify-testbed-"); buildErr != nil {
			return
		}
		binPath = filepath.Join(buildDir, "numverify")
		out, err := exec.Command("go", "build", "-o", binPath, "github.com/numverify/numverify/cmd/numverify").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}
