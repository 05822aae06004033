package httpprobe

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

func TestParseJSONCondition(t *testing.T) {
	num := func(s string) json.Number { return json.Number(s) }
	for _, tt := range []struct {
		in   string
		want JSONCondition
		err  string
	}{
		{in: "status == UP", want: JSONCondition{"status", JSONEquals, "UP"}},
		{in: `status=="UP"`, want: JSONCondition{"status", JSONEquals, "UP"}},
		{in: `  status == "two words" `, want: JSONCondition{"status", JSONEquals, "two words"}},
		{in: "checks.db.ok == true", want: JSONCondition{"checks.db.ok", JSONEquals, true}},
		{in: "maintenance == null", want: JSONCondition{"maintenance", JSONEquals, nil}},
		{in: "version != 2", want: JSONCondition{"version", JSONNotEquals, num("2")}},
		{in: "checks.db.latency_ms < 300", want: JSONCondition{"checks.db.latency_ms", JSONLessThan, num("300")}},
		{in: "load>0.5", want: JSONCondition{"load", JSONGreaterThan, num("0.5")}},
		{in: `build =~ ^v2\.`, want: JSONCondition{"build", JSONRegex, `^v2\.`}},
		{in: `build =~ " spaced "`, want: JSONCondition{"build", JSONRegex, " spaced "}},
		{in: "checks.db exists", want: JSONCondition{"checks.db", JSONExists, true}},
		{in: "legacy !exists", want: JSONCondition{"legacy", JSONExists, false}},
		{in: `labels["app.kubernetes.io/name"] == checkout`, want: JSONCondition{`labels["app.kubernetes.io/name"]`, JSONEquals, "checkout"}},
		{in: `labels["a == b"] exists`, want: JSONCondition{`labels["a == b"]`, JSONExists, true}},
		{in: "items[1].status == degraded", want: JSONCondition{"items[1].status", JSONEquals, "degraded"}},
		{in: "", err: "want PATH OP VALUE"},
		{in: "== UP", err: "want PATH OP VALUE"},
		{in: "status", err: "want one of ==, !=, <, >, =~, exists, !exists"},
		{in: "status = UP", err: "want one of"},
		{in: "status ==", err: "needs a value"},
		{in: "a..b == 1", err: `path "a..b": empty segment at offset 2`},
		{in: "n < many", err: "wants a number, got many"},
		{in: `n > "5"`, err: "wants a number"},
		{in: `s == "unterminated`, err: "not a JSON string"},
		{in: "s exists now", err: "takes no value"},
		{in: "s =~ (", err: "regex"},
	} {
		got, err := ParseJSONCondition(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ParseJSONCondition(%q) = %+v, %v; want an error with %q", tt.in, got, err, tt.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseJSONCondition(%q) = %#v, %v; want %#v", tt.in, got, err, tt.want)
			continue
		}
		// What it parses, New accepts; and it reads back from its String.
		if _, err := New(Options{URL: "http://127.0.0.1:1/", JSON: []JSONCondition{got}}); err != nil {
			t.Errorf("New refuses %q: %v", tt.in, err)
		}
		if again, err := ParseJSONCondition(got.String()); err != nil || !reflect.DeepEqual(again, got) {
			t.Errorf("%q: String %q reads back as %#v, %v", tt.in, got.String(), again, err)
		}
	}
}

// TestParsedConditionsCheckABody: a condition from the command line
// judges a body as the same condition from the config does.
func TestParsedConditionsCheckABody(t *testing.T) {
	var conds []JSONCondition
	for _, s := range []string{"status == UP", "checks.db.latency_ms < 300", "checks.cache.status == UP", "big == 9007199254740993"} {
		c, err := ParseJSONCondition(s)
		if err != nil {
			t.Fatal(err)
		}
		conds = append(conds, c)
	}
	p, err := New(Options{URL: "http://127.0.0.1:1/", JSON: conds})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := p.checkJSON([]byte(healthBody)), `json: checks.cache.status is "DOWN", want "UP"`; got != want {
		t.Errorf("checkJSON = %q, want %q", got, want)
	}
}

func FuzzParseJSONCondition(f *testing.F) {
	for _, s := range []string{"status == UP", `a["b c"] != "x"`, "n < 1e400", "x =~ a|b", "y !exists", `z == {"a":1}`, "q > -0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseJSONCondition(s)
		if err != nil {
			return
		}
		if _, err := New(Options{URL: "http://127.0.0.1:1/", JSON: []JSONCondition{c}}); err != nil {
			t.Fatalf("ParseJSONCondition(%q) = %#v, which New refuses: %v", s, c, err)
		}
		again, err := ParseJSONCondition(c.String())
		if err != nil || !reflect.DeepEqual(again, c) {
			t.Fatalf("ParseJSONCondition(%q) = %#v; String %q reads back as %#v, %v", s, c, c.String(), again, err)
		}
	})
}
