package tcpprobe_test

import (
	"context"
	"errors"
	"io/fs"
	"net"
	"regexp/syntax"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/vantage-probe/vantage/internal/testenv"
	"github.com/vantage-probe/vantage/probe"
	"github.com/vantage-probe/vantage/probe/probetest"
	"github.com/vantage-probe/vantage/probe/tcpprobe"
)

func startTCP(t testing.TB, mode probetest.TCPMode, banner string) *probetest.TCPServer {
	t.Helper()
	s, err := probetest.StartTCP(mode, banner)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func newProber(t testing.TB, o tcpprobe.Options) *tcpprobe.Prober {
	t.Helper()
	p, err := tcpprobe.New(o)
	if err != nil {
		t.Fatalf("New(%+v): %v", o, err)
	}
	return p
}

func run(p *tcpprobe.Prober, timeout time.Duration) probe.Result {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return p.Probe(ctx)
}

func wantOK(t *testing.T, r probe.Result) {
	t.Helper()
	if !r.OK || r.Reason != probe.ReasonNone {
		t.Fatalf("probe failed: %s: %s", r.Reason, r.Message)
	}
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

func TestConnect(t *testing.T) {
	s := startTCP(t, probetest.TCPClose, "")
	_, port, _ := net.SplitHostPort(s.Addr)
	r := run(newProber(t, tcpprobe.Options{
		Address: net.JoinHostPort("localhost", port),
		Net:     probe.Net{IPProtocol: probe.IPv4},
	}), 10*time.Second)
	wantOK(t, r)
	// The probe may be done before the server's accept loop runs.
	testenv.Poll(t, 10*time.Second, "the server to accept the probe", func() bool { return s.Accepted() == 1 })
	if r.RemoteAddr != s.Addr {
		t.Errorf("RemoteAddr %q, want %q", r.RemoteAddr, s.Addr)
	}
	if r.Phase(probe.PhaseResolve) <= 0 || r.Phase(probe.PhaseConnect) <= 0 || len(r.Phases) != 2 {
		t.Errorf("phases %v, want resolve and connect", r.Phases)
	}
	if r.TCP != nil || r.TLS != nil {
		t.Errorf("facts %+v %+v for a connect-only probe", r.TCP, r.TLS)
	}
	if r.Duration < r.Phase(probe.PhaseConnect) {
		t.Errorf("Duration %v below the connect phase", r.Duration)
	}
}

func TestRefused(t *testing.T) {
	ref, err := probetest.ReserveRefusedAddr()
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close()
	r := run(newProber(t, tcpprobe.Options{Address: ref.Addr, Expect: "x"}), 10*time.Second)
	wantFail(t, r, probe.ReasonConnectRefused)
	if r.TCP != nil || r.Phase(probe.PhaseRoundTrip) != 0 {
		t.Errorf("read facts or round trip after a refused connect: %+v %v", r.TCP, r.Phases)
	}
}

// TestSendExpect talks to an echo server that keeps the connection open
// after answering: the probe must stop reading at the match, not wait for
// EOF or the read limit (which would end in a timeout).
func TestSendExpect(t *testing.T) {
	s := startTCP(t, probetest.TCPEcho, "220 mail.test ESMTP ready\r\n")
	r := run(newProber(t, tcpprobe.Options{Address: s.Addr, Send: "PING 42\r\n", Expect: `PING (\d+)`}), 10*time.Second)
	wantOK(t, r)
	if r.TCP == nil || r.TCP.Banner != "220 mail.test ESMTP ready" || r.TCP.BytesRead < len("220 mail.test ESMTP ready\r\n") {
		t.Fatalf("TCP facts %+v", r.TCP)
	}
	if r.Phase(probe.PhaseRoundTrip) <= 0 {
		t.Errorf("no round_trip phase: %v", r.Phases)
	}
}

func TestExpectBannerOnly(t *testing.T) {
	s := startTCP(t, probetest.TCPEcho, "SSH-2.0-OpenSSH_9.6\r\n")
	r := run(newProber(t, tcpprobe.Options{Address: s.Addr, Expect: `^SSH-2\.0-`}), 10*time.Second)
	wantOK(t, r)
	if r.TCP == nil || r.TCP.Banner != "SSH-2.0-OpenSSH_9.6" || r.TCP.BytesRead != len("SSH-2.0-OpenSSH_9.6\r\n") {
		t.Fatalf("TCP facts %+v", r.TCP)
	}
}

func TestSendOnly(t *testing.T) {
	s := startTCP(t, probetest.TCPSilent, "")
	r := run(newProber(t, tcpprobe.Options{Address: s.Addr, Send: "QUIT\r\n"}), 10*time.Second)
	wantOK(t, r)
	if r.TCP != nil {
		t.Errorf("TCP facts %+v without a read", r.TCP)
	}
	if _, ok := phase(r, probe.PhaseRoundTrip); !ok {
		t.Errorf("no round_trip phase: %v", r.Phases)
	}
}

func phase(r probe.Result, name string) (time.Duration, bool) {
	for _, p := range r.Phases {
		if p.Name == name {
			return p.Duration, true
		}
	}
	return 0, false
}

func TestExpectMismatch(t *testing.T) {
	t.Run("EOF", func(t *testing.T) {
		s := startTCP(t, probetest.TCPClose, "")
		r := run(newProber(t, tcpprobe.Options{Address: s.Addr, Expect: "hello"}), 10*time.Second)
		wantFail(t, r, probe.ReasonExpectMismatch)
		if r.TCP == nil || r.TCP.BytesRead != 0 || !strings.Contains(r.Message, "EOF") {
			t.Fatalf("facts %+v message %q", r.TCP, r.Message)
		}
	})
	t.Run("read limit", func(t *testing.T) {
		// The server keeps the connection open: only the limit ends it.
		s := startTCP(t, probetest.TCPEcho, "0123456789abcdef\n")
		r := run(newProber(t, tcpprobe.Options{Address: s.Addr, Expect: "abc", ReadLimit: 8}), 10*time.Second)
		wantFail(t, r, probe.ReasonExpectMismatch)
		if r.TCP == nil || r.TCP.BytesRead != 8 || r.TCP.Banner != "01234567" {
			t.Fatalf("facts %+v, want 8 bytes read", r.TCP)
		}
		if !strings.Contains(r.Message, `"01234567"`) || !strings.Contains(r.Message, "read_limit") {
			t.Errorf("message %q should show what was read and why it stopped", r.Message)
		}
	})
}

func TestExpectTimeout(t *testing.T) {
	s := startTCP(t, probetest.TCPSilent, "")
	const timeout = 300 * time.Millisecond
	p := newProber(t, tcpprobe.Options{Address: s.Addr, Send: "hello?\n", Expect: "hi"})
	start := time.Now()
	r := run(p, timeout)
	took := time.Since(start)
	wantFail(t, r, probe.ReasonTimeout)
	if took < timeout-20*time.Millisecond || took > timeout+3*time.Second {
		t.Fatalf("returned after %v, want about %v", took, timeout)
	}
	if r.Phase(probe.PhaseRoundTrip) < timeout/2 {
		t.Errorf("round_trip %v, want most of the timeout", r.Phase(probe.PhaseRoundTrip))
	}
	if r.TCP == nil || r.TCP.BytesRead != 0 {
		t.Errorf("facts %+v", r.TCP)
	}
}

func TestCancel(t *testing.T) {
	s := startTCP(t, probetest.TCPSilent, "")
	p := newProber(t, tcpprobe.Options{Address: s.Addr, Expect: "never"})
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

func TestReset(t *testing.T) {
	s := startTCP(t, probetest.TCPReset, "")
	r := run(newProber(t, tcpprobe.Options{Address: s.Addr, Expect: "x"}), 10*time.Second)
	// The RST lands either on the read (io_error) or, when it beats the
	// connect to completion (gVisor), on the dial (connect_error).
	if r.Reason != probe.ReasonConnectError {
		wantFail(t, r, probe.ReasonIOError)
	}
}

func TestBannerTruncation(t *testing.T) {
	for _, tt := range []struct {
		name, banner, want string
	}{
		{"long line", strings.Repeat("a", 300) + "\n", strings.Repeat("a", 128)},
		{"split rune dropped", strings.Repeat("a", 127) + "é tail\n", strings.Repeat("a", 127)},
		{"whole rune kept", strings.Repeat("a", 126) + "é tail\n", strings.Repeat("a", 126) + "é"},
		{"invalid UTF-8 replaced", "ok \xff\xfe\n", "ok \uFFFD"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := startTCP(t, probetest.TCPEcho, tt.banner)
			r := run(newProber(t, tcpprobe.Options{Address: s.Addr, Expect: `\n`}), 10*time.Second)
			wantOK(t, r)
			if r.TCP.Banner != tt.want || r.TCP.BytesRead != len(tt.banner) {
				t.Fatalf("banner %q (%d bytes read), want %q (%d)", r.TCP.Banner, r.TCP.BytesRead, tt.want, len(tt.banner))
			}
		})
	}
}

func TestTLS(t *testing.T) {
	ca, err := probetest.NewCA("tcpprobe CA")
	if err != nil {
		t.Fatal(err)
	}
	caFile, err := ca.WriteCAFile(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	good, err := ca.Leaf(probetest.Days(90), "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	s, err := probetest.StartTLS(good)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	o := tcpprobe.Options{Address: s.Addr, UseTLS: true, TLS: probe.TLSOptions{CAFile: caFile}, Send: "hello over tls\n", Expect: "^hello over"}

	t.Run("send and expect inside TLS", func(t *testing.T) {
		r := run(newProber(t, o), 10*time.Second)
		wantOK(t, r)
		if r.TLS == nil || !r.TLS.Verified || !r.TLS.EarliestExpiry.Equal(good.Leaf.NotAfter) {
			t.Fatalf("TLS facts %+v", r.TLS)
		}
		if r.TCP == nil || r.TCP.Banner != "hello over tls" {
			t.Fatalf("TCP facts %+v", r.TCP)
		}
		for _, name := range []string{probe.PhaseConnect, probe.PhaseTLS, probe.PhaseRoundTrip} {
			if r.Phase(name) <= 0 {
				t.Errorf("phase %s missing: %v", name, r.Phases)
			}
		}
	})
	t.Run("unknown authority", func(t *testing.T) {
		o := o
		o.TLS.CAFile = ""
		r := run(newProber(t, o), 10*time.Second)
		wantFail(t, r, probe.ReasonCertInvalid)
		if r.TLS == nil || r.TCP != nil {
			t.Fatalf("facts TLS %+v TCP %+v; want TLS facts and no read", r.TLS, r.TCP)
		}
	})
	t.Run("expired", func(t *testing.T) {
		old, err := ca.Leaf(probetest.Days(-1), "127.0.0.1")
		if err != nil {
			t.Fatal(err)
		}
		s.SetCertificate(old)
		defer s.SetCertificate(good)
		r := run(newProber(t, o), 10*time.Second)
		wantFail(t, r, probe.ReasonCertExpired)
		if r.TLS == nil || !r.TLS.EarliestExpiry.Equal(old.Leaf.NotAfter) {
			t.Fatalf("TLS facts %+v", r.TLS)
		}
	})
	t.Run("insecure", func(t *testing.T) {
		o := o
		o.TLS = probe.TLSOptions{InsecureSkipVerify: true}
		r := run(newProber(t, o), 10*time.Second)
		wantOK(t, r)
		if r.TLS == nil || r.TLS.Verified {
			t.Fatalf("TLS facts %+v", r.TLS)
		}
	})
	t.Run("plain server", func(t *testing.T) {
		plain := startTCP(t, probetest.TCPEcho, "220 plain\r\n")
		o := o
		o.Address = plain.Addr
		wantFail(t, run(newProber(t, o), 10*time.Second), probe.ReasonTLSHandshake)
	})
}

func TestNewValidation(t *testing.T) {
	tests := []struct {
		name string
		o    tcpprobe.Options
		want []string
		as   func(error) bool
	}{
		{name: "no port", o: tcpprobe.Options{Address: "db.internal"}, want: []string{`address "db.internal"`}},
		{name: "bad port", o: tcpprobe.Options{Address: "db.internal:99999"}, want: []string{`port "99999"`}},
		{
			name: "bad expect", o: tcpprobe.Options{Address: "a:1", Expect: "(unclosed"}, want: []string{`expect "(unclosed"`},
			as: func(err error) bool { var se *syntax.Error; return errors.As(err, &se) },
		},
		{name: "negative read_limit", o: tcpprobe.Options{Address: "a:1", ReadLimit: -1}, want: []string{"read_limit -1"}},
		{
			name: "missing ca_file", o: tcpprobe.Options{Address: "a:1", UseTLS: true, TLS: probe.TLSOptions{CAFile: "/nonexistent.pem"}},
			want: []string{`ca_file "/nonexistent.pem"`}, as: func(err error) bool { return errors.Is(err, fs.ErrNotExist) },
		},
		{
			name: "every problem at once", o: tcpprobe.Options{Address: ":1", Expect: "[", ReadLimit: -5},
			want: []string{`address ":1"`, `expect "["`, "read_limit -5"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := tcpprobe.New(tt.o)
			if err == nil || p != nil {
				t.Fatalf("New = %v, %v; want an error", p, err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if tt.as != nil && !tt.as(err) {
				t.Errorf("error %v (%T) of the wrong kind", err, err)
			}
		})
	}
	// ca_file is only read when TLS is on.
	if _, err := tcpprobe.New(tcpprobe.Options{Address: "a:1", TLS: probe.TLSOptions{CAFile: "/nonexistent.pem"}}); err != nil {
		t.Fatalf("TLS off: %v", err)
	}
}

// TestNoLeaks runs every outcome and checks that goroutines and server-side
// connections return to where they were.
func TestNoLeaks(t *testing.T) {
	echo := startTCP(t, probetest.TCPEcho, "hello\n")
	silent := startTCP(t, probetest.TCPSilent, "")
	closing := startTCP(t, probetest.TCPClose, "")
	ref, err := probetest.ReserveRefusedAddr()
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close()
	ca, err := probetest.NewCA("leak CA")
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Leaf(probetest.Days(90), "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	ts, err := probetest.StartTLS(leaf)
	if err != nil {
		t.Fatal(err)
	}
	defer ts.Close()
	probers := []*tcpprobe.Prober{
		newProber(t, tcpprobe.Options{Address: echo.Addr}),
		newProber(t, tcpprobe.Options{Address: echo.Addr, Send: "x\n", Expect: "x"}),
		newProber(t, tcpprobe.Options{Address: echo.Addr, Expect: "never"}), // times out
		newProber(t, tcpprobe.Options{Address: silent.Addr, Expect: "never"}),
		newProber(t, tcpprobe.Options{Address: closing.Addr, Expect: "never"}),
		newProber(t, tcpprobe.Options{Address: ref.Addr}),
		newProber(t, tcpprobe.Options{Address: ts.Addr, UseTLS: true, Send: "x\n", Expect: "x"}), // unknown CA
		newProber(t, tcpprobe.Options{Address: ts.Addr, UseTLS: true, TLS: probe.TLSOptions{InsecureSkipVerify: true}, Send: "x\n", Expect: "x"}),
	}
	run(probers[0], 10*time.Second) // warm up lazily started runtime goroutines
	base := runtime.NumGoroutine()
	for range 3 {
		for _, p := range probers {
			run(p, 100*time.Millisecond)
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		probers[3].Probe(ctx)
	}
	testenv.Poll(t, 10*time.Second, "goroutines back to baseline", func() bool { return runtime.NumGoroutine() <= base })
	for _, s := range []*probetest.TCPServer{echo, silent, closing, ts.TCPServer} {
		testenv.Poll(t, 10*time.Second, "server connections closed", func() bool { return s.Active() == 0 })
	}
}

// waitFor polls cond until it holds or a generous bound passes.

// BenchmarkBareDial is the floor BenchmarkProbeTCP is held to: a plain
// net.Dial and Close against the same server.
func BenchmarkBareDial(b *testing.B) {
	s := startTCP(b, probetest.TCPClose, "")
	b.ReportAllocs()
	defer reportCPU(b)()
	for b.Loop() {
		c, err := net.Dial("tcp", s.Addr)
		if err != nil {
			b.Fatal(err)
		}
		_ = c.Close()
	}
}

func BenchmarkProbeTCP(b *testing.B) {
	s := startTCP(b, probetest.TCPClose, "")
	p := newProber(b, tcpprobe.Options{Address: s.Addr})
	// One context for the whole run: the agent's per-probe WithTimeout is
	// the agent's cost, not the prober's.
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

func BenchmarkProbeTCPExpect(b *testing.B) {
	s := startTCP(b, probetest.TCPEcho, "220 ready\r\n")
	p := newProber(b, tcpprobe.Options{Address: s.Addr, Send: "PING\r\n", Expect: "PING"})
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
