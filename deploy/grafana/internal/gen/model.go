// Package gen builds the Grafana dashboards of deploy/grafana: the JSON
// files there are its output (go generate ./deploy/grafana rewrites them,
// and a test there fails when they differ). Go rather than hand-written
// JSON, so that every panel gets the same datasource, ids and layout, and a
// query is written once with the selectors it must carry.
//
// The model is the part of Grafana's dashboard JSON (schemaVersion 39,
// Grafana 10 and 11) that these dashboards use; struct fields marshal in
// declaration order and maps with sorted keys, so the output is stable.
package gen

// SchemaVersion is Grafana's dashboard schema version the files declare
// (Grafana 10.4 and 11 write 39).
const SchemaVersion = 39

// DS is the datasource of every panel, query, annotation and variable:
// the dashboard's own datasource variable, so an import asks for nothing.
var DS = &Datasource{Type: "prometheus", UID: "${datasource}"}

// Datasource refers to a Grafana datasource.
type Datasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

// Dashboard is one dashboard file.
type Dashboard struct {
	Annotations          AnnotationList `json:"annotations"`
	Description          string         `json:"description"`
	Editable             bool           `json:"editable"`
	FiscalYearStartMonth int            `json:"fiscalYearStartMonth"`
	GraphTooltip         int            `json:"graphTooltip"`
	ID                   *int           `json:"id"` // null: Grafana assigns one on import
	Links                []Link         `json:"links"`
	Panels               []*Panel       `json:"panels"`
	Refresh              string         `json:"refresh"`
	SchemaVersion        int            `json:"schemaVersion"`
	Tags                 []string       `json:"tags"`
	Templating           Templating     `json:"templating"`
	Time                 TimeRange      `json:"time"`
	Timepicker           struct{}       `json:"timepicker"`
	Timezone             string         `json:"timezone"`
	Title                string         `json:"title"`
	UID                  string         `json:"uid"`
	Version              int            `json:"version"`
	WeekStart            string         `json:"weekStart"`
}

// AnnotationList is the dashboard's annotations.
type AnnotationList struct {
	List []Annotation `json:"list"`
}

// Annotation is a dashboard annotation; a Prometheus one marks the spans
// where Expr returns a value.
type Annotation struct {
	BuiltIn     int         `json:"builtIn,omitempty"`
	Datasource  *Datasource `json:"datasource"`
	Enable      bool        `json:"enable"`
	Expr        string      `json:"expr,omitempty"`
	Hide        bool        `json:"hide"`
	IconColor   string      `json:"iconColor"`
	Name        string      `json:"name"`
	Step        string      `json:"step,omitempty"`
	TagKeys     string      `json:"tagKeys,omitempty"`
	TextFormat  string      `json:"textFormat,omitempty"`
	TitleFormat string      `json:"titleFormat,omitempty"`
	Type        string      `json:"type,omitempty"`
}

// Link is a dashboard link.
type Link struct {
	AsDropdown  bool     `json:"asDropdown"`
	Icon        string   `json:"icon"`
	IncludeVars bool     `json:"includeVars"`
	KeepTime    bool     `json:"keepTime"`
	Tags        []string `json:"tags"`
	TargetBlank bool     `json:"targetBlank"`
	Title       string   `json:"title"`
	Tooltip     string   `json:"tooltip"`
	Type        string   `json:"type"`
	URL         string   `json:"url"`
}

// Templating holds the dashboard's variables.
type Templating struct {
	List []Variable `json:"list"`
}

// Variable is a template variable.
type Variable struct {
	AllValue    string         `json:"allValue,omitempty"`
	Current     map[string]any `json:"current"`
	Datasource  *Datasource    `json:"datasource,omitempty"`
	Definition  string         `json:"definition,omitempty"`
	Description string         `json:"description,omitempty"`
	Hide        int            `json:"hide"`
	IncludeAll  bool           `json:"includeAll"`
	Label       string         `json:"label"`
	Multi       bool           `json:"multi"`
	Name        string         `json:"name"`
	Options     []any          `json:"options"`
	Query       any            `json:"query"`
	Refresh     int            `json:"refresh,omitempty"`
	Regex       string         `json:"regex"`
	SkipURLSync bool           `json:"skipUrlSync"`
	Sort        int            `json:"sort"`
	Type        string         `json:"type"`
}

// TimeRange is the dashboard's default time range.
type TimeRange struct {
	From string `json:"from"`
	To   string `json:"to"`
}

// Panel is a panel or a row. A collapsed row holds its panels; an open
// row's panels follow it at the top level.
type Panel struct {
	Collapsed       *bool            `json:"collapsed,omitempty"`
	Datasource      *Datasource      `json:"datasource,omitempty"`
	Description     string           `json:"description,omitempty"`
	FieldConfig     *FieldConfig     `json:"fieldConfig,omitempty"`
	GridPos         GridPos          `json:"gridPos"`
	ID              int              `json:"id"`
	Options         map[string]any   `json:"options,omitempty"`
	Panels          *[]*Panel        `json:"panels,omitempty"` // rows only: [] when open
	Targets         []Target         `json:"targets,omitempty"`
	Title           string           `json:"title"`
	Transformations []Transformation `json:"transformations,omitempty"`
	Type            string           `json:"type"`
}

// GridPos places a panel on the 24-column grid.
type GridPos struct {
	H int `json:"h"`
	W int `json:"w"`
	X int `json:"x"`
	Y int `json:"y"`
}

// Target is one query of a panel.
type Target struct {
	Datasource   *Datasource `json:"datasource"`
	EditorMode   string      `json:"editorMode"`
	Expr         string      `json:"expr"`
	Format       string      `json:"format"`
	Instant      bool        `json:"instant"`
	LegendFormat string      `json:"legendFormat"`
	Range        bool        `json:"range"`
	RefID        string      `json:"refId"`
}

// FieldConfig is how a panel shows values.
type FieldConfig struct {
	Defaults  FieldDefaults `json:"defaults"`
	Overrides []Override    `json:"overrides"`
}

// FieldDefaults apply to every field of a panel.
type FieldDefaults struct {
	Color      map[string]any   `json:"color,omitempty"`
	Custom     map[string]any   `json:"custom,omitempty"`
	Decimals   *int             `json:"decimals,omitempty"`
	Links      []map[string]any `json:"links,omitempty"`
	Mappings   []map[string]any `json:"mappings"`
	Max        *float64         `json:"max,omitempty"`
	Min        *float64         `json:"min,omitempty"`
	NoValue    string           `json:"noValue,omitempty"`
	Thresholds Thresholds       `json:"thresholds"`
	Unit       string           `json:"unit,omitempty"`
}

// Thresholds color values; the first step's Value is null (the base).
type Thresholds struct {
	Mode  string `json:"mode"`
	Steps []Step `json:"steps"`
}

// Step is one threshold.
type Step struct {
	Color string   `json:"color"`
	Value *float64 `json:"value"`
}

// Override changes properties of the fields a matcher selects.
type Override struct {
	Matcher    Matcher    `json:"matcher"`
	Properties []Property `json:"properties"`
}

// Matcher selects fields: byName, byRegexp, byFrameRefID.
type Matcher struct {
	ID      string `json:"id"`
	Options string `json:"options"`
}

// Property is one field property an override sets.
type Property struct {
	ID    string `json:"id"`
	Value any    `json:"value"`
}

// Transformation reshapes query results (tables).
type Transformation struct {
	ID      string         `json:"id"`
	Options map[string]any `json:"options"`
}
