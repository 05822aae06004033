package grafana

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/vantage-probe/vantage/agent/config"
	"github.com/vantage-probe/vantage/deploy/grafana/internal/gen"
	"github.com/vantage-probe/vantage/exporter"
	"github.com/vantage-probe/vantage/exporter/rules"
)

var update = flag.Bool("update", false, "rewrite the dashboard files from deploy/grafana/internal/gen")

// TestGeneratedFilesAreCurrent: the committed dashboards are what the
// generator writes (go generate ./deploy/grafana rewrites them).
func TestGeneratedFilesAreCurrent(t *testing.T) {
	want, err := gen.Dashboards()
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range want {
		if *update {
			if err := os.WriteFile(name, b, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(name)
		if err != nil {
			t.Fatalf("%v: run go generate ./deploy/grafana", err)
		}
		if !bytes.Equal(got, b) {
			t.Errorf("%s differs from the generator's output: run go generate ./deploy/grafana", name)
		}
		if !bytes.Equal(Files()[name], b) {
			t.Errorf("embedded %s differs from the generator's output", name)
		}
	}
	if got := Dashboards(); !slices.Equal(got, []string{"vantage-fleet.json", "vantage-slo.json", "vantage-target.json"}) {
		t.Errorf("Dashboards() = %v", got)
	}
}

type dashFile struct {
	UID           string                        `json:"uid"`
	Title         string                        `json:"title"`
	SchemaVersion int                           `json:"schemaVersion"`
	Description   string                        `json:"description"`
	Panels        []panelFile                   `json:"panels"`
	Templating    struct{ List []variableFile } `json:"templating"`
}

type panelFile struct {
	ID          int             `json:"id"`
	Type        string          `json:"type"`
	Title       string          `json:"title"`
	Description string          `json:"description"`
	Datasource  *gen.Datasource `json:"datasource"`
	GridPos     gen.GridPos     `json:"gridPos"`
	Panels      []panelFile     `json:"panels"`
	Targets     []targetFile    `json:"targets"`
}

type targetFile struct {
	RefID      string          `json:"refId"`
	Expr       string          `json:"expr"`
	Datasource *gen.Datasource `json:"datasource"`
}

type variableFile struct {
	Name       string          `json:"name"`
	Type       string          `json:"type"`
	Query      json.RawMessage `json:"query"`
	Definition string          `json:"definition"`
	Datasource *gen.Datasource `json:"datasource"`
	Multi      bool            `json:"multi"`
	IncludeAll bool            `json:"includeAll"`
}

func loadDashboards(t *testing.T) map[string]dashFile {
	t.Helper()
	out := map[string]dashFile{}
	for _, name := range Dashboards() {
		var d dashFile
		dec := json.NewDecoder(bytes.NewReader(Files()[name]))
		if err := dec.Decode(&d); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		out[name] = d
	}
	return out
}

// allPanels flattens rows, collapsed or not.
func allPanels(ps []panelFile) []panelFile {
	var out []panelFile
	for _, p := range ps {
		out = append(out, p)
		out = append(out, allPanels(p.Panels)...)
	}
	return out
}

// TestDashboardsAreWellFormed checks what Grafana and on-call rely on:
// the schema version, a datasource variable every query uses, the
// variables, unique panel ids on the grid, and a description on every
// panel saying what it answers.
func TestDashboardsAreWellFormed(t *testing.T) {
	uids := map[string]bool{}
	for name, d := range loadDashboards(t) {
		if d.SchemaVersion != gen.SchemaVersion || d.UID == "" || d.Title == "" || d.Description == "" {
			t.Errorf("%s: schemaVersion %d, uid %q, title %q, description %q", name, d.SchemaVersion, d.UID, d.Title, d.Description)
		}
		if uids[d.UID] {
			t.Errorf("%s: uid %q used twice", name, d.UID)
		}
		uids[d.UID] = true

		vars := map[string]variableFile{}
		for _, v := range d.Templating.List {
			vars[v.Name] = v
		}
		if v := vars["datasource"]; v.Type != "datasource" || string(v.Query) != `"prometheus"` {
			t.Errorf("%s: no datasource variable of type prometheus: %+v", name, v)
		}
		want := []string{"job", "team", "target"}
		if name != "vantage-slo.json" { // recorded SLO series have no region
			want = append(want, "region")
		}
		for _, n := range want {
			v, ok := vars[n]
			if !ok || v.Type != "query" || !strings.HasPrefix(v.Definition, "label_values(") || v.Datasource == nil || v.Datasource.UID != "${datasource}" {
				t.Errorf("%s: variable %s: %+v", name, n, v)
			}
		}
		if v := vars["target"]; (name == "vantage-target.json") == v.Multi {
			t.Errorf("%s: target variable multi=%v: one target on the target dashboard, any number elsewhere", name, v.Multi)
		}

		ids := map[int]bool{}
		for _, p := range allPanels(d.Panels) {
			if ids[p.ID] || p.ID == 0 {
				t.Errorf("%s: panel %q: id %d missing or used twice", name, p.Title, p.ID)
			}
			ids[p.ID] = true
			if p.GridPos.X < 0 || p.GridPos.W <= 0 || p.GridPos.X+p.GridPos.W > 24 || p.GridPos.H <= 0 {
				t.Errorf("%s: panel %q: off the grid: %+v", name, p.Title, p.GridPos)
			}
			if p.Type == "row" {
				continue
			}
			if len(p.Description) < 40 || !strings.Contains(p.Description, "?") {
				t.Errorf("%s: panel %q: its description must say what question it answers: %q", name, p.Title, p.Description)
			}
			if p.Datasource == nil || p.Datasource.UID != "${datasource}" {
				t.Errorf("%s: panel %q: datasource %+v, want ${datasource}", name, p.Title, p.Datasource)
			}
			if len(p.Targets) == 0 {
				t.Errorf("%s: panel %q has no query", name, p.Title)
			}
			for _, tg := range p.Targets {
				if tg.Datasource == nil || tg.Datasource.UID != "${datasource}" || tg.RefID == "" || tg.Expr == "" {
					t.Errorf("%s: panel %q: query %+v", name, p.Title, tg)
				}
			}
		}
	}
}

var (
	selectorRE = regexp.MustCompile(`([a-zA-Z_:][a-zA-Z0-9_:]*)\{([^}]*)\}`)
	targetRE   = regexp.MustCompile(`\btarget\s*(=~|!~|!=|=)\s*"([^"]*)"`)
	recordRE   = regexp.MustCompile(`(?m)^\s*- record: "([^"]+)"`)
)

// knownSeries are the names the dashboards may query: every family the
// exporter writes (histograms with their suffixes), the series the
// generated rules record, and Prometheus' own up.
func knownSeries(t *testing.T) map[string]bool {
	t.Helper()
	known := map[string]bool{"up": true}
	for name := range exporter.Help {
		known[name] = true
		for _, s := range []string{"_bucket", "_sum", "_count"} {
			known[name+s] = true
		}
	}
	cfg, err := config.Parse("t.toml", []byte("[[target]]\nname = \"x\"\ntype = \"tcp\"\naddress = \"127.0.0.1:1\"\nlabels = { team = \"t\" }\n"))
	if err != nil {
		t.Fatal(err)
	}
	yml, err := rules.Generate(cfg, rules.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range recordRE.FindAllStringSubmatch(string(yml), -1) {
		known[m[1]] = true
	}
	return known
}

// TestQueriesUseKnownSeriesAndTheVariables: every series a query names is
// one Vantage exports or records; every raw series is filtered by the job
// variable (so a blackbox_exporter's probe_* in the same Prometheus stays
// out) and recorded ones are not (they have no job label); no query names
// a target of its own.
func TestQueriesUseKnownSeriesAndTheVariables(t *testing.T) {
	known := knownSeries(t)
	for _, name := range Dashboards() {
		qs, err := Queries(Files()[name])
		if err != nil {
			t.Fatal(err)
		}
		for _, q := range qs {
			if q.Kind == KindVariable {
				continue
			}
			where := name + ": " + q.Panel + " " + q.RefID
			expr := strings.ReplaceAll(q.Expr, "${window}", "28d")
			sels := selectorRE.FindAllStringSubmatch(expr, -1)
			if len(sels) == 0 {
				t.Errorf("%s: no selector in %q", where, q.Expr)
			}
			for _, s := range sels {
				metric, matchers := s[1], s[2]
				if !known[metric] {
					t.Errorf("%s: %s is neither exported nor recorded by Vantage", where, metric)
				}
				hasJob := strings.Contains(matchers, `job=~"$job"`)
				if recorded := strings.Contains(metric, ":"); recorded == hasJob {
					t.Errorf("%s: %s: the job matcher belongs on raw series only: {%s}", where, metric, matchers)
				}
			}
			for _, m := range targetRE.FindAllStringSubmatch(expr, -1) {
				if m[2] != "$target" {
					t.Errorf("%s: hard-coded target %s%q", where, m[1], m[2])
				}
			}
		}
	}
}

// TestQueriesWalksRowsAndCollapsedRows uses a small dashboard in Grafana's
// shape: panels in an open row follow it, a collapsed row holds its own.
func TestQueriesWalksRowsAndCollapsedRows(t *testing.T) {
	d := `{
  "annotations": {"list": [{"builtIn": 1, "name": "Annotations & Alerts"}, {"name": "Deploys", "expr": "deploys"}, {"name": "New", "target": {"expr": "new_style"}}]},
  "panels": [
    {"type": "stat", "title": "Loose", "targets": [{"refId": "A", "expr": "a", "instant": true}]},
    {"type": "row", "title": "Open", "collapsed": false, "panels": []},
    {"type": "timeseries", "title": "In open", "targets": [{"refId": "A", "expr": "b", "legendFormat": "{{x}}"}, {"refId": "B", "expr": ""}]},
    {"type": "row", "title": "Shut", "collapsed": true, "panels": [
      {"type": "table", "title": "In shut", "targets": [{"refId": "A", "expr": "c", "instant": true, "range": true}]}
    ]}
  ],
  "templating": {"list": [
    {"name": "datasource", "type": "datasource", "query": "prometheus"},
    {"name": "job", "type": "query", "definition": "label_values(up, job)"},
    {"name": "old", "type": "query", "query": "label_values(x, y)"},
    {"name": "w", "type": "textbox", "query": "28d"}
  ]}
}`
	got, err := Queries([]byte(d))
	if err != nil {
		t.Fatal(err)
	}
	want := []Query{
		{Kind: KindPanel, Panel: "Loose", RefID: "A", Expr: "a", Instant: true},
		{Kind: KindPanel, Panel: "In open", Row: "Open", RefID: "A", Expr: "b", Legend: "{{x}}"},
		{Kind: KindPanel, Panel: "In shut", Row: "Shut", RefID: "A", Expr: "c"},
		{Kind: KindAnnotation, Panel: "Deploys", Expr: "deploys"},
		{Kind: KindAnnotation, Panel: "New", Expr: "new_style"},
		{Kind: KindVariable, Panel: "job", Expr: "label_values(up, job)"},
		{Kind: KindVariable, Panel: "old", Expr: "label_values(x, y)"},
	}
	if !slices.Equal(got, want) {
		t.Errorf("Queries:\n got %+v\nwant %+v", got, want)
	}
	if _, err := Queries([]byte("{")); err == nil {
		t.Error("Queries of broken JSON: no error")
	}
}

// TestProvisioning: the provider points at DashboardsPath, and the
// datasource example is a Prometheus one.
func TestProvisioning(t *testing.T) {
	f := Files()
	p := string(f["provisioning/dashboards.yaml"])
	if !strings.Contains(p, "path: "+DashboardsPath+"\n") || !strings.Contains(p, "type: file") || !strings.Contains(p, "apiVersion: 1") {
		t.Errorf("provisioning/dashboards.yaml:\n%s", p)
	}
	if ds := string(f["provisioning/datasource.yaml"]); !strings.Contains(ds, "type: prometheus") {
		t.Errorf("provisioning/datasource.yaml:\n%s", ds)
	}
	if len(f) != 5 {
		t.Errorf("Files() has %d files, want 3 dashboards and 2 provisioning files", len(f))
	}
}
