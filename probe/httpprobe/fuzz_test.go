package httpprobe

import (
	"bytes"
	"net/http"
	"regexp"
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
			if !isToken(m.Header) {
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
