package rules

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vantage-probe/vantage/internal/testenv"
)

// TestVmalertLoadsRules: the generated rules load into vmalert as they
// are (agents that push to VictoriaMetrics are alerted on by vmalert): its
// dry run parses every expression with the MetricsQL engine and every
// annotation template with vmalert's functions (query, first, value,
// label, humanizeTimestamp). What differs at evaluation time is in
// README.md (Deployment: pull or push); the agent package evaluates the
// rules with vmalert on pushed series.
func TestVmalertLoadsRules(t *testing.T) {
	vmalert := testenv.RequireBinary(t, "victoria-metrics", "vmalert")
	dir := t.TempDir()
	dryRun := func(name string, yml []byte) (string, error) {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, yml, 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(vmalert, "-rule="+p, "-dryRun", "-loggerLevel=ERROR").CombinedOutput()
		return string(out), err
	}
	for name, opts := range map[string]Options{"default.yml": {}, "job.yml": {Job: "probers|vantage-.+", RunbookBase: "https://runbooks.example.com/"}} {
		yml, err := Generate(fixture(), opts)
		if err != nil {
			t.Fatal(err)
		}
		if out, err := dryRun(name, yml); err != nil {
			t.Errorf("vmalert -dryRun %s: %v\n%s", name, err, out)
		}
		// The dry run checks: one bad template in the same file fails it.
		bad := strings.Replace(string(yml), "{{ $labels.target }} is down", "{{ $labels.target | nosuchfunc }} is down", 1)
		if bad == string(yml) {
			t.Fatal("no VantageTargetDown summary to break")
		}
		if out, err := dryRun("bad-"+name, []byte(bad)); err == nil || !strings.Contains(out, "nosuchfunc") {
			t.Errorf("vmalert -dryRun accepted a broken template: %v\n%s", err, out)
		}
	}
}
