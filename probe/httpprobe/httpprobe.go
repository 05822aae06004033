package httpprobe

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/netip"
	"net/textproto"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"

	"github.com/vantage-probe/vantage/probe"
)

// Defaults applied by New to zero-valued options.
const (
	// DefaultMaxRedirects matches net/http's client: enough for any sane
	// chain, few enough that a loop fails fast.
	DefaultMaxRedirects = 10
	// DefaultMaxBodyBytes bounds what one probe reads: health endpoints are
	// small, and a probe must not be turned into a download.
	DefaultMaxBodyBytes = 1 << 20
	// UserAgent is sent unless the headers set one, so that target owners
	// can tell probes from users in their logs.
	UserAgent = "Vantage-Probe/1.0"
)

// HTTP versions accepted by Options.HTTPVersion.
const (
	VersionAuto = "auto"
	Version11   = "1.1"
	Version2    = "2"
	Version3    = "3"
)

// ErrInvalidOption is wrapped by every error New returns, so callers can
// tell a bad configuration from other failures with errors.Is.
var ErrInvalidOption = errors.New("invalid http probe option")

// Prober probes one HTTP target. It is built once by New (URL parsed,
// regexes compiled, TLS config and transport prepared) and is safe for
// concurrent use: everything a probe changes lives in that probe's run.
//
// It holds only what is the target's own (its URL and the TLS config for
// its host); the rest, the same for every target configured alike, is one
// shared *settings (see NewShared).
type Prober struct {
	// urlString is the URL, userinfo removed (turned into basic auth):
	// the configured string itself when that changed nothing, so that the
	// prober keeps no copy of its own. The host:port to dial is derived
	// from it per probe (hostPort), which costs a probe an allocation but
	// spares every prober a string (at 10k targets, 22 B of heap each).
	urlString string

	// tlsConf is the dial-side config: InsecureSkipVerify is always set,
	// because verification happens after the handshake (verifyTLS) so
	// that an expired or unknown certificate still yields TLS facts.
	tlsConf *tls.Config

	*settings
}

// settings are a Prober's checks and transports: everything but the URL.
// Probers built alike through one probe.Shared share one, read-only.
type settings struct {
	hostHeader string // Host header override ("" = from the URL)
	method     string
	body       string
	header     http.Header // every request header, credentials included
	// headerNoCreds is header without credentials: Authorization, the
	// secret headers and every header named like a credential
	// (credentialName). It is sent when a redirect leaves the original
	// host (see keepCredentials), so that a token meant for one host is
	// not handed to another.
	headerNoCreds http.Header

	validStatus  []int // nil: any 2xx
	bodyMatch    []*regexp.Regexp
	bodyNoMatch  []*regexp.Regexp
	headerMatch  []headerCheck // fail_if_header_not_matches
	headerFail   []headerCheck // fail_if_header_matches
	jsonChecks   []jsonCheck
	failIfSSL    bool
	failIfNotSSL bool
	follow       bool
	maxRedirects int
	maxBody      int64
	version      string

	net    probe.Net
	dialer *net.Dialer

	roots      *x509.CertPool // nil: system roots
	skipVerify bool           // the operator's insecure_skip_verify
	serverName string         // o.TLS.ServerName, "" when not forced

	// tr serves HTTP/1.1 and HTTP/2: each hop asks it for a brand new
	// connection with NewClientConn, never a pooled one.
	tr *http.Transport
	// h3 builds HTTP/3 client connections on QUIC connections this package
	// dials itself; it owns no socket and is never closed.
	h3       *http3.Transport
	quicConf *quic.Config

	bufs   sync.Pool     // *bytes.Buffer for bodies that regexes must see
	shared *probe.Shared // certificate chains' descriptions (nil: not shared)
}

// settingsKey names shared settings in probe.Shared: every option they
// are built from, as comparable values. Lists and maps are rendered
// canonically (see canon); the TLS and network options are compared
// whole, so a custom resolver by identity, as it is itself shared.
// TestSettingsKeyConsidersEveryOption fails when Options, probe.TLSOptions
// or probe.Net gains a field that the key does not see.
type settingsKey struct {
	method, body, httpVersion       string
	headers, secretHeaders          string
	validStatus                     string
	bodyNotMatches, bodyMatches     string
	headerNotMatches, headerMatches string
	json                            string
	failIfSSL, failIfNotSSL         bool
	follow                          bool
	maxRedirects                    int
	maxBody                         int64
	// Credentials, which go into the request headers; the URL's count
	// when basic_auth is not set (see NewShared).
	basicAuthUser, basicAuthPassword string
	bearerToken                      string
	urlUser, urlPassword             string

	tls probe.TLSOptions
	net probe.Net
}

// settingsKeyOf is the key of the settings built from o, whose URL holds
// userinfo (nil: none). The URL itself is the prober's own.
func settingsKeyOf(o *Options, userinfo *url.Userinfo) settingsKey {
	k := settingsKey{
		method:            o.Method,
		body:              o.Body,
		httpVersion:       o.HTTPVersion,
		headers:           canonMap(o.Headers),
		secretHeaders:     canonMap(o.SecretHeaders),
		validStatus:       fmt.Sprint(o.ValidStatus),
		bodyNotMatches:    canonStrings(o.FailIfBodyNotMatches),
		bodyMatches:       canonStrings(o.FailIfBodyMatches),
		headerNotMatches:  canonHeaderMatches(o.FailIfHeaderNotMatches),
		headerMatches:     canonHeaderMatches(o.FailIfHeaderMatches),
		json:              canonJSON(o.JSON),
		failIfSSL:         o.FailIfSSL,
		failIfNotSSL:      o.FailIfNotSSL,
		follow:            o.FollowRedirects,
		maxRedirects:      o.MaxRedirects,
		maxBody:           o.MaxBodyBytes,
		basicAuthUser:     o.BasicAuthUser,
		basicAuthPassword: o.BasicAuthPassword,
		bearerToken:       o.BearerToken,
		tls:               o.TLS,
		net:               o.Net,
	}
	if userinfo != nil {
		k.urlUser = userinfo.Username()
		k.urlPassword, _ = userinfo.Password()
	}
	return k
}

// canon renders a list for a settingsKey, each item length-prefixed, so
// that no two different lists render alike.
type canon []byte

func (c canon) str(s string) canon {
	c = strconv.AppendInt(c, int64(len(s)), 10)
	c = append(c, ':')
	return append(c, s...)
}

func canonStrings(ss []string) string {
	var c canon
	for _, s := range ss {
		c = c.str(s)
	}
	return string(c)
}

// canonMap renders m in key order.
func canonMap(m map[string]string) string {
	var c canon
	for _, k := range slices.Sorted(maps.Keys(m)) {
		c = c.str(k).str(m[k])
	}
	return string(c)
}

func canonHeaderMatches(hs []HeaderMatch) string {
	var c canon
	for _, h := range hs {
		c = c.str(h.Header).str(h.Regex).str(strconv.FormatBool(h.AllowMissing))
	}
	return string(c)
}

// canonJSON renders conditions with their operands' types: a string "1"
// and a number 1 are different conditions.
func canonJSON(conds []JSONCondition) string {
	var c canon
	for _, j := range conds {
		c = c.str(j.Path).str(string(j.Op)).str(fmt.Sprintf("%T", j.Value)).str(fmt.Sprint(j.Value))
	}
	return string(c)
}

type headerCheck struct {
	name         string // canonical header name
	re           *regexp.Regexp
	allowMissing bool
}

var _ probe.Prober = (*Prober)(nil)

// New validates o, compiles its regexes and prepares its TLS config and
// transport once, so that a probe does none of that work. Every problem is
// reported (errors.Join), each naming the option by its TOML key with the
// value quoted, e.g. `body_regex "(": error parsing regexp: ...`.
func New(o Options) (*Prober, error) { return NewShared(o, nil) }

// NewShared is New with the CA bundle, client key pair, request headers and
// transport shared through s with the other probers built from the same
// configuration (nil: nothing shared).
func NewShared(o Options, s *probe.Shared) (*Prober, error) {
	p := &Prober{settings: &settings{
		method:       o.Method,
		body:         o.Body,
		failIfSSL:    o.FailIfSSL,
		failIfNotSSL: o.FailIfNotSSL,
		follow:       o.FollowRedirects,
		maxRedirects: o.MaxRedirects,
		maxBody:      o.MaxBodyBytes,
		version:      o.HTTPVersion,
		net:          o.Net,
		skipVerify:   o.TLS.InsecureSkipVerify,
		serverName:   o.TLS.ServerName,
		shared:       s,
	}}
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf(format+": %w", append(args, ErrInvalidOption)...))
	}

	// URL. Kept as its string, which is smaller than a url.URL: parsing it
	// again costs each probe well under a microsecond.
	var pu url.URL
	u, err := url.Parse(o.URL)
	switch {
	case o.URL == "":
		bad("url: missing")
	case err != nil:
		bad("url %q: %v", probe.RedactURL(o.URL), probe.RedactParseError(o.URL, err))
	case u.Scheme != "http" && u.Scheme != "https":
		bad("url %q: scheme must be http or https", probe.RedactURL(o.URL))
	case u.Hostname() == "":
		bad("url %q: no host", probe.RedactURL(o.URL))
	default:
		pu = *u
	}
	userinfo := pu.User
	var urlUser, urlPass string
	if pu.User != nil {
		// Credentials in the URL work as in net/http (basic auth), but are
		// removed from the URL so that FinalURL never shows them.
		urlUser = pu.User.Username()
		urlPass, _ = pu.User.Password()
		pu.User = nil
	}
	if pu.Host != "" {
		if p.urlString = pu.String(); p.urlString == o.URL {
			p.urlString = o.URL // the caller's copy: ours is garbage
		}
	}

	// Method.
	if p.method == "" {
		p.method = http.MethodGet
	} else if !IsToken(p.method) {
		bad("method %q: not a valid HTTP method", o.Method)
	}

	// HTTP version.
	switch p.version {
	case "", VersionAuto:
		p.version = VersionAuto
	case Version11, Version2, Version3:
	default:
		bad("http_version %q: must be auto, 1.1, 2 or 3", o.HTTPVersion)
	}
	if pu.Scheme == "http" {
		switch p.version {
		case Version2:
			bad("http_version %q: HTTP/2 is probed over TLS only (h2c is not supported); use an https url", o.HTTPVersion)
		case Version3:
			bad("http_version %q: HTTP/3 needs an https url", o.HTTPVersion)
		}
	}

	// Status codes and limits.
	for _, c := range o.ValidStatus {
		if c < 100 || c > 599 {
			bad("valid_status %d: not an HTTP status code (100-599)", c)
		}
	}
	if len(o.ValidStatus) > 0 {
		p.validStatus = append([]int(nil), o.ValidStatus...)
	}
	switch {
	case p.maxRedirects < 0:
		bad("max_redirects %d: must not be negative", o.MaxRedirects)
	case p.maxRedirects == 0:
		p.maxRedirects = DefaultMaxRedirects
	}
	switch {
	case p.maxBody < 0:
		bad("max_body_bytes %d: must not be negative", o.MaxBodyBytes)
	case p.maxBody == 0:
		p.maxBody = DefaultMaxBodyBytes
	}
	if o.FailIfSSL && o.FailIfNotSSL {
		bad("fail_if_ssl and fail_if_not_ssl: both set, no response can pass")
	}

	// Regexes, compiled once.
	for _, s := range o.FailIfBodyNotMatches {
		re, err := regexp.Compile(s)
		if err != nil {
			bad("body_regex %q: %v", s, err)
			continue
		}
		p.bodyMatch = append(p.bodyMatch, re)
	}
	for _, s := range o.FailIfBodyMatches {
		re, err := regexp.Compile(s)
		if err != nil {
			bad("fail_if_body_matches %q: %v", s, err)
			continue
		}
		p.bodyNoMatch = append(p.bodyNoMatch, re)
	}
	compileHeaders := func(key string, in []HeaderMatch) []headerCheck {
		var out []headerCheck
		for _, m := range in {
			if !IsToken(m.Header) {
				bad("%s header %q: not a valid header name", key, m.Header)
				continue
			}
			re, err := regexp.Compile(m.Regex)
			if err != nil {
				bad("%s regex %q (header %q): %v", key, m.Regex, m.Header, err)
				continue
			}
			out = append(out, headerCheck{name: textproto.CanonicalMIMEHeaderKey(m.Header), re: re, allowMissing: m.AllowMissing})
		}
		return out
	}
	p.headerMatch = compileHeaders("fail_if_header_not_matches", o.FailIfHeaderNotMatches)
	p.headerFail = compileHeaders("fail_if_header_matches", o.FailIfHeaderMatches)
	p.jsonChecks = compileJSON(o.JSON, bad)

	// Request headers, built once and shared read-only by every probe.
	p.header = make(http.Header, len(o.Headers)+len(o.SecretHeaders)+2)
	for k, v := range o.Headers {
		switch {
		case !IsToken(k):
			bad("headers %q: not a valid header name", k)
			continue
		case !validHeaderValue(v):
			bad("headers %q: value contains a control character", k)
			continue
		}
		ck := textproto.CanonicalMIMEHeaderKey(k)
		if ck == "Host" {
			p.hostHeader = v
			continue
		}
		p.header[ck] = []string{v}
	}
	// Secret headers: the same, but no value is ever quoted, and each is
	// left out of headerNoCreds. Sorted, so that an error names the same
	// one of two spellings each time.
	var secret []string
	for _, k := range slices.Sorted(maps.Keys(o.SecretHeaders)) {
		ck := textproto.CanonicalMIMEHeaderKey(k)
		switch {
		case !IsToken(k):
			bad("secret header %q: not a valid header name", k)
		case ck == "Host":
			bad("secret header %q: Host is not a secret; set it in Headers", k)
		case !validHeaderValue(o.SecretHeaders[k]):
			bad("secret header %q: value contains a control character", k)
		case slices.Contains(secret, ck):
			bad("secret header %q: set twice", k)
		case len(p.header[ck]) > 0:
			bad("secret header %q: also set in Headers", k)
		default:
			p.header[ck] = []string{o.SecretHeaders[k]}
			secret = append(secret, ck)
		}
	}
	if p.header.Get("User-Agent") == "" {
		p.header.Set("User-Agent", UserAgent)
	}
	user, pass := o.BasicAuthUser, o.BasicAuthPassword
	if user == "" && pass == "" {
		user, pass = urlUser, urlPass
	}
	switch {
	case (user != "" || pass != "") && o.BearerToken != "":
		bad("bearer_token: cannot be combined with basic_auth_user/basic_auth_password")
	case (user != "" || pass != "" || o.BearerToken != "") && p.header.Get("Authorization") != "":
		bad("headers \"Authorization\": conflicts with basic auth or bearer_token")
	case user != "" || pass != "":
		p.header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(user+":"+pass)))
	case o.BearerToken != "":
		if !validHeaderValue(o.BearerToken) {
			bad("bearer_token: contains a control character") // the value is a secret: not quoted
		}
		p.header.Set("Authorization", "Bearer "+o.BearerToken)
	}
	p.headerNoCreds = p.header.Clone()
	for k := range p.headerNoCreds {
		if slices.Contains(secret, k) || credentialName(k) {
			delete(p.headerNoCreds, k)
		}
	}
	// Most targets send the same headers (often just the User-Agent):
	// they share one read-only map.
	p.header, p.headerNoCreds = internHeader(s, p.header), internHeader(s, p.headerNoCreds)

	// Network.
	switch o.Net.IPProtocol {
	case probe.IPAuto, probe.IPv4, probe.IPv6:
	default:
		bad("ip_protocol %q: must be ip4 or ip6", string(o.Net.IPProtocol))
	}
	if ip, err := netip.ParseAddr(pu.Hostname()); err == nil {
		if (o.Net.IPProtocol == probe.IPv4 && !ip.Unmap().Is4()) || (o.Net.IPProtocol == probe.IPv6 && ip.Unmap().Is4()) {
			bad("ip_protocol %q: the url's host %q is not of that family", string(o.Net.IPProtocol), ip.String())
		}
	}
	if sip := o.Net.SourceIP; sip.IsValid() {
		if (o.Net.IPProtocol == probe.IPv4 && !sip.Unmap().Is4()) || (o.Net.IPProtocol == probe.IPv6 && sip.Unmap().Is4()) {
			bad("source_ip %q: not of ip_protocol %q", sip.String(), string(o.Net.IPProtocol))
		}
	}
	p.dialer = o.Net.DialerShared(s, "tcp")

	// TLS, prepared once: every probe shares this config read-only.
	if p.version == Version3 && o.TLS.MinVersion != 0 && o.TLS.MinVersion < tls.VersionTLS13 {
		// QUIC is TLS 1.3 only; a lower minimum is simply irrelevant.
		o.TLS.MinVersion = tls.VersionTLS13
	}
	var alpn []string
	switch p.version {
	case VersionAuto, Version2:
		// "2" offers http/1.1 too, so that an HTTP/1.1-only server completes
		// the handshake (and shows its certificate) before the probe fails
		// with http_error for not speaking h2.
		alpn = []string{"h2", "http/1.1"}
	case Version11:
		alpn = []string{"http/1.1"}
	case Version3:
		alpn = []string{http3.NextProtoH3}
	}
	first := pu.Hostname()
	if p.hostHeader != "" {
		first = hostOnly(p.hostHeader)
	}
	conf, err := dialTLSConfig(s, o.TLS, first, p.version == Version3, alpn)
	if err != nil {
		errs = append(errs, fmt.Errorf("%w: %w", err, ErrInvalidOption))
	} else {
		p.roots = conf.RootCAs
		p.tlsConf = conf
	}

	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}

	p.tr = transportFor(s, p.version == VersionAuto || p.version == Version2)
	if p.version == Version3 {
		p.h3 = &http3.Transport{}
		p.quicConf = &quic.Config{
			// The probe's context bounds the handshake; quic-go's own 5 s
			// default would cut a longer configured timeout short.
			HandshakeIdleTimeout: time.Hour,
		}
	}
	if s != nil {
		// The headers, dialer, CA pool and transport above come from s
		// too, so probers configured alike share every one of them.
		built := p.settings
		p.settings = s.Value(settingsKeyOf(&o, userinfo), func() any { return built }).(*settings)
	}
	return p, nil
}

// idleConnTimeout bounds how long net/http keeps a closed HTTP/2
// connection reachable (see transportFor), and so how many probes'
// connections the heap holds at a time.
const idleConnTimeout = 100 * time.Millisecond

// transportKey names a shared transport in probe.Shared.
type transportKey struct{ h2 bool }

// transportFor returns the HTTP/1.1 (and, with h2, HTTP/2) transport. It
// holds nothing of a prober's: NewClientConn always dials, through
// dialPlain/dialTLS, which take the prober and the probe's run from the
// context, and never pools, so every probe still sees a fresh connection
// and one transport serves every prober of a configuration.
func transportFor(s *probe.Shared, h2 bool) *http.Transport {
	return s.Value(transportKey{h2}, func() any {
		var protos http.Protocols
		protos.SetHTTP1(true)
		protos.SetHTTP2(h2)
		return &http.Transport{
			Proxy:             nil, // a probe measures the target, not a proxy from the environment
			DialContext:       dialPlain,
			DialTLSContext:    dialTLS,
			DisableKeepAlives: true,
			Protocols:         &protos,
			// An HTTP/2 connection that served one request and closed
			// stays reachable for min(5 s, IdleConnTimeout) after it
			// closes: the pool's "unused connection" timer holds it
			// (net/http's bundled http2, ClientConn.readLoop cleanup),
			// though NewClientConn never pools: with the default, the
			// heap held every connection of the last 5 s of probes. The
			// idle timer this also arms when the connection is made
			// cannot close it under a probe: connect reserves the
			// connection's one request slot at once (see connect).
			IdleConnTimeout: idleConnTimeout,
		}
	}).(*http.Transport)
}

// tlsKey names a shared dial-side TLS config: everything it is built from.
type tlsKey struct {
	o          probe.TLSOptions
	serverName string
	h3         bool
	alpn       string
}

// dialTLSConfig builds the dial-side TLS config: verification off in the
// handshake (verifyTLS verifies after it, so that a bad certificate still
// yields its facts), TLS 1.3 for QUIC. Probers of targets on one host with
// the same TLS options share one (crypto/tls only reads it).
func dialTLSConfig(s *probe.Shared, o probe.TLSOptions, serverName string, h3 bool, alpn []string) (*tls.Config, error) {
	type built struct {
		conf *tls.Config
		err  error
	}
	b := s.Value(tlsKey{o, serverName, h3, strings.Join(alpn, ",")}, func() any {
		conf, err := o.ConfigShared(s, serverName, alpn...)
		if err != nil {
			return built{err: err}
		}
		conf.InsecureSkipVerify = true //nolint:gosec // verified by verifyTLS after the handshake
		if h3 {
			conf.MinVersion = tls.VersionTLS13
		}
		return built{conf: conf}
	}).(built)
	return b.conf, b.err
}

// headerKey names a shared request header map in probe.Shared: the map
// rendered in a canonical order.
type headerKey struct{ s string }

func internHeader(s *probe.Shared, h http.Header) http.Header {
	if s == nil {
		return h
	}
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(k)
		for _, v := range h[k] {
			b.WriteByte(0)
			b.WriteString(v)
		}
		b.WriteByte('\n')
	}
	return s.Value(headerKey{b.String()}, func() any { return h }).(http.Header)
}

// credentialWords make a header a credential, whatever its value's
// source: a header whose name holds one (case-insensitively) is not sent
// to another host on a redirect. They cover Authorization,
// Proxy-Authorization, Cookie, X-Api-Key, X-Auth-Token, X-Session-Id and
// the like; a harmless header they also catch is only left out of the
// request to another host.
var credentialWords = []string{"auth", "cookie", "credential", "key", "pass", "secret", "session", "signature", "token"}

func credentialName(name string) bool {
	name = strings.ToLower(name)
	for _, w := range credentialWords {
		if strings.Contains(name, w) {
			return true
		}
	}
	return false
}

// hostPort returns u's host with the scheme's default port made explicit.
func hostPort(u *url.URL) string {
	if u.Port() != "" {
		return u.Host
	}
	port := "80"
	if u.Scheme == "https" {
		port = "443"
	}
	return net.JoinHostPort(u.Hostname(), port)
}

// hostOnly strips an optional port (and IPv6 brackets) from a Host value.
func hostOnly(h string) string {
	if host, _, err := net.SplitHostPort(h); err == nil {
		return host
	}
	return strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
}

// IsToken reports whether s is an RFC 9110 token (a method, a header
// name): the prober and the config loader check names with it.
func IsToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// validHeaderValue rejects control characters other than horizontal tab,
// which would let a value split the request.
func validHeaderValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}
