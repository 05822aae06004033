package rules

import (
	"bytes"
	"errors"
	"flag"
	"math"
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
	p, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool not on PATH")
	}
	return p
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
	checkRules(t, got)
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
		// Fixture targets without a runbook label link the default.
		if !strings.Contains(string(got), `runbook_url: "`+DefaultRunbookBase+strings.ToLower(a)+`"`) {
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
	cfg.Targets[0].SLOObjective = 1
	cfg.Targets[2].SLOObjective = math.NaN()
	cfg.Targets[1].Labels = map[string]string{"bad-name": "x"}
	_, err := Generate(cfg, Options{Job: "vantage("})
	if err == nil {
		t.Fatal("Generate accepted a bad objective, label name and job regex")
	}
	for _, want := range []string{`target "checkout-api": slo objective 1`, `target "resolver": slo objective NaN`,
		`label name "bad-name"`, `job regex "vantage("`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if _, err := Generate(nil, Options{}); err == nil {
		t.Error("Generate(nil) returned no error")
	}
	var joined interface{ Unwrap() []error }
	if _, err := Generate(cfg, Options{}); !errors.As(err, &joined) || len(joined.Unwrap()) != 3 {
		t.Errorf("want both problems reported at once, got %v", err)
	}
}

// TestNoTargets: a config without targets still yields a valid file with
// the SLI recording rules and the fleet alerts, and no empty groups.
func TestNoTargets(t *testing.T) {
	got, err := Generate(&config.Config{}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	s := string(got)
	if strings.Contains(s, "vantage.targets") || strings.Contains(s, "vantage.certificates") {
		t.Errorf("empty target groups written:\n%s", s)
	}
	for _, want := range []string{`record: "vantage:probe_error_ratio:rate3d"`, `alert: "VantageAgentMissing"`, `ratio_rate28d"`} {
		if !strings.Contains(s, want) {
			t.Errorf("rules lack %s", want)
		}
	}
	checkRules(t, got)
}

// checkRules runs promtool check rules on yml.
func checkRules(t *testing.T, yml []byte) {
	t.Helper()
	f := filepath.Join(t.TempDir(), "rules.yml")
	if err := os.WriteFile(f, yml, 0o644); err != nil {
		t.Fatal(err)
	}
	runPromtool(t, "check", "rules", f)
}

func TestOptions(t *testing.T) {
	got, err := Generate(fixture(), Options{RunbookBase: "https://runbooks.example.com/vantage/", Job: "probers", CertDays: -1})
	if err != nil {
		t.Fatal(err)
	}
	s := string(got)
	for _, want := range []string{
		`runbook_url: "https://runbooks.example.com/vantage/vantageagentmissing"`,
		`runbook_url: "https://wiki.example.com/rb/checkout"`, // a target's own runbook wins
		`up{job=~\"probers\"} == 0`,
		`probe_ssl_earliest_cert_expiry{job=~\"probers\",target=\"checkout-cert\"}`,
	} {
		if !strings.Contains(s, want) {
			t.Errorf("rules lack %s", want)
		}
	}
	for _, unwanted := range []string{`probe_ssl_earliest_cert_expiry{job=~\"probers\",target=\"checkout-api\"}`, DefaultRunbookBase, `"vantage.*"`} {
		if strings.Contains(s, unwanted) {
			t.Errorf("rules contain %s", unwanted)
		}
	}
	checkRules(t, got)
}

func TestCertDays(t *testing.T) {
	g := &gen{opts: Options{CertDays: 14}}
	for _, c := range []struct {
		t    *config.Target
		want int
	}{
		{&config.Target{TLS: &tlsprobe.Options{MinDaysLeft: 30}}, 30},
		{&config.Target{TLS: &tlsprobe.Options{}}, 0},
		{httpTarget(&config.Target{}, "HTTPS://x.example.com/"), 14},
		{httpTarget(&config.Target{}, "http://x.example.com/"), 0},
		{&config.Target{TCP: &tcpprobe.Options{UseTLS: true}}, 14},
		{&config.Target{TCP: &tcpprobe.Options{}}, 0},
		{&config.Target{DNS: &dnsprobe.Options{Transport: "https"}}, 14},
		{&config.Target{DNS: &dnsprobe.Options{Transport: "quic"}}, 14},
		{&config.Target{DNS: &dnsprobe.Options{Transport: "udp"}}, 0},
	} {
		if got := g.certDays(c.t); got != c.want {
			t.Errorf("certDays(%+v %+v %+v %+v) = %d, want %d", c.t.HTTP(), c.t.TLS, c.t.TCP, c.t.DNS, got, c.want)
		}
	}
}

// httpTarget makes t an HTTP target of url.
func httpTarget(t *config.Target, url string) *config.Target {
	t.SetHTTP(httpprobe.Options{URL: url})
	return t
}
