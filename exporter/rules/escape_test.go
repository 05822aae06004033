package rules

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vantage-probe/vantage/agent/config"
)

func TestYAMLQuote(t *testing.T) {
	for in, want := range map[string]string{
		"":                           `""`,
		"plain":                      `"plain"`,
		`a"b\c`:                      `"a\"b\\c"`,
		"line\nbreak\r\ttab":         `"line\nbreak\r\ttab"`,
		"\x00\x01\x1f\x7f":           `"\x00\x01\x1F\x7F"`,
		"nel\u0085ls\u2028ps\u2029":  `"nel\x85ls\u2028ps\u2029"`,
		"\ufeffbom":                  `"\uFEFFbom"`,
		"bad\xffutf8":                `"bad\uFFFDutf8"`,
		"é ü 日本 {{ x }} # : - ' & *": `"é ü 日本 {{ x }} # : - ' & *"`,
		"yes":                        `"yes"`, // a string, not YAML 1.1's boolean
	} {
		if got := yamlQuote(in); got != want {
			t.Errorf("yamlQuote(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestYAMLFolded(t *testing.T) {
	got := yamlFolded([]string{" a == 0 ", "", `unless on(target) b{x="y"}`}, "    ")
	want := "\"a == 0\n    unless on(target) b{x=\\\"y\\\"}\""
	if got != want {
		t.Errorf("yamlFolded = %q, want %q", got, want)
	}
}

func TestPromDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		28 * 24 * time.Hour:     "28d",
		36 * time.Hour:          "36h",
		90 * time.Minute:        "90m",
		45 * time.Second:        "45s",
		1500 * time.Millisecond: "1500ms",
		time.Microsecond:        "1ms",
	} {
		if got := promDuration(d); got != want {
			t.Errorf("promDuration(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestTmplText(t *testing.T) {
	if got := tmplText("plain $x"); got != "plain $x" {
		t.Errorf("tmplText changed text without delimiters: %q", got)
	}
	if got := tmplText(`a{{b}}"c`); got != `{{ "a{{b}}\"c" }}` {
		t.Errorf("tmplText = %q", got)
	}
}

// TestHostileValuesEndToEnd: a target whose name, labels and URL hold
// quotes, backslashes, template delimiters and control characters still
// yields rules promtool accepts, and its alert carries those values exactly
// as configured.
func TestHostileValuesEndToEnd(t *testing.T) {
	promtool(t) // skips the test when promtool is missing
	name := `we"ird\ {{ .x }} név`
	labels := map[string]string{
		"team":     "a\"b\\c{{\n\t\x01\u0085\u2028é}}",
		"severity": "crit{{",
		"runbook":  `https://wiki.example.com/{{x}}?a="b"`,
		"env":      "prod # not a comment",
	}
	url := `https://ex.example.com/p?q={{x}}&r="\`
	cfg := &config.Config{Targets: []*config.Target{
		httpTarget(&config.Target{Name: name, Type: config.TypeHTTP, Labels: labels}, url),
	}}
	yml, err := Generate(cfg, Options{Job: `vant%age|x\.y`})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	rulesFile := filepath.Join(dir, "rules.yml")
	if err := os.WriteFile(rulesFile, yml, 0o644); err != nil {
		t.Fatal(err)
	}
	runPromtool(t, "check", "rules", rulesFile)

	// The labels reach the alert from the series, never as template text.
	own := ""
	for _, k := range []string{"env", "runbook", "severity", "team"} {
		own += "," + k + "=" + strconv.Quote(labels[k])
	}
	series := "vantage_target_up{job=\"vant%age\",instance=\"a:9115\",target=" + strconv.Quote(name) + ",type=\"http\"" + own + "}"
	failing := "vantage_target_regions_failing{job=\"x.y\",instance=\"a:9115\",target=" + strconv.Quote(name) + "}"
	var b strings.Builder
	w := func(ind int, k, v string) { b.WriteString(strings.Repeat(" ", ind) + k + ": " + yamlQuote(v) + "\n") }
	b.WriteString("rule_files: [" + yamlQuote(rulesFile) + "]\nevaluation_interval: 1m\ntests:\n  - interval: 1m\n    input_series:\n")
	w(6, "- series", series)
	w(8, "values", "0 0 0")
	w(6, "- series", failing)
	w(8, "values", "2 2 2")
	b.WriteString("    alert_rule_test:\n      - eval_time: 1m\n        alertname: VantageTargetDown\n        exp_alerts:\n          - exp_labels:\n")
	w(14, "target", name)
	w(14, "type", "http")
	w(14, "team", labels["team"])
	w(14, "env", labels["env"])
	w(14, "severity", labels["severity"])
	b.WriteString("            exp_annotations:\n")
	w(14, "summary", name+" is down: failing in 2 of ? regions")
	w(14, "description", "Vantage's quorum calls the http target "+name+" down: 2 of ? reporting regions"+
		" see it fail and ? must agree. Down since unknown. Each region's latest result and reason: the status page (/)"+
		" or /api/v1/targets of any agent.")
	w(14, "runbook_url", labels["runbook"])
	testFile := filepath.Join(dir, "hostile.test.yml")
	if err := os.WriteFile(testFile, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	runPromtool(t, "test", "rules", testFile)
}
