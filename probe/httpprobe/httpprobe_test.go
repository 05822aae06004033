package httpprobe

import (
	"compress/gzip"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vantage-probe/vantage/probe"
	"github.com/vantage-probe/vantage/probe/probetest"
)

// probeTimeout bounds probes that are expected to complete: generous, so a
// loaded 2-core machine does not turn a success into a timeout.
const probeTimeout = 10 * time.Second

// pki is a test CA, its CA file and a valid leaf for 127.0.0.1 and localhost.
type pki struct {
	ca     *probetest.CA
	caFile string
	leaf   tls.Certificate
}

func newPKI(t testing.TB) *pki {
	t.Helper()
	ca, err := probetest.NewCA("Vantage test CA")
	if err != nil {
		t.Fatal(err)
	}
	caFile, err := ca.WriteCAFile(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return &pki{ca: ca, caFile: caFile, leaf: leafFor(t, ca, probetest.Days(365), "127.0.0.1", "localhost")}
}

func leafFor(t testing.TB, ca *probetest.CA, notAfter time.Time, names ...string) tls.Certificate {
	t.Helper()
	c, err := ca.Leaf(notAfter, names...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func mustNew(t testing.TB, o Options) *Prober {
	t.Helper()
	p, err := New(o)
	if err != nil {
		t.Fatalf("New(%+v): %v", o, err)
	}
	return p
}

func probeOnce(t testing.TB, o Options) probe.Result {
	t.Helper()
	return runWithin(t, mustNew(t, o), probeTimeout)
}

func runWithin(t testing.TB, p *Prober, timeout time.Duration) probe.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return p.Probe(ctx)
}

func wantOK(t *testing.T, r probe.Result) {
	t.Helper()
	if !r.OK || r.Reason != probe.ReasonNone {
		t.Fatalf("probe failed: reason %q, message %q", r.Reason, r.Message)
	}
}

func wantReason(t *testing.T, r probe.Result, want probe.Reason) {
	t.Helper()
	if r.OK || r.Reason != want {
		t.Fatalf("got ok=%v reason %q (message %q), want reason %q", r.OK, r.Reason, r.Message, want)
	}
}

func TestNewDefaults(t *testing.T) {
	p := mustNew(t, Options{URL: "http://127.0.0.1:1/x"})
	if p.method != http.MethodGet || p.maxRedirects != DefaultMaxRedirects || p.maxBody != DefaultMaxBodyBytes || p.version != VersionAuto {
		t.Errorf("defaults: method %q max_redirects %d max_body_bytes %d http_version %q", p.method, p.maxRedirects, p.maxBody, p.version)
	}
	for _, c := range []int{200, 204, 299} {
		if !p.statusOK(c) {
			t.Errorf("default valid_status rejects %d", c)
		}
	}
	for _, c := range []int{199, 301, 404, 500} {
		if p.statusOK(c) {
			t.Errorf("default valid_status accepts %d", c)
		}
	}
	if got := p.header.Get("User-Agent"); got != UserAgent {
		t.Errorf("User-Agent %q, want %q", got, UserAgent)
	}
	if hostportOf(t, p) != "127.0.0.1:1" {
		t.Errorf("hostport %q", hostportOf(t, p))
	}
	if p := mustNew(t, Options{URL: "https://example.com/"}); hostportOf(t, p) != "example.com:443" || p.tlsConf.ServerName != "example.com" {
		t.Errorf("https default port/server name: %q %q", hostportOf(t, p), p.tlsConf.ServerName)
	}
}

func TestNewRejects(t *testing.T) {
	base := func(mod func(*Options)) Options {
		o := Options{URL: "https://example.com/"}
		mod(&o)
		return o
	}
	cases := []struct {
		name string
		o    Options
		want []string // substrings of the error
	}{
		{"no url", base(func(o *Options) { o.URL = "" }), []string{"url: missing"}},
		{"bad scheme", base(func(o *Options) { o.URL = "ftp://example.com/" }), []string{`url "ftp://example.com/"`, "scheme"}},
		{"no host", base(func(o *Options) { o.URL = "http:///path" }), []string{`url "http:///path"`, "no host"}},
		{"unparsable url", base(func(o *Options) { o.URL = "http://[::1" }), []string{`url "http://[::1"`}},
		{"method", base(func(o *Options) { o.Method = "GE T" }), []string{`method "GE T"`}},
		{"body regex", base(func(o *Options) { o.FailIfBodyNotMatches = []string{"ok", "("} }), []string{`body_regex "("`}},
		{"fail body regex", base(func(o *Options) { o.FailIfBodyMatches = []string{"[z-a]"} }), []string{`fail_if_body_matches "[z-a]"`}},
		{"header regex", base(func(o *Options) {
			o.FailIfHeaderNotMatches = []HeaderMatch{{Header: "X-A", Regex: "("}}
		}), []string{`fail_if_header_not_matches regex "("`}},
		{"header name", base(func(o *Options) {
			o.FailIfHeaderMatches = []HeaderMatch{{Header: "X A", Regex: "."}}
		}), []string{`fail_if_header_matches header "X A"`}},
		{"status", base(func(o *Options) { o.ValidStatus = []int{200, 42} }), []string{"valid_status 42"}},
		{"version", base(func(o *Options) { o.HTTPVersion = "1.0" }), []string{`http_version "1.0"`}},
		{"h3 needs https", base(func(o *Options) { o.URL = "http://example.com/"; o.HTTPVersion = "3" }), []string{`http_version "3"`, "https"}},
		{"no h2c", base(func(o *Options) { o.URL = "http://example.com/"; o.HTTPVersion = "2" }), []string{`http_version "2"`, "h2c"}},
		{"redirects", base(func(o *Options) { o.MaxRedirects = -1 }), []string{"max_redirects -1"}},
		{"body bytes", base(func(o *Options) { o.MaxBodyBytes = -5 }), []string{"max_body_bytes -5"}},
		{"ssl both", base(func(o *Options) { o.FailIfSSL, o.FailIfNotSSL = true, true }), []string{"fail_if_ssl and fail_if_not_ssl"}},
		{"ca file", base(func(o *Options) { o.TLS.CAFile = "/nonexistent/ca.pem" }), []string{"ca_file"}},
		{"header name in headers", base(func(o *Options) { o.Headers = map[string]string{"Bad Name": "x"} }), []string{`headers "Bad Name"`}},
		{"header value", base(func(o *Options) { o.Headers = map[string]string{"X-A": "a\r\nb"} }), []string{`headers "X-A"`}},
		{"auth twice", base(func(o *Options) { o.BasicAuthUser, o.BearerToken = "u", "t" }), []string{"bearer_token"}},
		{"ip protocol", base(func(o *Options) { o.Net.IPProtocol = "ip5" }), []string{`ip_protocol "ip5"`}},
		{"family", base(func(o *Options) { o.URL = "http://127.0.0.1/"; o.Net.IPProtocol = probe.IPv6 }), []string{`ip_protocol "ip6"`, `"127.0.0.1"`}},
		{"source family", base(func(o *Options) {
			o.Net.IPProtocol = probe.IPv6
			o.Net.SourceIP = netip.MustParseAddr("127.0.0.1")
		}), []string{`source_ip "127.0.0.1"`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, err := New(c.o)
			if err == nil {
				t.Fatalf("New accepted %+v", c.o)
			}
			if p != nil {
				t.Errorf("New returned a prober with an error")
			}
			if !errors.Is(err, ErrInvalidOption) {
				t.Errorf("error %v does not wrap ErrInvalidOption", err)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestNewReportsEveryProblem(t *testing.T) {
	_, err := New(Options{URL: "gopher://x/", Method: "A B", ValidStatus: []int{7}, FailIfBodyMatches: []string{"("}})
	if err == nil {
		t.Fatal("New accepted bad options")
	}
	for _, w := range []string{"url", "method", "valid_status", "fail_if_body_matches"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not mention %s", err, w)
		}
	}
}

func TestNewKeepsSecretsOutOfErrors(t *testing.T) {
	_, err := New(Options{URL: "https://example.com/", BearerToken: "s3cret\n"})
	if err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("error %v: want a rejection that does not quote the token", err)
	}
}

// Tokens in URLs (the target's, a Location's) never reach a Result or an
// error: final_url and messages show them redacted.
func TestNoURLSecretInResultsOrErrors(t *testing.T) {
	mux := http.NewServeMux()
	mux.Handle("/hop", probetest.HTTPRedirectTo(http.StatusFound, "/final?token=s3cret-loc#s3cret-frag"))
	mux.Handle("/final", probetest.HTTPRespond(500, "no"))
	mux.Handle("/badloc", probetest.HTTPRedirectTo(http.StatusFound, "ftp://elsewhere.test/?token=s3cret-badloc"))
	srv := probetest.NewHTTPServer(t, mux)

	r := probeOnce(t, Options{URL: srv.URL + "/hop?token=s3cret", FollowRedirects: true})
	wantReason(t, r, probe.ReasonStatusMismatch)
	if r.HTTP.FinalURL != srv.URL+"/final?token=xxxxx#xxxxx" {
		t.Errorf("final URL %q, want the Location's redacted", r.HTTP.FinalURL)
	}
	r = probeOnce(t, Options{URL: srv.URL + "/badloc?token=s3cret", FollowRedirects: true})
	wantReason(t, r, probe.ReasonHTTPError)
	if r.Message != `redirect 1: bad Location "ftp://elsewhere.test/?token=xxxxx"` || r.HTTP.FinalURL != srv.URL+"/badloc?token=xxxxx" {
		t.Errorf("message %q, final URL %q", r.Message, r.HTTP.FinalURL)
	}
	ra, err := probetest.ReserveRefusedAddr()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ra.Close() })
	r = probeOnce(t, Options{URL: "http://u:s3cret@" + ra.Addr + "/?token=s3cret"})
	wantReason(t, r, probe.ReasonConnectRefused)
	if b, _ := json.Marshal(r); strings.Contains(string(b), "s3cret") {
		t.Errorf("result shows a secret: %s", b)
	}

	for _, u := range []string{"http://[bad/?token=s3cret", "ftp://h/?token=s3cret", "http://u:s3cret@/?token=s3cret"} {
		_, err := New(Options{URL: u})
		if err == nil || strings.Contains(err.Error(), "s3cret") || !strings.Contains(err.Error(), "token=xxxxx") {
			t.Errorf("New(%q): %v; want a refusal quoting the URL redacted", u, err)
		}
	}
}

func TestHTTP11(t *testing.T) {
	srv := probetest.NewHTTPServer(t, probetest.HTTPRespond(200, "hello, probe"))
	r := probeOnce(t, Options{URL: srv.URL + "/health"})
	wantOK(t, r)
	h := r.HTTP
	if h == nil || h.StatusCode != 200 || h.Version != "1.1" || h.ContentLength != int64(len("hello, probe")) || h.Redirects != 0 || h.FinalURL != srv.URL+"/health" {
		t.Fatalf("HTTP facts %+v", h)
	}
	if r.TLS != nil {
		t.Errorf("TLS facts for plain http: %+v", r.TLS)
	}
	if r.RemoteAddr != srv.Addr {
		t.Errorf("RemoteAddr %q, want %q", r.RemoteAddr, srv.Addr)
	}
	if len(r.Phases) != 5 {
		t.Fatalf("phases %+v", r.Phases)
	}
	for _, name := range []string{probe.PhaseResolve, probe.PhaseConnect, probe.PhaseTLS, probe.PhaseProcessing, probe.PhaseTransfer} {
		if d := r.Phase(name); d < 0 || d > r.Duration {
			t.Errorf("phase %s = %v outside [0, %v]", name, d, r.Duration)
		}
	}
	if r.Phase(probe.PhaseConnect) <= 0 || r.Phase(probe.PhaseProcessing) <= 0 {
		t.Errorf("connect and processing must be measured: %+v", r.Phases)
	}
	if r.Phase(probe.PhaseTLS) != 0 || r.Phase(probe.PhaseResolve) != 0 {
		t.Errorf("no TLS and no resolution (IP literal) expected: %+v", r.Phases)
	}
	if r.At.IsZero() || r.Duration <= 0 {
		t.Errorf("At %v Duration %v", r.At, r.Duration)
	}
}

// The declared length and Last-Modified are the final response's, as
// blackbox_exporter reports them: -1 for a body sent without a length.
func TestDeclaredLengthAndLastModified(t *testing.T) {
	sized := probetest.NewHTTPServer(t, probetest.HTTPRespond(200, "hello", "Last-Modified", "Tue, 01 Dec 2026 10:00:00 GMT"))
	r := probeOnce(t, Options{URL: sized.URL})
	wantOK(t, r)
	if want := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC); r.HTTP.DeclaredLength != 5 || !r.HTTP.LastModified.Equal(want) {
		t.Errorf("declared length %d, last modified %v; want 5 and %v", r.HTTP.DeclaredLength, r.HTTP.LastModified, want)
	}
	streamed := probetest.NewHTTPServer(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Last-Modified", "yesterday")
		_, _ = io.WriteString(w, "one")
		w.(http.Flusher).Flush()
		_, _ = io.WriteString(w, " two")
	}))
	r = probeOnce(t, Options{URL: streamed.URL})
	wantOK(t, r)
	if r.HTTP.DeclaredLength != -1 || r.HTTP.ContentLength != 7 || !r.HTTP.LastModified.IsZero() {
		t.Errorf("chunked: declared length %d, read %d, last modified %v; want -1, 7 and none (unparsable)",
			r.HTTP.DeclaredLength, r.HTTP.ContentLength, r.HTTP.LastModified)
	}
}

func TestRequestShape(t *testing.T) {
	var mu sync.Mutex
	var got *http.Request
	var gotBody string
	srv := probetest.NewHTTPServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got, gotBody = r, string(b)
		mu.Unlock()
	}))
	r := probeOnce(t, Options{
		URL:     srv.URL + "/submit?q=1",
		Method:  "POST",
		Body:    `{"ping":true}`,
		Headers: map[string]string{"host": "vhost.example", "X-Probe": "vantage", "Content-Type": "application/json"},
	})
	wantOK(t, r)
	mu.Lock()
	defer mu.Unlock()
	if got.Method != "POST" || got.Host != "vhost.example" || got.URL.RequestURI() != "/submit?q=1" {
		t.Errorf("method %q host %q uri %q", got.Method, got.Host, got.URL.RequestURI())
	}
	if got.Header.Get("X-Probe") != "vantage" || got.Header.Get("Content-Type") != "application/json" || got.Header.Get("User-Agent") != UserAgent {
		t.Errorf("headers %v", got.Header)
	}
	if gotBody != `{"ping":true}` || got.ContentLength != int64(len(gotBody)) {
		t.Errorf("body %q (content-length %d)", gotBody, got.ContentLength)
	}
	if !got.Close {
		t.Errorf("request did not ask to close the connection (fresh connection per probe)")
	}
}

func TestAuth(t *testing.T) {
	const user, pass, token = "probe", "pa55-w0rd", "t0ken-xyz"
	srv := probetest.NewHTTPServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); ok && u == user && p == pass {
			return
		}
		if r.Header.Get("Authorization") == "Bearer "+token {
			return
		}
		w.WriteHeader(http.StatusUnauthorized)
	}))
	wantOK(t, probeOnce(t, Options{URL: srv.URL, BasicAuthUser: user, BasicAuthPassword: pass}))
	wantOK(t, probeOnce(t, Options{URL: srv.URL, BearerToken: token}))
	// Credentials in the URL act as basic auth and never show up in facts.
	r := probeOnce(t, Options{URL: strings.Replace(srv.URL, "http://", "http://"+user+":"+pass+"@", 1)})
	wantOK(t, r)
	if strings.Contains(r.HTTP.FinalURL, pass) {
		t.Errorf("FinalURL %q shows the password", r.HTTP.FinalURL)
	}
	for _, o := range []Options{
		{URL: srv.URL, BasicAuthUser: user, BasicAuthPassword: "wrong-" + pass},
		{URL: srv.URL, BearerToken: "wrong-" + token},
	} {
		r := probeOnce(t, o)
		wantReason(t, r, probe.ReasonStatusMismatch)
		if strings.Contains(r.Message, pass) || strings.Contains(r.Message, token) {
			t.Errorf("message %q contains a secret", r.Message)
		}
	}
}

func TestStatusChecks(t *testing.T) {
	srv404 := probetest.NewHTTPServer(t, probetest.HTTPRespond(404, "nope"))
	r := probeOnce(t, Options{URL: srv404.URL})
	wantReason(t, r, probe.ReasonStatusMismatch)
	if r.HTTP == nil || r.HTTP.StatusCode != 404 || !strings.Contains(r.Message, "404") {
		t.Errorf("facts %+v message %q", r.HTTP, r.Message)
	}
	wantOK(t, probeOnce(t, Options{URL: srv404.URL, ValidStatus: []int{404, 410}}))
	srv200 := probetest.NewHTTPServer(t, probetest.HTTPRespond(200, "ok"))
	wantReason(t, probeOnce(t, Options{URL: srv200.URL, ValidStatus: []int{204}}), probe.ReasonStatusMismatch)
}

func TestBodyChecks(t *testing.T) {
	srv := probetest.NewHTTPServer(t, probetest.HTTPRespond(200, `{"status":"ok","db":"up"}`))
	cases := []struct {
		name   string
		match  []string
		fail   []string
		reason probe.Reason
	}{
		{"all match", []string{`"status":"ok"`, `db":"up`}, nil, probe.ReasonNone},
		{"one misses", []string{`"status":"ok"`, `degraded`}, nil, probe.ReasonBodyMismatch},
		{"fail regex absent", nil, []string{`"db":"down"`}, probe.ReasonNone},
		{"fail regex present", nil, []string{`"db":"up"`}, probe.ReasonBodyMismatch},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := probeOnce(t, Options{URL: srv.URL, FailIfBodyNotMatches: c.match, FailIfBodyMatches: c.fail})
			if c.reason == probe.ReasonNone {
				wantOK(t, r)
			} else {
				wantReason(t, r, c.reason)
			}
			if r.HTTP == nil || r.HTTP.ContentLength != 25 {
				t.Errorf("facts %+v", r.HTTP)
			}
		})
	}
}

func TestHeaderChecks(t *testing.T) {
	srv := probetest.NewHTTPServer(t, probetest.HTTPRespond(200, "ok", "X-Version", "v2.3", "X-Version", "canary", "Cache-Control", "no-store"))
	cases := []struct {
		name   string
		match  []HeaderMatch
		fail   []HeaderMatch
		reason probe.Reason
	}{
		{"any value matches", []HeaderMatch{{Header: "x-version", Regex: `^canary$`}}, nil, probe.ReasonNone},
		{"no value matches", []HeaderMatch{{Header: "X-Version", Regex: `^v3`}}, nil, probe.ReasonHeaderMismatch},
		{"missing", []HeaderMatch{{Header: "X-Absent", Regex: `.`}}, nil, probe.ReasonHeaderMismatch},
		{"missing allowed", []HeaderMatch{{Header: "X-Absent", Regex: `.`, AllowMissing: true}}, nil, probe.ReasonNone},
		{"fail matches", nil, []HeaderMatch{{Header: "Cache-Control", Regex: `no-store`}}, probe.ReasonHeaderMismatch},
		{"fail does not match", nil, []HeaderMatch{{Header: "Cache-Control", Regex: `private`}}, probe.ReasonNone},
		{"fail missing allowed", nil, []HeaderMatch{{Header: "Set-Cookie", Regex: `.`, AllowMissing: true}}, probe.ReasonNone},
		{"fail missing", nil, []HeaderMatch{{Header: "Set-Cookie", Regex: `.`}}, probe.ReasonHeaderMismatch},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := probeOnce(t, Options{URL: srv.URL, FailIfHeaderNotMatches: c.match, FailIfHeaderMatches: c.fail})
			if c.reason == probe.ReasonNone {
				wantOK(t, r)
			} else {
				wantReason(t, r, c.reason)
			}
		})
	}
}

func TestBodyLimit(t *testing.T) {
	srv := probetest.NewHTTPServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := int64(100)
		if r.URL.Path == "/big" {
			n = 101
		}
		if r.URL.Path == "/huge" {
			n = 3 << 20
		}
		probetest.HTTPLargeBody(n).ServeHTTP(w, r)
	}))
	r := probeOnce(t, Options{URL: srv.URL + "/exact", MaxBodyBytes: 100})
	wantOK(t, r)
	if r.HTTP.ContentLength != 100 {
		t.Errorf("content length %d", r.HTTP.ContentLength)
	}
	wantReason(t, probeOnce(t, Options{URL: srv.URL + "/big", MaxBodyBytes: 100}), probe.ReasonBodyTooLarge)
	// The default limit (1 MiB), with and without a body regex (buffered or
	// discarded), stops reading just past the limit.
	for _, re := range [][]string{nil, {"x"}} {
		r := probeOnce(t, Options{URL: srv.URL + "/huge", FailIfBodyNotMatches: re})
		wantReason(t, r, probe.ReasonBodyTooLarge)
		if r.HTTP.ContentLength != DefaultMaxBodyBytes+1 {
			t.Errorf("read %d bytes, want the limit plus one", r.HTTP.ContentLength)
		}
	}
}

func TestHTTPSVersions(t *testing.T) {
	k := newPKI(t)
	h2 := probetest.NewHTTPSServer(t, probetest.HTTPRespond(200, "ok"), k.leaf)
	h1 := probetest.NewHTTPS1Server(t, probetest.HTTPRespond(200, "ok"), k.leaf)
	cases := []struct {
		srv     *probetest.HTTPServer
		version string
		want    string       // HTTP version of the response
		reason  probe.Reason // when it must fail
	}{
		{h2, "", "2", ""},
		{h2, "auto", "2", ""},
		{h2, "1.1", "1.1", ""},
		{h2, "2", "2", ""},
		{h1, "auto", "1.1", ""},
		{h1, "1.1", "1.1", ""},
		{h1, "2", "", probe.ReasonHTTPError},
	}
	for _, c := range cases {
		name := "h2-server"
		if c.srv == h1 {
			name = "h1-server"
		}
		t.Run(name+"/"+c.version, func(t *testing.T) {
			r := probeOnce(t, Options{URL: c.srv.URL + "/", HTTPVersion: c.version, TLS: probe.TLSOptions{CAFile: k.caFile}})
			if c.reason != "" {
				wantReason(t, r, c.reason)
				if !strings.Contains(r.Message, "h2") {
					t.Errorf("message %q does not say h2 was missing", r.Message)
				}
				if r.TLS == nil || !r.TLS.Verified {
					t.Errorf("TLS facts must be reported even when the version is wrong: %+v", r.TLS)
				}
				return
			}
			wantOK(t, r)
			if r.HTTP.Version != c.want {
				t.Errorf("version %q, want %q", r.HTTP.Version, c.want)
			}
			if r.TLS == nil || !r.TLS.Verified || r.TLS.Version != "TLS 1.3" || r.TLS.ServerName != "127.0.0.1" || len(r.TLS.Chain) != 2 {
				t.Fatalf("TLS facts %+v", r.TLS)
			}
			if r.Phase(probe.PhaseTLS) <= 0 || r.Phase(probe.PhaseConnect) <= 0 || r.Phase(probe.PhaseProcessing) <= 0 {
				t.Errorf("phases %+v", r.Phases)
			}
		})
	}
}

func TestHTTP3(t *testing.T) {
	k := newPKI(t)
	srv := probetest.NewHTTP3Server(t, probetest.HTTPEcho(), k.leaf)
	r := probeOnce(t, Options{URL: srv.URL + "/h3", HTTPVersion: "3", TLS: probe.TLSOptions{CAFile: k.caFile},
		Method: "PUT", Body: "payload-over-quic", FailIfBodyNotMatches: []string{`(?m)^method: PUT$`, `(?m)^proto: HTTP/3`, `payload-over-quic$`}})
	wantOK(t, r)
	if r.HTTP.Version != "3" || r.HTTP.StatusCode != 200 || r.HTTP.ContentLength == 0 {
		t.Errorf("HTTP facts %+v", r.HTTP)
	}
	if r.TLS == nil || !r.TLS.Verified || r.TLS.Version != "TLS 1.3" {
		t.Errorf("TLS facts %+v", r.TLS)
	}
	if r.RemoteAddr != srv.Addr {
		t.Errorf("RemoteAddr %q, want %q", r.RemoteAddr, srv.Addr)
	}
	if r.Phase(probe.PhaseTLS) <= 0 || r.Phase(probe.PhaseProcessing) <= 0 {
		t.Errorf("phases %+v", r.Phases)
	}
	if r := probeOnce(t, Options{URL: srv.URL, HTTPVersion: "3", TLS: probe.TLSOptions{CAFile: k.caFile}, FailIfSSL: true}); r.Reason != probe.ReasonHTTPError {
		t.Errorf("fail_if_ssl over HTTP/3: reason %q", r.Reason)
	}
}

func TestCertificates(t *testing.T) {
	k := newPKI(t)
	other, err := probetest.NewCA("Someone else's CA")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name     string
		cert     tls.Certificate
		insecure bool
		reason   probe.Reason
		verified bool
	}{
		{"valid 1y", leafFor(t, k.ca, probetest.Days(365), "127.0.0.1"), false, "", true},
		{"expiring in 5 days", leafFor(t, k.ca, probetest.Days(5), "127.0.0.1"), false, "", true},
		{"expired", leafFor(t, k.ca, probetest.Days(-2), "127.0.0.1"), false, probe.ReasonCertExpired, false},
		{"wrong host", leafFor(t, k.ca, probetest.Days(365), "www.example.com"), false, probe.ReasonCertInvalid, false},
		{"unknown CA", leafFor(t, other, probetest.Days(365), "127.0.0.1"), false, probe.ReasonCertInvalid, false},
		{"unknown CA, insecure", leafFor(t, other, probetest.Days(365), "127.0.0.1"), true, "", false},
		{"expired, insecure", leafFor(t, k.ca, probetest.Days(-2), "127.0.0.1"), true, "", false},
	}
	for _, c := range cases {
		for _, version := range []string{"auto", "3"} {
			t.Run(c.name+"/"+version, func(t *testing.T) {
				var url string
				if version == "3" {
					url = probetest.NewHTTP3Server(t, probetest.HTTPRespond(200, "ok"), c.cert).URL
				} else {
					url = probetest.NewHTTPSServer(t, probetest.HTTPRespond(200, "ok"), c.cert).URL
				}
				r := probeOnce(t, Options{URL: url, HTTPVersion: version, TLS: probe.TLSOptions{CAFile: k.caFile, InsecureSkipVerify: c.insecure}})
				if c.reason == "" {
					wantOK(t, r)
				} else {
					wantReason(t, r, c.reason)
					if r.HTTP != nil {
						t.Errorf("a request was sent over an unverified connection: %+v", r.HTTP)
					}
				}
				f := r.TLS
				if f == nil {
					t.Fatal("no TLS facts")
				}
				if f.Verified != c.verified {
					t.Errorf("verified %v, want %v", f.Verified, c.verified)
				}
				leaf := c.cert.Leaf
				if !f.EarliestExpiry.Equal(leaf.NotAfter) || len(f.Chain) != 2 || f.Chain[0].Subject != leaf.Subject.String() || f.Chain[0].SHA256 == "" {
					t.Errorf("facts %+v do not describe the presented leaf (NotAfter %v)", f, leaf.NotAfter)
				}
				if c.verified != !f.LastChainExpiry.IsZero() {
					t.Errorf("LastChainExpiry %v with verified=%v", f.LastChainExpiry, c.verified)
				}
				if c.verified && !f.LastChainExpiry.Equal(leaf.NotAfter) {
					t.Errorf("LastChainExpiry %v, want the leaf's %v", f.LastChainExpiry, leaf.NotAfter)
				}
			})
		}
	}
}

func TestServerNameOverride(t *testing.T) {
	k := newPKI(t)
	cert := leafFor(t, k.ca, probetest.Days(30), "api.internal.test")
	var mu sync.Mutex
	var sni string
	srv := probetest.NewHTTPSServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		sni = r.TLS.ServerName
		mu.Unlock()
	}), cert)
	// Probing an address for a name: server_name, or the Host header.
	for _, o := range []Options{
		{URL: srv.URL, TLS: probe.TLSOptions{CAFile: k.caFile, ServerName: "api.internal.test"}},
		{URL: srv.URL, TLS: probe.TLSOptions{CAFile: k.caFile}, Headers: map[string]string{"Host": "api.internal.test:443"}},
	} {
		r := probeOnce(t, o)
		wantOK(t, r)
		mu.Lock()
		got := sni
		mu.Unlock()
		if got != "api.internal.test" || r.TLS.ServerName != "api.internal.test" {
			t.Errorf("SNI %q, facts server name %q", got, r.TLS.ServerName)
		}
	}
	wantReason(t, probeOnce(t, Options{URL: srv.URL, TLS: probe.TLSOptions{CAFile: k.caFile}}), probe.ReasonCertInvalid)
}

func TestSSLChecks(t *testing.T) {
	k := newPKI(t)
	plain := probetest.NewHTTPServer(t, probetest.HTTPRespond(200, "ok"))
	tlsSrv := probetest.NewHTTPSServer(t, probetest.HTTPRespond(200, "ok"), k.leaf)
	ca := probe.TLSOptions{CAFile: k.caFile}
	wantReason(t, probeOnce(t, Options{URL: plain.URL, FailIfNotSSL: true}), probe.ReasonHTTPError)
	wantOK(t, probeOnce(t, Options{URL: plain.URL, FailIfSSL: true}))
	wantReason(t, probeOnce(t, Options{URL: tlsSrv.URL, FailIfSSL: true, TLS: ca}), probe.ReasonHTTPError)
	wantOK(t, probeOnce(t, Options{URL: tlsSrv.URL, FailIfNotSSL: true, TLS: ca}))
	// The check is on the final response: https redirected to plain http.
	up := probetest.NewHTTPSServer(t, probetest.HTTPRedirectTo(http.StatusMovedPermanently, plain.URL+"/"), k.leaf)
	r := probeOnce(t, Options{URL: up.URL, FollowRedirects: true, FailIfNotSSL: true, TLS: ca})
	wantReason(t, r, probe.ReasonHTTPError)
	if r.TLS != nil || r.HTTP.Redirects != 1 {
		t.Errorf("final hop was plain http: TLS %+v, HTTP %+v", r.TLS, r.HTTP)
	}
}

func TestRedirects(t *testing.T) {
	srv := probetest.NewHTTPServer(t, probetest.HTTPRedirectChain(3, probetest.HTTPRespond(200, "landed")))

	r := probeOnce(t, Options{URL: srv.URL + "/start", FollowRedirects: true, FailIfBodyNotMatches: []string{"^landed$"}})
	wantOK(t, r)
	if r.HTTP.Redirects != 3 || r.HTTP.FinalURL != srv.URL+"/start?hop=xxxxx" {
		t.Errorf("facts %+v", r.HTTP)
	}
	if r.Phase(probe.PhaseConnect) <= 0 || r.Phase(probe.PhaseProcessing) <= 0 {
		t.Errorf("phases %+v", r.Phases)
	}

	wantOK(t, probeOnce(t, Options{URL: srv.URL + "/start", FollowRedirects: true, MaxRedirects: 3}))
	r = probeOnce(t, Options{URL: srv.URL + "/start", FollowRedirects: true, MaxRedirects: 2})
	wantReason(t, r, probe.ReasonHTTPError)
	if !strings.Contains(r.Message, "redirects") || r.HTTP == nil || r.HTTP.StatusCode != http.StatusFound || r.HTTP.Redirects != 2 {
		t.Errorf("message %q facts %+v", r.Message, r.HTTP)
	}

	// Not following: the 3xx itself is the response checked.
	r = probeOnce(t, Options{URL: srv.URL + "/start"})
	wantReason(t, r, probe.ReasonStatusMismatch)
	if r.HTTP.StatusCode != http.StatusFound || r.HTTP.Redirects != 0 {
		t.Errorf("facts %+v", r.HTTP)
	}
	wantOK(t, probeOnce(t, Options{URL: srv.URL + "/start", ValidStatus: []int{302}}))
}

func TestRedirectMethodsAndCredentials(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	mux := http.NewServeMux()
	mux.HandleFunc("/see-other", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/echo", http.StatusSeeOther)
	})
	mux.HandleFunc("/temporary", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/echo", http.StatusTemporaryRedirect)
	})
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		seen = append(seen, r.Method+" "+string(b)+" auth="+r.Header.Get("Authorization")+" host="+r.Host)
		mu.Unlock()
	})
	srv := probetest.NewHTTPServer(t, mux)
	_, port, _ := net.SplitHostPort(srv.Addr)
	mux.HandleFunc("/elsewhere", func(w http.ResponseWriter, r *http.Request) {
		// Same server, other host name: credentials must not follow.
		http.Redirect(w, r, "http://localhost:"+port+"/echo", http.StatusFound)
	})
	last := func() string {
		mu.Lock()
		defer mu.Unlock()
		return seen[len(seen)-1]
	}
	ip4 := probe.Net{IPProtocol: probe.IPv4}
	o := Options{Method: "POST", Body: "data", FollowRedirects: true, BearerToken: "tok", Net: ip4}

	o.URL = srv.URL + "/see-other"
	wantOK(t, probeOnce(t, o))
	if got := last(); got != "GET  auth=Bearer tok host="+srv.Addr {
		t.Errorf("after 303: %q", got)
	}
	o.URL = srv.URL + "/temporary"
	wantOK(t, probeOnce(t, o))
	if got := last(); got != "POST data auth=Bearer tok host="+srv.Addr {
		t.Errorf("after 307: %q", got)
	}
	o.URL = srv.URL + "/elsewhere"
	o.Method, o.Body = "", ""
	r := probeOnce(t, o)
	wantOK(t, r)
	if got := last(); got != "GET  auth= host=localhost:"+port {
		t.Errorf("after a redirect to another host: %q", got)
	}
	if r.HTTP.FinalURL != "http://localhost:"+port+"/echo" {
		t.Errorf("final URL %q", r.HTTP.FinalURL)
	}
}

func TestSecretHeaders(t *testing.T) {
	srv := probetest.NewHTTPServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Api-Key") != "s3cret" || r.Header.Get("X-Probe") != "vantage" {
			w.WriteHeader(http.StatusUnauthorized)
		}
	}))
	wantOK(t, probeOnce(t, Options{URL: srv.URL, Headers: map[string]string{"X-Probe": "vantage"}, SecretHeaders: map[string]string{"x-api-key": "s3cret"}}))

	for _, c := range []struct {
		o    Options
		want string
	}{
		{Options{SecretHeaders: map[string]string{"X Api": "s3cret"}}, `secret header "X Api": not a valid header name`},
		{Options{SecretHeaders: map[string]string{"X-Api-Key": "s3cret\nX-Evil: 1"}}, `secret header "X-Api-Key": value contains a control character`},
		{Options{SecretHeaders: map[string]string{"host": "s3cret.example"}}, `secret header "host": Host is not a secret; set it in Headers`},
		{Options{Headers: map[string]string{"X-API-KEY": "inline"}, SecretHeaders: map[string]string{"x-api-key": "s3cret"}}, `secret header "x-api-key": also set in Headers`},
		{Options{SecretHeaders: map[string]string{"x-api-key": "s3cret", "X-Api-Key": "s3cret2"}}, `secret header "x-api-key": set twice`},
		{Options{BearerToken: "s3cret", SecretHeaders: map[string]string{"Authorization": "Token s3cret"}}, "conflicts with basic auth or bearer_token"},
	} {
		c.o.URL = "http://127.0.0.1:1/"
		_, err := New(c.o)
		if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "s3cret") {
			t.Errorf("New(%v): %v; want an error with %q that quotes no value", c.o.SecretHeaders, err, c.want)
		}
	}
}

// headerRecorder answers 200 and remembers the headers of the last request.
type headerRecorder struct {
	mu   sync.Mutex
	last http.Header
	host string
}

func (h *headerRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.last, h.host = r.Header.Clone(), r.Host
}

func (h *headerRecorder) get() (http.Header, string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	last, host := h.last, h.host
	h.last, h.host = nil, ""
	return last, host
}

// Credentials (Authorization from basic auth, a bearer token or the URL's
// userinfo) and secret headers (SecretHeaders, and any header named like
// a credential) follow a redirect to the same host only: not to another
// host, not to a subdomain, not from https down to plain http. Other
// headers follow everywhere.
func TestRedirectsKeepCredentialsOnTheirHost(t *testing.T) {
	zone, err := probetest.NewZone("api.probe.test. 60 IN A 127.0.0.1", "sub.api.probe.test. 60 IN A 127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	dnsSrv, err := probetest.StartDNS(zone)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = dnsSrv.Close() })
	resolver := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, dnsSrv.Addr())
	}}
	nw := probe.Net{Resolver: resolver, IPProtocol: probe.IPv4}

	// Two real servers: the target (plain and TLS) redirects; the other
	// records what it is sent.
	other := &headerRecorder{}
	otherSrv := probetest.NewHTTPServer(t, other)
	_, otherPort, _ := net.SplitHostPort(otherSrv.Addr)
	self := &headerRecorder{}
	mux := http.NewServeMux()
	mux.Handle("/rec", self)
	for path, loc := range map[string]string{
		"/same":      "/rec",
		"/same-abs":  "http://api.probe.test:PORT/rec",
		"/port":      "http://api.probe.test:" + otherPort + "/rec",
		"/other":     "http://localhost:" + otherPort + "/rec",
		"/ip":        "http://127.0.0.1:" + otherPort + "/rec",
		"/sub":       "http://sub.api.probe.test:" + otherPort + "/rec",
		"/downgrade": "http://api.probe.test:" + otherPort + "/rec",
	} {
		mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			_, port, _ := net.SplitHostPort(r.Host)
			http.Redirect(w, r, strings.Replace(loc, "PORT", port, 1), http.StatusFound)
		})
	}
	srv := probetest.NewHTTPServer(t, mux)
	_, port, _ := net.SplitHostPort(srv.Addr)
	k := newPKI(t)
	tlsSrv := probetest.NewHTTPSServer(t, mux, leafFor(t, k.ca, probetest.Days(30), "api.probe.test"))
	_, tlsPort, _ := net.SplitHostPort(tlsSrv.Addr)

	base := Options{
		FollowRedirects: true, Net: nw, TLS: probe.TLSOptions{CAFile: k.caFile},
		Headers: map[string]string{
			"X-Probe": "vantage", "X-Auth-Token": "s3cret-inline", "Cookie": "session=s3cret", "X-Session-Id": "s3cret",
			"X-Signature": "s3cret", "Api-Key": "s3cret", "X-Client-Secret": "s3cret", "X-Password": "s3cret", "X-Credential": "s3cret",
		},
		SecretHeaders: map[string]string{"X-Tenant": "s3cret-from-file"},
	}
	auths := map[string]func(*Options){
		"bearer":   func(o *Options) { o.BearerToken = "s3cret" },
		"basic":    func(o *Options) { o.BasicAuthUser, o.BasicAuthPassword = "probe", "s3cret" },
		"userinfo": func(o *Options) { o.URL = strings.Replace(o.URL, "://", "://probe:s3cret@", 1) },
	}
	for _, c := range []struct {
		name, url string
		rec       *headerRecorder
		keep      bool
	}{
		{"relative", "http://api.probe.test:" + port + "/same", self, true},
		{"absolute, same host and port", "http://api.probe.test:" + port + "/same-abs", self, true},
		{"same host, other port", "http://api.probe.test:" + port + "/port", other, true},
		{"https to https, same host", "https://api.probe.test:" + tlsPort + "/same", self, true},
		{"other host name", "http://api.probe.test:" + port + "/other", other, false},
		{"other host by IP", "http://api.probe.test:" + port + "/ip", other, false},
		{"subdomain", "http://api.probe.test:" + port + "/sub", other, false},
		{"https down to http, same host", "https://api.probe.test:" + tlsPort + "/downgrade", other, false},
	} {
		for auth, set := range auths {
			t.Run(c.name+"/"+auth, func(t *testing.T) {
				o := base
				o.URL = c.url
				set(&o)
				r := probeOnce(t, o)
				wantOK(t, r)
				got, host := c.rec.get()
				if got == nil || r.HTTP.Redirects != 1 {
					t.Fatalf("the redirect did not reach the recorder (redirects %d)", r.HTTP.Redirects)
				}
				if got.Get("X-Probe") != "vantage" {
					t.Errorf("to %s: X-Probe %q, want it sent everywhere", host, got.Get("X-Probe"))
				}
				for _, name := range []string{"Authorization", "X-Tenant", "X-Auth-Token", "Cookie", "X-Session-Id", "X-Signature", "Api-Key", "X-Client-Secret", "X-Password", "X-Credential"} {
					if sent := got.Get(name) != ""; sent != c.keep {
						t.Errorf("to %s: %s sent %v, want %v", host, name, sent, c.keep)
					}
				}
			})
		}
	}
}

func TestResolution(t *testing.T) {
	zone, err := probetest.NewZone("www.probe.test. 60 IN A 127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	dnsSrv, err := probetest.StartDNS(zone)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = dnsSrv.Close() })
	resolver := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, dnsSrv.Addr())
	}}
	k := newPKI(t)
	cert := leafFor(t, k.ca, probetest.Days(90), "www.probe.test")
	srv := probetest.NewHTTPSServer(t, probetest.HTTPRespond(200, "ok"), cert)
	_, port, _ := net.SplitHostPort(srv.Addr)
	nw := probe.Net{Resolver: resolver, IPProtocol: probe.IPv4}

	r := probeOnce(t, Options{URL: "https://www.probe.test:" + port + "/", TLS: probe.TLSOptions{CAFile: k.caFile}, Net: nw})
	wantOK(t, r)
	if r.Phase(probe.PhaseResolve) <= 0 {
		t.Errorf("resolution not timed: %+v", r.Phases)
	}
	if r.RemoteAddr != srv.Addr || r.TLS.ServerName != "www.probe.test" {
		t.Errorf("remote %q server name %q", r.RemoteAddr, r.TLS.ServerName)
	}

	r = probeOnce(t, Options{URL: "https://missing.probe.test:" + port + "/", Net: nw})
	wantReason(t, r, probe.ReasonDNSError)
	if r.HTTP != nil || r.RemoteAddr != "" || !strings.Contains(r.Message, "missing.probe.test") {
		t.Errorf("result %+v", r)
	}
}

func TestConnectRefused(t *testing.T) {
	ra, err := probetest.ReserveRefusedAddr()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ra.Close() })
	r := probeOnce(t, Options{URL: "http://" + ra.Addr + "/"})
	wantReason(t, r, probe.ReasonConnectRefused)
	if r.Duration > probeTimeout/2 {
		t.Errorf("refusal took %v", r.Duration)
	}
}

func TestSourceIP(t *testing.T) {
	var mu sync.Mutex
	var from string
	srv := probetest.NewHTTPServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		from, _, _ = net.SplitHostPort(r.RemoteAddr)
		mu.Unlock()
	}))
	// All of 127/8 is loopback on Linux: 127.0.0.2 proves the source was chosen.
	r := probeOnce(t, Options{URL: srv.URL, Net: probe.Net{SourceIP: netip.MustParseAddr("127.0.0.2")}})
	if r.Reason == probe.ReasonConnectError {
		t.Skipf("127.0.0.2 not usable as a source here: %s", r.Message)
	}
	wantOK(t, r)
	mu.Lock()
	defer mu.Unlock()
	if from != "127.0.0.2" {
		t.Errorf("server saw the probe from %q, want 127.0.0.2", from)
	}
}

func TestMalformedResponse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, 4096)
				_, _ = c.Read(buf)
				_, _ = io.WriteString(c, "SMTP ready, not HTTP\r\n\r\n")
			}()
		}
	}()
	wantReason(t, probeOnce(t, Options{URL: "http://" + ln.Addr().String() + "/"}), probe.ReasonHTTPError)
}

// TestTimeouts: a server that stops answering in any phase makes the probe
// return at the context's deadline with reason timeout.
func TestTimeouts(t *testing.T) {
	k := newPKI(t)
	silent := probetest.NewSilentListener(t)
	hang := probetest.NewHTTPServer(t, probetest.HTTPHang())
	stall := probetest.NewHTTPServer(t, probetest.HTTPStallBody("partial"))
	hangTLS := probetest.NewHTTPSServer(t, probetest.HTTPHang(), k.leaf)
	slow := probetest.NewHTTPServer(t, probetest.HTTPSlow(time.Hour, probetest.HTTPRespond(200, "late")))
	hang3 := probetest.NewHTTP3Server(t, probetest.HTTPHang(), k.leaf)
	stall2 := probetest.NewHTTPSServer(t, probetest.HTTPStallBody("partial"), k.leaf)
	stall3 := probetest.NewHTTP3Server(t, probetest.HTTPStallBody("partial"), k.leaf)
	ca := probe.TLSOptions{CAFile: k.caFile}
	// phase is where the time must have gone.
	cases := []struct {
		name  string
		phase string
		o     Options
	}{
		{"http, no answer", probe.PhaseProcessing, Options{URL: "http://" + silent.Addr().String() + "/"}},
		{"tls handshake, no answer", probe.PhaseTLS, Options{URL: "https://" + silent.Addr().String() + "/", TLS: ca}},
		{"handler hangs", probe.PhaseProcessing, Options{URL: hang.URL}},
		{"body stalls", probe.PhaseTransfer, Options{URL: stall.URL}},
		{"body stalls, buffered", probe.PhaseTransfer, Options{URL: stall.URL, FailIfBodyNotMatches: []string{"partial"}}},
		{"https handler hangs", probe.PhaseProcessing, Options{URL: hangTLS.URL, TLS: ca}},
		{"slow handler", probe.PhaseProcessing, Options{URL: slow.URL}},
		{"http3 handler hangs", probe.PhaseProcessing, Options{URL: hang3.URL, HTTPVersion: "3", TLS: ca}},
		{"h2 body stalls", probe.PhaseTransfer, Options{URL: stall2.URL, HTTPVersion: "2", TLS: ca}},
		{"http3 body stalls", probe.PhaseTransfer, Options{URL: stall3.URL, HTTPVersion: "3", TLS: ca}},
	}
	const timeout = 300 * time.Millisecond
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := mustNew(t, c.o)
			start := time.Now()
			r := runWithin(t, p, timeout)
			elapsed := time.Since(start)
			wantReason(t, r, probe.ReasonTimeout)
			// The probe ends at the deadline (start+timeout or later) and
			// its clock starts at r.At, a moment after start.
			if r.At.Add(r.Duration).Before(start.Add(timeout)) || r.Duration > elapsed {
				t.Errorf("Result.Duration %v from %v, elapsed %v, timeout %v", r.Duration, r.At.Sub(start), elapsed, timeout)
			}
			if d := r.Phase(c.phase); d < timeout/2 {
				t.Errorf("phase %s = %v, want most of the %v (phases %+v)", c.phase, d, timeout, r.Phases)
			}
			if c.phase == probe.PhaseTransfer && (r.HTTP == nil || r.HTTP.StatusCode != 200 || r.HTTP.ContentLength != int64(len("partial"))) {
				t.Errorf("a body timeout keeps the response facts: %+v", r.HTTP)
			}
			// Never before the deadline; after it only by scheduling noise
			// (a generous bound: the machine is small and busy).
			if elapsed < timeout {
				t.Errorf("returned after %v, before the %v deadline", elapsed, timeout)
			}
			if elapsed > timeout+3*time.Second {
				t.Errorf("returned %v after a %v deadline", elapsed, timeout)
			}
		})
	}
}

// TestNoLeaks: many probes, succeeding and failing over every protocol,
// leave no goroutine behind (each connection and its loops are closed).
func TestNoLeaks(t *testing.T) {
	k := newPKI(t)
	ca := probe.TLSOptions{CAFile: k.caFile}
	plain := probetest.NewHTTPServer(t, probetest.HTTPRedirectChain(1, probetest.HTTPRespond(200, "ok")))
	h2 := probetest.NewHTTPSServer(t, probetest.HTTPRespond(200, "ok"), k.leaf)
	h3 := probetest.NewHTTP3Server(t, probetest.HTTPRespond(200, "ok"), k.leaf)
	hang := probetest.NewHTTPServer(t, probetest.HTTPHang())
	hang3 := probetest.NewHTTP3Server(t, probetest.HTTPHang(), k.leaf)
	expired := probetest.NewHTTPSServer(t, probetest.HTTPRespond(200, "ok"), leafFor(t, k.ca, probetest.Days(-1), "127.0.0.1"))
	probers := []*Prober{
		mustNew(t, Options{URL: plain.URL, FollowRedirects: true}),
		mustNew(t, Options{URL: h2.URL, TLS: ca, FailIfBodyNotMatches: []string{"ok"}}),
		mustNew(t, Options{URL: h2.URL, TLS: ca, HTTPVersion: "1.1"}),
		mustNew(t, Options{URL: h3.URL, TLS: ca, HTTPVersion: "3"}),
		mustNew(t, Options{URL: expired.URL, TLS: ca}),
	}
	slowProbers := []*Prober{
		mustNew(t, Options{URL: hang.URL}),
		mustNew(t, Options{URL: hang3.URL, TLS: ca, HTTPVersion: "3"}),
	}
	// Warm up once so lazily started runtime/library goroutines are in the baseline.
	for _, p := range probers {
		runWithin(t, p, probeTimeout)
	}
	waitGoroutines(t, runtime.NumGoroutine(), 0)
	base := runtime.NumGoroutine()

	for i := 0; i < 10; i++ {
		for _, p := range probers {
			runWithin(t, p, probeTimeout)
		}
	}
	for _, p := range slowProbers {
		if r := runWithin(t, p, 50*time.Millisecond); r.Reason != probe.ReasonTimeout {
			t.Fatalf("hanging server: reason %q", r.Reason)
		}
	}
	waitGoroutines(t, base, 0)
}

// waitGoroutines polls until at most base+slack goroutines run.
func waitGoroutines(t *testing.T, base, slack int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		n := runtime.NumGoroutine()
		if n <= base+slack {
			return
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			t.Fatalf("%d goroutines, baseline %d:\n%s", n, base, buf)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestConcurrentProbes: one Prober serves concurrent probes (run under -race).
func TestConcurrentProbes(t *testing.T) {
	k := newPKI(t)
	ca := probe.TLSOptions{CAFile: k.caFile}
	srv := probetest.NewHTTPSServer(t, probetest.HTTPRedirectChain(2, probetest.HTTPRespond(200, "ok")), k.leaf)
	srv3 := probetest.NewHTTP3Server(t, probetest.HTTPRedirectChain(2, probetest.HTTPRespond(200, "ok")), k.leaf)
	probers := []*Prober{
		mustNew(t, Options{URL: srv.URL, FollowRedirects: true, TLS: ca, FailIfBodyNotMatches: []string{"ok"}}),
		mustNew(t, Options{URL: srv3.URL, FollowRedirects: true, TLS: ca, HTTPVersion: "3", FailIfBodyNotMatches: []string{"ok"}}),
	}
	var wg sync.WaitGroup
	errs := make(chan string, 64)
	for g := 0; g < 8; g++ {
		p := probers[g%len(probers)]
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 4; i++ {
				if r := runWithin(t, p, probeTimeout); !r.OK || r.HTTP.Redirects != 2 {
					errs <- string(r.Reason) + ": " + r.Message
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

func TestGzipBody(t *testing.T) {
	srv := probetest.NewHTTPServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
			http.Error(w, "gzip expected", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Encoding", "gzip")
		zw := gzip.NewWriter(w)
		_, _ = io.WriteString(zw, strings.Repeat("all systems nominal ", 50))
		_ = zw.Close()
	}))
	r := probeOnce(t, Options{URL: srv.URL, FailIfBodyNotMatches: []string{`^(all systems nominal )+$`}})
	wantOK(t, r)
	if r.HTTP.ContentLength != int64(len("all systems nominal "))*50 {
		t.Errorf("content length %d: want the decompressed size", r.HTTP.ContentLength)
	}
	if r.HTTP.DeclaredLength != -1 {
		t.Errorf("declared length %d: a body the transport decompressed has none (-1)", r.HTTP.DeclaredLength)
	}
}

// Probers built through one probe.Shared share a transport and header
// maps, yet each keeps its own TLS trust, server name and headers: probing
// two servers with different CAs at once, each verifies with its own CA
// and the other's fails.
func TestSharedProbersStayApart(t *testing.T) {
	a, b := newPKI(t), newPKI(t)
	echo := func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte(r.Header.Get("X-Team"))) }
	srvA := probetest.NewHTTPSServer(t, http.HandlerFunc(echo), a.leaf)
	srvB := probetest.NewHTTPSServer(t, http.HandlerFunc(echo), b.leaf)
	s := probe.NewShared()
	build := func(o Options) *Prober {
		t.Helper()
		p, err := NewShared(o, s)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	pa := build(Options{URL: srvA.URL, TLS: probe.TLSOptions{CAFile: a.caFile}, Headers: map[string]string{"X-Team": "a"}, FailIfBodyNotMatches: []string{"^a$"}})
	pb := build(Options{URL: srvB.URL, HTTPVersion: Version11, TLS: probe.TLSOptions{CAFile: b.caFile}, Headers: map[string]string{"X-Team": "b"}, FailIfBodyNotMatches: []string{"^b$"}})
	pa2 := build(Options{URL: srvB.URL, TLS: probe.TLSOptions{CAFile: a.caFile}}) // B's server, A's trust
	plainA, plainA2 := build(Options{URL: srvA.URL + "/x", TLS: probe.TLSOptions{CAFile: a.caFile}}), build(Options{URL: srvA.URL + "/y", TLS: probe.TLSOptions{CAFile: a.caFile}})
	if pa.tr != pa2.tr || pa.tr == pb.tr {
		t.Errorf("transports: auto probers share one, the HTTP/1.1-only prober has its own")
	}
	if pa.roots != pa2.roots || pa.roots == pb.roots {
		t.Errorf("CA pools: one per file")
	}
	if pa.tlsConf != pa2.tlsConf || pa.tlsConf == pb.tlsConf || pa.dialer != pb.dialer {
		t.Errorf("TLS configs: one per host and options; dialers: one per source address")
	}
	if reflect.ValueOf(plainA.header).Pointer() != reflect.ValueOf(plainA2.header).Pointer() {
		t.Errorf("identical request headers are not shared")
	}
	// Targets configured alike but for their URL share all settings; any
	// difference (headers, regexes, CA) gets settings of its own.
	if plainA.settings != plainA2.settings || !strings.HasSuffix(plainA.urlString, "/x") || !strings.HasSuffix(plainA2.urlString, "/y") {
		t.Errorf("probers differing only in URL: shared settings %t, URLs %q %q", plainA.settings == plainA2.settings, plainA.urlString, plainA2.urlString)
	}
	if pa.settings == pa2.settings || pa.settings == plainA.settings || pa.settings == pb.settings {
		t.Errorf("probers with different headers, regexes or CAs share settings")
	}
	var wg sync.WaitGroup
	results := make([]probe.Result, 3*20)
	for i := range 20 {
		for j, p := range []*Prober{pa, pb, pa2} {
			wg.Go(func() { results[3*i+j] = runWithin(t, p, probeTimeout) })
		}
	}
	wg.Wait()
	for i, r := range results {
		switch i % 3 {
		case 0, 1:
			wantOK(t, r)
			if r.HTTP == nil || (i%3 == 1) != (r.HTTP.Version == "1.1") {
				t.Errorf("probe %d: version %+v", i, r.HTTP)
			}
		case 2:
			wantReason(t, r, probe.ReasonCertInvalid)
		}
	}
}

// An HTTP/2 connection that served its one request must become garbage
// soon after the probe closes it. net/http keeps a closed, never-reused
// HTTP/2 connection reachable for min(5 s, IdleConnTimeout) (an "unused
// connection" timer meant for its pool); with the default that was 20 KB
// per HTTPS probe held for 5 s. Connections are counted with
// runtime.AddCleanup, and the time until the last is collected is compared
// with the same transport at net/http's default, so that a slow machine
// delays both alike.
func TestHTTP2ConnectionsAreReleasedPromptly(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for net/http's 5 s timer")
	}
	k := newPKI(t)
	srv := probetest.NewHTTPSServer(t, probetest.HTTPRespond(200, "ok"), k.leaf)
	release := func(tr *http.Transport) time.Duration {
		var live atomic.Int64
		tr.DialTLSContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := dialTLS(ctx, network, addr)
			if tc, ok := c.(*tls.Conn); ok {
				live.Add(1)
				runtime.AddCleanup(tc, func(n *atomic.Int64) { n.Add(-1) }, &live)
			}
			return c, err
		}
		p := mustNew(t, Options{URL: srv.URL, HTTPVersion: Version2, TLS: probe.TLSOptions{CAFile: k.caFile}})
		p.tr = tr
		for range 20 {
			wantOK(t, runWithin(t, p, probeTimeout))
		}
		start := time.Now()
		for time.Since(start) < 30*time.Second {
			runtime.GC()
			if live.Load() == 0 {
				return time.Since(start)
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Fatalf("%d of 20 probes' connections still reachable 30 s after the last", live.Load())
		return 0
	}
	ours := transportFor(nil, true)
	stdlib := ours.Clone()
	stdlib.IdleConnTimeout = 0
	got, def := release(ours.Clone()), release(stdlib)
	t.Logf("connections collected %v after the last probe (net/http's default: %v)", got, def)
	if got >= def {
		t.Errorf("connections collected %v after the last probe, no sooner than with net/http's default (%v)", got, def)
	}
}

// The short idle timeout above must never close a probe's own connection:
// a probe that stalls between making its connection and sending its
// request (a GC pause, an overloaded machine) for longer than the timeout
// still gets its response, for HTTP/2 and HTTP/1.1 alike. The stall is
// the condition under test, not a wait for something.
func TestStalledProbeKeepsItsConnection(t *testing.T) {
	k := newPKI(t)
	for _, v := range []string{Version2, Version11} {
		t.Run("http"+v, func(t *testing.T) {
			srv := probetest.NewHTTPSServer(t, probetest.HTTPRespond(200, "ok"), k.leaf)
			p := mustNew(t, Options{URL: srv.URL, HTTPVersion: v, TLS: probe.TLSOptions{CAFile: k.caFile}})
			ctx, cancel := context.WithTimeout(context.Background(), probeTimeout)
			defer cancel()
			r := &run{p: p}
			r.res.Phases = make([]probe.Phase, numPhases)
			ctx = context.WithValue(ctx, runKey{}, r)
			u, err := url.Parse(p.urlString)
			if err != nil {
				t.Fatal(err)
			}
			r.beginHop(p.serverNameFor(u, ""))
			cc, err := p.connect(ctx, r, "https", hostportOf(t, p))
			if err != nil {
				t.Fatal(err)
			}
			defer cc.Close()
			time.Sleep(3 * idleConnTimeout)
			resp, err := cc.RoundTrip(p.newRequest(ctx, u, http.MethodGet, "", "", p.header))
			if err != nil {
				t.Fatalf("request %v after the connection was made: %v", 3*idleConnTimeout, err)
			}
			_ = resp.Body.Close()
			if resp.StatusCode != 200 || (v == Version2) != (resp.ProtoMajor == 2) {
				t.Errorf("got %s %d, want HTTP/%s 200", resp.Proto, resp.StatusCode, v)
			}
		})
	}
}
