package grafana

import (
	"encoding/json"
	"fmt"
	"math"
	"net"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/health/grpc_health_v1"

	"github.com/vantage-probe/vantage/agent/config"
	"github.com/vantage-probe/vantage/exporter/rules"
	"github.com/vantage-probe/vantage/internal/fleettest"
	"github.com/vantage-probe/vantage/internal/promtest"
	"github.com/vantage-probe/vantage/internal/testenv"
	"github.com/vantage-probe/vantage/probe/probetest"
	"github.com/vantage-probe/vantage/probe/probetest/grpctest"
)

// The test's Prometheus scrapes and evaluates every second; Grafana's
// $__interval for a graph of the test's minute is its minimum, the
// datasource's scrape interval (timeInterval), so the same second.
const (
	scrapeEvery = time.Second
	step        = time.Second
)

// mayBeEmpty are the queries allowed to return no data in the test, with
// the reason; "dashboard/panel/refId". Everything else must show data.
// The test makes what would otherwise be empty happen: a one-region
// failure (suppressed failures, refuted confirmations), an outage in every
// region (incidents, time to detect), direct alerting to a stub
// Alertmanager (delivery panels), and it runs the 4-minute long-window SLO
// group every second (see longGroupEverySecond). Nothing needs an entry.
var mayBeEmpty = map[string]string{}

// mustShow are the queries that must show what the test made happen (the
// outage of api, the suppressed failure of web in ap-south, the
// certificate of cert): a predicate on the query's result over the test
// for one value of the target variable (dashboard/panel/refId).
var mustShow = map[string]func(target string, res []promtest.Series) bool{
	"vantage-fleet.json/Targets down/A":     anyValue(func(v float64) bool { return v >= 1 }),
	"vantage-fleet.json/Open incidents/A":   anyValue(func(v float64) bool { return v >= 1 }),
	"vantage-fleet.json/What is down now/B": seriesOf("api"),
	"vantage-fleet.json/Verdict by target/A": func(_ string, res []promtest.Series) bool {
		return slices.ContainsFunc(res, func(s promtest.Series) bool { return s.Metric["target"] == "api" && hasValue(s, 0) })
	},
	"vantage-fleet.json/Incidents/": seriesOf("api"), // the annotation
	"vantage-target.json/Success by region/A": func(target string, res []promtest.Series) bool {
		if target != "api" {
			return true
		}
		// At some moment every region's last probe failed.
		failing := map[int64]int{}
		for _, s := range res {
			for _, p := range s.Points {
				if p.V == 0 {
					failing[p.T.Unix()]++
				}
			}
		}
		for _, n := range failing {
			if n == len(fleettest.DefaultRegions) && len(res) == n {
				return true
			}
		}
		return false
	},
	"vantage-target.json/Verdict/A": func(target string, res []promtest.Series) bool {
		return target != "api" || anyValue(func(v float64) bool { return v == 0 })(target, res)
	},
	"vantage-target.json/Certificate days left/A": func(target string, res []promtest.Series) bool {
		// The certificate expires in certDays: every region sees it.
		return target != "cert" || len(res) == len(fleettest.DefaultRegions) &&
			anyValue(func(v float64) bool { return math.Abs(v-certDays) < 0.1 })(target, res)
	},
	"vantage-target.json/Certificate days left/B": func(target string, res []promtest.Series) bool {
		return target != "cert" || anyValue(func(v float64) bool { return v == certWarnDays })(target, res)
	},
	// One suppression in ap-south, though its counter is born at 1.
	"vantage-fleet.json/Suppressed one-region failures by region/A": func(_ string, res []promtest.Series) bool {
		return slices.ContainsFunc(res, func(s promtest.Series) bool {
			return s.Metric["region"] == "ap-south" && slices.ContainsFunc(s.Points, func(p promtest.Point) bool { return p.V >= 1 })
		})
	},
}

const (
	certDays     = 10
	certWarnDays = 14
)

func hasValue(s promtest.Series, v float64) bool {
	return slices.ContainsFunc(s.Points, func(p promtest.Point) bool { return p.V == v })
}

func anyValue(ok func(float64) bool) func(string, []promtest.Series) bool {
	return func(_ string, res []promtest.Series) bool {
		for _, s := range res {
			for _, p := range s.Points {
				if ok(p.V) {
					return true
				}
			}
		}
		return false
	}
}

// seriesOf: a series with that target label ("" any series with data).
func seriesOf(target string) func(string, []promtest.Series) bool {
	return func(_ string, res []promtest.Series) bool {
		return slices.ContainsFunc(res, func(s promtest.Series) bool {
			return (target == "" || s.Metric["target"] == target) && hasData([]promtest.Series{s})
		})
	}
}

// hasData: a value that Grafana would draw (NaN is a gap).
func hasData(res []promtest.Series) bool {
	for _, s := range res {
		for _, p := range s.Points {
			if !math.IsNaN(p.V) {
				return true
			}
		}
	}
	return false
}

// farm is the loopback targets of the test: api (HTTP) can fail in every
// region, web (HTTP) for one region only, cert (TLS) presents a
// certificate that expires in certDays, resolver (DNS) answers two A
// records, db (TCP) greets.
type farm struct {
	apiDown  atomic.Bool
	webBlock atomic.Pointer[string] // source address prefix that gets 502
	targets  string
	am       string // the stub Alertmanager's URL
}

func startFarm(t *testing.T) *farm {
	t.Helper()
	f := &farm{}
	api := probetest.NewHTTPServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if f.apiDown.Load() {
			http.Error(w, "outage", http.StatusInternalServerError)
			return
		}
		fmt.Fprintln(w, "ok")
	}))
	web := probetest.NewHTTPServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		if p := f.webBlock.Load(); p != nil && *p != "" && strings.HasPrefix(host, *p) {
			http.Error(w, "bad route from your region", http.StatusBadGateway)
			return
		}
		fmt.Fprintln(w, "ok")
	}))
	ca, err := probetest.NewCA("dashboards test CA")
	if err != nil {
		t.Fatal(err)
	}
	caFile, err := ca.WriteCAFile(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Leaf(probetest.Days(certDays), "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	tlsSrv, err := probetest.StartTLS(leaf)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tlsSrv.Close() })
	zone, err := probetest.NewZone("app.example.com. 300 IN A 192.0.2.10", "app.example.com. 300 IN A 192.0.2.11")
	if err != nil {
		t.Fatal(err)
	}
	dns, err := probetest.StartDNS(zone)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = dns.Close() })
	db, err := probetest.StartTCP(probetest.TCPEcho, "220 db ready\r\n")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	am := probetest.NewHTTPServer(t, probetest.HTTPRespond(http.StatusOK, ""))
	f.am = am.URL
	orders := grpctest.NewHealth(t, nil)
	orders.Health.SetServingStatus("orders.v1.Orders", grpc_health_v1.HealthCheckResponse_SERVING)

	f.targets = fmt.Sprintf(`
[[target]]
name = "api"
type = "http"
url = %q
labels = { team = "payments" }

[[target]]
name = "web"
type = "http"
url = %q
labels = { team = "web" }

[[target]]
name = "cert"
type = "tls"
address = %q
labels = { team = "payments" }
[target.tls]
ca_file = %q
min_days_left = %d

[[target]]
name = "resolver"
type = "dns"
[target.dns]
server = %q
query = "app.example.com."
record = "A"

[[target]]
name = "db"
type = "tcp"
address = %q
labels = { team = "data" }
[target.tcp]
expect = "^220 "

[[target]]
name = "orders"
type = "grpc"
address = %q
[target.grpc]
service = "orders.v1.Orders"

# The kernel answers echo requests on loopback (the agent needs root or a
# ping_group_range that holds its group, as icmp targets always do).
[[target]]
name = "gw"
type = "icmp"
address = "127.0.0.1"
`, api.URL, web.URL, tlsSrv.Addr, caFile, certWarnDays, dns.Addr(), db.Addr, orders.Addr)
	return f
}

// longGroupEverySecond makes the rules' 4-minute group (vantage.slo.long:
// the 1d and 3d windows, availability and budget over the SLO window)
// evaluate every second, so that its recordings exist within the test.
// Their values are then sums of overlapping 4-minute increases, but the
// recordings the dashboards read are ratios of two such sums, which stay
// ratios: the queries are checked, not the SLO arithmetic (exporter/rules
// tests that).
func longGroupEverySecond(t *testing.T, yml []byte) []byte {
	t.Helper()
	const from, to = "  - name: \"vantage.slo.long\"\n    interval: \"4m\"\n", "  - name: \"vantage.slo.long\"\n    interval: \"1s\"\n"
	if strings.Count(string(yml), from) != 1 {
		t.Fatalf("the generated rules no longer hold %q: update longGroupEverySecond", from)
	}
	return []byte(strings.Replace(string(yml), from, to, 1))
}

// TestDashboardQueriesAgainstAFleet runs every query of every dashboard,
// with Grafana's variables substituted as Grafana would, against a real
// Prometheus that scrapes a three-region fleet of real agents (with the
// generated rules loaded) through a one-region failure and an outage. A
// query that errors fails the test; so does one that returns no data
// (unless in mayBeEmpty), and a panel that should show the outage and
// does not. Grafana itself is not run: the rendering is not checked.
func TestDashboardQueriesAgainstAFleet(t *testing.T) {
	testenv.RequireBinary(t, "prometheus", "prometheus")
	if testing.Short() {
		t.Skip("runs Prometheus and three agents for about half a minute")
	}
	began := time.Now()
	f := startFarm(t)
	fleet := fleettest.Start(t, fleettest.Options{SourceIPs: true, Targets: f.targets, Extra: fmt.Sprintf(`
[alerting]
alertmanagers = [%q]
resend_interval = "2s"
`, f.am)})

	cfg, err := config.Parse("fleet.toml", []byte(f.targets))
	if err != nil {
		t.Fatal(err)
	}
	yml, err := rules.Generate(cfg, rules.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var scrape []string
	for _, a := range fleet {
		scrape = append(scrape, "'"+a.HTTPAddr()+"'")
	}
	prom, err := promtest.Start(t.Context(), t.TempDir(), promtest.Options{
		Rules: map[string][]byte{"vantage.yml": longGroupEverySecond(t, yml)},
		Config: `global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:{{RULES}}scrape_configs:
  - job_name: vantage
    static_configs: [{ targets: [` + strings.Join(scrape, ", ") + `] }]
`})
	if err != nil {
		t.Fatal(err)
	}
	defer prom.Close()
	from := time.Now()

	wait := func(what, query string) {
		t.Helper()
		testenv.Poll(t, 30*time.Second, what+" ("+query+")", func() bool {
			v, err := prom.Query(t.Context(), query)
			return err == nil && len(v) > 0
		})
	}
	wait("every region's results and every verdict in Prometheus", `count(probe_success) >= 21 and count(vantage:target_up:min == 1) == 7`)

	// A failure only ap-south sees: suppressed, paging nobody.
	apSouth := fleettest.RegionPrefix(2)
	f.webBlock.Store(&apSouth)
	wait("a suppressed failure of web in ap-south", `sum(vantage_suppressed_failures_total{region="ap-south"}) >= 1`)
	none := ""
	f.webBlock.Store(&none)

	// An outage every region sees.
	f.apiDown.Store(true)
	wait("api down by quorum", `vantage:target_up:min{target="api"} == 0`)
	// Held until every region has failed at four one-second points in a
	// row, so that the range queries' steps (on another grid) see it.
	wait("api failing in every region for 4s", `count_over_time((count(max by(region) (probe_success{target="api"}) == 0) == 3)[4s:1s]) >= 4`)
	wait("the detection of the outage", `sum(vantage_detection_seconds_count) >= 1`)
	wait("the open incident", `max(vantage_target_down_since_timestamp_seconds{target="api"}) > 0`)
	f.apiDown.Store(false)
	wait("api up again", `vantage:target_up:min{target="api"} == 1 and on() max(vantage_target_down_since_timestamp_seconds{target="api"}) == 0`)
	to := time.Now()
	t.Logf("fleet and Prometheus up to the end of the outage: %v; queried range %v", to.Sub(began).Round(time.Millisecond), to.Sub(from).Round(time.Second))

	builtins := map[string]string{
		"__interval":      fmtDur(step),
		"__interval_ms":   fmt.Sprint(step.Milliseconds()),
		"__rate_interval": fmtDur(max(step+scrapeEvery, 4*scrapeEvery)), // Grafana's definition
		"__range":         fmtDur(to.Sub(from).Round(time.Second)),
		"__range_s":       fmt.Sprint(int(to.Sub(from).Round(time.Second).Seconds())),
		"__range_ms":      fmt.Sprint(to.Sub(from).Milliseconds()),
	}
	checked := 0
	matched := map[string]bool{}
	for _, name := range Dashboards() {
		runs := variableRuns(t, prom, name, builtins, from, to)
		qs, err := Queries(Files()[name])
		if err != nil {
			t.Fatal(err)
		}
		for _, q := range qs {
			if q.Kind == KindVariable {
				continue // resolved by variableRuns
			}
			key := name + "/" + q.Panel + "/" + q.RefID
			data := false
			for _, run := range runs {
				expr, err := interpolate(q.Expr, run.vars)
				if err != nil {
					t.Errorf("%s: %v", key, err)
					break
				}
				res, err := prom.QueryRange(t.Context(), expr, from, to, step)
				checked++
				if err != nil {
					t.Errorf("%s (target %s): %v", key, run.target, err)
					continue
				}
				data = data || hasData(res)
				ok := mustShow[key]
				if ok != nil {
					matched[key] = true
				}
				if ok != nil && !ok(run.target, res) {
					t.Errorf("%s (target %q) does not show what the test did: %s\n%s", key, run.target, expr, dump(res))
				}
			}
			if _, allowed := mayBeEmpty[key]; !data && !allowed {
				t.Errorf("%s: no data in any run: %s", key, q.Expr)
			}
		}
	}
	for key := range mustShow {
		if !matched[key] {
			t.Errorf("mustShow: %s names no query", key)
		}
	}
	t.Logf("%d queries run in %v", checked, time.Since(to).Round(time.Millisecond))
}

// run is one assignment of the dashboard's variables: one per target on
// the target dashboard (its target variable takes one value), else one.
type run struct {
	target string
	vars   map[string]string
}

type variableJSON struct {
	Name       string          `json:"name"`
	Type       string          `json:"type"`
	Definition string          `json:"definition"`
	Query      json.RawMessage `json:"query"`
	Multi      bool            `json:"multi"`
	IncludeAll bool            `json:"includeAll"`
	AllValue   string          `json:"allValue"`
	Current    struct {
		Value any `json:"value"`
	} `json:"current"`
}

var labelValuesRE = regexp.MustCompile(`^label_values\((.+),\s*([a-zA-Z_][a-zA-Z0-9_]*)\)$`)

// variableRuns resolves a dashboard's variables in order, as Grafana does
// on load: a query variable's label_values(selector, label) over the time
// range, with the variables before it substituted; a multi-value one set
// to All (its allValue, or the regex of every value); a textbox to its
// default. Each query variable must find values.
func variableRuns(t *testing.T, prom *promtest.Server, dashboard string, builtins map[string]string, from, to time.Time) []run {
	t.Helper()
	var d struct {
		Templating struct{ List []variableJSON } `json:"templating"`
	}
	if err := json.Unmarshal(Files()[dashboard], &d); err != nil {
		t.Fatal(err)
	}
	runs := []run{{vars: maps(builtins)}}
	for _, v := range d.Templating.List {
		switch v.Type {
		case "datasource":
			continue
		case "textbox", "constant", "custom":
			val, _ := v.Current.Value.(string)
			for i := range runs {
				runs[i].vars[v.Name] = val
			}
			continue
		case "query":
		default:
			t.Fatalf("%s: variable %s of type %s: the test does not know it", dashboard, v.Name, v.Type)
		}
		m := labelValuesRE.FindStringSubmatch(v.Definition)
		if m == nil {
			t.Fatalf("%s: variable %s: %q is not label_values(selector, label)", dashboard, v.Name, v.Definition)
		}
		var next []run
		for _, r := range runs {
			sel, err := interpolate(m[1], r.vars)
			if err != nil {
				t.Fatalf("%s: variable %s: %v", dashboard, v.Name, err)
			}
			q := fmt.Sprintf("group by(%s) (last_over_time(%s[%s]))", m[2], sel, fmtDur(to.Sub(from).Round(time.Second)))
			res, err := prom.QueryRange(t.Context(), q, to, to, step)
			if err != nil {
				t.Fatalf("%s: variable %s: %v", dashboard, v.Name, err)
			}
			var values []string
			for _, s := range res {
				if s.Metric[m[2]] != "" {
					values = append(values, s.Metric[m[2]])
				}
			}
			sort.Strings(values)
			if len(values) == 0 {
				t.Fatalf("%s: variable %s finds no values: %s", dashboard, v.Name, q)
			}
			if v.Multi || v.IncludeAll {
				// Grafana's Prometheus interpolation of All: the allValue
				// as it is, else every value, regex-escaped, as (a|b).
				val := v.AllValue
				if val == "" {
					esc := make([]string, len(values))
					for i, s := range values {
						esc[i] = regexEscape(s)
					}
					val = esc[0]
					if len(esc) > 1 {
						val = "(" + strings.Join(esc, "|") + ")"
					}
				}
				r.vars[v.Name] = val
				next = append(next, r)
				continue
			}
			for _, val := range values { // one run per value
				nr := run{target: r.target, vars: maps(r.vars)}
				nr.vars[v.Name] = strings.ReplaceAll(val, `\`, `\\`)
				if v.Name == "target" {
					nr.target = val
				}
				next = append(next, nr)
			}
		}
		runs = next
	}
	return runs
}

func maps(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// regexEscape is Grafana's prometheusSpecialRegexEscape: regex
// metacharacters escaped with a backslash that is itself escaped for a
// PromQL string.
func regexEscape(s string) string {
	var b strings.Builder
	for _, c := range s {
		switch c {
		case '\\':
			b.WriteString(`\\\\`)
		case '$', '^', '*', '{', '}', '[', ']', '\'', '+', '?', '.', '(', ')', '|':
			b.WriteString(`\\`)
			b.WriteRune(c)
		default:
			b.WriteRune(c)
		}
	}
	return b.String()
}

var varRE = regexp.MustCompile(`\$\{(\w+)(?::\w+)?\}|\[\[(\w+)\]\]|\$(\w+)`)

// interpolate substitutes $name, ${name} and [[name]]; a name it does not
// know is an error (a typo Grafana would leave in the query).
func interpolate(expr string, vars map[string]string) (string, error) {
	var missing []string
	out := varRE.ReplaceAllStringFunc(expr, func(m string) string {
		sm := varRE.FindStringSubmatch(m)
		name := sm[1] + sm[2] + sm[3]
		v, ok := vars[name]
		if !ok {
			missing = append(missing, name)
			return m
		}
		return v
	})
	if len(missing) > 0 {
		return "", fmt.Errorf("unknown variables %v in %q", missing, expr)
	}
	return out, nil
}

// fmtDur writes a duration as Grafana writes its interval variables: whole
// seconds ("4s"), or milliseconds below a second.
func fmtDur(d time.Duration) string {
	if d < time.Second || d%time.Second != 0 {
		return fmt.Sprintf("%dms", d.Milliseconds())
	}
	return fmt.Sprintf("%ds", int(d.Seconds()))
}

func dump(res []promtest.Series) string {
	var b strings.Builder
	for _, s := range res {
		fmt.Fprintf(&b, "  %v:", s.Metric)
		for _, p := range s.Points {
			fmt.Fprintf(&b, " %g", p.V)
		}
		b.WriteByte('\n')
	}
	return b.String()
}
