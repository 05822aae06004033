package probetest

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/quic-go/quic-go/http3"
)

// HTTPServer is a real HTTP server on 127.0.0.1 with a kernel-chosen port:
// plain HTTP/1.1, or HTTP/1.1 and HTTP/2 over TLS. It is usable outside
// tests (the demo's target farm), so errors are returned, not t.Fatal'd.
type HTTPServer struct {
	URL  string // "http://127.0.0.1:PORT" or "https://127.0.0.1:PORT"
	Addr string // "127.0.0.1:PORT"

	srv    *http.Server
	ln     net.Listener
	cancel context.CancelFunc // ends every request context (see Close)
	done   chan struct{}      // closed when Serve has returned
}

// StartHTTP serves h over plain HTTP/1.1 on 127.0.0.1:0.
func StartHTTP(h http.Handler) (*HTTPServer, error) {
	return startHTTP(h, nil, false)
}

// StartHTTPS serves h over TLS with cert, offering h2 and http/1.1 by ALPN.
func StartHTTPS(h http.Handler, cert tls.Certificate) (*HTTPServer, error) {
	return startHTTP(h, ServerTLS(cert, "h2", "http/1.1"), true)
}

// StartHTTPS1 serves h over TLS with cert, HTTP/1.1 only: the server a
// client insisting on HTTP/2 must reject.
func StartHTTPS1(h http.Handler, cert tls.Certificate) (*HTTPServer, error) {
	return startHTTP(h, ServerTLS(cert, "http/1.1"), false)
}

func startHTTP(h http.Handler, tlsConf *tls.Config, h2 bool) (*HTTPServer, error) {
	// Bind first: the port is ours before anything is served, so no other
	// test can take it between "find a port" and "listen".
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	// Request contexts derive from the server's lifetime, so that Close
	// releases handlers that wait on their request (HTTPHang, HTTPSlow,
	// HTTPStallBody) at once instead of after Shutdown's grace period.
	ctx, cancel := context.WithCancel(context.Background())
	srv := &http.Server{
		Handler:     h,
		BaseContext: func(net.Listener) context.Context { return ctx },
		// Test and demo servers must not wait forever on a client that
		// connects and says nothing; probes time out long before this.
		ReadHeaderTimeout: 30 * time.Second,
		// Clients hanging up mid-handshake (a probe rejecting a certificate)
		// is what these servers are for; net/http would log each one.
		ErrorLog: log.New(io.Discard, "", 0),
	}
	var p http.Protocols
	p.SetHTTP1(true)
	p.SetHTTP2(h2)
	srv.Protocols = &p
	scheme := "http"
	if tlsConf != nil {
		scheme = "https"
		// The TLS listener hands Serve *tls.Conn values; Serve picks the
		// HTTP/2 handler by the negotiated ALPN protocol when Protocols
		// allows it. srv.TLSConfig stays nil so that http2 setup does not
		// mutate a config the listener is already using.
		ln = tls.NewListener(ln, tlsConf)
	}
	s := &HTTPServer{
		URL:    scheme + "://" + ln.Addr().String(),
		Addr:   ln.Addr().String(),
		srv:    srv,
		ln:     ln,
		cancel: cancel,
		done:   make(chan struct{}),
	}
	go func() {
		defer close(s.done)
		_ = srv.Serve(ln)
	}()
	return s, nil
}

// Close shuts the server down: request contexts are cancelled (the waiting
// handlers of this file return at once), in-flight requests get a short
// grace period to finish, then every connection is closed. It waits for the
// serving goroutine to return.
func (s *HTTPServer) Close() error {
	s.cancel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	if err != nil {
		err = s.srv.Close()
	}
	<-s.done
	return err
}

// H3Server is a real HTTP/3 server on a UDP socket bound to 127.0.0.1:0.
type H3Server struct {
	URL  string // "https://127.0.0.1:PORT"
	Addr string // "127.0.0.1:PORT"

	srv  *http3.Server
	pc   net.PacketConn
	done chan struct{}
}

// StartHTTP3 serves h over HTTP/3 (QUIC, TLS 1.3) with cert. The UDP socket
// is bound before the server starts and handed to http3.Server.Serve.
func StartHTTP3(h http.Handler, cert tls.Certificate) (*H3Server, error) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen udp: %w", err)
	}
	tlsConf := ServerTLS(cert)
	tlsConf.MinVersion = tls.VersionTLS13 // QUIC requires it
	srv := &http3.Server{Handler: h, TLSConfig: http3.ConfigureTLSConfig(tlsConf)}
	s := &H3Server{
		URL:  "https://" + pc.LocalAddr().String(),
		Addr: pc.LocalAddr().String(),
		srv:  srv,
		pc:   pc,
		done: make(chan struct{}),
	}
	go func() {
		defer close(s.done)
		_ = srv.Serve(pc)
	}()
	return s, nil
}

// Close stops the server, aborting in-flight requests, and closes its socket.
func (s *H3Server) Close() error {
	err := s.srv.Close()
	<-s.done
	if cerr := s.pc.Close(); err == nil && !errors.Is(cerr, net.ErrClosed) {
		err = cerr
	}
	return err
}

// NewHTTPServer starts a plain HTTP server for the test and closes it at cleanup.
func NewHTTPServer(t testing.TB, h http.Handler) *HTTPServer {
	t.Helper()
	s, err := StartHTTP(h)
	if err != nil {
		t.Fatalf("start http server: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// NewHTTPSServer starts an HTTPS (h2 + http/1.1) server for the test.
func NewHTTPSServer(t testing.TB, h http.Handler, cert tls.Certificate) *HTTPServer {
	t.Helper()
	s, err := StartHTTPS(h, cert)
	if err != nil {
		t.Fatalf("start https server: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// NewHTTPS1Server starts an HTTPS server that speaks HTTP/1.1 only.
func NewHTTPS1Server(t testing.TB, h http.Handler, cert tls.Certificate) *HTTPServer {
	t.Helper()
	s, err := StartHTTPS1(h, cert)
	if err != nil {
		t.Fatalf("start https server: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// NewHTTP3Server starts an HTTP/3 server for the test.
func NewHTTP3Server(t testing.TB, h http.Handler, cert tls.Certificate) *H3Server {
	t.Helper()
	s, err := StartHTTP3(h, cert)
	if err != nil {
		t.Fatalf("start http3 server: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// NewSilentListener binds a TCP listener on 127.0.0.1:0 that never accepts:
// the kernel completes the TCP handshake, then nothing is ever said. It is
// the server that makes a client wait for its deadline, in any phase after
// connect (TLS handshake, request, response).
func NewSilentListener(t testing.TB) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	return ln
}

// HTTPRespond answers every request with status, body and headers given as
// name, value pairs.
func HTTPRespond(status int, body string, headers ...string) http.Handler {
	if len(headers)%2 != 0 {
		panic("probetest.HTTPRespond: headers must be name, value pairs")
	}
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		for i := 0; i < len(headers); i += 2 {
			w.Header().Add(headers[i], headers[i+1])
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	})
}

// HTTPSlow waits delay before handing the request to next. If the client goes
// away (or the server closes) first, it aborts the response, so no handler
// outlives its client and no client mistakes a closing server for an answer.
func HTTPSlow(delay time.Duration, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t := time.NewTimer(delay)
		defer t.Stop()
		select {
		case <-t.C:
			next.ServeHTTP(w, r)
		case <-r.Context().Done():
			abort()
		}
	})
}

// abort ends a handler without a (complete) response: net/http and quic-go
// reset the stream or close the connection, and log nothing.
func abort() { panic(http.ErrAbortHandler) }

// HTTPHang never answers: when the client goes away (or the server closes)
// it aborts the response. For processing-phase timeouts.
func HTTPHang() http.Handler {
	return http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
		abort()
	})
}

// HTTPStallBody sends the status line, headers and the first part of the
// body, then stops until the client goes away (or the server closes) and
// aborts: for transfer-phase timeouts.
func HTTPStallBody(first string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(len(first)+1<<20))
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, first)
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
		<-r.Context().Done()
		abort()
	})
}

// HTTPRedirectChain answers n redirects (302) before handing the request to
// final: a request to any path P is sent to P?hop=1, then P?hop=2, ... up to
// P?hop=n, which final serves. Relative Location headers are used, so the
// chain stays on whichever server and host name the client used.
func HTTPRedirectChain(n int, final http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hop, _ := strconv.Atoi(r.URL.Query().Get("hop"))
		if hop >= n {
			final.ServeHTTP(w, r)
			return
		}
		http.Redirect(w, r, r.URL.Path+"?hop="+strconv.Itoa(hop+1), http.StatusFound)
	})
}

// HTTPRedirectTo answers every request with a redirect of the given code to location.
func HTTPRedirectTo(code int, location string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Location", location)
		w.WriteHeader(code)
	})
}

// HTTPLargeBody answers 200 with a body of n bytes ('x'), Content-Length set.
func HTTPLargeBody(n int64) http.Handler {
	chunk := strings.Repeat("x", 32<<10)
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
		w.WriteHeader(http.StatusOK)
		for left := n; left > 0; {
			c := chunk
			if int64(len(c)) > left {
				c = c[:left]
			}
			if _, err := io.WriteString(w, c); err != nil {
				return
			}
			left -= int64(len(c))
		}
	})
}

// HTTPEcho answers 200 with a plain-text description of the request: method,
// host, protocol, every header as "Name: value" (sorted by http.Header's
// Write), then a blank line and the request body. Tests match on it.
func HTTPEcho() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprintf(w, "method: %s\nhost: %s\nproto: %s\n", r.Method, r.Host, r.Proto)
		_ = r.Header.Write(w)
		fmt.Fprintf(w, "\n%s", body)
	})
}
