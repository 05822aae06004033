package amtest

import (
	"context"
	"os"
)

// EnvRequireTools, set to 1, turns a missing Alertmanager from a skipped
// test into a failed one: CI installs it and must not pass by skipping.
const EnvRequireTools = "VANTAGE_REQUIRE_TOOLS"

// TB is the part of testing.TB that Need and StartForTest use.
type TB interface {
	Helper()
	Context() context.Context
	TempDir() string
	Cleanup(func())
	Failed() bool
	Logf(format string, args ...any)
	Fatalf(format string, args ...any)
	Skipf(format string, args ...any)
}

// Need returns the Alertmanager binary, or skips the test when there is
// none, or fails it when $VANTAGE_REQUIRE_TOOLS=1.
func Need(t TB) string {
	t.Helper()
	bin, err := Binary()
	if err == nil {
		return bin
	}
	if os.Getenv(EnvRequireTools) == "1" {
		t.Fatalf("%v; $%s=1 requires it", err, EnvRequireTools)
	}
	t.Skipf("%v; set $%s=1 to fail instead of skipping", err, EnvRequireTools)
	return ""
}

// StartForTest starts an Alertmanager for the test (see Start), in a
// fresh temporary directory, and stops it at cleanup, logging its output
// if the test failed.
func StartForTest(t TB, opts Options) *Server {
	t.Helper()
	Need(t)
	s, err := Start(t.Context(), t.TempDir(), opts)
	if err != nil {
		t.Fatalf("%v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Logf("%v", err)
		}
		if t.Failed() {
			t.Logf("Alertmanager %s output:\n%s", s.URL(), s.Logs())
		}
	})
	return s
}
