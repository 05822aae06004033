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
	"errors"
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
)

// Status is a serving status of grpc.health.v1.HealthCheckResponse.
type Status int32

const (
	Unknown        Status = 0
	Serving        Status = 1
	NotServing     Status = 2
	ServiceUnknown Status = 3
)

// gRPC status codes the server answers with.
const (
	codeOK                = 0
	codeNotFound          = 5
	codeResourceExhausted = 8
	codeUnimplemented     = 12
	codeInternal          = 13
)

const checkPath = "/grpc.health.v1.Health/Check"

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
	case !isGRPC(r.Header.Get("Content-Type")):
		http.Error(w, "invalid gRPC request content-type", http.StatusUnsupportedMediaType)
		return
	}
	if r.URL.Path != checkPath {
		fail(w, codeUnimplemented, unimplemented(r.URL.Path))
		return
	}
	s.calls.Add(1)
	service, code, msg := readRequest(r.Body)
	if code != codeOK {
		fail(w, code, msg)
		return
	}
	s.mu.Lock()
	st, ok := s.statuses[service]
	s.mu.Unlock()
	if !ok {
		fail(w, codeNotFound, "unknown service")
		return
	}
	// HealthCheckResponse: field 1 (enum status) as a varint, omitted
	// when 0 as proto3 does.
	msgb := make([]byte, 5, 5+1+binary.MaxVarintLen64)
	if st != Unknown {
		msgb = append(msgb, 0x08)
		msgb = binary.AppendUvarint(msgb, uint64(int64(st))) // negative enums take 10 bytes, as in protobuf
	}
	binary.BigEndian.PutUint32(msgb[1:], uint32(len(msgb)-5))
	h := w.Header()
	h.Set("Content-Type", "application/grpc")
	h.Set("Trailer", "Grpc-Status")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(msgb)
	h.Set("Grpc-Status", "0")
}

// readRequest reads the length-prefixed HealthCheckRequest and returns its
// service, or a gRPC code and message saying why it cannot.
func readRequest(body io.Reader) (string, int, string) {
	b, err := io.ReadAll(io.LimitReader(body, 5+maxRequest+1))
	switch {
	case err != nil:
		return "", codeInternal, "reading the request: " + err.Error()
	case len(b) < 5:
		return "", codeInternal, "request without a message"
	case b[0] != 0:
		return "", codeUnimplemented, "compressed requests are not supported"
	case len(b) > 5+maxRequest:
		return "", codeResourceExhausted, fmt.Sprintf("request message over %d bytes", maxRequest)
	case int(binary.BigEndian.Uint32(b[1:5])) != len(b)-5:
		return "", codeInternal, "request is not one length-prefixed message"
	}
	service, err := parseRequest(b[5:])
	if err != nil {
		return "", codeInternal, "grpc: error unmarshalling request: " + err.Error()
	}
	return service, codeOK, ""
}

var errMalformed = errors.New("malformed HealthCheckRequest")

// parseRequest decodes a HealthCheckRequest: field 1 (string service), the
// last occurrence winning; unknown fields skipped by their wire type.
func parseRequest(b []byte) (string, error) {
	var service string
	for len(b) > 0 {
		tag, n := binary.Uvarint(b)
		if n <= 0 || tag>>3 == 0 {
			return "", errMalformed
		}
		b = b[n:]
		switch tag & 7 {
		case 0:
			_, n = binary.Uvarint(b)
			if n <= 0 {
				return "", errMalformed
			}
		case 1:
			n = 8
		case 2:
			l, m := binary.Uvarint(b)
			if m <= 0 || l > uint64(len(b)-m) {
				return "", errMalformed
			}
			if tag>>3 == 1 {
				service = string(b[m : m+int(l)])
			}
			n = m + int(l)
		case 5:
			n = 4
		default:
			return "", errMalformed
		}
		if tag>>3 == 1 && tag&7 != 2 {
			return "", errMalformed
		}
		if n > len(b) {
			return "", errMalformed
		}
		b = b[n:]
	}
	return service, nil
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
	h.Set("Grpc-Message", encodeMessage(msg))
	w.WriteHeader(http.StatusOK)
}

// encodeMessage percent-encodes what grpc-message may not carry: bytes
// outside printable ASCII, and '%' itself.
func encodeMessage(msg string) string {
	var b strings.Builder
	for i := 0; i < len(msg); i++ {
		if c := msg[i]; c < 0x20 || c > 0x7e || c == '%' {
			fmt.Fprintf(&b, "%%%02X", c)
		} else {
			b.WriteByte(c)
		}
	}
	return b.String()
}

// isGRPC says whether a content-type is gRPC's: application/grpc, alone
// or followed by "+codec" or parameters.
func isGRPC(ct string) bool {
	rest, ok := strings.CutPrefix(ct, "application/grpc")
	return ok && (rest == "" || rest[0] == '+' || rest[0] == ';')
}
