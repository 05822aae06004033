// Package healthsrv is a gRPC health server (grpc.health.v1.Health/Check)
// on loopback, written over net/http's HTTP/2 without grpc-go, for what
// ships in the binary: the demo's and the benchmark's target farms. Tests
// of the prober use grpctest, grpc-go's own server; this package's tests
// check it with grpc-go's client.
//
// It answers as grpc-go's health server does: the status set for the
// service ("" is the server as a whole, SERVING from the start), NotFound
// "unknown service" for a service it was never told about, Unimplemented
// for any other method; Watch is not served.
package healthsrv

import (
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vantage-probe/vantage/internal/grpcwire"
)

// Status is a serving status of grpc.health.v1.HealthCheckResponse.
type Status int32

const (
	Unknown        = Status(grpcwire.ServingUnknown)
	Serving        = Status(grpcwire.Serving)
	NotServing     = Status(grpcwire.NotServing)
	ServiceUnknown = Status(grpcwire.ServiceUnknown)
)

// maxRequest bounds the request message read: a service name.
const maxRequest = 4 << 10

// Server is a gRPC health server on 127.0.0.1, plaintext (HTTP/2 with
// prior knowledge) or TLS (h2 by ALPN).
type Server struct {
	// Addr is the 127.0.0.1:port the server listens on.
	Addr string

	srv   *http.Server
	done  chan struct{} // closed when Serve has returned
	once  sync.Once
	calls atomic.Int64

	mu       sync.Mutex
	statuses map[string]Status
}

// Start listens on 127.0.0.1 (port chosen by the kernel) and serves the
// health service, over TLS with cert when it is not nil.
func Start(cert *tls.Certificate) (*Server, error) {
	// Bind first, then serve: Addr works the moment this returns.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("healthsrv: listen: %w", err)
	}
	s := &Server{Addr: ln.Addr().String(), done: make(chan struct{}), statuses: map[string]Status{"": Serving}}
	var protos http.Protocols
	protos.SetHTTP2(true)
	protos.SetUnencryptedHTTP2(true)
	if cert != nil {
		// The listener hands Serve *tls.Conn values, which it serves with
		// HTTP/2 by the ALPN protocol; srv.TLSConfig stays nil so that
		// net/http does not change a config the listener is using.
		ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{*cert}, NextProtos: []string{"h2"}, MinVersion: tls.VersionTLS12})
	}
	s.srv = &http.Server{
		Handler:   http.HandlerFunc(s.serve),
		Protocols: &protos,
		// A farm's server must not wait forever on a client that says
		// nothing; probes time out long before this.
		ReadHeaderTimeout: 30 * time.Second,
		// Probes hang up mid-handshake (a rejected certificate) by design.
		ErrorLog: log.New(io.Discard, "", 0),
	}
	go func() {
		defer close(s.done)
		_ = s.srv.Serve(ln)
	}()
	return s, nil
}

// SetServingStatus sets what Check answers for service ("": the server).
func (s *Server) SetServingStatus(service string, st Status) {
	s.mu.Lock()
	s.statuses[service] = st
	s.mu.Unlock()
}

// Calls counts the Check RPCs the server received.
func (s *Server) Calls() int64 { return s.calls.Load() }

// Close stops the server at once, closing every connection, and waits for
// it. It is safe to call more than once.
func (s *Server) Close() {
	s.once.Do(func() {
		_ = s.srv.Close()
		<-s.done
	})
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	// What grpc-go's server answers to requests that are not gRPC.
	switch {
	case r.ProtoMajor != 2:
		http.Error(w, "gRPC requires HTTP/2", http.StatusHTTPVersionNotSupported)
		return
	case r.Method != http.MethodPost:
		http.Error(w, "gRPC requires POST", http.StatusMethodNotAllowed)
		return
	case !grpcwire.IsContentType(r.Header.Get("Content-Type")):
		http.Error(w, "invalid gRPC request content-type", http.StatusUnsupportedMediaType)
		return
	}
	if r.URL.Path != grpcwire.CheckPath {
		fail(w, grpcwire.Unimplemented, unimplemented(r.URL.Path))
		return
	}
	s.calls.Add(1)
	service, code, msg := readRequest(r.Body)
	if code != grpcwire.OK {
		fail(w, code, msg)
		return
	}
	s.mu.Lock()
	st, ok := s.statuses[service]
	s.mu.Unlock()
	if !ok {
		fail(w, grpcwire.NotFound, "unknown service")
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/grpc")
	h.Set("Trailer", "Grpc-Status")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(grpcwire.Response(int32(st)))
	h.Set("Grpc-Status", "0")
}

// readRequest reads the length-prefixed HealthCheckRequest and returns its
// service, or a gRPC code and message saying why it cannot.
func readRequest(body io.Reader) (string, int, string) {
	b, err := io.ReadAll(io.LimitReader(body, 5+maxRequest+1))
	switch {
	case err != nil:
		return "", grpcwire.Internal, "reading the request: " + err.Error()
	case len(b) < 5:
		return "", grpcwire.Internal, "request without a message"
	case b[0] != 0:
		return "", grpcwire.Unimplemented, "compressed requests are not supported"
	case len(b) > 5+maxRequest:
		return "", grpcwire.ResourceExhausted, fmt.Sprintf("request message over %d bytes", maxRequest)
	case int(binary.BigEndian.Uint32(b[1:5])) != len(b)-5:
		return "", grpcwire.Internal, "request is not one length-prefixed message"
	}
	service, err := grpcwire.ParseRequest(b[5:])
	if err != nil {
		return "", grpcwire.Internal, "grpc: error unmarshalling request: " + err.Error()
	}
	return service, grpcwire.OK, ""
}

// unimplemented is grpc-go's message for a method it does not serve.
func unimplemented(path string) string {
	service, method, ok := strings.Cut(strings.TrimPrefix(path, "/"), "/")
	if ok && service == "grpc.health.v1.Health" {
		return fmt.Sprintf("unknown method %s for service %s", method, service)
	}
	return "unknown service " + service
}

// fail sends a Trailers-Only answer: the status in the headers, no body.
func fail(w http.ResponseWriter, code int, msg string) {
	h := w.Header()
	h.Set("Content-Type", "application/grpc")
	h.Set("Grpc-Status", strconv.Itoa(code))
	h.Set("Grpc-Message", grpcwire.EncodeMessage(msg))
	w.WriteHeader(http.StatusOK)
}
