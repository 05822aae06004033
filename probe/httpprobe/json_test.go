package httpprobe

import (
	"errors"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/vantage-probe/vantage/probe"
	"github.com/vantage-probe/vantage/probe/probetest"
)

// healthBody is a Spring-Boot-like health document.
const healthBody = `{
  "status": "UP",
  "ready": true,
  "version": "2.14.1",
  "uptime_s": 86400,
  "load": 0.75,
  "big": 9007199254740993,
  "maintenance": null,
  "checks": {"db": {"status": "UP", "latency_ms": 12}, "cache": {"status": "DOWN", "latency_ms": 250}},
  "items": [{"id": "a", "status": "ok"}, {"id": "b", "status": "degraded"}],
  "labels": {"app.kubernetes.io/name": "checkout", "a[1]": "x"},
  "matrix": [[1, 2], [3, 4]]
}`

func TestParsePath(t *testing.T) {
	k := func(s string) pathElem { return keyElem(s) }
	ix := func(n int) pathElem { return pathElem{index: n, isIndex: true} }
	q := func(s string) pathElem { return pathElem{key: s, index: -1} }
	for _, tt := range []struct {
		path string
		want []pathElem
		err  string
	}{
		{path: "status", want: []pathElem{k("status")}},
		{path: "checks.db.latency_ms", want: []pathElem{k("checks"), k("db"), k("latency_ms")}},
		{path: "items[0].status", want: []pathElem{k("items"), ix(0), k("status")}},
		{path: "items.0.status", want: []pathElem{k("items"), {key: "0", index: 0}, k("status")}},
		{path: "matrix[1][0]", want: []pathElem{k("matrix"), ix(1), ix(0)}},
		{path: "[2].name", want: []pathElem{ix(2), k("name")}},
		{path: `labels["app.kubernetes.io/name"]`, want: []pathElem{k("labels"), q("app.kubernetes.io/name")}},
		{path: `["a\"b"].c`, want: []pathElem{q(`a"b`), k("c")}},
		{path: `[""]`, want: []pathElem{q("")}},
		{path: "with space.ünï", want: []pathElem{k("with space"), k("ünï")}},
		{path: "", err: "empty path"},
		{path: "a..b", err: "empty segment at offset 2"},
		{path: ".a", err: "empty segment at offset 0"},
		{path: "a.", err: "empty segment at offset 2"},
		{path: "a.[0]", err: "empty segment at offset 2"},
		{path: "a[]", err: "want an index or a quoted key"},
		{path: "a[-1]", err: "want an index or a quoted key"},
		{path: "a[1", err: "missing ']' at offset 3"},
		{path: "a[1x]", err: "missing ']' at offset 3"},
		{path: "a[1234567890]", err: "too large"},
		{path: "a]b", err: "unexpected ']' at offset 1"},
		{path: "a[0]b", err: `unexpected 'b' at offset 4`},
		{path: `a["b]`, err: "unterminated quoted key"},
		{path: `a["b"`, err: "missing ']' after the quoted key"},
		{path: `a["\q"]`, err: "quoted key"},
	} {
		got, err := parsePath(tt.path)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("parsePath(%q) = %v, %v; want an error with %q", tt.path, got, err, tt.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("parsePath(%q) = %+v, %v; want %+v", tt.path, got, err, tt.want)
		}
	}
}

func TestJSONConditions(t *testing.T) {
	srv := probetest.NewHTTPServer(t, probetest.HTTPRespond(200, healthBody, "Content-Type", "application/json"))
	type c = JSONCondition
	for _, tt := range []struct {
		name  string
		conds []JSONCondition
		fails []string // each failure the message must name; none: the probe passes
	}{
		{name: "equals string", conds: []c{{"status", JSONEquals, "UP"}, {"checks.db.status", JSONEquals, "UP"}}},
		{name: "equals bool and number", conds: []c{{"ready", JSONEquals, true}, {"uptime_s", JSONEquals, int64(86400)}, {"uptime_s", JSONEquals, 86400.0}, {"load", JSONEquals, 0.75}}},
		{name: "equals null", conds: []c{{"maintenance", JSONEquals, nil}}},
		{name: "large integers compare exactly", conds: []c{{"big", JSONEquals, int64(9007199254740993)}, {"big", JSONGreaterThan, int64(9007199254740992)}}},
		{name: "indexes", conds: []c{{"items[1].status", JSONEquals, "degraded"}, {"items.0.id", JSONEquals, "a"}, {"matrix[1][0]", JSONEquals, 3}}},
		{name: "quoted keys", conds: []c{{`labels["app.kubernetes.io/name"]`, JSONEquals, "checkout"}, {`labels["a[1]"]`, JSONEquals, "x"}}},
		{name: "not_equals", conds: []c{{"status", JSONNotEquals, "DOWN"}, {"uptime_s", JSONNotEquals, "86400"}}},
		{name: "ordering", conds: []c{{"checks.db.latency_ms", JSONLessThan, 100}, {"load", JSONLessThan, 1}, {"uptime_s", JSONGreaterThan, 3600.5}}},
		{name: "exists", conds: []c{{"checks.db", JSONExists, true}, {"maintenance", JSONExists, true}, {"checks.queue", JSONExists, false}, {"items[2]", JSONExists, false}}},
		{name: "regex", conds: []c{{"version", JSONRegex, `^2\.\d+`}, {"uptime_s", JSONRegex, `^\d+$`}, {"ready", JSONRegex, "^true$"}}},

		{name: "string mismatch", conds: []c{{"checks.cache.status", JSONEquals, "UP"}}, fails: []string{`checks.cache.status is "DOWN", want "UP"`}},
		{name: "types differ", conds: []c{{"uptime_s", JSONEquals, "86400"}}, fails: []string{`uptime_s is 86400, want "86400"`}},
		{name: "number mismatch", conds: []c{{"checks.cache.latency_ms", JSONLessThan, 100}}, fails: []string{"checks.cache.latency_ms is 250, want less than 100"}},
		{name: "greater_than on a string", conds: []c{{"version", JSONGreaterThan, 2}}, fails: []string{`version is "2.14.1", want greater than 2`}},
		{name: "not_equals hit", conds: []c{{"ready", JSONNotEquals, true}}, fails: []string{"ready is true, want anything but true"}},
		{name: "missing", conds: []c{{"checks.queue.status", JSONEquals, "UP"}}, fails: []string{`checks.queue.status is missing, want "UP"`}},
		{name: "index out of range", conds: []c{{"items[5].id", JSONExists, true}}, fails: []string{"items[5].id is missing, want it present"}},
		{name: "through a string", conds: []c{{"status.x", JSONExists, true}}, fails: []string{"status.x is missing"}},
		{name: "index into an object", conds: []c{{"checks[0]", JSONExists, true}}, fails: []string{"checks[0] is missing"}},
		{name: "absent wanted", conds: []c{{"checks.db", JSONExists, false}}, fails: []string{"checks.db is an object, want it absent"}},
		{name: "regex on an array", conds: []c{{"items", JSONRegex, "."}}, fails: []string{`items is an array of 2, want a match for "."`}},
		{
			name:  "every failure named",
			conds: []c{{"status", JSONEquals, "DOWN"}, {"ready", JSONEquals, true}, {"checks.cache.status", JSONEquals, "UP"}, {"nope", JSONExists, true}},
			fails: []string{`status is "UP", want "DOWN"`, `checks.cache.status is "DOWN", want "UP"`, "nope is missing, want it present"},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := probeOnce(t, Options{URL: srv.URL, JSON: tt.conds})
			if len(tt.fails) == 0 {
				wantOK(t, r)
				return
			}
			wantReason(t, r, probe.ReasonJSONMismatch)
			if !strings.HasPrefix(r.Message, "json: ") {
				t.Errorf("message %q does not start with the key, json", r.Message)
			}
			for _, f := range tt.fails {
				if !strings.Contains(r.Message, f) {
					t.Errorf("message %q does not contain %q", r.Message, f)
				}
			}
			if got := strings.Count(r.Message, ";") + 1; got != len(tt.fails) {
				t.Errorf("message %q names %d failures, want %d", r.Message, got, len(tt.fails))
			}
			if r.HTTP == nil || r.HTTP.StatusCode != 200 {
				t.Errorf("HTTP facts %+v", r.HTTP)
			}
		})
	}
}

func TestJSONBodyNotJSON(t *testing.T) {
	conds := []JSONCondition{{Path: "status", Op: JSONEquals, Value: "UP"}}
	for _, tt := range []struct{ body, want string }{
		{"ok", "json: body is not JSON: invalid character 'o'"},
		{"", "json: body is not JSON: empty body"},
		{`{"status": "UP"`, "json: body is not JSON: unexpected EOF"},
		{`{"status": "UP"} trailing`, "json: body is not JSON: data after the JSON value"},
		{"<html>maintenance</html>", "json: body is not JSON"},
	} {
		srv := probetest.NewHTTPServer(t, probetest.HTTPRespond(200, tt.body))
		r := probeOnce(t, Options{URL: srv.URL, JSON: conds})
		wantReason(t, r, probe.ReasonJSONMismatch)
		if !strings.HasPrefix(r.Message, tt.want) {
			t.Errorf("body %q: message %q, want it to start with %q", tt.body, r.Message, tt.want)
		}
	}
	// White space around the value is fine.
	srv := probetest.NewHTTPServer(t, probetest.HTTPRespond(200, " \n{\"status\": \"UP\"}\n\n"))
	wantOK(t, probeOnce(t, Options{URL: srv.URL, JSON: conds}))
}

// Checks run in order and the first failing kind wins: a status, header,
// size or body_regex failure is reported as such, not as a JSON mismatch.
func TestJSONAfterOtherChecks(t *testing.T) {
	conds := []JSONCondition{{Path: "status", Op: JSONEquals, Value: "UP"}}
	down := probetest.NewHTTPServer(t, probetest.HTTPRespond(503, `{"status": "DOWN"}`))
	wantReason(t, probeOnce(t, Options{URL: down.URL, JSON: conds}), probe.ReasonStatusMismatch)

	up := probetest.NewHTTPServer(t, probetest.HTTPRespond(200, `{"status": "UP"}`))
	wantReason(t, probeOnce(t, Options{URL: up.URL, JSON: conds, MaxBodyBytes: 8}), probe.ReasonBodyTooLarge)
	wantReason(t, probeOnce(t, Options{URL: up.URL, JSON: conds, FailIfBodyMatches: []string{"UP"}}), probe.ReasonBodyMismatch)
	wantOK(t, probeOnce(t, Options{URL: up.URL, JSON: conds, FailIfBodyNotMatches: []string{"UP"}}))
}

func TestJSONStringsInMessagesAreBounded(t *testing.T) {
	long := strings.Repeat("é", 100) // 200 bytes
	srv := probetest.NewHTTPServer(t, probetest.HTTPRespond(200, `{"status": "`+long+`"}`))
	r := probeOnce(t, Options{URL: srv.URL, JSON: []JSONCondition{{Path: "status", Op: JSONEquals, Value: "UP"}}})
	wantReason(t, r, probe.ReasonJSONMismatch)
	if want := `status is "` + strings.Repeat("é", 32) + `"..., want "UP"`; !strings.Contains(r.Message, want) {
		t.Errorf("message %q, want the value cut at 64 bytes on a character boundary", r.Message)
	}
}

func TestJSONValidation(t *testing.T) {
	for _, tt := range []struct {
		name string
		c    []JSONCondition
		want []string
	}{
		{"empty segment", []JSONCondition{{Path: "a", Op: JSONExists, Value: true}, {Path: "a..b", Op: JSONEquals, Value: 1}}, []string{`json[1].path "a..b": empty segment at offset 2`}},
		{"empty path", []JSONCondition{{Op: JSONExists, Value: true}}, []string{`json[0].path "": empty path`}},
		{"less_than a string", []JSONCondition{{Path: "a", Op: JSONLessThan, Value: "x"}}, []string{`json[0]: less_than wants a number, got "x"`}},
		{"greater_than a bool", []JSONCondition{{Path: "a", Op: JSONGreaterThan, Value: true}}, []string{`json[0]: greater_than wants a number, got true`}},
		{"not finite", []JSONCondition{{Path: "a", Op: JSONLessThan, Value: posInf()}}, []string{`json[0]: less_than wants a number, got +Inf, not a finite number`}},
		{"equals a list", []JSONCondition{{Path: "a", Op: JSONEquals, Value: []any{1}}}, []string{`json[0]: equals wants a string, number or boolean, got [1] ([]interface {})`}},
		{"exists not a bool", []JSONCondition{{Path: "a", Op: JSONExists, Value: "yes"}}, []string{`json[0]: exists wants true or false, got "yes"`}},
		{"bad regex", []JSONCondition{{Path: "a", Op: JSONRegex, Value: "(up"}}, []string{`json[0].regex "(up": error parsing regexp`}},
		{"regex not a string", []JSONCondition{{Path: "a", Op: JSONRegex, Value: int64(1)}}, []string{`json[0]: regex wants a string, got 1`}},
		{"unknown op", []JSONCondition{{Path: "a", Op: "contains", Value: "x"}}, []string{`json[0]: op "contains": must be equals, not_equals`}},
		{
			"every problem at once",
			[]JSONCondition{{Path: ".x", Op: JSONEquals, Value: 1}, {Path: "y", Op: JSONLessThan, Value: "z"}, {Path: "[", Op: "in", Value: 1}},
			[]string{`json[0].path ".x"`, `json[1]: less_than`, `json[2].path "["`, `json[2]: op "in"`},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p, err := New(Options{URL: "http://127.0.0.1:1/", JSON: tt.c})
			if err == nil || p != nil {
				t.Fatalf("New = %v, %v; want an error", p, err)
			}
			if !errors.Is(err, ErrInvalidOption) {
				t.Errorf("error %v does not wrap ErrInvalidOption", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func posInf() float64 { var zero float64; return 1 / zero }

// Without conditions the body is not kept, and nothing JSON is done; with
// them it is buffered.
func TestJSONOnlyWhenConfigured(t *testing.T) {
	r := &run{p: mustNew(t, Options{URL: "http://127.0.0.1:1/"})}
	if _, buf, _ := r.p.readBody(r, strings.NewReader(`{"a":1}`)); buf != nil {
		t.Errorf("the body was buffered without a condition")
	}
	r = &run{p: mustNew(t, Options{URL: "http://127.0.0.1:1/", JSON: []JSONCondition{{Path: "a", Op: JSONEquals, Value: 1}}})}
	n, buf, err := r.p.readBody(r, strings.NewReader(`{"a":1}`))
	if buf == nil || err != nil || buf.String() != `{"a":1}` || n != 7 {
		t.Fatalf("readBody with a condition: %d %v %v", n, buf, err)
	}
	r.check(&http.Response{StatusCode: 200, Header: http.Header{}}, n, buf)
	if !r.res.OK {
		t.Errorf("check: %s %s", r.res.Reason, r.res.Message)
	}
}

// Probers built through one probe.Shared share settings only when their
// JSON conditions are the same.
func TestJSONSharedSettings(t *testing.T) {
	s := probe.NewShared()
	build := func(conds ...JSONCondition) *Prober {
		t.Helper()
		p, err := NewShared(Options{URL: "http://127.0.0.1:1/", JSON: conds}, s)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	up := JSONCondition{Path: "status", Op: JSONEquals, Value: "UP"}
	a, b := build(up), build(up)
	if a.settings != b.settings {
		t.Errorf("equal conditions: settings not shared")
	}
	for _, other := range [][]JSONCondition{
		nil,
		{{Path: "status", Op: JSONEquals, Value: "DOWN"}},
		{{Path: "state", Op: JSONEquals, Value: "UP"}},
		{{Path: "status", Op: JSONNotEquals, Value: "UP"}},
		{{Path: "status", Op: JSONEquals, Value: true}},
		{up, up},
	} {
		if c := build(other...); c.settings == a.settings {
			t.Errorf("conditions %+v share settings with %+v", other, up)
		}
	}
	if x, y := build(JSONCondition{Path: "n", Op: JSONEquals, Value: int64(1)}), build(JSONCondition{Path: "n", Op: JSONEquals, Value: "1"}); x.settings == y.settings {
		t.Errorf("a number and a string operand share settings")
	}
}
