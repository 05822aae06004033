package grpcprobe_test

import (
	"bytes"
	"crypto/tls"
	"encoding/binary"
	"io"
	"log"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/vantage-probe/vantage/probe"
	"github.com/vantage-probe/vantage/probe/grpcprobe"
	"github.com/vantage-probe/vantage/probe/probetest"
)

// The tests of this file put the prober in front of HTTP servers written
// for them, to see the wire and the answers grpc-go's server never gives.

// h2Server serves h on 127.0.0.1 over HTTP/2 with prior knowledge (h2c),
// or over TLS with tlsConf (its ALPN protocols decide what is spoken).
// It counts the connections it accepted.
type h2Server struct {
	Addr  string
	conns atomic.Int64
}

func startServer(t testing.TB, h http.Handler, tlsConf *tls.Config) *h2Server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &h2Server{Addr: ln.Addr().String()}
	var protos http.Protocols
	if tlsConf == nil {
		protos.SetUnencryptedHTTP2(true)
	} else {
		protos.SetHTTP1(true)
		protos.SetHTTP2(true)
		ln = tls.NewListener(ln, tlsConf)
	}
	srv := &http.Server{
		Handler:   h,
		Protocols: &protos,
		ErrorLog:  log.New(io.Discard, "", 0),
		ConnState: func(_ net.Conn, st http.ConnState) {
			if st == http.StateNew {
				s.conns.Add(1)
			}
		},
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
	t.Cleanup(func() {
		_ = srv.Close()
		<-done
	})
	return s
}

// frame is msg length-prefixed as gRPC sends it, uncompressed.
func frame(msg []byte) []byte {
	b := make([]byte, 5, 5+len(msg))
	binary.BigEndian.PutUint32(b[1:], uint32(len(msg)))
	return append(b, msg...)
}

// reply answers as a gRPC server does: headers, the body, then the status
// in the trailers.
func reply(w http.ResponseWriter, body []byte, code int, msg string) {
	w.Header().Set("Content-Type", "application/grpc")
	w.Header().Set("Trailer", "Grpc-Status, Grpc-Message")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
	w.Header().Set("Grpc-Status", strconv.Itoa(code))
	if msg != "" {
		w.Header().Set("Grpc-Message", msg)
	}
}

var servingMsg = []byte{0x08, 0x01}

// TestRequestOnTheWire checks what the prober sends: the request a gRPC
// server expects, on a new connection per probe.
func TestRequestOnTheWire(t *testing.T) {
	type seen struct {
		proto, method, path, host string
		header                    http.Header
		body                      []byte
	}
	got := make(chan seen, 1)
	s := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		select {
		case got <- seen{r.Proto, r.Method, r.URL.Path, r.Host, r.Header.Clone(), b}:
		default:
		}
		reply(w, frame(servingMsg), 0, "")
	}), nil)
	_, port, _ := net.SplitHostPort(s.Addr)
	address := net.JoinHostPort("localhost", port)
	p := newProber(t, grpcprobe.Options{Address: address, Service: "svc", Net: probe.Net{IPProtocol: probe.IPv4}})
	wantOK(t, run(p, probeTimeout))
	g := <-got
	if g.proto != "HTTP/2.0" || g.method != http.MethodPost || g.path != "/grpc.health.v1.Health/Check" || g.host != address {
		t.Errorf("request %s %s %s, :authority %q", g.proto, g.method, g.path, g.host)
	}
	for k, want := range map[string]string{"Content-Type": "application/grpc", "Te": "trailers", "User-Agent": "Vantage-Probe/1.0", "Accept-Encoding": ""} {
		if v := g.header.Get(k); v != want {
			t.Errorf("header %s %q, want %q", k, v, want)
		}
	}
	timeout := g.header.Get("Grpc-Timeout")
	ms, err := strconv.Atoi(strings.TrimSuffix(timeout, "m"))
	if !strings.HasSuffix(timeout, "m") || err != nil || ms <= 0 || ms > int(probeTimeout.Milliseconds()) {
		t.Errorf("grpc-timeout %q, want milliseconds up to %d", timeout, probeTimeout.Milliseconds())
	}
	if want := []byte{0, 0, 0, 0, 5, 0x0a, 3, 's', 'v', 'c'}; !bytes.Equal(g.body, want) {
		t.Errorf("body % x, want % x", g.body, want)
	}
	wantOK(t, run(p, probeTimeout))
	if n := s.conns.Load(); n != 2 {
		t.Errorf("server saw %d connections for 2 probes, want a new one per probe", n)
	}
}

// TestAnswers runs the prober against answers grpc-go's health server
// does not give: errors from what is not a gRPC server, malformed or
// oversized messages, statuses in odd places.
func TestAnswers(t *testing.T) {
	for _, tt := range []struct {
		name    string
		handler http.HandlerFunc
		reason  probe.Reason
		code    int
		serving string
		msg     string
	}{
		{
			name:    "HTTP 404 from a plain HTTP/2 server",
			handler: http.NotFound,
			reason:  probe.ReasonGRPCError, code: 12,
			msg: `health check of the server: code Unimplemented: HTTP status 404 (Not Found); content-type "text/plain; charset=utf-8", not application/grpc`,
		},
		{
			name: "HTTP 503",
			handler: func(w http.ResponseWriter, _ *http.Request) {
				http.Error(w, "overloaded", http.StatusServiceUnavailable)
			},
			reason: probe.ReasonGRPCError, code: 14, msg: "code Unavailable: HTTP status 503 (Service Unavailable)",
		},
		{
			name:    "HTTP 401",
			handler: func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusUnauthorized) },
			reason:  probe.ReasonGRPCError, code: 16, msg: "code Unauthenticated: HTTP status 401 (Unauthorized)",
		},
		{
			name: "HTTP 200 that is not gRPC",
			handler: func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "text/html")
				_, _ = io.WriteString(w, "<html>welcome</html>")
			},
			reason: probe.ReasonGRPCError, code: 2, msg: `code Unknown: content-type "text/html", not application/grpc`,
		},
		{
			name: "Trailers-Only",
			handler: func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "application/grpc")
				w.Header().Set("Grpc-Status", "7")
				w.Header().Set("Grpc-Message", "no%20entry")
				w.WriteHeader(http.StatusOK)
			},
			reason: probe.ReasonGRPCError, code: 7, msg: "health check of the server: code PermissionDenied: no entry",
		},
		{
			name: "Trailers-Only NotFound",
			handler: func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "application/grpc")
				w.Header().Set("Grpc-Status", "5")
				w.Header().Set("Grpc-Message", "unknown service")
				w.WriteHeader(http.StatusOK)
			},
			reason: probe.ReasonServiceUnknown, code: 5, msg: "the server: code NotFound: unknown service",
		},
		{
			name:    "percent-encoded grpc-message",
			handler: func(w http.ResponseWriter, _ *http.Request) { reply(w, nil, 13, "caf%C3%A9 at 100%25%0Abroken %zz") },
			reason:  probe.ReasonGRPCError, code: 13, msg: "code Internal: café at 100%\nbroken %zz",
		},
		{
			name:    "NotFound in the trailers",
			handler: func(w http.ResponseWriter, _ *http.Request) { reply(w, nil, 5, "unknown service") },
			reason:  probe.ReasonServiceUnknown, code: 5, msg: "code NotFound: unknown service",
		},
		{
			name: "message over the bound",
			handler: func(w http.ResponseWriter, _ *http.Request) {
				reply(w, frame(bytes.Repeat([]byte{0x08}, 1<<20)), 0, "")
			},
			reason: probe.ReasonGRPCError, code: 8, msg: "code ResourceExhausted: response message of 1048576 bytes, over the 65536 a probe reads",
		},
		{
			name: "compressed message",
			handler: func(w http.ResponseWriter, _ *http.Request) {
				reply(w, append([]byte{1, 0, 0, 0, 2}, servingMsg...), 0, "")
			},
			reason: probe.ReasonGRPCError, code: 13, msg: "compressed-flag 1",
		},
		{
			name: "two messages",
			handler: func(w http.ResponseWriter, _ *http.Request) {
				reply(w, append(frame(servingMsg), frame(servingMsg)...), 0, "")
			},
			reason: probe.ReasonGRPCError, code: 13, msg: "more than one response message",
		},
		{
			name:    "message cut short",
			handler: func(w http.ResponseWriter, _ *http.Request) { reply(w, frame(servingMsg)[:6], 0, "") },
			reason:  probe.ReasonGRPCError, code: 14, msg: "unexpected EOF",
		},
		{
			name: "no grpc-status",
			handler: func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "application/grpc")
				_, _ = w.Write(frame(servingMsg))
			},
			reason: probe.ReasonGRPCError, code: 13, msg: "without a grpc-status",
		},
		{
			name:    "OK without a message",
			handler: func(w http.ResponseWriter, _ *http.Request) { reply(w, nil, 0, "") },
			reason:  probe.ReasonGRPCError, code: 13, msg: "no response message",
		},
		{
			name:    "malformed message",
			handler: func(w http.ResponseWriter, _ *http.Request) { reply(w, frame([]byte{0x08}), 0, "") },
			reason:  probe.ReasonGRPCError, code: 13, msg: "malformed HealthCheckResponse",
		},
		{
			name: "unknown fields around SERVING",
			handler: func(w http.ResponseWriter, _ *http.Request) {
				reply(w, frame([]byte{0x12, 2, 'o', 'k', 0x08, 0x01, 0x1d, 1, 2, 3, 4}), 0, "")
			},
			serving: "SERVING",
		},
		{
			name:    "serving status the proto does not name",
			handler: func(w http.ResponseWriter, _ *http.Request) { reply(w, frame([]byte{0x08, 0x07}), 0, "") },
			reason:  probe.ReasonNotServing, serving: "7", msg: "the server: serving status 7",
		},
		{
			name:    "SERVICE_UNKNOWN",
			handler: func(w http.ResponseWriter, _ *http.Request) { reply(w, frame([]byte{0x08, 0x03}), 0, "") },
			reason:  probe.ReasonServiceUnknown, serving: "SERVICE_UNKNOWN", msg: "the server: serving status SERVICE_UNKNOWN",
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := startServer(t, tt.handler, nil)
			r := run(newProber(t, grpcprobe.Options{Address: s.Addr}), probeTimeout)
			if tt.reason == probe.ReasonNone {
				wantOK(t, r)
			} else {
				wantFail(t, r, tt.reason, tt.msg)
			}
			if g := r.GRPC; g == nil || g.StatusCode != tt.code || g.ServingStatus != tt.serving || g.TLS {
				t.Errorf("facts %+v, want code %d serving status %q", g, tt.code, tt.serving)
			}
			phases(t, r, probe.PhaseConnect, probe.PhaseCheck)
		})
	}
}

// TestHTTP1OverTLS probes TLS servers that speak only HTTP/1.1: the probe
// fails without sending a request, and says why.
func TestHTTP1OverTLS(t *testing.T) {
	k := newPKI(t)
	var requests atomic.Int64
	h := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { requests.Add(1) })
	o := grpcprobe.Options{UseTLS: true, TLS: probe.TLSOptions{CAFile: k.caFile}}

	t.Run("ALPN http/1.1", func(t *testing.T) {
		// crypto/tls refuses a client offering only h2: the
		// no_application_protocol alert.
		s := probetest.NewHTTPS1Server(t, h, k.leaf)
		o := o
		o.Address = s.Addr
		r := run(newProber(t, o), probeTimeout)
		wantFail(t, r, probe.ReasonTLSHandshake, "no application protocol", "gRPC needs HTTP/2")
	})
	t.Run("no ALPN", func(t *testing.T) {
		// A server that knows no ALPN completes the handshake.
		s := startServer(t, h, probetest.ServerTLS(k.leaf))
		o := o
		o.Address = s.Addr
		r := run(newProber(t, o), probeTimeout)
		wantFail(t, r, probe.ReasonGRPCError, "code Unavailable", "negotiated no protocol by ALPN, not h2", "gRPC needs")
		if r.TLS == nil || !r.TLS.Verified || r.GRPC == nil || !r.GRPC.TLS || r.GRPC.StatusCode != 14 {
			t.Errorf("facts TLS %+v gRPC %+v: the handshake completed", r.TLS, r.GRPC)
		}
		phases(t, r, probe.PhaseConnect, probe.PhaseTLS)
		if r.Phase(probe.PhaseCheck) != 0 {
			t.Errorf("check phase %v: the connection was never ready", r.Phase(probe.PhaseCheck))
		}
	})
	if n := requests.Load(); n != 0 {
		t.Errorf("the servers saw %d requests, want none", n)
	}
}
