package dnsprobe_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/vantage-probe/vantage/probe"
	"github.com/vantage-probe/vantage/probe/dnsprobe"
	"github.com/vantage-probe/vantage/probe/probetest"
)

// okTimeout bounds probes that should succeed: generous for a noisy 2-core
// machine under -race.
const okTimeout = 10 * time.Second

// env is a CA, a leaf for 127.0.0.1 and localhost, and its CA file.
type env struct {
	ca     *probetest.CA
	cert   tls.Certificate
	caFile string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	ca, err := probetest.NewCA("dnsprobe test CA")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.Leaf(probetest.Days(90), "127.0.0.1", "localhost")
	if err != nil {
		t.Fatal(err)
	}
	caFile, err := ca.WriteCAFile(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return &env{ca: ca, cert: cert, caFile: caFile}
}

func zone(t testing.TB) *probetest.Zone {
	t.Helper()
	z, err := probetest.NewZone(
		"www.example.com. 300 IN A 192.0.2.1",
		"www.example.com. 300 IN A 192.0.2.2",
		"www.example.com. 300 IN AAAA 2001:db8::1",
		"example.com. 300 IN MX 10 mail.example.com.",
		"example.com. 300 IN SOA ns.example.com. admin.example.com. 2026120101 3600 600 86400 300",
	)
	if err != nil {
		t.Fatal(err)
	}
	return z
}

// start serves h over transport and returns the server option for it.
func (e *env) start(t testing.TB, transport string, h dns.Handler) string {
	t.Helper()
	var (
		s   *probetest.DNSServer
		err error
	)
	switch transport {
	case dnsprobe.TransportUDP, dnsprobe.TransportTCP:
		s, err = probetest.StartDNS(h)
	case dnsprobe.TransportTLS:
		s, err = probetest.StartDoT(h, e.cert)
	case dnsprobe.TransportHTTPS:
		s, err = probetest.StartDoH(h, e.cert)
	case dnsprobe.TransportQUIC:
		s, err = probetest.StartDoQ(h, e.cert)
	default:
		t.Fatalf("unknown transport %q", transport)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close %s server: %v", transport, err)
		}
	})
	if transport == dnsprobe.TransportHTTPS {
		return s.URL()
	}
	return s.Addr()
}

func (e *env) opts(transport, server string) dnsprobe.Options {
	return dnsprobe.Options{
		Server:    server,
		Transport: transport,
		Query:     "www.example.com",
		Recursion: true,
		TLS:       probe.TLSOptions{CAFile: e.caFile},
	}
}

func mustNew(t testing.TB, o dnsprobe.Options) *dnsprobe.Prober {
	t.Helper()
	p, err := dnsprobe.New(o)
	if err != nil {
		t.Fatalf("New(%+v): %v", o, err)
	}
	return p
}

func run(p *dnsprobe.Prober, timeout time.Duration) probe.Result {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return p.Probe(ctx)
}

var transports = []string{
	dnsprobe.TransportUDP, dnsprobe.TransportTCP, dnsprobe.TransportTLS,
	dnsprobe.TransportHTTPS, dnsprobe.TransportQUIC,
}

func isTLS(transport string) bool {
	return transport == dnsprobe.TransportTLS || transport == dnsprobe.TransportHTTPS || transport == dnsprobe.TransportQUIC
}

func TestProbeEachTransportAnswers(t *testing.T) {
	e := newEnv(t)
	z := zone(t)
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			server := e.start(t, tr, z)
			p := mustNew(t, e.opts(tr, server))
			r := run(p, okTimeout)
			if !r.OK {
				t.Fatalf("probe failed: %s: %s", r.Reason, r.Message)
			}
			d := r.DNS
			if d == nil {
				t.Fatal("no DNS facts")
			}
			if d.Rcode != "NOERROR" || d.RcodeValue != 0 {
				t.Errorf("rcode %q (%d), want NOERROR (0)", d.Rcode, d.RcodeValue)
			}
			if d.AnswerRRs != 2 || len(d.Answers) != 2 {
				t.Fatalf("answers %d %q, want the 2 A records", d.AnswerRRs, d.Answers)
			}
			if !strings.Contains(d.Answers[0], "192.0.2.") || !strings.HasPrefix(d.Answers[0], "www.example.com.") {
				t.Errorf("answer %q not in presentation format", d.Answers[0])
			}
			if d.Transport != tr || d.Server != server {
				t.Errorf("facts transport %q server %q, want %q %q", d.Transport, d.Server, tr, server)
			}
			if r.RemoteAddr == "" || !strings.HasPrefix(r.RemoteAddr, "127.0.0.1:") {
				t.Errorf("remote addr %q", r.RemoteAddr)
			}
			if r.Phase(probe.PhaseRoundTrip) <= 0 {
				t.Errorf("no round_trip phase: %+v", r.Phases)
			}
			if r.Duration <= 0 || r.At.IsZero() {
				t.Errorf("duration %v at %v", r.Duration, r.At)
			}
			if isTLS(tr) {
				if r.Phase(probe.PhaseTLS) <= 0 {
					t.Errorf("no tls phase: %+v", r.Phases)
				}
				if r.TLS == nil || !r.TLS.Verified || r.TLS.EarliestExpiry.IsZero() || r.TLS.LastChainExpiry.IsZero() {
					t.Fatalf("TLS facts %+v, want a verified chain with expiries", r.TLS)
				}
				if got, want := r.TLS.EarliestExpiry.Unix(), e.cert.Leaf.NotAfter.Unix(); got != want {
					t.Errorf("earliest expiry %d, want the leaf's %d", got, want)
				}
			} else if r.TLS != nil {
				t.Errorf("TLS facts on %s: %+v", tr, r.TLS)
			}
			stream := tr == dnsprobe.TransportTCP || tr == dnsprobe.TransportTLS || tr == dnsprobe.TransportHTTPS
			if stream && r.Phase(probe.PhaseConnect) <= 0 {
				t.Errorf("no connect phase: %+v", r.Phases)
			}
		})
	}
}

func TestProbeRecordTypes(t *testing.T) {
	e := newEnv(t)
	server := e.start(t, dnsprobe.TransportUDP, zone(t))
	for _, c := range []struct {
		query, record string
		want          string
	}{
		{"www.example.com.", "AAAA", "2001:db8::1"},
		{"example.com", "mx", "mail.example.com."},
		{"www.example.com", "", "192.0.2.1"},
	} {
		o := e.opts("", server)
		o.Query, o.Record = c.query, c.record
		r := run(mustNew(t, o), okTimeout)
		if !r.OK || len(r.DNS.Answers) == 0 || !strings.Contains(strings.Join(r.DNS.Answers, "\n"), c.want) {
			t.Errorf("%s %s: ok=%v %s %s answers %q, want %q", c.query, c.record, r.OK, r.Reason, r.Message, r.DNS.Answers, c.want)
		}
	}
}

// An SOA answer's serial is kept (probe_dns_serial); other answers have
// none.
func TestProbeSOASerial(t *testing.T) {
	e := newEnv(t)
	server := e.start(t, dnsprobe.TransportUDP, zone(t))
	o := e.opts("", server)
	o.Query, o.Record = "example.com.", "SOA"
	r := run(mustNew(t, o), okTimeout)
	if !r.OK || !r.DNS.SOA || r.DNS.Serial != 2026120101 {
		t.Errorf("SOA query: ok=%v %s %s soa=%v serial %d, want serial 2026120101", r.OK, r.Reason, r.Message, r.DNS.SOA, r.DNS.Serial)
	}
	o.Record = "MX"
	if r := run(mustNew(t, o), okTimeout); !r.OK || r.DNS.SOA || r.DNS.Serial != 0 {
		t.Errorf("MX query: ok=%v %s %s soa=%v serial %d, want no SOA", r.OK, r.Reason, r.Message, r.DNS.SOA, r.DNS.Serial)
	}
}

func TestProbeRcodes(t *testing.T) {
	e := newEnv(t)
	handlers := map[string]dns.Handler{
		"REFUSED":  probetest.Refused(),
		"SERVFAIL": probetest.ServFail(),
		"NXDOMAIN": probetest.NXDomain(),
	}
	for name, h := range handlers {
		server := e.start(t, dnsprobe.TransportUDP, h)
		t.Run(name+"/default", func(t *testing.T) {
			r := run(mustNew(t, e.opts("udp", server)), okTimeout)
			if r.OK || r.Reason != probe.ReasonRcodeMismatch {
				t.Fatalf("ok=%v reason %q (%s), want rcode_mismatch", r.OK, r.Reason, r.Message)
			}
			if r.DNS.Rcode != name || r.DNS.RcodeValue != dns.StringToRcode[name] {
				t.Errorf("facts rcode %q %d, want %s", r.DNS.Rcode, r.DNS.RcodeValue, name)
			}
			if !strings.Contains(r.Message, name) || !strings.Contains(r.Message, "NOERROR") {
				t.Errorf("message %q should name the rcode and valid_rcodes", r.Message)
			}
		})
		t.Run(name+"/valid_nxdomain", func(t *testing.T) {
			o := e.opts("udp", server)
			o.ValidRcodes = []string{"nxdomain"}
			r := run(mustNew(t, o), okTimeout)
			if want := name == "NXDOMAIN"; r.OK != want {
				t.Fatalf("ok=%v (%s %s), want %v", r.OK, r.Reason, r.Message, want)
			}
			if !r.OK && r.Reason != probe.ReasonRcodeMismatch {
				t.Errorf("reason %q, want rcode_mismatch", r.Reason)
			}
		})
	}
	// A name the zone does not hold is NXDOMAIN through the zone itself.
	server := e.start(t, dnsprobe.TransportTCP, zone(t))
	o := e.opts("tcp", server)
	o.Query = "nope.example.com"
	if r := run(mustNew(t, o), okTimeout); r.Reason != probe.ReasonRcodeMismatch || r.DNS.Rcode != "NXDOMAIN" {
		t.Errorf("missing name: %q %q, want rcode_mismatch NXDOMAIN", r.Reason, r.DNS.Rcode)
	}
}

// TestProbeNeverAnswered checks that a probe of a server that drops queries
// ends as a timeout near its deadline, on every transport.
func TestProbeNeverAnswered(t *testing.T) {
	e := newEnv(t)
	const timeout = 400 * time.Millisecond
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			t.Parallel()
			server := e.start(t, tr, probetest.Drop())
			p := mustNew(t, e.opts(tr, server))
			start := time.Now()
			r := run(p, timeout)
			took := time.Since(start)
			if r.OK || r.Reason != probe.ReasonTimeout {
				t.Fatalf("ok=%v reason %q (%s), want timeout", r.OK, r.Reason, r.Message)
			}
			// Not before the deadline (minus clock granularity), and not
			// long after it: generous, the machine is noisy.
			if took < timeout-20*time.Millisecond || took > timeout+3*time.Second {
				t.Errorf("probe took %v with a %v deadline", took, timeout)
			}
			if r.DNS == nil || r.DNS.Transport != tr {
				t.Errorf("DNS facts missing on failure: %+v", r.DNS)
			}
			if want := "no answer from " + p.Server() + " over " + tr + ": timed out after "; !strings.HasPrefix(r.Message, want) {
				t.Errorf("message %q, want it to start %q", r.Message, want)
			}
		})
	}
}

func TestProbeSlowAnswer(t *testing.T) {
	e := newEnv(t)
	server := e.start(t, dnsprobe.TransportTCP, probetest.Slow(300*time.Millisecond, zone(t)))
	p := mustNew(t, e.opts("tcp", server))
	if r := run(p, okTimeout); !r.OK || r.Phase(probe.PhaseRoundTrip) < 250*time.Millisecond {
		t.Errorf("slow answer within the deadline: ok=%v %s %s round_trip %v", r.OK, r.Reason, r.Message, r.Phase(probe.PhaseRoundTrip))
	}
	if r := run(p, 100*time.Millisecond); r.Reason != probe.ReasonTimeout {
		t.Errorf("slow answer past the deadline: reason %q (%s), want timeout", r.Reason, r.Message)
	}
}

func TestProbeCancel(t *testing.T) {
	e := newEnv(t)
	for _, tr := range []string{"udp", "tcp", "quic"} {
		server := e.start(t, tr, probetest.Drop())
		p := mustNew(t, e.opts(tr, server))
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan probe.Result, 1)
		go func() { done <- p.Probe(ctx) }()
		time.AfterFunc(50*time.Millisecond, cancel)
		select {
		case r := <-done:
			if r.OK || r.Reason != probe.ReasonTimeout {
				t.Errorf("%s: cancelled probe: ok=%v reason %q", tr, r.OK, r.Reason)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: probe did not return after cancel", tr)
		}
	}
}

func TestProbeAnswerChecks(t *testing.T) {
	e := newEnv(t)
	server := e.start(t, dnsprobe.TransportUDP, zone(t))
	for _, c := range []struct {
		name   string
		modify func(*dnsprobe.Options)
		ok     bool
	}{
		{"regex matches one", func(o *dnsprobe.Options) { o.AnswerRegex = `\t192\.0\.2\.2$` }, true},
		{"regex matches none", func(o *dnsprobe.Options) { o.AnswerRegex = `198\.51\.100\.` }, false},
		{"regex with no answers", func(o *dnsprobe.Options) { o.AnswerRegex = `.`; o.Query = "example.com"; o.Record = "TXT" }, false},
		{"fail regex matches", func(o *dnsprobe.Options) { o.FailIfAnswerMatches = `192\.0\.2\.2` }, false},
		{"fail regex matches none", func(o *dnsprobe.Options) { o.FailIfAnswerMatches = `10\.` }, true},
		{"min answers met", func(o *dnsprobe.Options) { o.MinAnswers = 2 }, true},
		{"min answers missed", func(o *dnsprobe.Options) { o.MinAnswers = 3 }, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			o := e.opts("udp", server)
			c.modify(&o)
			r := run(mustNew(t, o), okTimeout)
			if r.OK != c.ok {
				t.Fatalf("ok=%v (%s: %s), want %v", r.OK, r.Reason, r.Message, c.ok)
			}
			if !c.ok && r.Reason != probe.ReasonAnswerMismatch {
				t.Errorf("reason %q, want answer_mismatch", r.Reason)
			}
		})
	}
}

func TestProbeTruncated(t *testing.T) {
	e := newEnv(t)
	server := e.start(t, dnsprobe.TransportUDP, probetest.Truncated(zone(t)))
	r := run(mustNew(t, e.opts("udp", server)), okTimeout)
	if r.Reason != probe.ReasonDNSProtocol || r.Message != "truncated" {
		t.Errorf("reason %q message %q, want dns_protocol truncated", r.Reason, r.Message)
	}

	// A zone too big for 512 bytes truncates over UDP; with EDNS0 and a
	// larger buffer the same answer fits, and over TCP it always does.
	var recs []string
	for i := range 40 {
		recs = append(recs, fmt.Sprintf("big.example.com. 300 IN A 192.0.2.%d", i))
	}
	big, err := probetest.NewZone(recs...)
	if err != nil {
		t.Fatal(err)
	}
	server = e.start(t, dnsprobe.TransportUDP, big)
	o := e.opts("udp", server)
	o.Query = "big.example.com"
	if r := run(mustNew(t, o), okTimeout); r.Reason != probe.ReasonDNSProtocol {
		t.Errorf("big answer over UDP without EDNS0: %q %q, want dns_protocol", r.Reason, r.Message)
	}
	o.UDPSize = 4096
	if r := run(mustNew(t, o), okTimeout); !r.OK || r.DNS.AnswerRRs != 40 || r.DNS.AdditionalRRs != 1 {
		t.Errorf("big answer with EDNS0 4096: ok=%v %s %s answers %d additional %d", r.OK, r.Reason, r.Message, r.DNS.AnswerRRs, r.DNS.AdditionalRRs)
	}
	o.UDPSize, o.Transport = 0, "tcp"
	if r := run(mustNew(t, o), okTimeout); !r.OK || r.DNS.AnswerRRs != 40 {
		t.Errorf("big answer over TCP: ok=%v %s %s answers %d", r.OK, r.Reason, r.Message, r.DNS.AnswerRRs)
	}
}

// TestProbeQueryFlags checks what reaches the server: RD, EDNS0 size, the
// question, and a fresh ID per probe.
func TestProbeQueryFlags(t *testing.T) {
	e := newEnv(t)
	var (
		mu   sync.Mutex
		seen []*dns.Msg
	)
	z := zone(t)
	h := dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		mu.Lock()
		seen = append(seen, r.Copy())
		mu.Unlock()
		z.ServeDNS(w, r)
	})
	server := e.start(t, dnsprobe.TransportUDP, h)
	o := e.opts("udp", server)
	o.Recursion = false
	o.UDPSize = 1232
	p := mustNew(t, o)
	for range 3 {
		if r := run(p, okTimeout); !r.OK {
			t.Fatalf("%s: %s", r.Reason, r.Message)
		}
	}
	o.Recursion = true
	o.UDPSize = 0
	if r := run(mustNew(t, o), okTimeout); !r.OK {
		t.Fatalf("%s: %s", r.Reason, r.Message)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 4 {
		t.Fatalf("server saw %d queries, want 4", len(seen))
	}
	ids := map[uint16]bool{}
	for i, m := range seen[:3] {
		ids[m.Id] = true
		if m.RecursionDesired {
			t.Errorf("query %d: RD set with recursion=false", i)
		}
		if opt := m.IsEdns0(); opt == nil || opt.UDPSize() != 1232 {
			t.Errorf("query %d: EDNS0 %v, want udp size 1232", i, opt)
		}
		if q := m.Question[0]; q.Name != "www.example.com." || q.Qtype != dns.TypeA || q.Qclass != dns.ClassINET {
			t.Errorf("query %d: question %v", i, q)
		}
	}
	// Three random 16-bit IDs collide with probability ~5e-5.
	if len(ids) < 2 {
		t.Errorf("message IDs not fresh: %v", ids)
	}
	if !seen[3].RecursionDesired || seen[3].IsEdns0() != nil {
		t.Errorf("recursion=true udp_size=0: RD %v EDNS0 %v", seen[3].RecursionDesired, seen[3].IsEdns0())
	}
}

func TestProbeConnectionRefused(t *testing.T) {
	e := newEnv(t)
	ra, err := probetest.ReserveRefusedAddr()
	if err != nil {
		t.Fatal(err)
	}
	defer ra.Close()
	for _, tr := range []string{"tcp", "tls", "https"} {
		r := run(mustNew(t, e.opts(tr, ra.Addr)), okTimeout)
		if r.Reason != probe.ReasonConnectRefused {
			t.Errorf("%s: reason %q (%s), want connect_refused", tr, r.Reason, r.Message)
		}
		if want := "no answer from " + ra.Addr + " over " + tr + ": connection refused: "; tr != "https" && !strings.HasPrefix(r.Message, want) {
			t.Errorf("%s: message %q, want it to start %q", tr, r.Message, want)
		}
	}
}

// TestProbeUDPRefused relies on Linux answering a datagram for a port held
// only by a connected UDP socket (which accepts datagrams from its peer
// alone) with ICMP port unreachable, which the prober's connected socket
// reports as ECONNREFUSED.
func TestProbeUDPRefused(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("ICMP port unreachable on a connected UDP socket is Linux behaviour")
	}
	e := newEnv(t)
	peer, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	holder, err := net.DialUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}, peer.LocalAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	r := run(mustNew(t, e.opts("udp", holder.LocalAddr().String())), okTimeout)
	if r.Reason != probe.ReasonConnectRefused {
		t.Errorf("reason %q (%s), want connect_refused", r.Reason, r.Message)
	}
	if want := "no answer from " + holder.LocalAddr().String() + " over udp: port unreachable (connection refused): "; !strings.HasPrefix(r.Message, want) {
		t.Errorf("message %q, want it to start %q", r.Message, want)
	}
}

func TestProbeCertificates(t *testing.T) {
	e := newEnv(t)
	other, err := probetest.NewCA("some other CA")
	if err != nil {
		t.Fatal(err)
	}
	otherCert, err := other.Leaf(probetest.Days(30), "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	expired, err := e.ca.Leaf(probetest.Days(-2), "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	wrongName, err := e.ca.Leaf(probetest.Days(30), "dns.example.net")
	if err != nil {
		t.Fatal(err)
	}
	z := zone(t)
	for _, c := range []struct {
		name     string
		cert     tls.Certificate
		insecure bool
		want     probe.Reason
	}{
		{"wrong CA", otherCert, false, probe.ReasonCertInvalid},
		{"expired", expired, false, probe.ReasonCertExpired},
		{"wrong name", wrongName, false, probe.ReasonCertInvalid},
		{"wrong CA insecure", otherCert, true, probe.ReasonNone},
	} {
		for _, tr := range []string{"tls", "https", "quic"} {
			t.Run(c.name+"/"+tr, func(t *testing.T) {
				srvEnv := *e
				srvEnv.cert = c.cert
				server := srvEnv.start(t, tr, z)
				o := e.opts(tr, server)
				o.TLS.InsecureSkipVerify = c.insecure
				r := run(mustNew(t, o), okTimeout)
				if r.Reason != c.want {
					t.Fatalf("reason %q (%s), want %q", r.Reason, r.Message, c.want)
				}
				// Facts survive a failed verification: the expiry is known.
				if r.TLS == nil || r.TLS.Verified || !r.TLS.EarliestExpiry.Equal(c.cert.Leaf.NotAfter) {
					t.Errorf("TLS facts %+v, want unverified with the leaf's expiry %v", r.TLS, c.cert.Leaf.NotAfter)
				}
			})
		}
	}
}

// dohTestServer is a hand-rolled DoH endpoint for what probetest's does not
// expose: the HTTP version used and error statuses.
func dohTestServer(t *testing.T, e *env, http2 bool, status int) (url string, proto *atomic.Value) {
	t.Helper()
	proto = &atomic.Value{}
	ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		proto.Store(r.Proto)
		if status != http.StatusOK {
			http.Error(w, "nope", status)
			return
		}
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/dns-message" {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		b, _ := io.ReadAll(r.Body)
		q := new(dns.Msg)
		if err := q.Unpack(b); err != nil || q.Id != 0 {
			http.Error(w, "bad query", http.StatusBadRequest)
			return
		}
		m := new(dns.Msg)
		m.SetReply(q)
		m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: q.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.IPv4(192, 0, 2, 53)})
		out, _ := m.Pack()
		w.Header().Set("Content-Type", "application/dns-message")
		_, _ = w.Write(out)
	}))
	ts.EnableHTTP2 = http2
	ts.TLS = probetest.ServerTLS(e.cert)
	ts.StartTLS()
	t.Cleanup(ts.Close)
	return ts.URL + "/custom-path", proto
}

func TestProbeDoHVersionsAndStatus(t *testing.T) {
	e := newEnv(t)
	for _, c := range []struct {
		http2 bool
		want  string
	}{{true, "HTTP/2.0"}, {false, "HTTP/1.1"}} {
		url, proto := dohTestServer(t, e, c.http2, http.StatusOK)
		r := run(mustNew(t, e.opts("https", url)), okTimeout)
		if !r.OK || len(r.DNS.Answers) != 1 || !strings.Contains(r.DNS.Answers[0], "192.0.2.53") {
			t.Fatalf("http2=%v: ok=%v %s %s answers %q", c.http2, r.OK, r.Reason, r.Message, r.DNS.Answers)
		}
		if got := proto.Load(); got != c.want {
			t.Errorf("server saw %v, want %s", got, c.want)
		}
	}
	url, _ := dohTestServer(t, e, true, http.StatusBadGateway)
	r := run(mustNew(t, e.opts("https", url)), okTimeout)
	if r.Reason != probe.ReasonHTTPError || !strings.Contains(r.Message, "502") {
		t.Errorf("502 answer: %q %q, want http_error naming 502", r.Reason, r.Message)
	}
}

// A token in a DoH URL is sent, and shown in no Result or error.
func TestProbeDoHURLSecretIsRedacted(t *testing.T) {
	e := newEnv(t)
	u, _ := dohTestServer(t, e, true, http.StatusOK)
	r := run(mustNew(t, e.opts("https", u+"?key=s3cret")), okTimeout)
	if !r.OK || r.DNS.Server != u+"?key=xxxxx" {
		t.Fatalf("ok=%v %s %s, server %q; want success and the URL redacted", r.OK, r.Reason, r.Message, r.DNS.Server)
	}
	if b, _ := json.Marshal(r); strings.Contains(string(b), "s3cret") {
		t.Errorf("result shows the token: %s", b)
	}
	for _, server := range []string{"http://dns.example/q?key=s3cret", "https://[bad/q?key=s3cret", "https://dns.example:99999/?key=s3cret"} {
		_, err := dnsprobe.New(e.opts("https", server))
		if err == nil || strings.Contains(err.Error(), "s3cret") || !strings.Contains(err.Error(), "key=xxxxx") {
			t.Errorf("New(server %q): %v; want a refusal quoting it redacted", server, err)
		}
	}
}

// TestProbeHostnameServer resolves the server's name per probe and records
// the resolve phase; with ip_protocol ip4, localhost is 127.0.0.1.
func TestProbeHostnameServer(t *testing.T) {
	e := newEnv(t)
	for _, tr := range []string{"udp", "tls"} {
		server := e.start(t, tr, zone(t))
		_, port, _ := net.SplitHostPort(server)
		o := e.opts(tr, "localhost:"+port)
		o.Net.IPProtocol = probe.IPv4
		r := run(mustNew(t, o), okTimeout)
		if !r.OK {
			t.Fatalf("%s: %s %s", tr, r.Reason, r.Message)
		}
		if r.RemoteAddr != "127.0.0.1:"+port {
			t.Errorf("%s: remote %q", tr, r.RemoteAddr)
		}
		if len(r.Phases) == 0 || r.Phases[0].Name != probe.PhaseResolve {
			t.Errorf("%s: phases %+v, want resolve first", tr, r.Phases)
		}
		if r.TLS != nil && r.TLS.ServerName != "localhost" {
			t.Errorf("%s: SNI %q, want localhost", tr, r.TLS.ServerName)
		}
	}
}

// TestProbeSourceIP sends from 127.0.0.2 (all of 127/8 is local on Linux)
// and checks the server saw that address.
func TestProbeSourceIP(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("127.0.0.2 is only local by default on Linux")
	}
	e := newEnv(t)
	z := zone(t)
	var from atomic.Value
	h := dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		from.Store(w.RemoteAddr().String())
		z.ServeDNS(w, r)
	})
	for _, tr := range []string{"udp", "tcp", "quic"} {
		server := e.start(t, tr, h)
		o := e.opts(tr, server)
		o.Net.SourceIP = netip.MustParseAddr("127.0.0.2")
		if r := run(mustNew(t, o), okTimeout); !r.OK {
			t.Fatalf("%s: %s %s", tr, r.Reason, r.Message)
		}
		if got, _ := from.Load().(string); !strings.HasPrefix(got, "127.0.0.2:") {
			t.Errorf("%s: server saw the query from %q, want 127.0.0.2", tr, got)
		}
	}
}

// TestProbeConcurrentAndNoLeaks runs one Prober per transport from many
// goroutines (the race detector checks shared state), against answering and
// dropping servers, then closes the servers and checks that the goroutine
// count is back to what it was before anything started: neither the probes
// nor probetest's servers leave anything behind.
func TestProbeConcurrentAndNoLeaks(t *testing.T) {
	e := newEnv(t)
	z := zone(t)
	baseline := runtime.NumGoroutine()

	type target struct {
		name string
		p    *dnsprobe.Prober
		want bool
	}
	var (
		targets []target
		servers []*probetest.DNSServer
	)
	for _, tr := range transports {
		for _, h := range []dns.Handler{z, probetest.Drop()} {
			var (
				s   *probetest.DNSServer
				err error
			)
			switch tr {
			case "udp", "tcp":
				s, err = probetest.StartDNS(h)
			case "tls":
				s, err = probetest.StartDoT(h, e.cert)
			case "https":
				s, err = probetest.StartDoH(h, e.cert)
			case "quic":
				s, err = probetest.StartDoQ(h, e.cert)
			}
			if err != nil {
				t.Fatal(err)
			}
			servers = append(servers, s)
			server := s.Addr()
			if tr == "https" {
				server = s.URL()
			}
			_, answers := h.(*probetest.Zone)
			targets = append(targets, target{fmt.Sprintf("%s answers=%v", tr, answers), mustNew(t, e.opts(tr, server)), answers})
		}
	}

	var wg sync.WaitGroup
	for _, tg := range targets {
		for range 3 {
			wg.Go(func() {
				timeout := okTimeout
				if !tg.want {
					timeout = 200 * time.Millisecond
				}
				if r := run(tg.p, timeout); r.OK != tg.want {
					t.Errorf("%s: ok=%v (%s %s), want %v", tg.name, r.OK, r.Reason, r.Message, tg.want)
				}
			})
		}
	}
	wg.Wait()
	for _, s := range servers {
		if err := s.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	}
	// Goroutines of closed connections exit asynchronously; poll, generously.
	deadline := time.Now().Add(15 * time.Second)
	for runtime.NumGoroutine() > baseline {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			n := runtime.Stack(buf, true)
			t.Fatalf("%d goroutines, baseline %d:\n%s", runtime.NumGoroutine(), baseline, buf[:n])
		}
		time.Sleep(10 * time.Millisecond)
	}
}
