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
	for _, tg := range cfg.Targets {
		if !strings.Contains(string(yml), `vantage_target_up{job=~\"vantage.*\",target=\"`+tg.Name+`\"}`) {
			t.Errorf("no down alert for target %q", tg.Name)
		}
	}
	checkRules(t, yml)
}

// TestLoadedConfig goes through the real loader: the per-target
// slo_objective, [slo] and labels of a TOML file reach the rules.
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
		`vantage:probe_error_ratio:rate1h{target=\"api\"} > (14.4 * (1 - 0.9999))`,
		`vantage:probe_error_ratio:rate1h{target=\"cert\"} > (14.4 * (1 - 0.995))`,
		`record: "vantage:slo_availability:ratio_rate30d"`,
		`severity: "critical"`,
		`team: "core"`,
		`target=\"cert\"}) - time())` + "\n          < 21 * 86400",
		`target=\"api\"}) - time())` + "\n          < 14 * 86400",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("rules lack %q", want)
		}
	}
	checkRules(t, yml)
}
