// Package testenv is what tests share about their environment: the real
// neighbours they run (prometheus, promtool, prometheus-alertmanager,
// prometheus-blackbox-exporter, victoria-metrics, chromium) and the one way
// to wait for a condition.
//
// A test that needs a neighbour which is not installed skips, saying how to
// get it, unless VANTAGE_REQUIRE_TOOLS=1 (CI sets it after installing them):
// then it fails, so a CI machine without the package cannot pass silently.
package testenv

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/vantage-probe/vantage/internal/mono"
)

// RequireEnv is the variable that turns a missing neighbour from a skip
// into a failure.
const RequireEnv = "VANTAGE_REQUIRE_TOOLS"

// Binary returns the first of names found on PATH, or an error naming the
// Debian package that provides it.
func Binary(pkg string, names ...string) (string, error) {
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("none of %v on PATH (Debian package %s)", names, pkg)
}

// RequireBinary returns the binary for a test: it skips the test when the
// binary is missing, or fails it when RequireEnv is set.
func RequireBinary(t testing.TB, pkg string, names ...string) string {
	t.Helper()
	p, err := Binary(pkg, names...)
	if err != nil {
		if os.Getenv(RequireEnv) == "1" {
			t.Fatalf("%v, and %s=1", err, RequireEnv)
		}
		t.Skipf("%v; install it to run this test", err)
	}
	return p
}

// Poll calls cond every 50ms until it returns true, and fails the test
// naming what it waited for after d. It is the one way tests wait: a
// condition, never a bare sleep.
func Poll(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	if !mono.Poll(context.Background(), d, 50*time.Millisecond, cond) {
		t.Fatalf("timed out after %v waiting for %s", d, what)
	}
}
