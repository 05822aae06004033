package bench

import (
	"strings"
	"testing"
	"time"

	"github.com/vantage-probe/vantage/internal/testenv"
)

// TestRulesEvaluateOnRealSeries: a real Prometheus evaluates the generated
// rules against the series the exporter writes (a synthetic three-region
// fleet) without one evaluation failure (a many-to-many match, a label
// clash), and VantageTargetDown fires for exactly the targets whose leader
// says down.
func TestRulesEvaluateOnRealSeries(t *testing.T) {
	testenv.RequireBinary(t, "prometheus", "prometheus")
	if testing.Short() {
		t.Skip("runs Prometheus for 20s")
	}
	var progress strings.Builder
	res, err := RulesEval(t.Context(), RulesOptions{Targets: 300, Down: 3, Interval: time.Second, Duration: 20 * time.Second, Progress: &progress})
	if err != nil {
		t.Fatalf("%v\n%s", err, progress.String())
	}
	var out strings.Builder
	_ = res.WriteText(&out)
	t.Log(out.String())
	if res.EvalFailures != 0 {
		t.Errorf("%v rule evaluation failures", res.EvalFailures)
	}
	if res.Firing["VantageTargetDown"] != 3 {
		t.Errorf("VantageTargetDown firing for %d targets, want 3 (firing: %v)", res.Firing["VantageTargetDown"], res.Firing)
	}
	for _, g := range []string{"vantage.targets", "vantage.slo", "vantage.certificates", "vantage.fleet"} {
		if _, ok := res.GroupMax[g]; !ok {
			t.Errorf("group %s never evaluated: %v", g, res.GroupMax)
		}
	}
	if res.Rules > 60 {
		t.Errorf("%d rules", res.Rules)
	}
}
