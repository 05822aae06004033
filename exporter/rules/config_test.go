package rules

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vantage-probe/vantage/agent/config"
)

// TestExampleConfig: the shipped example config yields valid rules with a
// down alert for each of its targets.
func TestExampleConfig(t *testing.T) {
	path := filepath.Join("..", "..", "configs", "example.toml")
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		t.Skip("configs/example.toml does not exist yet")
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatalf("config.Load(%s): %v", path, err)
	}
	yml, err := Generate(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Targets) == 0 {
		t.Fatal("example.toml has no targets")
	}
	// The alerts keep every label name the example's targets use.
	for _, tg := range cfg.Targets {
		for k := range tg.Labels {
			if k != "runbook" && !strings.Contains(string(yml), ", "+k) {
				t.Errorf("target %q: label %q is not kept on alerts", tg.Name, k)
			}
		}
	}
	checkRules(t, yml)
}

// TestLoadedConfig goes through the real loader: the [slo] window and the
// label names of a TOML file reach the rules (objectives and certificate
// days reach Prometheus as series, not rules).
func TestLoadedConfig(t *testing.T) {
	const src = `
[agent]
node = "n1"
region = "eu-west"

[slo]
objective = 0.995
window = "30d"

[[target]]
name = "api"
type = "http"
url = "https://api.example.com/"
slo_objective = 0.9999
labels = { team = "core", severity = "critical" }

[[target]]
name = "cert"
type = "tls"
address = "api.example.com:443"
[target.tls]
min_days_left = 21
`
	cfg, err := config.Parse("inline.toml", []byte(src))
	if err != nil {
		t.Fatalf("config.Parse: %v", err)
	}
	yml, err := Generate(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	s := string(yml)
	for _, want := range []string{
		`record: "vantage:slo_availability:ratio_rate30d"`,
		`min by(target, type, severity, team) (`,
	} {
		if !strings.Contains(s, want) {
			t.Errorf("rules lack %q", want)
		}
	}
	checkRules(t, yml)
}
