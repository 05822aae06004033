package httpprobe

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/vantage-probe/vantage/probe"
)

// Indices of the phases in Result.Phases. Every HTTP result carries all
// five, zero when a phase did not happen (tls for plain http), so that the
// exported series never come and go (blackbox_exporter does the same).
const (
	iResolve = iota
	iConnect
	iTLS
	iProcessing
	iTransfer
	numPhases
)

// run is the state of one probe. Everything a probe writes lives here, so
// that one Prober serves concurrent probes.
type run struct {
	p     *Prober
	res   probe.Result
	trace httptrace.ClientTrace

	// What res.Phases and res.HTTP point to until Probe returns.
	phases [numPhases]probe.Phase
	http   probe.HTTPFacts

	// Per hop; reset by beginHop.
	serverName string          // TLS server name (SNI and verification)
	tls        *probe.TLSFacts // facts of this hop's handshake, nil for plain http
	connReady  time.Duration   // since res.At: connection (and TLS) ready
	// firstByte is set by the trace hook, which runs on the transport's
	// read goroutine and may fire late (after a deadline made RoundTrip
	// give up); an atomic keeps that race-free. Since res.At, +1 so that
	// zero means "not yet".
	firstByte atomic.Int64

	body io.LimitedReader // embedded so that bounding the body costs no allocation

	start time.Time // = res.At; written once before any hop, then only read
}

// runKey finds the run from the context the transport hands to the dial
// functions, which are shared by all probes of a Prober (see runOf).
type runKey struct{}

// since is measured from start, not res.At: the first-byte hook may fire on
// the transport's goroutine after the probe has given up and rewritten res.
func (r *run) since() time.Duration { return time.Since(r.start) }

func (r *run) add(i int, d time.Duration) { r.res.Phases[i].Duration += d }

func (r *run) gotFirstByte() {
	r.firstByte.CompareAndSwap(0, int64(r.since())+1)
}

func (r *run) beginHop(serverName string) {
	r.serverName = serverName
	r.tls = nil
	r.res.RemoteAddr = "" // only ever the address of the hop that failed or answered
	r.connReady = 0
	r.firstByte.Store(0)
}

// firstByteAt returns when the first response byte arrived, falling back to
// now for transports that do not report it (HTTP/3: quic-go calls no
// GotFirstResponseByte hook, so its processing phase ends when the response
// headers have been decoded).
func (r *run) firstByteAt() time.Duration {
	r.firstByte.CompareAndSwap(0, int64(r.since())+1)
	return time.Duration(r.firstByte.Load() - 1)
}

// reasonError carries a failure reason decided where the failure happened
// (resolution, handshake, verification) through net/http's error returns.
type reasonError struct {
	reason probe.Reason
	err    error
}

func (e *reasonError) Error() string { return e.err.Error() }
func (e *reasonError) Unwrap() error { return e.err }

// hopConn is one fresh connection: *http.ClientConn for HTTP/1.1 and
// HTTP/2, *h3Conn for HTTP/3.
type hopConn interface {
	RoundTrip(*http.Request) (*http.Response, error)
	Close() error
}

// Probe runs one probe: a fresh connection per hop, redirects followed as
// configured, phases timed, the final response checked. It returns when the
// response has been checked or ctx is done, whichever comes first, and
// leaves no connection open.
func (p *Prober) Probe(ctx context.Context) probe.Result {
	r := &run{p: p}
	r.res.At = time.Now()
	r.start = r.res.At
	r.phases = [numPhases]probe.Phase{{Name: probe.PhaseResolve}, {Name: probe.PhaseConnect}, {Name: probe.PhaseTLS},
		{Name: probe.PhaseProcessing}, {Name: probe.PhaseTransfer}}
	r.res.Phases = r.phases[:]
	// Whatever a transport left watching the context (HTTP/3 request
	// cancellation, HTTP/1 body readers) is released when Probe returns.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	r.trace.GotFirstResponseByte = r.gotFirstByte
	ctx = httptrace.WithClientTrace(context.WithValue(ctx, runKey{}, r), &r.trace)

	p.do(ctx, r)
	r.res.Duration = time.Since(r.res.At)
	// The result leaves the run, which the transport may still reach: its
	// phases and facts are copied into memory of its own, one allocation
	// for both when there are facts.
	if r.res.HTTP != nil {
		f := &facts{http: r.http, phases: r.phases}
		r.res.HTTP, r.res.Phases = &f.http, f.phases[:]
	} else {
		r.res.Phases = slices.Clone(r.res.Phases)
	}
	return r.res
}

// facts holds a result's HTTP facts and phases in one allocation: 88 and
// 120 bytes fill the 208-byte size class, where apart they take 96 and
// 128. An agent keeps every target's latest result.
type facts struct {
	http   probe.HTTPFacts
	phases [numPhases]probe.Phase
}

func (p *Prober) do(ctx context.Context, r *run) {
	pu, err := url.Parse(p.urlString)
	if err != nil { // parsed by NewShared: never
		r.res = r.res.Fail(probe.ReasonConfig, fmt.Sprintf("url: %v", err))
		return
	}
	u := *pu
	finalURL := p.urlString
	hostport := hostPort(pu)
	method, body, host := p.method, p.body, p.hostHeader
	header := p.header
	redirects := 0
	for {
		r.beginHop(p.serverNameFor(&u, host))
		req := p.newRequest(ctx, &u, method, body, host, header)

		cc, err := p.connect(ctx, r, u.Scheme, hostport)
		if err != nil {
			r.fail(ctx, err)
			return
		}
		r.connReady = r.since()
		resp, err := cc.RoundTrip(req)
		if err != nil {
			// The time waited counts, so that a timeout shows where it hit.
			r.add(iProcessing, r.since()-r.connReady)
			_ = cc.Close()
			r.fail(ctx, fmt.Errorf("awaiting response from %s: %w", hostport, err))
			return
		}
		first := r.firstByteAt()
		r.add(iProcessing, first-r.connReady)

		if loc := resp.Header.Get("Location"); p.follow && isRedirect(resp.StatusCode) && loc != "" {
			// The body of a redirect is not what the probe is about, and
			// the connection is not reused: close without draining.
			_ = resp.Body.Close()
			_ = cc.Close()
			r.add(iTransfer, r.since()-first)
			if redirects == p.maxRedirects {
				r.setHTTP(resp, redirects, finalURL, 0)
				r.res = r.res.Fail(probe.ReasonHTTPError, fmt.Sprintf("stopped after %d redirects (max_redirects)", redirects))
				return
			}
			next, err := u.Parse(loc)
			if err != nil || (next.Scheme != "http" && next.Scheme != "https") || next.Host == "" {
				r.setHTTP(resp, redirects, finalURL, 0)
				r.res = r.res.Fail(probe.ReasonHTTPError, fmt.Sprintf("redirect %d: bad Location %q", redirects+1, probe.RedactURL(loc)))
				return
			}
			redirects++
			// net/http's rules: a Host override survives only a relative
			// redirect; 301/302/303 turn anything but GET/HEAD into a GET
			// without body; 307/308 resend method and body. Credentials
			// and secret headers: see keepCredentials.
			if !isRelative(loc) {
				host = ""
			}
			if resp.StatusCode <= http.StatusSeeOther && method != http.MethodGet && method != http.MethodHead {
				method, body = http.MethodGet, ""
			}
			next.User = nil
			if keepCredentials(next, pu) {
				header = p.header
			} else {
				header = p.headerNoCreds
			}
			u = *next
			finalURL = u.String()
			hostport = hostPort(&u)
			continue
		}

		n, buf, err := p.readBody(r, resp.Body)
		_ = resp.Body.Close()
		_ = cc.Close()
		r.add(iTransfer, r.since()-first)
		r.setHTTP(resp, redirects, finalURL, n)
		if err != nil {
			p.putBuf(buf)
			r.fail(ctx, fmt.Errorf("reading body: %w", err))
			return
		}
		r.check(resp, n, buf)
		p.putBuf(buf)
		return
	}
}

// newRequest builds one hop's request. Headers are the prober's shared,
// read-only map: net/http adds its own (Connection, Accept-Encoding)
// without writing into Request.Header.
func (p *Prober) newRequest(ctx context.Context, u *url.URL, method, body, host string, header http.Header) *http.Request {
	req := &http.Request{
		Method:     method,
		URL:        u,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     header,
		Host:       host,
		Close:      true,
	}
	if body != "" {
		req.ContentLength = int64(len(body))
		req.Body = io.NopCloser(strings.NewReader(body))
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(body)), nil }
	}
	return req.WithContext(ctx)
}

// serverNameFor is the TLS name of a hop: tls server_name when set, else
// the Host header override (probing an address for a virtual host), else
// the URL's host.
func (p *Prober) serverNameFor(u *url.URL, host string) string {
	switch {
	case p.serverName != "":
		return p.serverName
	case host != "":
		return hostOnly(host)
	}
	return u.Hostname()
}

// connect opens the hop's fresh connection. Resolution, connect and TLS
// are timed inside (dialPlain, dialTLS, dialH3).
func (p *Prober) connect(ctx context.Context, r *run, scheme, hostport string) (hopConn, error) {
	switch {
	case p.version == Version3 && scheme != "https":
		return nil, &reasonError{probe.ReasonHTTPError, fmt.Errorf("http_version 3: cannot follow to plain http (%s)", hostport)}
	case p.version == Version2 && scheme != "https":
		return nil, &reasonError{probe.ReasonHTTPError, fmt.Errorf("http_version 2: h2c is not supported, cannot follow to plain http (%s)", hostport)}
	case p.version == Version3:
		return p.dialH3(ctx, r, hostport)
	}
	cc, err := p.tr.NewClientConn(ctx, scheme, hostport)
	if err != nil {
		return nil, err
	}
	// The transport's idle timer (idleConnTimeout, armed when the
	// connection was made) closes a connection with no request in flight
	// or reserved. Reserving the slot now, microseconds later, means a
	// probe stalled before its RoundTrip (a GC pause, an overloaded
	// machine) still finds its connection open.
	if err := cc.Reserve(); err != nil {
		_ = cc.Close()
		return nil, fmt.Errorf("connection to %s closed before the request: %w", hostport, err)
	}
	return cc, nil
}

// readBody reads at most max_body_bytes+1 bytes, so that a larger body is
// detected without reading it all. The body is buffered only when regexes
// or JSON conditions need to see it; otherwise it is counted and discarded.
func (p *Prober) readBody(r *run, body io.Reader) (int64, *bytes.Buffer, error) {
	r.body = io.LimitedReader{R: body, N: p.maxBody + 1}
	if len(p.bodyMatch) == 0 && len(p.bodyNoMatch) == 0 && len(p.jsonChecks) == 0 {
		n, err := io.Copy(io.Discard, &r.body)
		return n, nil, err
	}
	buf, _ := p.bufs.Get().(*bytes.Buffer)
	if buf == nil {
		buf = new(bytes.Buffer)
	}
	buf.Reset()
	n, err := buf.ReadFrom(&r.body)
	return n, buf, err
}

func (p *Prober) putBuf(b *bytes.Buffer) {
	if b != nil {
		p.bufs.Put(b)
	}
}

// setHTTP records the facts of the final response. FinalURL is redacted
// (probe.RedactURL): a Location may carry a token, and results are shown
// in the API, logs and `vantage probe`.
func (r *run) setHTTP(resp *http.Response, redirects int, finalURL string, n int64) {
	r.http = probe.HTTPFacts{
		StatusCode:     resp.StatusCode,
		Version:        protoVersion(resp),
		Redirects:      redirects,
		ContentLength:  n,
		DeclaredLength: resp.ContentLength,
		FinalURL:       probe.RedactURL(finalURL),
	}
	if lm := resp.Header.Get("Last-Modified"); lm != "" {
		if t, err := http.ParseTime(lm); err == nil {
			r.http.LastModified = t
		}
	}
	r.res.HTTP = &r.http
	r.res.TLS = r.tls
}

// check applies the checks to the final response, in the order a reader of
// the failure would want them: status, TLS use, headers, size, body, JSON.
func (r *run) check(resp *http.Response, n int64, buf *bytes.Buffer) {
	p := r.p
	if !p.statusOK(resp.StatusCode) {
		want := "2xx"
		if p.validStatus != nil {
			want = fmt.Sprint(p.validStatus)
		}
		r.res = r.res.Fail(probe.ReasonStatusMismatch, fmt.Sprintf("status %d, valid_status %s", resp.StatusCode, want))
		return
	}
	if p.failIfSSL && r.tls != nil {
		r.res = r.res.Fail(probe.ReasonHTTPError, "fail_if_ssl: the final response came over TLS")
		return
	}
	if p.failIfNotSSL && r.tls == nil {
		r.res = r.res.Fail(probe.ReasonHTTPError, "fail_if_not_ssl: the final response did not come over TLS")
		return
	}
	if msg := p.checkHeaders(resp.Header); msg != "" {
		r.res = r.res.Fail(probe.ReasonHeaderMismatch, msg)
		return
	}
	if n > p.maxBody {
		r.res = r.res.Fail(probe.ReasonBodyTooLarge, fmt.Sprintf("body larger than max_body_bytes %d", p.maxBody))
		return
	}
	if buf != nil {
		b := buf.Bytes()
		for _, re := range p.bodyMatch {
			if !re.Match(b) {
				r.res = r.res.Fail(probe.ReasonBodyMismatch, fmt.Sprintf("body_regex %q did not match", re.String()))
				return
			}
		}
		for _, re := range p.bodyNoMatch {
			if re.Match(b) {
				r.res = r.res.Fail(probe.ReasonBodyMismatch, fmt.Sprintf("fail_if_body_matches %q matched", re.String()))
				return
			}
		}
		if len(p.jsonChecks) > 0 {
			if msg := p.checkJSON(b); msg != "" {
				r.res = r.res.Fail(probe.ReasonJSONMismatch, msg)
				return
			}
		}
	}
	r.res.OK = true
}

func (p *Prober) statusOK(code int) bool {
	if p.validStatus == nil {
		return code >= 200 && code <= 299
	}
	for _, c := range p.validStatus {
		if c == code {
			return true
		}
	}
	return false
}

// checkHeaders follows blackbox_exporter: a missing header fails unless
// allow_missing; fail_if_header_matches fails when any value matches;
// fail_if_header_not_matches fails when no value matches. Values are not
// quoted in messages: headers may carry session cookies.
func (p *Prober) checkHeaders(h http.Header) string {
	for _, c := range p.headerFail {
		vals := h[c.name]
		if len(vals) == 0 {
			if c.allowMissing {
				continue
			}
			return fmt.Sprintf("fail_if_header_matches: header %q missing", c.name)
		}
		for _, v := range vals {
			if c.re.MatchString(v) {
				return fmt.Sprintf("fail_if_header_matches: header %q matched %q", c.name, c.re.String())
			}
		}
	}
	for _, c := range p.headerMatch {
		vals := h[c.name]
		if len(vals) == 0 {
			if c.allowMissing {
				continue
			}
			return fmt.Sprintf("fail_if_header_not_matches: header %q missing", c.name)
		}
		matched := false
		for _, v := range vals {
			if c.re.MatchString(v) {
				matched = true
				break
			}
		}
		if !matched {
			return fmt.Sprintf("fail_if_header_not_matches: header %q did not match %q", c.name, c.re.String())
		}
	}
	return ""
}

// fail records err with its reason. The message is the error text: it
// names addresses and causes, never credentials (they live only in request
// headers, which no error quotes).
func (r *run) fail(ctx context.Context, err error) {
	if r.res.TLS == nil {
		r.res.TLS = r.tls // facts survive a failed verification
	}
	r.res = r.res.Fail(classify(ctx, err), err.Error())
}

// classify maps a probe error to a reason. A reason decided at the source
// (verification, version mismatch, a dial without its probe's run) stands;
// otherwise an expired context makes it a timeout, whatever the error
// chain says.
func classify(ctx context.Context, err error) probe.Reason {
	var re *reasonError
	if errors.As(err, &re) {
		switch re.reason {
		case probe.ReasonCertExpired, probe.ReasonCertInvalid, probe.ReasonHTTPError, probe.ReasonConfig:
			return re.reason
		}
		if ctx.Err() != nil {
			return probe.ReasonTimeout
		}
		return re.reason
	}
	if ctx.Err() != nil {
		return probe.ReasonTimeout
	}
	reason := probe.Classify(err, nil)
	if reason == probe.ReasonIOError && !isIOError(err) {
		// Not the network failing but the peer speaking bad HTTP
		// (malformed response, protocol error, too many 1xx).
		return probe.ReasonHTTPError
	}
	return reason
}

func isIOError(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed)
}

func isRedirect(code int) bool {
	switch code {
	case http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther,
		http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		return true
	}
	return false
}

func isRelative(loc string) bool {
	u, err := url.Parse(loc)
	return err == nil && !u.IsAbs() && u.Host == ""
}

// keepCredentials says whether a redirect to next keeps the credentials
// (Authorization, from basic auth, a bearer token or the URL's userinfo)
// and the secret headers of a probe of orig: only to orig's host name,
// whatever the port, and not from https down to plain http, where they
// would cross the network in clear. net/http also sends them to
// subdomains; a token for api.example.com has no business at
// uploads.api.example.com, which may be another party's.
func keepCredentials(next, orig *url.URL) bool {
	return strings.EqualFold(next.Hostname(), orig.Hostname()) && (orig.Scheme != "https" || next.Scheme == "https")
}

func protoVersion(resp *http.Response) string {
	switch {
	case resp.ProtoMajor == 3:
		return "3"
	case resp.ProtoMajor == 2:
		return "2"
	case resp.ProtoMajor == 1 && resp.ProtoMinor == 0:
		return "1.0"
	}
	return "1.1"
}
