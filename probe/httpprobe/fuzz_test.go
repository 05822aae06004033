package httpprobe

import (
	"bytes"
	"encoding/json"
	"math"
	"net/http"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/vantage-probe/vantage/probe"
)

// Driving the prober against a loopback server per input is too slow to
// fuzz; the body and header checks are the part of a probe that sees what
// the server sent, so the fuzz targets run them on their own: readBody
// (the size limit) then check, exactly as Probe does after RoundTrip.

// fuzzProber builds a prober for the checks; nil when New refuses the
// regexes, which must then be regexes Go refuses too.
func fuzzProber(t *testing.T, o Options) *Prober {
	t.Helper()
	o.URL = "http://127.0.0.1:1/"
	p, err := New(o)
	if err != nil {
		var res []string
		res = append(res, o.FailIfBodyNotMatches...)
		res = append(res, o.FailIfBodyMatches...)
		for _, m := range append(o.FailIfHeaderNotMatches, o.FailIfHeaderMatches...) {
			if !IsToken(m.Header) {
				return nil // a bad header name, refused for that
			}
			res = append(res, m.Regex)
		}
		for _, re := range res {
			if _, cerr := regexp.Compile(re); cerr != nil {
				return nil
			}
		}
		t.Fatalf("New refused options whose regexes all compile: %v", err)
	}
	return p
}

// checkBody runs readBody and check on body as Probe does.
func checkBody(p *Prober, body []byte, header http.Header) (probe.Result, int64) {
	r := &run{p: p}
	n, buf, err := p.readBody(r, bytes.NewReader(body))
	if err != nil {
		panic(err) // a bytes.Reader does not fail
	}
	r.check(&http.Response{StatusCode: 200, Header: header}, n, buf)
	p.putBuf(buf)
	return r.res, n
}

func FuzzBodyMatch(f *testing.F) {
	f.Add([]byte(`{"status": "ok"}`), `"status":\s*"ok"`, `(?i)maintenance`, uint16(0))
	f.Add([]byte("<html>Maintenance mode</html>"), `html`, `(?i)maintenance mode`, uint16(64))
	f.Add([]byte("exactly ten"), `ten$`, ``, uint16(11))
	f.Add([]byte("one byte too many"), `.`, ``, uint16(16))
	f.Add([]byte{}, `^$`, `.`, uint16(1))
	f.Add([]byte("\xff\xfe invalid utf-8 \xc3"), `\x{FFFD}`, `[^\x00-\x7f]`, uint16(0))
	f.Add([]byte("line1\nline2\n"), `(?m)^line2$`, `(?s)1.2`, uint16(0))
	f.Add([]byte("ok"), `(`, `[`, uint16(0))
	f.Fuzz(func(t *testing.T, body []byte, match, noMatch string, limit uint16) {
		o := Options{MaxBodyBytes: int64(limit)}
		if match != "" {
			o.FailIfBodyNotMatches = []string{match}
		}
		if noMatch != "" {
			o.FailIfBodyMatches = []string{noMatch}
		}
		p := fuzzProber(t, o)
		if p == nil {
			return
		}
		res, n := checkBody(p, body, http.Header{})

		// The limit: at most max_body_bytes+1 bytes are read, and a body
		// over the limit fails whatever it contains.
		max := p.maxBody
		if n != min(int64(len(body)), max+1) {
			t.Fatalf("read %d bytes of %d with limit %d", n, len(body), max)
		}
		want, reason := true, probe.ReasonNone
		switch {
		case int64(len(body)) > max:
			want, reason = false, probe.ReasonBodyTooLarge
		case match != "" && !regexp.MustCompile(match).MatchString(string(body)):
			want, reason = false, probe.ReasonBodyMismatch
		case noMatch != "" && regexp.MustCompile(noMatch).MatchString(string(body)):
			want, reason = false, probe.ReasonBodyMismatch
		}
		if res.OK != want || res.Reason != reason {
			t.Fatalf("body %q, body_regex %q, fail_if_body_matches %q, limit %d: ok=%v reason=%q (%s), want ok=%v reason=%q",
				body, match, noMatch, max, res.OK, res.Reason, res.Message, want, reason)
		}
		if !utf8.ValidString(res.Message) {
			t.Fatalf("message is not valid UTF-8: %q", res.Message)
		}
	})
}

func FuzzHeaderMatch(f *testing.F) {
	f.Add("Content-Type", "application/json; charset=utf-8", "", `^application/json`, `(?i)stale`, false)
	f.Add("X-Cache", "STALE", "HIT", `.`, `(?i)stale`, false)
	f.Add("X-Cache", "", "", `^$`, `x`, true)
	f.Add("bad header", "v", "", `v`, ``, false)
	f.Add("X-A", "\xff", "two", `\x{FFFD}`, `tw(o`, false)
	f.Fuzz(func(t *testing.T, name, v1, v2, mustMatch, mustNot string, allowMissing bool) {
		o := Options{
			FailIfHeaderNotMatches: []HeaderMatch{{Header: name, Regex: mustMatch, AllowMissing: allowMissing}},
			FailIfHeaderMatches:    []HeaderMatch{{Header: name, Regex: mustNot, AllowMissing: true}},
		}
		p := fuzzProber(t, o)
		if p == nil {
			return
		}
		h := http.Header{}
		key := http.CanonicalHeaderKey(name)
		for _, v := range []string{v1, v2} {
			if v != "" {
				h[key] = append(h[key], v)
			}
		}
		res, _ := checkBody(p, []byte("body"), h)

		// blackbox_exporter's semantics: fail_if_header_matches fails when
		// any value matches; fail_if_header_not_matches when none does; a
		// missing header passes only with allow_missing.
		vals := h[key]
		any := func(re string) bool {
			for _, v := range vals {
				if regexp.MustCompile(re).MatchString(v) {
					return true
				}
			}
			return false
		}
		want := true
		switch {
		case len(vals) > 0 && any(mustNot):
			want = false
		case len(vals) == 0 && !allowMissing:
			want = false
		case len(vals) > 0 && !any(mustMatch):
			want = false
		}
		if res.OK != want || !want && res.Reason != probe.ReasonHeaderMismatch {
			t.Fatalf("header %q values %q, must match %q, must not match %q, allow_missing %v: ok=%v reason=%q (%s), want ok=%v",
				name, vals, mustMatch, mustNot, allowMissing, res.OK, res.Reason, res.Message, want)
		}
	})
}

// formatPath renders a parsed path in the canonical syntax: plain keys
// where the parser reads them back as the same step, brackets otherwise.
func formatPath(path []pathElem) string {
	var b strings.Builder
	for i, e := range path {
		switch {
		case e.isIndex:
			b.WriteString("[" + strconv.Itoa(e.index) + "]")
		case e.key != "" && !strings.ContainsAny(e.key, ".[]") && keyElem(e.key) == e:
			if i > 0 {
				b.WriteByte('.')
			}
			b.WriteString(e.key)
		default:
			q, _ := json.Marshal(e.key)
			b.WriteString("[" + string(q) + "]")
		}
	}
	return b.String()
}

func FuzzJSONPath(f *testing.F) {
	for _, s := range []string{
		"status", "checks.db.latency_ms", "items[0].status", "items.0.status", "[2][10].x",
		`labels["app.kubernetes.io/name"]`, `["\u00e9\"\\"]`, "a..b", "a[", "a[99999999999]", "]", `[""]`, "a.b.",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		path, err := parsePath(s)
		if err != nil {
			if path != nil {
				t.Fatalf("parsePath(%q) returned %v with error %v", s, path, err)
			}
			if !strings.Contains(err.Error(), "offset") && s != "" {
				t.Fatalf("parsePath(%q): error %q does not say where", s, err)
			}
			return
		}
		if len(path) == 0 {
			t.Fatalf("parsePath(%q) accepted a path of no steps", s)
		}
		for _, e := range path {
			if e.isIndex && (e.index < 0 || e.key != "") || !e.isIndex && e.index >= 0 && keyElem(e.key) != e {
				t.Fatalf("parsePath(%q): bad step %+v", s, e)
			}
		}
		// The canonical form reads back as the same steps.
		canon := formatPath(path)
		again, err := parsePath(canon)
		if err != nil || !reflect.DeepEqual(again, path) {
			t.Fatalf("parsePath(%q) = %+v, rendered %q, read back %+v, %v", s, path, canon, again, err)
		}
	})
}

// FuzzJSONCheck runs every comparison on one path of a fuzzed body and
// checks what must hold between them, and against a plain decode for
// single-key paths.
func FuzzJSONCheck(f *testing.F) {
	f.Add([]byte(healthBody), "checks.db.latency_ms", "UP", 100.0)
	f.Add([]byte(`{"status": "UP"}`), "status", "UP", 0.0)
	f.Add([]byte(`{"n": 1e400}`), "n", "1", 1e300)
	f.Add([]byte(`{"n": -0.0}`), "n", "0", 0.0)
	f.Add([]byte(`[{"a": [true, null]}]`), "[0].a[1]", "null", 1.5)
	f.Add([]byte(`{"a": {"0": "x"}}`), "a.0", "^x$", -3.0)
	f.Add([]byte(`{"a" 1}`), "a", "(", 2.0)
	f.Add([]byte(`{"big": 12345678901234567890}`), "big", "12345678901234567890", 1.2345678901234567e19)
	f.Fuzz(func(t *testing.T, body []byte, path, str string, num float64) {
		if _, err := parsePath(path); err != nil {
			if _, nerr := New(Options{URL: "http://127.0.0.1:1/", JSON: []JSONCondition{{Path: path, Op: JSONExists, Value: true}}}); nerr == nil {
				t.Fatalf("New accepted path %q that parsePath refuses: %v", path, err)
			}
			return
		}
		if math.IsNaN(num) || math.IsInf(num, 0) {
			num = 0
		}
		conds := []JSONCondition{
			{path, JSONExists, true}, {path, JSONExists, false},
			{path, JSONEquals, str}, {path, JSONNotEquals, str},
			{path, JSONEquals, num}, {path, JSONNotEquals, num},
			{path, JSONLessThan, num}, {path, JSONGreaterThan, num},
		}
		_, reErr := regexp.Compile(str)
		if reErr == nil {
			conds = append(conds, JSONCondition{path, JSONRegex, str})
		}
		p, err := New(Options{URL: "http://127.0.0.1:1/", JSON: conds})
		if err != nil {
			t.Fatalf("New(%+v): %v", conds, err)
		}
		msg := p.checkJSON(body)
		if utf8.ValidString(path) && utf8.ValidString(str) && !utf8.ValidString(msg) {
			t.Fatalf("message is not valid UTF-8: %q", msg)
		}
		root, derr := decodeJSON(body)
		if !json.Valid(body) {
			if derr == nil || !strings.HasPrefix(msg, "json: body is not JSON: ") {
				t.Fatalf("body %q is not JSON: decode error %v, message %q", body, derr, msg)
			}
			return
		}
		if derr != nil {
			t.Fatalf("valid JSON %q: %v", body, derr)
		}
		pass := make([]bool, len(p.jsonChecks))
		for i := range p.jsonChecks {
			pass[i] = p.jsonChecks[i].check(root) == ""
		}
		_, found := lookup(root, p.jsonChecks[0].path)
		const exists, absent, eqS, neS, eqN, neN, lt, gt = 0, 1, 2, 3, 4, 5, 6, 7
		switch {
		case pass[exists] == pass[absent], pass[exists] != found:
			t.Fatalf("%q in %q: found %v, exists %v, absent %v", path, body, found, pass[exists], pass[absent])
		case found && (pass[eqS] == pass[neS] || pass[eqN] == pass[neN]):
			t.Fatalf("%q in %q: equals and not_equals agree (%v %v, %v %v)", path, body, pass[eqS], pass[neS], pass[eqN], pass[neN])
		case !found && (pass[eqS] || pass[neS] || pass[eqN] || pass[neN] || pass[lt] || pass[gt]):
			t.Fatalf("%q missing from %q, yet a comparison passed: %v", path, body, pass)
		case pass[lt] && pass[gt], pass[eqN] && (pass[lt] || pass[gt]):
			t.Fatalf("%q in %q against %v: equals %v, less %v, greater %v", path, body, num, pass[eqN], pass[lt], pass[gt])
		}
		if (msg == "") != !slices.Contains(pass, false) {
			t.Fatalf("message %q, passes %v", msg, pass)
		}
		// A one-key path against a plain decode.
		if len(p.jsonChecks[0].path) == 1 && !p.jsonChecks[0].path[0].isIndex {
			var obj map[string]any
			if json.Unmarshal(body, &obj) == nil && obj != nil {
				v, ok := obj[p.jsonChecks[0].path[0].key]
				if ok != found {
					t.Fatalf("%q in %q: found %v, plain decode %v", path, body, found, ok)
				}
				if s, isStr := v.(string); ok && isStr && (s == str) != pass[eqS] {
					t.Fatalf("%q in %q: equals %q is %v, plain decode %q", path, body, str, pass[eqS], s)
				}
				if f, isNum := v.(float64); ok && isNum && math.Abs(f) < 1<<53 && math.Abs(num) < 1<<53 && (f < num) != pass[lt] {
					t.Fatalf("%q in %q: %v less than %v is %v", path, body, f, num, pass[lt])
				}
			}
		}
	})
}
