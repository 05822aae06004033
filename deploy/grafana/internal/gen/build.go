package gen

import (
	"strings"
)

// Selectors every query builds on. Every raw series carries the job
// matcher, as the generated rules do, so that probe_* series of a
// blackbox_exporter in the same Prometheus never mix in; recorded series
// (vantage:...) carry no job label (the rules aggregate it away).
const (
	mJob       = `job=~"$job"`
	mTeam      = `team=~"$team"`
	mTargets   = `target=~"$target"` // fleet and SLO: a multi-value variable
	mTarget    = `target="$target"`  // the target dashboard: one target
	mRegion    = `region=~"$region"`
	rateWindow = "[$__rate_interval]"
)

// sel is metric{matchers}.
func sel(metric string, matchers ...string) string {
	return metric + "{" + strings.Join(matchers, ",") + "}"
}

// withRegion adds the region label of each agent to a per-agent series
// (which carries only instance and job): vantage_region_isolated is the
// one agent series that names the agent's region, and is always present.
// It also keeps only agents of the selected regions.
func withRegion(expr string) string {
	return expr + " * on(instance, job) group_left(region) (0 * " + sel("vantage_region_isolated", mJob, mRegion) + " + 1)"
}

// increaseInWindow is increase(counter[window]), also for a counter that
// is created at its first increment and so is born at 1: increase() sees
// a new series' first sample as its start and reports 0. A series absent
// one window ago counts whole (all of it happened since), the others by
// increase(), which handles resets.
func increaseInWindow(counter, window string) string {
	return "(" + counter + " unless " + counter + " offset " + window + ") or increase(" + counter + "[" + window + "])"
}

func ptr[T any](v T) *T { return &v }

// q is a range query (a time series) with a legend.
func q(expr, legend string) Target {
	return Target{Datasource: DS, EditorMode: "code", Expr: expr, Format: "time_series", LegendFormat: legend, Range: true}
}

// instant is a query Grafana runs once, at the end of the range.
func instant(expr, legend string) Target {
	t := q(expr, legend)
	t.Instant, t.Range = true, false
	return t
}

// table is an instant query whose result is a table (one row per series).
func table(expr string) Target {
	t := instant(expr, "__auto")
	t.Format = "table"
	return t
}

func panel(typ, title, desc string, w, h int, targets ...Target) *Panel {
	for i := range targets {
		targets[i].RefID = string(rune('A' + i))
	}
	return &Panel{
		Datasource:  DS,
		Description: desc,
		FieldConfig: &FieldConfig{
			Defaults:  FieldDefaults{Mappings: []map[string]any{}, Thresholds: greenOnly()},
			Overrides: []Override{},
		},
		GridPos: GridPos{W: w, H: h},
		Targets: targets,
		Title:   title,
		Type:    typ,
	}
}

func greenOnly() Thresholds {
	return Thresholds{Mode: "absolute", Steps: []Step{{Color: "green"}}}
}

// thresholds: base color, then value, color pairs.
func thresholds(base string, steps ...any) Thresholds {
	t := Thresholds{Mode: "absolute", Steps: []Step{{Color: base}}}
	for i := 0; i+1 < len(steps); i += 2 {
		t.Steps = append(t.Steps, Step{Value: ptr(toFloat(steps[i])), Color: steps[i+1].(string)})
	}
	return t
}

func toFloat(v any) float64 {
	switch x := v.(type) {
	case int:
		return float64(x)
	case float64:
		return x
	}
	panic("gen: threshold value must be int or float64")
}

// stat is a single-value panel showing the last value, colored by
// thresholds.
func stat(title, desc string, w, h int, targets ...Target) *Panel {
	p := panel("stat", title, desc, w, h, targets...)
	p.Options = map[string]any{
		"colorMode":         "background",
		"graphMode":         "none",
		"justifyMode":       "auto",
		"orientation":       "auto",
		"reduceOptions":     map[string]any{"calcs": []string{"lastNotNull"}, "fields": "", "values": false},
		"showPercentChange": false,
		"textMode":          "auto",
		"wideLayout":        true,
	}
	return p
}

// timeseries is a graph; stacked bars when bars is set.
func timeseries(title, desc string, w, h int, targets ...Target) *Panel {
	p := panel("timeseries", title, desc, w, h, targets...)
	p.FieldConfig.Defaults.Color = map[string]any{"mode": "palette-classic"}
	p.FieldConfig.Defaults.Custom = map[string]any{
		"axisPlacement":     "auto",
		"drawStyle":         "line",
		"fillOpacity":       10,
		"gradientMode":      "none",
		"lineInterpolation": "linear",
		"lineWidth":         1,
		"pointSize":         4,
		"showPoints":        "never",
		"spanNulls":         false,
		"stacking":          map[string]any{"group": "A", "mode": "none"},
		"thresholdsStyle":   map[string]any{"mode": "off"},
	}
	p.Options = map[string]any{
		"legend":  map[string]any{"calcs": []string{}, "displayMode": "list", "placement": "bottom", "showLegend": true},
		"tooltip": map[string]any{"mode": "multi", "sort": "desc"},
	}
	return p
}

// stateTimeline shows one band per series, colored by value mappings.
func stateTimeline(title, desc string, w, h int, targets ...Target) *Panel {
	p := panel("state-timeline", title, desc, w, h, targets...)
	p.FieldConfig.Defaults.Color = map[string]any{"mode": "thresholds"}
	p.FieldConfig.Defaults.Custom = map[string]any{"fillOpacity": 80, "lineWidth": 0}
	p.Options = map[string]any{
		"alignValue":  "left",
		"legend":      map[string]any{"displayMode": "list", "placement": "bottom", "showLegend": true},
		"mergeValues": true,
		"rowHeight":   0.9,
		"showValue":   "auto",
		"tooltip":     map[string]any{"mode": "single", "sort": "none"},
	}
	return p
}

// barGauge shows the last value of each series as a horizontal bar.
func barGauge(title, desc string, w, h int, targets ...Target) *Panel {
	p := panel("bargauge", title, desc, w, h, targets...)
	p.Options = map[string]any{
		"displayMode":   "gradient",
		"minVizHeight":  16,
		"minVizWidth":   8,
		"namePlacement": "left",
		"orientation":   "horizontal",
		"reduceOptions": map[string]any{"calcs": []string{"lastNotNull"}, "fields": "", "values": false},
		"showUnfilled":  true,
		"sizing":        "auto",
		"valueMode":     "color",
	}
	return p
}

// tablePanel shows instant queries merged into one row per series (by
// their common labels); rename maps "Value #A" and label columns to
// headers, the Time column is hidden.
func tablePanel(title, desc string, w, h int, rename map[string]string, targets ...Target) *Panel {
	p := panel("table", title, desc, w, h, targets...)
	p.FieldConfig.Defaults.Custom = map[string]any{"align": "auto", "cellOptions": map[string]any{"type": "auto"}, "inspect": false}
	p.Options = map[string]any{
		"cellHeight": "sm",
		"footer":     map[string]any{"countRows": false, "fields": "", "reducer": []string{"sum"}, "show": false},
		"showHeader": true,
	}
	renames := map[string]any{}
	for k, v := range rename {
		renames[k] = v
	}
	p.Transformations = []Transformation{
		{ID: "merge", Options: map[string]any{}},
		{ID: "organize", Options: map[string]any{
			"excludeByName": map[string]any{"Time": true},
			"indexByName":   map[string]any{},
			"renameByName":  renames,
		}},
	}
	return p
}

// heatmap shows a Prometheus histogram's buckets over time (format
// heatmap: Grafana turns cumulative buckets into per-bucket counts).
func heatmap(title, desc string, w, h int, targets ...Target) *Panel {
	for i := range targets {
		targets[i].Format = "heatmap"
	}
	p := panel("heatmap", title, desc, w, h, targets...)
	p.FieldConfig.Defaults.Custom = map[string]any{
		"hideFrom":          map[string]any{"legend": false, "tooltip": false, "viz": false},
		"scaleDistribution": map[string]any{"type": "linear"},
	}
	p.Options = map[string]any{
		"calculate":    false,
		"cellGap":      1,
		"color":        map[string]any{"exponent": 0.5, "fill": "dark-orange", "mode": "scheme", "reverse": false, "scale": "exponential", "scheme": "Oranges", "steps": 64},
		"exemplars":    map[string]any{"color": "rgba(255,0,255,0.7)"},
		"filterValues": map[string]any{"le": 1e-9},
		"legend":       map[string]any{"show": true},
		"rowsFrame":    map[string]any{"layout": "auto"},
		"tooltip":      map[string]any{"mode": "single", "showColorScale": false, "yHistogram": true},
		"yAxis":        map[string]any{"axisPlacement": "left", "reverse": false, "unit": "s"},
	}
	return p
}

// Field settings, chained on a panel.

func (p *Panel) unit(u string) *Panel { p.FieldConfig.Defaults.Unit = u; return p }

func (p *Panel) decimals(n int) *Panel { p.FieldConfig.Defaults.Decimals = ptr(n); return p }

func (p *Panel) minMax(lo, hi *float64) *Panel {
	p.FieldConfig.Defaults.Min, p.FieldConfig.Defaults.Max = lo, hi
	return p
}

func (p *Panel) noValue(s string) *Panel { p.FieldConfig.Defaults.NoValue = s; return p }

func (p *Panel) thresholds(t Thresholds) *Panel { p.FieldConfig.Defaults.Thresholds = t; return p }

// colorByThresholds colors a graph's lines by the thresholds.
func (p *Panel) colorByThresholds() *Panel {
	p.FieldConfig.Defaults.Color = map[string]any{"mode": "thresholds"}
	return p
}

// thresholdLines draws the thresholds as dashed lines on a graph.
func (p *Panel) thresholdLines() *Panel {
	p.FieldConfig.Defaults.Custom["thresholdsStyle"] = map[string]any{"mode": "dashed"}
	return p
}

// valueText maps values to text and color: value, text, color triples.
func (p *Panel) valueText(triples ...string) *Panel {
	opts := map[string]any{}
	for i := 0; i+2 < len(triples); i += 3 {
		opts[triples[i]] = map[string]any{"color": triples[i+2], "index": i / 3, "text": triples[i+1]}
	}
	p.FieldConfig.Defaults.Mappings = append(p.FieldConfig.Defaults.Mappings, map[string]any{"type": "value", "options": opts})
	return p
}

// nanText shows text for NaN and null (a quantile with no observations).
func (p *Panel) nanText(text string) *Panel {
	for _, match := range []string{"nan", "null"} {
		p.FieldConfig.Defaults.Mappings = append(p.FieldConfig.Defaults.Mappings, map[string]any{
			"type": "special", "options": map[string]any{"match": match, "result": map[string]any{"index": len(p.FieldConfig.Defaults.Mappings), "text": text}},
		})
	}
	return p
}

// stacked stacks a graph's series (phases of one probe add up).
func (p *Panel) stacked() *Panel {
	p.FieldConfig.Defaults.Custom["stacking"] = map[string]any{"group": "A", "mode": "normal"}
	p.FieldConfig.Defaults.Custom["fillOpacity"] = 60
	return p
}

// bars draws a graph as bars (counts per interval).
func (p *Panel) bars() *Panel {
	p.FieldConfig.Defaults.Custom["drawStyle"] = "bars"
	p.FieldConfig.Defaults.Custom["fillOpacity"] = 80
	return p
}

// points shows every point (sparse series: one point per incident).
func (p *Panel) points() *Panel {
	p.FieldConfig.Defaults.Custom["showPoints"] = "always"
	p.FieldConfig.Defaults.Custom["pointSize"] = 6
	return p
}

// legendTable shows the legend as a table with the given calculations.
func (p *Panel) legendTable(calcs ...string) *Panel {
	p.Options["legend"] = map[string]any{"calcs": calcs, "displayMode": "table", "placement": "bottom", "showLegend": true}
	return p
}

// override sets properties on the fields matcher selects.
func (p *Panel) override(matcherID, options string, props ...Property) *Panel {
	p.FieldConfig.Overrides = append(p.FieldConfig.Overrides, Override{Matcher: Matcher{ID: matcherID, Options: options}, Properties: props})
	return p
}

// dashedRed marks a reference line (a threshold the rules use).
func dashedRed() []Property {
	return []Property{
		{ID: "color", Value: map[string]any{"fixedColor": "red", "mode": "fixed"}},
		{ID: "custom.lineStyle", Value: map[string]any{"dash": []int{10, 10}, "fill": "dash"}},
		{ID: "custom.fillOpacity", Value: 0},
	}
}

// layout places rows of panels on the grid, numbering every panel.
type layout struct {
	panels []*Panel
	y, id  int
}

// row adds a row and its panels, filling the 24 columns left to right. A
// collapsed row holds its panels, placed as they will be when opened.
func (l *layout) row(title string, collapsed bool, children ...*Panel) {
	l.id++
	inRow := []*Panel{}
	r := &Panel{Collapsed: ptr(collapsed), GridPos: GridPos{H: 1, W: 24, Y: l.y}, ID: l.id, Panels: &inRow, Title: title, Type: "row"}
	l.panels = append(l.panels, r)
	y, x, lineH := l.y+1, 0, 0
	for _, p := range children {
		if x+p.GridPos.W > 24 {
			y, x, lineH = y+lineH, 0, 0
		}
		l.id++
		p.ID = l.id
		p.GridPos.X, p.GridPos.Y = x, y
		x += p.GridPos.W
		lineH = max(lineH, p.GridPos.H)
		if collapsed {
			inRow = append(inRow, p)
		} else {
			l.panels = append(l.panels, p)
		}
	}
	if collapsed {
		l.y++
	} else {
		l.y = y + lineH
	}
}

// Variables.

func datasourceVar() Variable {
	return Variable{
		Current: map[string]any{}, Label: "Data source", Name: "datasource", Options: []any{},
		Query: "prometheus", Refresh: 1, Type: "datasource",
		Description: "The Prometheus that scrapes the Vantage agents.",
	}
}

// queryVar is label_values(selector, label) on the datasource.
func queryVar(name, label, def, desc string, multi bool, allValue string) Variable {
	v := Variable{
		Current:    map[string]any{},
		Datasource: DS, Definition: def, Description: desc, Label: label, Name: name, Options: []any{},
		Query:   map[string]any{"qryType": 1, "query": def, "refId": "PrometheusVariableQueryEditor-VariableQuery"},
		Refresh: 2, // on time range change: new targets appear without a reload
		Sort:    1,
		Type:    "query",
	}
	if multi {
		v.Multi, v.IncludeAll, v.AllValue = true, true, allValue
		v.Current = map[string]any{"selected": true, "text": []string{"All"}, "value": []string{"$__all"}}
	}
	return v
}

func jobVar() Variable {
	// All without an allValue: Grafana sends the listed jobs as a regex,
	// so a blackbox_exporter job in the same Prometheus stays out.
	return queryVar("job", "Job", "label_values(vantage_build_info, job)",
		"The scrape jobs of the Vantage agents (every job with a vantage_build_info series).", true, "")
}

func teamVar() Variable {
	// All is .*: it also matches targets without a team label.
	return queryVar("team", "Team", `label_values(vantage_target_up{job=~"$job"}, team)`,
		"The targets' team label. All includes targets without one.", true, ".*")
}

func regionVar() Variable {
	return queryVar("region", "Region", `label_values(probe_success{job=~"$job"}, region)`,
		"The regions the agents probe from.", true, ".*")
}

func targetsVar() Variable {
	return queryVar("target", "Target", `label_values(vantage_target_up{job=~"$job", team=~"$team"}, target)`,
		"The targets to show (of the selected teams).", true, ".*")
}

func targetVar() Variable {
	v := queryVar("target", "Target", `label_values(vantage_target_up{job=~"$job", team=~"$team"}, target)`,
		"The one target this dashboard shows.", false, "")
	return v
}

// incidentAnnotation marks the spans where a target selected by matchers
// had an open incident: from its first failed probe anywhere (the
// incident's start) until it resolved.
func incidentAnnotation(matchers ...string) Annotation {
	return Annotation{
		Datasource:  DS,
		Enable:      true,
		Expr:        "max by(target) (" + sel("vantage_target_down_since_timestamp_seconds", matchers...) + ") > 0",
		IconColor:   "red",
		Name:        "Incidents",
		Step:        "15s",
		TagKeys:     "target",
		TextFormat:  "down by quorum (an open incident; it started at its first failed probe in any region)",
		TitleFormat: "{{target}} down",
	}
}

func builtinAnnotation() Annotation {
	return Annotation{
		BuiltIn: 1, Datasource: &Datasource{Type: "grafana", UID: "-- Grafana --"}, Enable: true, Hide: true,
		IconColor: "rgba(0, 211, 255, 1)", Name: "Annotations & Alerts", Type: "dashboard",
	}
}

// dashboard fills what every Vantage dashboard shares.
func dashboard(uid, title, desc string, vars []Variable, annotations []Annotation, l *layout) *Dashboard {
	return &Dashboard{
		Annotations: AnnotationList{List: append([]Annotation{builtinAnnotation()}, annotations...)},
		Description: desc,
		Editable:    true,
		// Shared crosshair: a moment on one graph lines up with the others.
		GraphTooltip: 1,
		Links: []Link{{
			Icon: "external link", IncludeVars: true, KeepTime: true, Tags: []string{"vantage"},
			Title: "Vantage", Tooltip: "The other Vantage dashboards, with the same time range and variables", Type: "dashboards",
			AsDropdown: true,
		}},
		Panels:        l.panels,
		Refresh:       "1m",
		SchemaVersion: SchemaVersion,
		Tags:          []string{"vantage"},
		Templating:    Templating{List: vars},
		Time:          TimeRange{From: "now-6h", To: "now"},
		Title:         title,
		UID:           uid,
		Version:       1,
	}
}
