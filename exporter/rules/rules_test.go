package rules

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vantage-probe/vantage/agent/config"
	"github.com/vantage-probe/vantage/internal/testenv"
	"github.com/vantage-probe/vantage/probe/dnsprobe"
	"github.com/vantage-probe/vantage/probe/httpprobe"
	"github.com/vantage-probe/vantage/probe/tcpprobe"
	"github.com/vantage-probe/vantage/probe/tlsprobe"
)

var update = flag.Bool("update", false, "rewrite testdata/golden.yml from Generate")

// fixture is the config behind testdata/golden.yml, which the promtool
// tests in testdata/*.test.yml load: change one, change the others.
func fixture() *config.Config {
	return &config.Config{
		SLO: config.SLO{Objective: 0.999, Window: 28 * 24 * time.Hour},
		Targets: []*config.Target{
			httpTarget(&config.Target{
				Name: "checkout-api", Type: config.TypeHTTP, SLOObjective: 0.999,
				Labels: map[string]string{"team": "payments", "severity": "page", "runbook": "https://wiki.example.com/rb/checkout"},
			}, "https://checkout.example.com/healthz"),
			{
				Name: "checkout-cert", Type: config.TypeTLS,
				Labels: map[string]string{"team": "payments"},
				TLS:    &tlsprobe.Options{Address: "checkout.example.com:443", MinDaysLeft: 14},
			},
			{
				Name: "resolver", Type: config.TypeDNS, SLOObjective: 0.99,
				Labels: map[string]string{"team": "infra", "severity": "ticket"},
				DNS:    &dnsprobe.Options{Server: "10.0.0.53:53", Query: "checkout.example.com."},
			},
			{
				Name: "postgres", Type: config.TypeTCP,
				TCP: &tcpprobe.Options{Address: "db.internal:5432"},
			},
			httpTarget(&config.Target{
				Name: "status-page", Type: config.TypeHTTP,
				Labels: map[string]string{"team": "web"},
			}, "http://status.example.com/"),
		},
	}
}

func goldenPath(t *testing.T) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("testdata", "golden.yml"))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestGolden(t *testing.T) {
	got, err := Generate(fixture(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.WriteFile(goldenPath(t), got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(goldenPath(t))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("Generate differs from testdata/golden.yml (go test -run TestGolden -update to accept):\n%s", firstDiff(want, got))
	}
}

func firstDiff(want, got []byte) string {
	w, g := strings.Split(string(want), "\n"), strings.Split(string(got), "\n")
	for i := range max(len(w), len(g)) {
		var a, b string
		if i < len(w) {
			a = w[i]
		}
		if i < len(g) {
			b = g[i]
		}
		if a != b {
			return "line " + strconv.Itoa(i+1) + ":\n- " + a + "\n+ " + b
		}
	}
	return "(same lines)"
}

func promtool(t *testing.T) string {
	t.Helper()
	return testenv.RequireBinary(t, "prometheus", "promtool")
}

func runPromtool(t *testing.T, args ...string) {
	t.Helper()
	out, err := exec.Command(promtool(t), args...).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func TestPromtoolCheck(t *testing.T) {
	got, err := Generate(fixture(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	checkRules(t, got, "--lint-fatal")
}

// TestPromtoolUnit runs the promtool unit tests, which load golden.yml and
// check that each alert fires with its labels and annotations, and stays
// quiet when it should.
func TestPromtoolUnit(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.test.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no testdata/*.test.yml")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			t.Parallel()
			runPromtool(t, "test", "rules", f)
		})
	}
}

// TestEveryAlertTested: each alert of golden.yml appears in a promtool test
// both firing (exp_alerts with an entry) and quiet (exp_alerts empty).
func TestEveryAlertTested(t *testing.T) {
	golden, err := os.ReadFile(goldenPath(t))
	if err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join("testdata", "*.test.yml"))
	var tests strings.Builder
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		tests.Write(b)
	}
	for _, a := range alertNames(string(golden)) {
		fire := regexp.MustCompile(`alertname: ` + a + `\s*\n\s*exp_alerts:\s*\n\s*- `)
		quiet := regexp.MustCompile(`alertname: ` + a + `\s*\n\s*exp_alerts: \[\]`)
		if !fire.MatchString(tests.String()) {
			t.Errorf("%s: no promtool test expects it to fire", a)
		}
		if !quiet.MatchString(tests.String()) {
			t.Errorf("%s: no promtool test expects it to stay quiet", a)
		}
	}
}

// TestRunbooks: docs/alerts.md has a section whose anchor is each
// runbook_url the rules point at.
func TestRunbooks(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "alerts.md"))
	if err != nil {
		t.Fatal(err)
	}
	headings := map[string]bool{}
	for _, l := range strings.Split(string(doc), "\n") {
		if h, ok := strings.CutPrefix(l, "## "); ok {
			headings[strings.ToLower(strings.TrimSpace(h))] = true
		}
	}
	got, err := Generate(fixture(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range alertNames(string(got)) {
		if !headings[strings.ToLower(a)] {
			t.Errorf("docs/alerts.md has no section %q", "## "+a)
		}
		// Targets without a runbook label link the default.
		if !strings.Contains(string(got), DefaultRunbookBase+strings.ToLower(a)+`{{ end }}`) &&
			!strings.Contains(string(got), `runbook_url: "`+DefaultRunbookBase+strings.ToLower(a)+`"`) {
			t.Errorf("no rule links the runbook of %s", a)
		}
	}
}

func alertNames(yml string) []string {
	var out []string
	for _, m := range regexp.MustCompile(`(?m)^\s*- alert: "(\w+)"`).FindAllStringSubmatch(yml, -1) {
		if !slices.Contains(out, m[1]) {
			out = append(out, m[1])
		}
	}
	return out
}

func TestErrors(t *testing.T) {
	cfg := fixture()
	cfg.Targets[1].Labels = map[string]string{"bad-name": "x"}
	cfg.Targets[2].Labels = map[string]string{"__meta": "x"}
	_, err := Generate(cfg, Options{Job: "vantage("})
	if err == nil {
		t.Fatal("Generate accepted a bad label name and job regex")
	}
	for _, want := range []string{`label name "bad-name"`, `label name "__meta"`, `job regex "vantage("`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if _, err := Generate(nil, Options{}); err == nil {
		t.Error("Generate(nil) returned no error")
	}
	var joined interface{ Unwrap() []error }
	if _, err := Generate(cfg, Options{Job: "vantage("}); !errors.As(err, &joined) || len(joined.Unwrap()) != 3 {
		t.Errorf("want both problems reported at once, got %v", err)
	}
}

// TestNoTargets: a config without targets yields the same rules (targets
// added later need no regeneration while they use no new label name).
func TestNoTargets(t *testing.T) {
	got, err := Generate(&config.Config{}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	s := string(got)
	for _, want := range []string{`record: "vantage:probe_error_ratio:rate3d"`, `alert: "VantageAgentMissing"`, `ratio_rate28d"`,
		`alert: "VantageTargetDown"`, `min by(target, type) (`} {
		if !strings.Contains(s, want) {
			t.Errorf("rules lack %s", want)
		}
	}
	checkRules(t, got)
}

// checkRules runs promtool check rules on yml.
func checkRules(t *testing.T, yml []byte, flags ...string) {
	t.Helper()
	f := filepath.Join(t.TempDir(), "rules.yml")
	if err := os.WriteFile(f, yml, 0o644); err != nil {
		t.Fatal(err)
	}
	runPromtool(t, append(append([]string{"check", "rules"}, flags...), f)...)
}

func TestOptions(t *testing.T) {
	got, err := Generate(fixture(), Options{RunbookBase: "https://runbooks.example.com/vantage/", Job: "probers"})
	if err != nil {
		t.Fatal(err)
	}
	s := string(got)
	for _, want := range []string{
		`runbook_url: "https://runbooks.example.com/vantage/vantageagentmissing"`,
		`{{ else }}https://runbooks.example.com/vantage/vantagetargetdown{{ end }}`, // a target's own runbook wins when it has one
		`up{job=~\"probers\"} == 0`,
		`probe_ssl_earliest_cert_expiry{job=~\"probers\"}`,
	} {
		if !strings.Contains(s, want) {
			t.Errorf("rules lack %s", want)
		}
	}
	for _, unwanted := range []string{DefaultRunbookBase, `"vantage.*"`} {
		if strings.Contains(s, unwanted) {
			t.Errorf("rules contain %s", unwanted)
		}
	}
	checkRules(t, got)
}

// TestRuleCountDoesNotGrow: the rules of 10 and of 10,000 targets are the
// same rules (only the label names the targets use matter), and promtool
// finds nothing to lint in either: no duplicates, whatever the targets.
func TestRuleCountDoesNotGrow(t *testing.T) {
	counts := map[int]int{}
	var files [][]byte
	for _, n := range []int{10, 10_000} {
		cfg := &config.Config{SLO: config.SLO{Objective: 0.999, Window: 28 * 24 * time.Hour}}
		for i := range n {
			tg := httpTarget(&config.Target{
				Name: "t" + strconv.Itoa(i), Type: config.TypeHTTP,
				Labels: map[string]string{"team": "team" + strconv.Itoa(i%20)},
			}, "https://t"+strconv.Itoa(i)+".example.com/")
			if i%2 == 0 {
				// Two DNS targets that share labels made "duplicate rule" lint errors.
				tg = &config.Target{Name: tg.Name, Type: config.TypeDNS, Labels: tg.Labels,
					DNS: &dnsprobe.Options{Server: "10.0.0.53:53", Query: "a.example.com."}}
			}
			cfg.Targets = append(cfg.Targets, tg)
		}
		yml, err := Generate(cfg, Options{})
		if err != nil {
			t.Fatal(err)
		}
		counts[n] = strings.Count(string(yml), "\n      - alert: ") + strings.Count(string(yml), "\n      - record: ")
		files = append(files, yml)
	}
	if counts[10] != counts[10_000] || counts[10] > 60 {
		t.Fatalf("rules: %d for 10 targets, %d for 10,000; want the same, at most 60", counts[10], counts[10_000])
	}
	if !bytes.Equal(files[0], files[1]) {
		t.Errorf("the rule files of 10 and 10,000 targets with the same label names differ")
	}
	for _, yml := range files {
		checkRules(t, yml, "--lint-fatal")
	}
}

// TestTargetDownLabels: the direct alert's labels are what the rule's
// alert carries: the target's labels but runbook, severity defaulting to
// page, and nothing the rule's aggregation would drop.
func TestTargetDownLabels(t *testing.T) {
	cfg := fixture()
	by := LabelNames(cfg)
	for _, tg := range cfg.Targets {
		got := TargetDownLabels(tg)
		if got["alertname"] != AlertTargetDown || got["target"] != tg.Name || got["type"] != tg.Type {
			t.Errorf("%s: identity labels %v", tg.Name, got)
		}
		if _, ok := got["runbook"]; ok {
			t.Errorf("%s: runbook is an annotation, not a label: %v", tg.Name, got)
		}
		wantSev := tg.Labels["severity"]
		if wantSev == "" {
			wantSev = SeverityPage
		}
		if got["severity"] != wantSev {
			t.Errorf("%s: severity %q, want %q", tg.Name, got["severity"], wantSev)
		}
		for k := range got {
			if k != "alertname" && k != "target" && k != "type" && k != "severity" && !slices.Contains(by, k) {
				t.Errorf("%s: label %q is not one the rule aggregates by (%v)", tg.Name, k, by)
			}
		}
	}
}

// httpTarget makes t an HTTP target of url.
func httpTarget(t *config.Target, url string) *config.Target {
	t.SetHTTP(httpprobe.Options{URL: url})
	return t
}

// TestAlertmanagerConfig: the printed Alertmanager configuration passes
// amtool, routes pages with no group wait and carries the inhibit rules.
func TestAlertmanagerConfig(t *testing.T) {
	amtool := testenv.RequireBinary(t, "prometheus-alertmanager", "amtool")
	f := filepath.Join(t.TempDir(), "alertmanager.yml")
	if err := os.WriteFile(f, Alertmanager(), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(amtool, "check-config", f).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "1 inhibit rules") {
		t.Fatalf("amtool check-config: %v\n%s", err, out)
	}
}
