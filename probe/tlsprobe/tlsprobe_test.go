package tlsprobe_test

import (
	"context"
	"crypto/tls"
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vantage-probe/vantage/internal/testenv"
	"github.com/vantage-probe/vantage/probe"
	"github.com/vantage-probe/vantage/probe/probetest"
	"github.com/vantage-probe/vantage/probe/tlsprobe"
)

// fixture is a CA written to a ca_file, and helpers around it.
type fixture struct {
	t      *testing.T
	ca     *probetest.CA
	caFile string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ca, err := probetest.NewCA("tlsprobe test CA")
	if err != nil {
		t.Fatal(err)
	}
	path, err := ca.WriteCAFile(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{t: t, ca: ca, caFile: path}
}

func (f *fixture) leaf(notAfter time.Time, names ...string) tls.Certificate {
	f.t.Helper()
	c, err := f.ca.Leaf(notAfter, names...)
	if err != nil {
		f.t.Fatal(err)
	}
	return c
}

func (f *fixture) server(cert tls.Certificate) *probetest.TLSServer {
	f.t.Helper()
	s, err := probetest.StartTLS(cert)
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { _ = s.Close() })
	return s
}

// options for address with the fixture's CA as the only root.
func (f *fixture) options(address string) tlsprobe.Options {
	return tlsprobe.Options{
		Address: address,
		TLS:     probe.TLSOptions{CAFile: f.caFile},
		Net:     probe.Net{IPProtocol: probe.IPv4},
	}
}

func newProber(t testing.TB, o tlsprobe.Options) *tlsprobe.Prober {
	t.Helper()
	p, err := tlsprobe.New(o)
	if err != nil {
		t.Fatalf("New(%+v): %v", o, err)
	}
	return p
}

func run(p *tlsprobe.Prober, timeout time.Duration) probe.Result {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return p.Probe(ctx)
}

func startTCP(t *testing.T, mode probetest.TCPMode, banner string) *probetest.TCPServer {
	t.Helper()
	s, err := probetest.StartTCP(mode, banner)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// localhost turns 127.0.0.1:port into localhost:port, so the probe
// resolves a name and sends SNI.
func localhost(addr string) string {
	_, port, _ := net.SplitHostPort(addr)
	return net.JoinHostPort("localhost", port)
}

func wantFail(t *testing.T, r probe.Result, reason probe.Reason) {
	t.Helper()
	if r.OK || r.Reason != reason {
		t.Fatalf("OK %v reason %q (%s), want failure %q", r.OK, r.Reason, r.Message, reason)
	}
	if r.Message == "" {
		t.Fatalf("failure %q without a message", r.Reason)
	}
}

func TestValidCertificate(t *testing.T) {
	f := newFixture(t)
	leaf := f.leaf(probetest.Days(365), "localhost")
	s := f.server(leaf)
	o := f.options(localhost(s.Addr))
	o.MinDaysLeft = 14
	r := run(newProber(t, o), 10*time.Second)
	if !r.OK || r.Reason != probe.ReasonNone {
		t.Fatalf("probe failed: %s %s", r.Reason, r.Message)
	}
	if s.LastSNI() != "localhost" {
		t.Errorf("server saw SNI %q, want localhost", s.LastSNI())
	}
	if r.RemoteAddr != s.Addr {
		t.Errorf("RemoteAddr %q, want %q", r.RemoteAddr, s.Addr)
	}
	if r.TLS == nil || !r.TLS.Verified || r.TLS.ServerName != "localhost" || len(r.TLS.Chain) != 2 {
		t.Fatalf("facts %+v", r.TLS)
	}
	if !r.TLS.EarliestExpiry.Equal(leaf.Leaf.NotAfter) || !r.TLS.LastChainExpiry.Equal(leaf.Leaf.NotAfter) {
		t.Errorf("expiries %v / %v, want the leaf's %v", r.TLS.EarliestExpiry, r.TLS.LastChainExpiry, leaf.Leaf.NotAfter)
	}
	if d := r.TLS.DaysLeft(time.Now()); d < 364 || d > 365 {
		t.Errorf("DaysLeft %.2f, want about 365", d)
	}
	var sum time.Duration
	for _, name := range []string{probe.PhaseResolve, probe.PhaseConnect, probe.PhaseTLS} {
		d := r.Phase(name)
		if d <= 0 {
			t.Errorf("phase %s = %v, want > 0", name, d)
		}
		sum += d
	}
	if len(r.Phases) != 3 {
		t.Errorf("phases %v, want resolve, connect, tls", r.Phases)
	}
	if r.Duration < sum || r.At.IsZero() {
		t.Errorf("Duration %v below the sum of phases %v (At %v)", r.Duration, sum, r.At)
	}
}

func TestIPLiteralSendsNoSNI(t *testing.T) {
	f := newFixture(t)
	s := f.server(f.leaf(probetest.Days(365), "127.0.0.1"))
	r := run(newProber(t, f.options(s.Addr)), 10*time.Second)
	if !r.OK {
		t.Fatalf("probe failed: %s %s", r.Reason, r.Message)
	}
	if s.LastSNI() != "" || r.TLS.ServerName != "" {
		t.Errorf("SNI %q (facts %q) for an IP literal, want none", s.LastSNI(), r.TLS.ServerName)
	}
	if r.Phase(probe.PhaseResolve) != 0 {
		t.Errorf("resolve took %v for an IP literal", r.Phase(probe.PhaseResolve))
	}
}

func TestServerNameOverride(t *testing.T) {
	f := newFixture(t)
	s := f.server(f.leaf(probetest.Days(365), "api.test"))
	o := f.options(s.Addr)
	o.TLS.ServerName = "api.test"
	r := run(newProber(t, o), 10*time.Second)
	if !r.OK {
		t.Fatalf("probe failed: %s %s", r.Reason, r.Message)
	}
	if s.LastSNI() != "api.test" {
		t.Errorf("SNI %q, want api.test", s.LastSNI())
	}
}

// wantWarn checks a probe that succeeded with a warning.
func wantWarn(t *testing.T, r probe.Result, warning probe.Reason) {
	t.Helper()
	if !r.OK || r.Warning != warning {
		t.Fatalf("OK %v reason %q warning %q (%s), want success with warning %q", r.OK, r.Reason, r.Warning, r.Message, warning)
	}
	if r.Message == "" {
		t.Fatalf("warning %q without a message", r.Warning)
	}
}

// An expiring certificate is a warning: the endpoint answers, so the probe
// succeeds (the target stays up) and says how long is left.
func TestExpiringSoon(t *testing.T) {
	f := newFixture(t)
	leaf := f.leaf(probetest.Days(5), "localhost")
	s := f.server(leaf)
	o := f.options(localhost(s.Addr))
	o.MinDaysLeft = 14
	r := run(newProber(t, o), 10*time.Second)
	wantWarn(t, r, probe.ReasonCertExpiring)
	if !strings.Contains(r.Message, "expires in 4.9 days") && !strings.Contains(r.Message, "expires in 5.0 days") {
		t.Errorf("message %q does not say how many days are left", r.Message)
	}
	if !strings.Contains(r.Message, "min_days_left 14") {
		t.Errorf("message %q does not name the threshold", r.Message)
	}
	if r.TLS == nil || !r.TLS.Verified || !r.TLS.EarliestExpiry.Equal(leaf.Leaf.NotAfter) {
		t.Fatalf("facts %+v, want the verified chain and its expiry", r.TLS)
	}

	o.MinDaysLeft = 3
	if r := run(newProber(t, o), 10*time.Second); !r.OK || r.Warning != "" {
		t.Fatalf("5 days left with min_days_left 3: %s %s %s", r.Reason, r.Warning, r.Message)
	}
	o.MinDaysLeft = 0 // disabled
	if r := run(newProber(t, o), 10*time.Second); !r.OK || r.Warning != "" {
		t.Fatalf("min_days_left 0: %s %s %s", r.Reason, r.Warning, r.Message)
	}
}

func TestExpired(t *testing.T) {
	f := newFixture(t)
	leaf := f.leaf(probetest.Days(-2), "localhost")
	s := f.server(leaf)
	r := run(newProber(t, f.options(localhost(s.Addr))), 10*time.Second)
	wantFail(t, r, probe.ReasonCertExpired)
	if r.TLS == nil || r.TLS.Verified {
		t.Fatalf("facts %+v, want unverified facts", r.TLS)
	}
	if !r.TLS.EarliestExpiry.Equal(leaf.Leaf.NotAfter) || r.TLS.DaysLeft(time.Now()) > -1.9 {
		t.Errorf("EarliestExpiry %v, want the expired leaf's %v", r.TLS.EarliestExpiry, leaf.Leaf.NotAfter)
	}
	if !r.TLS.LastChainExpiry.IsZero() {
		t.Errorf("LastChainExpiry %v without a verified chain", r.TLS.LastChainExpiry)
	}
}

func TestInvalidCertificates(t *testing.T) {
	f := newFixture(t)
	other, err := probetest.NewCA("some other CA")
	if err != nil {
		t.Fatal(err)
	}
	stranger, err := other.Leaf(probetest.Days(365), "localhost")
	if err != nil {
		t.Fatal(err)
	}
	for name, cert := range map[string]tls.Certificate{
		"wrong host name":   f.leaf(probetest.Days(365), "elsewhere.test"),
		"unknown authority": stranger,
	} {
		t.Run(name, func(t *testing.T) {
			s := f.server(cert)
			r := run(newProber(t, f.options(localhost(s.Addr))), 10*time.Second)
			wantFail(t, r, probe.ReasonCertInvalid)
			if r.TLS == nil || r.TLS.Verified || !r.TLS.EarliestExpiry.Equal(cert.Leaf.NotAfter) {
				t.Fatalf("facts %+v, want the presented chain, unverified", r.TLS)
			}
		})
	}
}

func TestSystemRootsRejectTestCA(t *testing.T) {
	f := newFixture(t)
	s := f.server(f.leaf(probetest.Days(365), "localhost"))
	o := f.options(localhost(s.Addr))
	o.TLS.CAFile = "" // system roots, which do not know the test CA
	wantFail(t, run(newProber(t, o), 10*time.Second), probe.ReasonCertInvalid)
}

func TestInsecureSkipVerify(t *testing.T) {
	f := newFixture(t)
	leaf := f.leaf(probetest.Days(-1), "elsewhere.test") // expired, wrong name
	s := f.server(leaf)
	o := f.options(localhost(s.Addr))
	o.TLS = probe.TLSOptions{InsecureSkipVerify: true}
	r := run(newProber(t, o), 10*time.Second)
	if !r.OK {
		t.Fatalf("insecure probe failed: %s %s", r.Reason, r.Message)
	}
	if r.TLS == nil || r.TLS.Verified || !r.TLS.EarliestExpiry.Equal(leaf.Leaf.NotAfter) {
		t.Fatalf("facts %+v, want the unverified chain", r.TLS)
	}
	// Expiry is still watched without verification.
	o.MinDaysLeft = 14
	r = run(newProber(t, o), 10*time.Second)
	wantWarn(t, r, probe.ReasonCertExpiring)
	if !strings.Contains(r.Message, "expired 1.0 days ago") {
		t.Errorf("message %q", r.Message)
	}
}

func TestHandshakeFailure(t *testing.T) {
	f := newFixture(t)
	resetting := f.server(f.leaf(probetest.Days(365), "127.0.0.1"))
	resetting.SetMode(probetest.TCPReset)
	for _, tt := range []struct {
		name string
		addr string
		// alsoOK is another acceptable reason: a RST may beat the
		// client's connect (gVisor's loopback does that).
		alsoOK probe.Reason
	}{
		{name: "not TLS", addr: startTCP(t, probetest.TCPEcho, "SSH-2.0-OpenSSH_9.6\r\n").Addr},
		{name: "hangs up", addr: startTCP(t, probetest.TCPClose, "").Addr},
		{name: "resets", addr: resetting.Addr, alsoOK: probe.ReasonConnectError},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := run(newProber(t, f.options(tt.addr)), 10*time.Second)
			if tt.alsoOK != "" && r.Reason == tt.alsoOK {
				return
			}
			wantFail(t, r, probe.ReasonTLSHandshake)
			if r.TLS != nil {
				t.Errorf("facts %+v without a completed handshake", r.TLS)
			}
			if r.Phase(probe.PhaseTLS) <= 0 {
				t.Errorf("no tls phase: %v", r.Phases)
			}
		})
	}
}

func TestRefused(t *testing.T) {
	ref, err := probetest.ReserveRefusedAddr()
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close()
	f := newFixture(t)
	r := run(newProber(t, f.options(ref.Addr)), 10*time.Second)
	wantFail(t, r, probe.ReasonConnectRefused)
	if r.Phase(probe.PhaseTLS) != 0 || r.TLS != nil {
		t.Errorf("tls phase or facts after a refused connect: %v %+v", r.Phases, r.TLS)
	}
}

func TestDNSError(t *testing.T) {
	ref, err := probetest.ReserveRefusedAddr()
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close()
	f := newFixture(t)
	o := f.options("no-such-host.test:443")
	// A resolver whose DNS server refuses: a real lookup that fails fast,
	// with no dependence on the machine's resolver or the internet.
	o.Net.Resolver = &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "tcp", ref.Addr)
	}}
	r := run(newProber(t, o), 10*time.Second)
	wantFail(t, r, probe.ReasonDNSError)
	if r.Phase(probe.PhaseConnect) != 0 {
		t.Errorf("connect phase after a failed lookup: %v", r.Phases)
	}
}

// TestTimeout: a server that accepts and never answers the ClientHello.
// The probe must give up at the context's deadline, not before, not much
// after.
func TestTimeout(t *testing.T) {
	f := newFixture(t)
	ts := f.server(f.leaf(probetest.Days(365), "127.0.0.1"))
	ts.SetMode(probetest.TCPSilent)
	for name, addr := range map[string]string{
		"silent TCP": startTCP(t, probetest.TCPSilent, "").Addr,
		"silent TLS": ts.Addr,
	} {
		t.Run(name, func(t *testing.T) {
			const timeout = 300 * time.Millisecond
			p := newProber(t, f.options(addr))
			start := time.Now()
			r := run(p, timeout)
			took := time.Since(start)
			wantFail(t, r, probe.ReasonTimeout)
			if took < timeout-20*time.Millisecond || took > timeout+3*time.Second {
				t.Fatalf("returned after %v, want about %v", took, timeout)
			}
			if r.Phase(probe.PhaseTLS) < timeout/2 {
				t.Errorf("tls phase %v, want most of the timeout", r.Phase(probe.PhaseTLS))
			}
		})
	}
}

// TestCancel: cancelling a context without deadline stops a hung probe.
func TestCancel(t *testing.T) {
	f := newFixture(t)
	s := startTCP(t, probetest.TCPSilent, "")
	p := newProber(t, f.options(s.Addr))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan probe.Result, 1)
	go func() { done <- p.Probe(ctx) }()
	testenv.Poll(t, 10*time.Second, "the probe to connect", func() bool { return s.Accepted() == 1 })
	cancel()
	select {
	case r := <-done:
		wantFail(t, r, probe.ReasonTimeout)
	case <-time.After(10 * time.Second):
		t.Fatal("probe still running 10s after cancel")
	}
}

func TestConcurrentProbes(t *testing.T) {
	f := newFixture(t)
	s := f.server(f.leaf(probetest.Days(365), "localhost"))
	p := newProber(t, f.options(localhost(s.Addr)))
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for range 8 {
		wg.Go(func() {
			if r := run(p, 10*time.Second); !r.OK {
				errs <- string(r.Reason) + ": " + r.Message
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

func TestNewValidation(t *testing.T) {
	f := newFixture(t)
	notPEM := filepath.Join(t.TempDir(), "not.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		o    tlsprobe.Options
		want []string // substrings of the error
		is   error
	}{
		{name: "no port", o: tlsprobe.Options{Address: "example.com"}, want: []string{`address "example.com"`}},
		{name: "port 0", o: tlsprobe.Options{Address: "example.com:0"}, want: []string{`address "example.com:0"`, `port "0"`}},
		{name: "named port", o: tlsprobe.Options{Address: "example.com:https"}, want: []string{`port "https"`}},
		{name: "no host", o: tlsprobe.Options{Address: ":443"}, want: []string{`address ":443": missing host`}},
		{
			name: "wrong family", o: tlsprobe.Options{Address: "[::1]:443", Net: probe.Net{IPProtocol: probe.IPv4}},
			want: []string{`address "[::1]:443"`, `"ip4"`},
		},
		{name: "negative min_days_left", o: tlsprobe.Options{Address: "a:1", MinDaysLeft: -1}, want: []string{"min_days_left -1"}},
		{
			name: "missing ca_file", o: tlsprobe.Options{Address: "a:1", TLS: probe.TLSOptions{CAFile: "/nonexistent/ca.pem"}},
			want: []string{`ca_file "/nonexistent/ca.pem"`}, is: fs.ErrNotExist,
		},
		{
			name: "ca_file without PEM", o: tlsprobe.Options{Address: "a:1", TLS: probe.TLSOptions{CAFile: notPEM}},
			want: []string{`ca_file "` + notPEM + `": no PEM`},
		},
		{
			name: "every problem at once",
			o:    tlsprobe.Options{Address: "nope", MinDaysLeft: -3, TLS: probe.TLSOptions{CAFile: "/nonexistent/ca.pem"}},
			want: []string{`address "nope"`, "min_days_left -3", `ca_file "/nonexistent/ca.pem"`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := tlsprobe.New(tt.o)
			if err == nil || p != nil {
				t.Fatalf("New = %v, %v; want an error", p, err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error %v is not %v", err, tt.is)
			}
		})
	}
	if _, err := tlsprobe.New(f.options("example.com:443")); err != nil {
		t.Fatalf("valid options: %v", err)
	}
}

// TestNoLeaks runs every outcome and checks that goroutines and server-side
// connections return to where they were.
func TestNoLeaks(t *testing.T) {
	f := newFixture(t)
	good := f.server(f.leaf(probetest.Days(365), "localhost"))
	expired := f.server(f.leaf(probetest.Days(-1), "localhost"))
	silent := startTCP(t, probetest.TCPSilent, "")
	plain := startTCP(t, probetest.TCPEcho, "220 not tls\r\n")
	ref, err := probetest.ReserveRefusedAddr()
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close()
	probers := []*tlsprobe.Prober{
		newProber(t, f.options(localhost(good.Addr))),
		newProber(t, f.options(localhost(expired.Addr))),
		newProber(t, f.options(silent.Addr)),
		newProber(t, f.options(plain.Addr)),
		newProber(t, f.options(ref.Addr)),
	}
	run(probers[0], 10*time.Second) // warm up lazily started runtime goroutines
	base := runtime.NumGoroutine()
	for range 3 {
		for _, p := range probers {
			run(p, 100*time.Millisecond)
		}
		// A cancelled probe too.
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		probers[2].Probe(ctx)
	}
	testenv.Poll(t, 10*time.Second, "goroutines back to baseline", func() bool { return runtime.NumGoroutine() <= base })
	for _, s := range []*probetest.TCPServer{good.TCPServer, expired.TCPServer, silent, plain} {
		testenv.Poll(t, 10*time.Second, "server connections closed", func() bool { return s.Active() == 0 })
	}
}

// waitFor polls cond until it holds or a generous bound passes.

func BenchmarkProbeTLS(b *testing.B) {
	ca, err := probetest.NewCA("bench CA")
	if err != nil {
		b.Fatal(err)
	}
	leaf, err := ca.Leaf(probetest.Days(365), "127.0.0.1")
	if err != nil {
		b.Fatal(err)
	}
	caFile, err := ca.WriteCAFile(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	s, err := probetest.StartTLS(leaf)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	s.SetMode(probetest.TCPClose)
	p := newProber(b, tlsprobe.Options{Address: s.Addr, MinDaysLeft: 14, TLS: probe.TLSOptions{CAFile: caFile}})
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	b.ReportAllocs()
	defer reportCPU(b)()
	for b.Loop() {
		if r := p.Probe(ctx); !r.OK {
			b.Fatalf("%s: %s", r.Reason, r.Message)
		}
	}
}
