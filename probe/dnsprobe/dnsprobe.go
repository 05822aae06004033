package dnsprobe

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"
	"github.com/quic-go/quic-go"

	"github.com/vantage-probe/vantage/probe"
)

// Transports.
const (
	TransportUDP   = "udp"
	TransportTCP   = "tcp"
	TransportTLS   = "tls"   // DNS over TLS, RFC 7858
	TransportHTTPS = "https" // DNS over HTTPS, RFC 8484
	TransportQUIC  = "quic"  // DNS over QUIC, RFC 9250
)

// defaultTimeout bounds a probe whose context has no deadline (the CLI, a
// caller's mistake): a dropped UDP query must not hang forever. It matches
// the config's default target timeout.
const defaultTimeout = 10 * time.Second

// maxDoHResponse bounds the DoH body read: a DNS message never exceeds 64 KiB.
const maxDoHResponse = 64 << 10

// Prober probes one DNS target. It is built once by New and is safe for
// concurrent use: every per-probe value lives on the stack of Probe.
type Prober struct {
	shared    *probe.Shared // certificate chains' descriptions (nil: not shared)
	transport string
	server    string // normalised, for facts: host:port, or the DoH URL
	hostport  string // what to resolve and dial
	remote    string // ip:port when the server is an IP literal, else resolved per probe
	dohURL    string

	// query is the packed question with message ID 0. Packing once means a
	// probe only copies it and writes a fresh ID (DoH and DoQ keep ID 0,
	// RFC 8484 section 4.1 and RFC 9250 section 4.2.1).
	query   []byte
	udpBuf  int // bytes a UDP answer may take: EDNS0 size or 512
	net     probe.Net
	tcpDial *net.Dialer
	udpDial *net.Dialer
	udpSrc  *net.UDPAddr // local address of the DoQ socket; nil: any

	validRcodes []int
	validText   string // valid_rcodes as written in messages
	answerRE    *regexp.Regexp
	failRE      *regexp.Regexp
	minAnswers  int

	// tlsConf is the dial config: verification is off in it and done by
	// verifyTLS after the handshake, so facts survive a bad certificate.
	tlsConf    *tls.Config
	verify     bool
	roots      *x509.CertPool
	serverName string
	quicConf   *quic.Config
}

var _ probe.Prober = (*Prober)(nil)

// New validates o, compiles its regexes, packs the query and prepares its
// TLS config once. It reports every problem at once (errors.Join); each
// error names the option's TOML key and quotes the value, e.g.
// `record "AAA": unknown record type`.
func New(o Options) (*Prober, error) { return NewShared(o, nil) }

// NewShared is New with the CA bundle and client key pair shared through s
// with the other probers of a configuration (nil: nothing shared).
func NewShared(o Options, s *probe.Shared) (*Prober, error) {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	p := &Prober{
		shared:     s,
		transport:  strings.ToLower(o.Transport),
		net:        o.Net,
		tcpDial:    o.Net.DialerShared(s, "tcp"),
		udpDial:    o.Net.DialerShared(s, "udp"),
		minAnswers: o.MinAnswers,
	}
	if p.transport == "" {
		p.transport = TransportUDP
	}
	if o.Net.SourceIP.IsValid() {
		p.udpSrc = &net.UDPAddr{IP: o.Net.SourceIP.AsSlice(), Zone: o.Net.SourceIP.Zone()}
	}

	var host string
	switch p.transport {
	case TransportUDP, TransportTCP, TransportTLS, TransportHTTPS, TransportQUIC:
		var err error
		host, err = p.parseServer(o.Server)
		if err != nil {
			errs = append(errs, err)
		}
	default:
		bad("transport %q: must be one of udp, tcp, tls, https, quic", o.Transport)
	}
	if host != "" {
		if _, err := netip.ParseAddr(host); err == nil {
			// An IP literal needs no lookup per probe; Resolve only checks
			// it against ip_protocol here.
			remote, _, err := o.Net.Resolve(context.Background(), p.hostport)
			if err != nil {
				bad("server %q: %w", probe.RedactURL(o.Server), err)
			}
			p.remote = remote
		}
	}

	qtype := dns.TypeA
	if o.Record != "" {
		t, ok := dns.StringToType[strings.ToUpper(o.Record)]
		if !ok || t == dns.TypeNone {
			bad("record %q: unknown record type", o.Record)
		}
		qtype = t
	}

	if len(o.ValidRcodes) == 0 {
		p.validRcodes = []int{dns.RcodeSuccess}
		p.validText = "[NOERROR]"
	} else {
		names := make([]string, 0, len(o.ValidRcodes))
		for _, s := range o.ValidRcodes {
			rc, ok := dns.StringToRcode[strings.ToUpper(s)]
			if !ok {
				bad("valid_rcodes %q: unknown rcode", s)
				continue
			}
			p.validRcodes = append(p.validRcodes, rc)
			names = append(names, dns.RcodeToString[rc])
		}
		p.validText = "[" + strings.Join(names, " ") + "]"
	}

	var err error
	if o.AnswerRegex != "" {
		if p.answerRE, err = regexp.Compile(o.AnswerRegex); err != nil {
			bad("answer_regex %q: %w", o.AnswerRegex, err)
		}
	}
	if o.FailIfAnswerMatches != "" {
		if p.failRE, err = regexp.Compile(o.FailIfAnswerMatches); err != nil {
			bad("fail_if_answer_matches %q: %w", o.FailIfAnswerMatches, err)
		}
	}
	if o.MinAnswers < 0 {
		bad("min_answers %d: must not be negative", o.MinAnswers)
	}
	if o.UDPSize != 0 && o.UDPSize < dns.MinMsgSize {
		bad("udp_size %d: must be 0 (no EDNS0) or at least %d", o.UDPSize, dns.MinMsgSize)
	}
	p.udpBuf = max(int(o.UDPSize), dns.MinMsgSize)

	if o.Query == "" {
		bad("query: must be set")
	} else if _, ok := dns.IsDomainName(o.Query); !ok {
		bad("query %q: not a valid domain name", o.Query)
	} else {
		m := new(dns.Msg)
		m.SetQuestion(dns.Fqdn(o.Query), qtype)
		m.Id = 0
		m.RecursionDesired = o.Recursion
		if o.UDPSize != 0 {
			m.SetEdns0(o.UDPSize, false)
		}
		if p.query, err = m.Pack(); err != nil {
			bad("query %q: %w", o.Query, err)
		}
	}

	if host != "" {
		if err := p.prepareTLS(o.TLS, host, s); err != nil {
			errs = append(errs, err)
		}
	}

	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return p, nil
}

// parseServer fills p.server, p.hostport and p.dohURL from the server
// option and returns the host (without brackets), or "" on error.
func (p *Prober) parseServer(server string) (string, error) {
	if server == "" {
		return "", errors.New("server: must be set")
	}
	defaultPort := "53"
	switch p.transport {
	case TransportTLS, TransportQUIC:
		defaultPort = "853"
	case TransportHTTPS:
		defaultPort = "443"
	}
	if i := strings.Index(server, "://"); i >= 0 {
		// A DoH URL may carry a token: errors and facts show it redacted.
		shown := probe.RedactURL(server)
		if p.transport != TransportHTTPS {
			return "", fmt.Errorf("server %q: a URL is only valid with transport \"https\"; use host:port", shown)
		}
		u, err := url.Parse(server)
		if err != nil {
			return "", fmt.Errorf("server %q: %w", shown, probe.RedactParseError(server, err))
		}
		if u.Scheme != "https" {
			return "", fmt.Errorf("server %q: DoH needs an https:// URL", shown)
		}
		if u.Hostname() == "" {
			return "", fmt.Errorf("server %q: URL has no host", shown)
		}
		port := u.Port()
		if port == "" {
			port = defaultPort
		} else if err := checkPort(port); err != nil {
			return "", fmt.Errorf("server %q: %w", shown, err)
		}
		if u.Path == "" {
			u.Path = "/dns-query"
		}
		p.hostport = net.JoinHostPort(u.Hostname(), port)
		p.dohURL = u.String()
		p.server = probe.RedactURL(p.dohURL)
		return u.Hostname(), nil
	}

	host, port, err := net.SplitHostPort(server)
	if err != nil {
		// No port: a bare host name or IP literal (IPv6 with or without
		// brackets) takes the transport's default port.
		host, port = strings.TrimSuffix(strings.TrimPrefix(server, "["), "]"), defaultPort
		if _, perr := netip.ParseAddr(host); perr != nil && strings.Contains(host, ":") {
			return "", fmt.Errorf("server %q: %w", server, err)
		}
	} else if err := checkPort(port); err != nil {
		return "", fmt.Errorf("server %q: %w", server, err)
	}
	if host == "" || strings.ContainsAny(host, " /\t") {
		return "", fmt.Errorf("server %q: want host:port", server)
	}
	p.hostport = net.JoinHostPort(host, port)
	p.server = p.hostport
	if p.transport == TransportHTTPS {
		p.dohURL = "https://" + p.hostport + "/dns-query"
		p.server = p.dohURL
	}
	return host, nil
}

func checkPort(port string) error {
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil || n == 0 {
		return fmt.Errorf("port %q: want 1-65535", port)
	}
	return nil
}

// prepareTLS builds the TLS config of the tls, https and quic transports.
func (p *Prober) prepareTLS(o probe.TLSOptions, host string, s *probe.Shared) error {
	var alpn []string
	switch p.transport {
	case TransportTLS:
	case TransportHTTPS:
		alpn = []string{"h2", "http/1.1"}
	case TransportQUIC:
		alpn = []string{"doq"}
	default:
		return nil
	}
	c, err := o.ConfigShared(s, host, alpn...)
	if err != nil {
		return err
	}
	p.verify = !c.InsecureSkipVerify
	p.roots = c.RootCAs
	p.serverName = c.ServerName
	c.InsecureSkipVerify = true //nolint:gosec // verified by verifyTLS after the handshake
	if p.transport == TransportQUIC {
		c.MinVersion = tls.VersionTLS13 // QUIC is TLS 1.3 only (RFC 9001)
		// Datagrams or 0-RTT are not used; defaults suffice, and a shared
		// read-only Config is safe across concurrent dials.
		p.quicConf = &quic.Config{}
	}
	p.tlsConf = c
	return nil
}

// Probe sends one query and checks the answer. It returns by ctx's deadline
// (or after defaultTimeout when ctx has none) and leaves no goroutine or
// connection behind.
//
// Phases: resolve (only when the server is a host name), connect (TCP
// connect; socket setup for UDP and QUIC), tls (DoT/DoH handshake, or the
// whole QUIC handshake) and round_trip (query sent to answer read). The
// result always carries DNSFacts (server and transport even on failure) and,
// for tls, https and quic, TLSFacts, also when the chain fails verification.
//
// Reasons: timeout, connect_refused (TCP RST, or ICMP port unreachable on
// UDP), connect_error, dns_error (the server's own name did not resolve),
// tls_handshake, cert_invalid, cert_expired, http_error (DoH status not 200),
// dns_protocol (malformed, oversized or truncated answer; a TC answer is
// reported as "truncated", there is no retry over TCP), rcode_mismatch and
// answer_mismatch.
func (p *Prober) Probe(ctx context.Context) probe.Result {
	start := time.Now()
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, defaultTimeout)
		defer cancel()
	}
	res := probe.Result{
		At:     start,
		Phases: make([]probe.Phase, 0, 4),
		DNS:    &probe.DNSFacts{Server: p.server, Transport: p.transport},
	}
	resp, reason, err := p.exchange(ctx, &res)
	if err == nil {
		reason, err = p.check(resp, res.DNS)
	} else {
		err = p.noAnswer(reason, err, time.Since(start))
	}
	res.Duration = time.Since(start)
	if err != nil {
		return res.Fail(reason, err.Error())
	}
	res.OK = true
	return res
}

// exchange resolves the server if needed and runs the transport's exchange.
func (p *Prober) exchange(ctx context.Context, res *probe.Result) (*dns.Msg, probe.Reason, error) {
	remote := p.remote
	if remote == "" {
		r, d, err := p.net.Resolve(ctx, p.hostport)
		res.AddPhase(probe.PhaseResolve, d)
		if err != nil {
			return nil, probe.Classify(err, ctx.Err()), fmt.Errorf("resolve server %s: %w", p.hostport, err)
		}
		remote = r
	}
	res.RemoteAddr = remote
	switch p.transport {
	case TransportUDP:
		return p.exchangeUDP(ctx, remote, res)
	case TransportTCP, TransportTLS:
		return p.exchangeStream(ctx, remote, res)
	case TransportHTTPS:
		return p.exchangeHTTPS(ctx, remote, res)
	case TransportQUIC:
		return p.exchangeQUIC(ctx, remote, res)
	}
	return nil, probe.ReasonConfig, fmt.Errorf("transport %q not supported", p.transport)
}

// noAnswer says what happened to a probe that got no answer, before the
// error that tells how: the reader sees "no answer from 10.0.0.53:53 over
// udp: timed out after 1.0s", not a socket error to decode.
func (p *Prober) noAnswer(reason probe.Reason, err error, took time.Duration) error {
	var what string
	switch reason {
	case probe.ReasonTimeout:
		what = fmt.Sprintf("timed out after %.1fs", took.Seconds())
	case probe.ReasonConnectRefused:
		what = "connection refused"
		if p.transport == TransportUDP {
			what = "port unreachable (connection refused)"
		}
	case probe.ReasonConnectError:
		what = "could not connect"
	case probe.ReasonDNSError:
		what = "the server's name did not resolve"
	case probe.ReasonTLSHandshake:
		what = "TLS handshake failed"
	case probe.ReasonCertInvalid, probe.ReasonCertExpired:
		what = "certificate not accepted"
	case probe.ReasonDNSProtocol:
		what = "no usable response"
	default:
		what = "failed"
	}
	return fmt.Errorf("no answer from %s over %s: %s: %w", p.server, p.transport, what, err)
}

// check applies truncation, rcode and answer checks, filling facts.
func (p *Prober) check(resp *dns.Msg, f *probe.DNSFacts) (probe.Reason, error) {
	f.RcodeValue = resp.Rcode
	f.Rcode = dns.RcodeToString[resp.Rcode]
	if f.Rcode == "" {
		f.Rcode = "RCODE" + strconv.Itoa(resp.Rcode)
	}
	f.AnswerRRs = len(resp.Answer)
	f.AuthorityRRs = len(resp.Ns)
	f.AdditionalRRs = len(resp.Extra)
	if len(resp.Answer) > 0 {
		f.Answers = make([]string, len(resp.Answer))
		for i, rr := range resp.Answer {
			f.Answers[i] = rr.String()
			if soa, ok := rr.(*dns.SOA); ok {
				f.SOA, f.Serial = true, soa.Serial
			}
		}
	}

	if resp.Truncated {
		return probe.ReasonDNSProtocol, errors.New("truncated")
	}
	valid := false
	for _, rc := range p.validRcodes {
		if rc == resp.Rcode {
			valid = true
			break
		}
	}
	if !valid {
		return probe.ReasonRcodeMismatch, fmt.Errorf("rcode %s not in valid_rcodes %s", f.Rcode, p.validText)
	}
	if len(resp.Answer) < p.minAnswers {
		return probe.ReasonAnswerMismatch, fmt.Errorf("%d answers, min_answers is %d", len(resp.Answer), p.minAnswers)
	}
	if p.answerRE != nil {
		matched := false
		for _, a := range f.Answers {
			if p.answerRE.MatchString(a) {
				matched = true
				break
			}
		}
		if !matched {
			return probe.ReasonAnswerMismatch, fmt.Errorf("no answer matched answer_regex %q", p.answerRE)
		}
	}
	if p.failRE != nil {
		for _, a := range f.Answers {
			if p.failRE.MatchString(a) {
				return probe.ReasonAnswerMismatch, fmt.Errorf("answer %q matched fail_if_answer_matches %q", a, p.failRE)
			}
		}
	}
	return probe.ReasonNone, nil
}

// verifyTLS records the handshake's facts in res and verifies the chain the
// way crypto/tls would have.
func (p *Prober) verifyTLS(cs *tls.ConnectionState, res *probe.Result) (probe.Reason, error) {
	if !p.verify {
		res.TLS = probe.TLSFactsShared(p.shared, cs, "")
		return probe.ReasonNone, nil
	}
	chains, reason, err := probe.VerifyChain(cs, p.roots, p.serverName, time.Now())
	if err == nil {
		cs.VerifiedChains = chains
	}
	res.TLS = probe.TLSFactsShared(p.shared, cs, "")
	if err != nil {
		return reason, err
	}
	return probe.ReasonNone, nil
}

// newID returns a message ID for a UDP/TCP/DoT query. math/rand/v2's
// generator is seeded per process from the OS and is not predictable from
// outside, which is all off-path spoofing protection needs here.
func newID() uint16 { return uint16(rand.Uint32()) }

// tlsReason classifies a failed handshake: the deadline wins, a reset or
// refusal keeps its network reason, anything else is the handshake's fault.
func tlsReason(err error, ctx context.Context) probe.Reason {
	switch r := probe.Classify(err, ctx.Err()); r {
	case probe.ReasonTimeout, probe.ReasonConnectRefused:
		return r
	}
	return probe.ReasonTLSHandshake
}

// aLongTimeAgo is a deadline in the past, set to unblock I/O at once.
var aLongTimeAgo = time.Unix(1, 0)

// deadlineConn is what watch needs of a connection.
type deadlineConn interface {
	SetDeadline(time.Time) error
}

// watch bounds c's I/O by ctx: its deadline now, its cancellation when it
// comes. The returned stop must be called before c is closed.
func watch(ctx context.Context, c deadlineConn) (stop func() bool) {
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	return context.AfterFunc(ctx, func() { _ = c.SetDeadline(aLongTimeAgo) })
}

// Server is the server as probed, defaults applied: host:port, or the DoH
// URL redacted (probe.RedactURL). It is also DNSFacts.Server.
func (p *Prober) Server() string { return p.server }
