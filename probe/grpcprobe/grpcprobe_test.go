package grpcprobe_test

import (
	"context"
	"crypto/tls"
	"errors"
	"io/fs"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/health/grpc_health_v1"

	"github.com/vantage-probe/vantage/internal/testenv"
	"github.com/vantage-probe/vantage/probe"
	"github.com/vantage-probe/vantage/probe/grpcprobe"
	"github.com/vantage-probe/vantage/probe/probetest"
	"github.com/vantage-probe/vantage/probe/probetest/grpctest"
)

// probeTimeout bounds probes expected to complete: generous, for a loaded
// 2-core machine.
const probeTimeout = 10 * time.Second

func newProber(t testing.TB, o grpcprobe.Options) *grpcprobe.Prober {
	t.Helper()
	p, err := grpcprobe.New(o)
	if err != nil {
		t.Fatalf("New(%+v): %v", o, err)
	}
	return p
}

func run(p *grpcprobe.Prober, timeout time.Duration) probe.Result {
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

func wantFail(t *testing.T, r probe.Result, reason probe.Reason, msg ...string) {
	t.Helper()
	if r.OK || r.Reason != reason {
		t.Fatalf("OK %v reason %q (%s), want failure %q", r.OK, r.Reason, r.Message, reason)
	}
	for _, m := range msg {
		if !strings.Contains(r.Message, m) {
			t.Errorf("message %q does not contain %q", r.Message, m)
		}
	}
}

// phases checks that the four phases are there, in order, and which are
// above zero.
func phases(t *testing.T, r probe.Result, positive ...string) {
	t.Helper()
	want := []string{probe.PhaseResolve, probe.PhaseConnect, probe.PhaseTLS, probe.PhaseCheck}
	if len(r.Phases) != len(want) {
		t.Fatalf("phases %v, want %v", r.Phases, want)
	}
	for i, p := range r.Phases {
		if p.Name != want[i] {
			t.Fatalf("phases %v, want %v", r.Phases, want)
		}
	}
	for _, name := range positive {
		if r.Phase(name) <= 0 {
			t.Errorf("phase %s is %v: %v", name, r.Phase(name), r.Phases)
		}
	}
}

func TestServing(t *testing.T) {
	s := grpctest.NewHealth(t, nil)
	_, port, _ := net.SplitHostPort(s.Addr)
	r := run(newProber(t, grpcprobe.Options{Address: net.JoinHostPort("localhost", port), Net: probe.Net{IPProtocol: probe.IPv4}}), probeTimeout)
	wantOK(t, r)
	if r.RemoteAddr != s.Addr {
		t.Errorf("RemoteAddr %q, want %q", r.RemoteAddr, s.Addr)
	}
	if g := r.GRPC; g == nil || g.StatusCode != 0 || g.ServingStatus != "SERVING" || g.TLS {
		t.Errorf("facts %+v", g)
	}
	if r.TLS != nil {
		t.Errorf("TLS facts %+v over plaintext", r.TLS)
	}
	phases(t, r, probe.PhaseResolve, probe.PhaseConnect, probe.PhaseCheck)
	if r.Phase(probe.PhaseTLS) != 0 {
		t.Errorf("tls phase %v over plaintext", r.Phase(probe.PhaseTLS))
	}
	if s.Calls() != 1 {
		t.Errorf("server saw %d RPCs, want 1", s.Calls())
	}
}

func TestServingStatus(t *testing.T) {
	s := grpctest.NewHealth(t, nil)
	s.Health.SetServingStatus("checkout.v1.Checkout", grpc_health_v1.HealthCheckResponse_SERVING)
	s.Health.SetServingStatus("payments", grpc_health_v1.HealthCheckResponse_NOT_SERVING)
	s.Health.SetServingStatus("ledger", grpc_health_v1.HealthCheckResponse_UNKNOWN)
	for _, tt := range []struct {
		service string
		reason  probe.Reason
		code    int
		status  string
		msg     string
	}{
		{service: "checkout.v1.Checkout", status: "SERVING"},
		{service: "payments", reason: probe.ReasonNotServing, status: "NOT_SERVING", msg: `service "payments": serving status NOT_SERVING`},
		{service: "ledger", reason: probe.ReasonNotServing, status: "UNKNOWN", msg: `service "ledger": serving status UNKNOWN`},
		{service: "nope", reason: probe.ReasonServiceUnknown, code: 5, msg: `service "nope": code NotFound: unknown service`},
	} {
		t.Run(tt.service, func(t *testing.T) {
			r := run(newProber(t, grpcprobe.Options{Address: s.Addr, Service: tt.service}), probeTimeout)
			if tt.reason == probe.ReasonNone {
				wantOK(t, r)
			} else {
				wantFail(t, r, tt.reason, tt.msg)
			}
			if g := r.GRPC; g == nil || g.StatusCode != tt.code || g.ServingStatus != tt.status {
				t.Errorf("facts %+v, want code %d status %q", g, tt.code, tt.status)
			}
		})
	}
	// Flipped at run time: the next probe sees it.
	p := newProber(t, grpcprobe.Options{Address: s.Addr})
	s.Health.SetServingStatus("", grpc_health_v1.HealthCheckResponse_NOT_SERVING)
	wantFail(t, run(p, probeTimeout), probe.ReasonNotServing, "the server: serving status NOT_SERVING")
	s.Health.SetServingStatus("", grpc_health_v1.HealthCheckResponse_SERVING)
	wantOK(t, run(p, probeTimeout))
}

func TestUnimplemented(t *testing.T) {
	s, err := grpctest.StartHealth(nil, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	r := run(newProber(t, grpcprobe.Options{Address: s.Addr}), probeTimeout)
	wantFail(t, r, probe.ReasonGRPCError, "code Unimplemented")
	if r.GRPC == nil || r.GRPC.StatusCode != 12 {
		t.Errorf("facts %+v", r.GRPC)
	}
}

func TestRefused(t *testing.T) {
	ref, err := probetest.ReserveRefusedAddr()
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close()
	start := time.Now()
	r := run(newProber(t, grpcprobe.Options{Address: ref.Addr}), probeTimeout)
	wantFail(t, r, probe.ReasonConnectRefused, "connection refused")
	if took := time.Since(start); took > probeTimeout/2 {
		t.Errorf("a refused connection took %v: the RPC must fail fast", took)
	}
	if r.GRPC == nil || r.GRPC.StatusCode != 14 || r.Phase(probe.PhaseCheck) != 0 {
		t.Errorf("facts %+v phases %v", r.GRPC, r.Phases)
	}
}

func TestResolveFailure(t *testing.T) {
	r := run(newProber(t, grpcprobe.Options{Address: "no-such-host.invalid:443"}), probeTimeout)
	wantFail(t, r, probe.ReasonDNSError, "resolve")
	if r.GRPC != nil {
		t.Errorf("facts %+v without an RPC", r.GRPC)
	}
}

func TestTimeouts(t *testing.T) {
	const timeout = 300 * time.Millisecond
	check := func(t *testing.T, p *grpcprobe.Prober, phase string, msg string) probe.Result {
		t.Helper()
		start := time.Now()
		r := run(p, timeout)
		took := time.Since(start)
		wantFail(t, r, probe.ReasonTimeout, msg)
		if took < timeout-20*time.Millisecond || took > timeout+3*time.Second {
			t.Errorf("returned after %v, want about %v", took, timeout)
		}
		if r.Phase(phase) < timeout/2 {
			t.Errorf("phase %s %v, want most of the timeout: %v", phase, r.Phase(phase), r.Phases)
		}
		return r
	}
	t.Run("server never answers", func(t *testing.T) {
		// TCP accepted, then silence: no HTTP/2 preface ever comes.
		silent, err := probetest.StartTCP(probetest.TCPSilent, "")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = silent.Close() })
		r := check(t, newProber(t, grpcprobe.Options{Address: silent.Addr}), probe.PhaseCheck, "code DeadlineExceeded")
		if r.GRPC == nil || r.GRPC.StatusCode != 4 {
			t.Errorf("facts %+v", r.GRPC)
		}
	})
	t.Run("RPC hangs", func(t *testing.T) {
		s := grpctest.NewHealth(t, nil)
		s.SetHang(true)
		check(t, newProber(t, grpcprobe.Options{Address: s.Addr}), probe.PhaseCheck, "code DeadlineExceeded")
	})
	t.Run("TLS handshake never answered", func(t *testing.T) {
		silent, err := probetest.StartTCP(probetest.TCPSilent, "")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = silent.Close() })
		r := check(t, newProber(t, grpcprobe.Options{Address: silent.Addr, UseTLS: true}), probe.PhaseTLS, "")
		if r.TLS != nil || r.GRPC == nil || r.GRPC.TLS {
			t.Errorf("facts TLS %+v gRPC %+v", r.TLS, r.GRPC)
		}
	})
}

// pki is a CA, its file, a valid leaf for 127.0.0.1 and localhost, and an
// expired one.
type pki struct {
	ca            *probetest.CA
	caFile        string
	leaf, expired tls.Certificate
}

func newPKI(t testing.TB) *pki {
	t.Helper()
	ca, err := probetest.NewCA("grpcprobe CA")
	if err != nil {
		t.Fatal(err)
	}
	caFile, err := ca.WriteCAFile(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Leaf(probetest.Days(90), "127.0.0.1", "localhost")
	if err != nil {
		t.Fatal(err)
	}
	expired, err := ca.Leaf(probetest.Days(-1), "127.0.0.1", "localhost")
	if err != nil {
		t.Fatal(err)
	}
	return &pki{ca: ca, caFile: caFile, leaf: leaf, expired: expired}
}

func TestTLS(t *testing.T) {
	k := newPKI(t)
	s := grpctest.NewHealth(t, &k.leaf)
	o := grpcprobe.Options{Address: s.Addr, UseTLS: true, TLS: probe.TLSOptions{CAFile: k.caFile}}

	t.Run("verified", func(t *testing.T) {
		r := run(newProber(t, o), probeTimeout)
		wantOK(t, r)
		if r.TLS == nil || !r.TLS.Verified || !r.TLS.EarliestExpiry.Equal(k.leaf.Leaf.NotAfter) {
			t.Fatalf("TLS facts %+v", r.TLS)
		}
		if r.GRPC == nil || !r.GRPC.TLS || r.GRPC.ServingStatus != "SERVING" {
			t.Errorf("facts %+v", r.GRPC)
		}
		phases(t, r, probe.PhaseConnect, probe.PhaseTLS, probe.PhaseCheck)
	})
	t.Run("server name", func(t *testing.T) {
		_, port, _ := net.SplitHostPort(s.Addr)
		o := o
		o.Address = net.JoinHostPort("localhost", port)
		o.Net.IPProtocol = probe.IPv4
		r := run(newProber(t, o), probeTimeout)
		wantOK(t, r)
		if r.TLS.ServerName != "localhost" {
			t.Errorf("server name %q", r.TLS.ServerName)
		}
		o.TLS.ServerName = "other.example"
		wantFail(t, run(newProber(t, o), probeTimeout), probe.ReasonCertInvalid, "other.example")
	})
	t.Run("unknown authority", func(t *testing.T) {
		o := o
		o.TLS.CAFile = ""
		r := run(newProber(t, o), probeTimeout)
		wantFail(t, r, probe.ReasonCertInvalid, "unknown authority")
		if r.TLS == nil || r.TLS.Verified || r.GRPC == nil || r.GRPC.StatusCode != 14 || r.GRPC.TLS != true {
			t.Errorf("facts TLS %+v gRPC %+v: the chain is reported though it failed", r.TLS, r.GRPC)
		}
		if s.Calls() > 2 {
			t.Errorf("server saw %d RPCs", s.Calls())
		}
	})
	t.Run("expired", func(t *testing.T) {
		old := grpctest.NewHealth(t, &k.expired)
		o := o
		o.Address = old.Addr
		r := run(newProber(t, o), probeTimeout)
		wantFail(t, r, probe.ReasonCertExpired)
		if r.TLS == nil || !r.TLS.EarliestExpiry.Equal(k.expired.Leaf.NotAfter) {
			t.Errorf("TLS facts %+v", r.TLS)
		}
	})
	t.Run("insecure", func(t *testing.T) {
		o := o
		o.TLS = probe.TLSOptions{InsecureSkipVerify: true}
		r := run(newProber(t, o), probeTimeout)
		wantOK(t, r)
		if r.TLS == nil || r.TLS.Verified {
			t.Errorf("TLS facts %+v", r.TLS)
		}
	})
	t.Run("TLS to a plaintext server", func(t *testing.T) {
		plain := grpctest.NewHealth(t, nil)
		o := o
		o.Address = plain.Addr
		wantFail(t, run(newProber(t, o), probeTimeout), probe.ReasonTLSHandshake, "tls handshake")
	})
	t.Run("plaintext to a TLS server", func(t *testing.T) {
		r := run(newProber(t, grpcprobe.Options{Address: s.Addr}), probeTimeout)
		wantFail(t, r, probe.ReasonGRPCError, "code Unavailable")
	})
	t.Run("client certificate", func(t *testing.T) {
		dir := t.TempDir()
		client, err := k.ca.Leaf(probetest.Days(30), "probe-client")
		if err != nil {
			t.Fatal(err)
		}
		certPEM, keyPEM := probetest.PEM(client)
		certFile, keyFile := filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
		if err := os.WriteFile(certFile, certPEM, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
			t.Fatal(err)
		}
		o := o
		o.TLS.CertFile, o.TLS.KeyFile = certFile, keyFile
		wantOK(t, run(newProber(t, o), probeTimeout))
	})
}

func TestSourceIP(t *testing.T) {
	s := grpctest.NewHealth(t, nil)
	wantOK(t, run(newProber(t, grpcprobe.Options{Address: s.Addr, Net: probe.Net{SourceIP: netip.MustParseAddr("127.0.0.1")}}), probeTimeout))
	r := run(newProber(t, grpcprobe.Options{Address: s.Addr, Net: probe.Net{SourceIP: netip.MustParseAddr("192.0.2.1")}}), probeTimeout)
	wantFail(t, r, probe.ReasonConnectError, "bind")
}

func TestNewValidation(t *testing.T) {
	for _, tt := range []struct {
		name string
		o    grpcprobe.Options
		want []string
		is   error
	}{
		{name: "no port", o: grpcprobe.Options{Address: "api.internal"}, want: []string{`address "api.internal"`}},
		{name: "no host", o: grpcprobe.Options{Address: ":443"}, want: []string{`address ":443"`}, is: probe.ErrNoHost},
		{name: "bad port", o: grpcprobe.Options{Address: "a:0"}, want: []string{`port "0"`}, is: probe.ErrPort},
		{name: "family", o: grpcprobe.Options{Address: "127.0.0.1:1", Net: probe.Net{IPProtocol: probe.IPv6}}, is: probe.ErrFamily},
		{name: "ip_protocol", o: grpcprobe.Options{Address: "a:1", Net: probe.Net{IPProtocol: "ip5"}}, want: []string{`ip_protocol "ip5"`}},
		{
			name: "missing ca_file", o: grpcprobe.Options{Address: "a:1", UseTLS: true, TLS: probe.TLSOptions{CAFile: "/nonexistent.pem"}},
			want: []string{`ca_file "/nonexistent.pem"`}, is: fs.ErrNotExist,
		},
		{name: "every problem at once", o: grpcprobe.Options{Address: "x", UseTLS: true, TLS: probe.TLSOptions{CertFile: "c.pem"}}, want: []string{`address "x"`, "cert_file and key_file"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p, err := grpcprobe.New(tt.o)
			if err == nil || p != nil {
				t.Fatalf("New = %v, %v; want an error", p, err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error %v does not wrap %v", err, tt.is)
			}
		})
	}
	// TLS files are only read with TLS on.
	if _, err := grpcprobe.New(grpcprobe.Options{Address: "a:1", TLS: probe.TLSOptions{CAFile: "/nonexistent.pem"}}); err != nil {
		t.Errorf("TLS off: %v", err)
	}
}

// TestConcurrentProbes runs one prober's probes at once against servers in
// different states.
func TestConcurrentProbes(t *testing.T) {
	up, down := grpctest.NewHealth(t, nil), grpctest.NewHealth(t, nil)
	down.Health.SetServingStatus("", grpc_health_v1.HealthCheckResponse_NOT_SERVING)
	pu, pd := newProber(t, grpcprobe.Options{Address: up.Addr}), newProber(t, grpcprobe.Options{Address: down.Addr})
	done := make(chan probe.Result)
	const n = 10
	for i := range 2 * n {
		go func() {
			if i%2 == 0 {
				done <- run(pu, probeTimeout)
			} else {
				done <- run(pd, probeTimeout)
			}
		}()
	}
	ok := 0
	for range 2 * n {
		r := <-done
		switch {
		case r.OK:
			ok++
		case r.Reason != probe.ReasonNotServing:
			t.Errorf("probe: %s %s", r.Reason, r.Message)
		}
	}
	if ok != n {
		t.Errorf("%d probes passed, want %d", ok, n)
	}
}

// TestNoLeaks runs every outcome, cancellation included, and checks that
// goroutines and server-side connections return to where they were.
func TestNoLeaks(t *testing.T) {
	k := newPKI(t)
	plain, secure := grpctest.NewHealth(t, nil), grpctest.NewHealth(t, &k.leaf)
	hung := grpctest.NewHealth(t, nil)
	hung.SetHang(true)
	silent, err := probetest.StartTCP(probetest.TCPSilent, "")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	ref, err := probetest.ReserveRefusedAddr()
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close()
	// What grpc-go's server never sends: an oversized answer, and a TLS
	// server without h2.
	big := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		reply(w, frame(make([]byte, 1<<20)), 0, "")
	}), nil)
	http1 := startServer(t, http.NotFoundHandler(), probetest.ServerTLS(k.leaf))
	probers := []*grpcprobe.Prober{
		newProber(t, grpcprobe.Options{Address: plain.Addr}),
		newProber(t, grpcprobe.Options{Address: plain.Addr, Service: "nope"}),
		newProber(t, grpcprobe.Options{Address: secure.Addr, UseTLS: true, TLS: probe.TLSOptions{CAFile: k.caFile}}),
		newProber(t, grpcprobe.Options{Address: secure.Addr, UseTLS: true}), // unknown authority
		newProber(t, grpcprobe.Options{Address: hung.Addr}),
		newProber(t, grpcprobe.Options{Address: silent.Addr}),
		newProber(t, grpcprobe.Options{Address: silent.Addr, UseTLS: true}),
		newProber(t, grpcprobe.Options{Address: ref.Addr}),
		newProber(t, grpcprobe.Options{Address: big.Addr}),
		newProber(t, grpcprobe.Options{Address: http1.Addr, UseTLS: true, TLS: probe.TLSOptions{InsecureSkipVerify: true}}),
	}
	run(probers[0], probeTimeout) // warm up lazily started runtime goroutines
	base := runtime.NumGoroutine()
	for range 3 {
		for _, p := range probers {
			run(p, 100*time.Millisecond)
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		probers[0].Probe(ctx)
	}
	testenv.Poll(t, 10*time.Second, "goroutines back to baseline", func() bool { return runtime.NumGoroutine() <= base })
	testenv.Poll(t, 10*time.Second, "silent server's connections closed", func() bool { return silent.Active() == 0 })
}

// waitFor polls cond until it holds or a generous bound passes.
