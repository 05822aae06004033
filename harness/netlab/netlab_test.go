package netlab

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/vantage-probe/vantage/internal/testenv"
)

// lineWriter sends progress lines to the test log.
type lineWriter struct{ t *testing.T }

func (w lineWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// buildAgent builds the vantage binary of this tree into a temporary
// directory: the test needs nothing beyond the repository.
func buildAgent(t *testing.T) string {
	t.Helper()
	gobin, err := exec.LookPath("go")
	if err != nil {
		gobin = filepath.Join(runtime.GOROOT(), "bin", "go") //nolint:staticcheck // the toolchain running this test
	}
	bin := filepath.Join(t.TempDir(), "vantage")
	cmd := exec.Command(gobin, "build", "-o", bin, "github.com/vantage-probe/vantage/cmd/vantage")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the agent: %v\n%s", err, out)
	}
	return bin
}

// TestNetlabShort runs the short form of the fault lab with real
// processes: six agent processes in three network namespaces, a farm in a
// fourth, an agent killed with SIGKILL during an outage on a target it led
// and restarted under its name, then a config with a syntax error pushed
// to every agent with SIGHUP. Every invariant is checked throughout; the
// test asserts that none was violated. It needs root (network namespaces)
// and skips without it.
func TestNetlabShort(t *testing.T) {
	if testing.Short() {
		t.Skip("the lab with real processes takes two minutes")
	}
	if os.Geteuid() != 0 {
		t.Skipf("needs root to make network namespaces (uid %d)", os.Geteuid())
	}
	if why := Unavailable(); why != "" {
		if os.Getenv(testenv.RequireEnv) == "1" {
			t.Fatalf("%s, and %s=1", why, testenv.RequireEnv)
		}
		t.Skip(why)
	}
	o := Short()
	o.Agent = buildAgent(t)
	o.Dir = t.TempDir()
	o.Progress = lineWriter{t}
	start := time.Now()
	rep, err := Run(t.Context(), o)
	if errors.Is(err, ErrUnavailable) {
		t.Skip(err)
	}
	if rep != nil {
		var b strings.Builder
		_ = rep.WriteText(&b)
		t.Logf("\n%s", b.String())
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("played in %v", time.Since(start).Round(time.Second))
	for _, v := range rep.Violations {
		t.Errorf("violation: %s", v)
	}
	if t.Failed() {
		logTails(t, filepath.Join(o.Dir, "logs"))
	}
	for _, row := range rep.Rows {
		if row.Outages == 0 && row.Scenario == "kill-restart" {
			t.Errorf("kill-restart played no outage")
		}
	}
	if left, err := RemoveLeftovers(); err != nil || len(left) > 0 {
		t.Errorf("namespaces left behind: %v %v", left, err)
	}
}

// logTails logs the end of every agent's log: the evidence, before the
// test's temporary directory goes.
func logTails(t *testing.T, dir string) {
	files, _ := filepath.Glob(filepath.Join(dir, "*.log"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
		t.Logf("%s (last %d lines):\n%s", filepath.Base(f), min(len(lines), 40), strings.Join(lines[max(0, len(lines)-40):], "\n"))
	}
}
