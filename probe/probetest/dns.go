package probetest

import (
	"context"
	"crypto/tls"
	"encoding/base64"
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

	"github.com/miekg/dns"
	"github.com/quic-go/quic-go"
)

// This file holds loopback DNS servers over every transport Vantage probes
// (UDP+TCP, DoT, DoH, DoQ) and a toolkit of dns.Handlers to put behind them.
// The constructors return errors instead of taking a *testing.T because the
// demo's target farm runs them outside tests.

// DNSServer is a running loopback DNS server. Close it when done.
type DNSServer struct {
	addr string
	url  string

	// cancel ends the server's lifetime context first, so that handlers that
	// wait (Slow, and Drop over DoH/DoQ) return before the listeners close.
	cancel    context.CancelFunc
	shutdown  func() error
	closeOnce sync.Once
	closeErr  error
}

// Addr is the server's 127.0.0.1:port. StartDNS serves UDP and TCP on it.
func (s *DNSServer) Addr() string { return s.addr }

// URL is the DoH endpoint (https://127.0.0.1:port/dns-query); empty for the
// other transports.
func (s *DNSServer) URL() string { return s.url }

// Close stops the server, closes its connections and waits for its
// goroutines. It is safe to call more than once.
func (s *DNSServer) Close() error {
	s.closeOnce.Do(func() {
		s.cancel()
		s.closeErr = s.shutdown()
	})
	return s.closeErr
}

// StartDNS serves h over UDP and TCP on the same 127.0.0.1 port. Both
// sockets are bound before anything is served; if the TCP port that matches
// the UDP one is taken, it tries another pair rather than freeing and
// rebinding a port.
func StartDNS(h dns.Handler) (*DNSServer, error) {
	var (
		pc  net.PacketConn
		l   net.Listener
		err error
	)
	for attempt := 0; ; attempt++ {
		pc, err = net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("dns server: listen udp: %w", err)
		}
		port := pc.LocalAddr().(*net.UDPAddr).Port
		l, err = net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err == nil {
			break
		}
		_ = pc.Close()
		if attempt == 9 {
			return nil, fmt.Errorf("dns server: no port free on both udp and tcp: %w", err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	wrapped := ctxHandler{ctx: ctx, h: h}
	udp := &dns.Server{PacketConn: pc, Handler: wrapped}
	tcp := &dns.Server{Listener: l, Handler: wrapped}
	udpDone, err := activate(udp)
	if err != nil {
		cancel()
		_ = pc.Close()
		_ = l.Close()
		return nil, fmt.Errorf("dns server: serve udp: %w", err)
	}
	tcpDone, err := activate(tcp)
	if err != nil {
		cancel()
		_ = udp.Shutdown()
		<-udpDone
		_ = l.Close()
		return nil, fmt.Errorf("dns server: serve tcp: %w", err)
	}
	return &DNSServer{
		addr:   pc.LocalAddr().String(),
		cancel: cancel,
		shutdown: func() error {
			err := errors.Join(udp.Shutdown(), tcp.Shutdown())
			<-udpDone
			<-tcpDone
			return err
		},
	}, nil
}

// StartDoT serves h over DNS-over-TLS (RFC 7858) on 127.0.0.1, presenting
// cert.
func StartDoT(h dns.Handler, cert tls.Certificate) (*DNSServer, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("dot server: listen: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv := &dns.Server{
		Net:      "tcp-tls",
		Listener: tls.NewListener(l, ServerTLS(cert, "dot")),
		Handler:  ctxHandler{ctx: ctx, h: h},
	}
	done, err := activate(srv)
	if err != nil {
		cancel()
		_ = l.Close()
		return nil, fmt.Errorf("dot server: serve: %w", err)
	}
	return &DNSServer{
		addr:   l.Addr().String(),
		cancel: cancel,
		shutdown: func() error {
			err := srv.Shutdown()
			<-done
			return err
		},
	}, nil
}

// activate starts srv on its bound socket and waits until it is serving.
// The returned channel is closed when the serve loop has returned.
func activate(srv *dns.Server) (<-chan struct{}, error) {
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	done := make(chan struct{})
	errc := make(chan error, 1)
	go func() {
		defer close(done)
		errc <- srv.ActivateAndServe()
	}()
	select {
	case <-started:
		return done, nil
	case err := <-errc:
		return nil, err
	}
}

// dohMaxQuery bounds the request body a DoH server reads (RFC 8484 messages
// fit in 64 KiB).
const dohMaxQuery = 64 << 10

// StartDoH serves h over DNS-over-HTTPS (RFC 8484) at
// https://127.0.0.1:port/dns-query, with HTTP/2 and HTTP/1.1, accepting POST
// (application/dns-message) and GET (?dns=base64url).
func StartDoH(h dns.Handler, cert tls.Certificate) (*DNSServer, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("doh server: listen: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	mux := http.NewServeMux()
	mux.Handle("/dns-query", dohHandler{h: h})
	srv := &http.Server{
		Handler:           mux,
		TLSConfig:         ServerTLS(cert, "h2", "http/1.1"),
		ReadHeaderTimeout: 10 * time.Second,
		// Request contexts derive from ctx, so Close releases handlers that
		// wait for the client (Drop, Slow) before shutting down.
		BaseContext: func(net.Listener) context.Context { return ctx },
		// Handshake noise (clients that reject the certificate) is expected.
		ErrorLog: log.New(io.Discard, "", 0),
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.ServeTLS(l, "", "")
	}()
	addr := l.Addr().String()
	return &DNSServer{
		addr:   addr,
		url:    "https://" + addr + "/dns-query",
		cancel: cancel,
		// Not Shutdown: HTTP/2's graceful GOAWAY waits a second for
		// clients, and a test server has no answers worth draining. The
		// cancelled BaseContext has already released waiting handlers.
		shutdown: func() error {
			err := srv.Close()
			<-done
			return err
		},
	}, nil
}

type dohHandler struct{ h dns.Handler }

func (d dohHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var (
		q   []byte
		err error
	)
	switch r.Method {
	case http.MethodGet:
		q, err = base64.RawURLEncoding.DecodeString(r.URL.Query().Get("dns"))
	case http.MethodPost:
		if ct := r.Header.Get("Content-Type"); ct != "application/dns-message" {
			http.Error(w, fmt.Sprintf("content-type %q is not application/dns-message", ct), http.StatusUnsupportedMediaType)
			return
		}
		q, err = io.ReadAll(io.LimitReader(r.Body, dohMaxQuery))
	default:
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	req := new(dns.Msg)
	if err := req.Unpack(q); err != nil {
		http.Error(w, "bad dns message: "+err.Error(), http.StatusBadRequest)
		return
	}
	rw := &msgWriter{
		ctx:    r.Context(),
		local:  streamAddr{addrOf(r.Context().Value(http.LocalAddrContextKey)), "https"},
		remote: streamAddr{addrString(r.RemoteAddr), "https"},
	}
	d.h.ServeDNS(rw, req)
	if rw.out == nil {
		// Never answer: hold the request until the client gives up or the
		// server closes, as a resolver that drops queries would.
		<-r.Context().Done()
		return
	}
	w.Header().Set("Content-Type", "application/dns-message")
	w.Header().Set("Content-Length", strconv.Itoa(len(rw.out)))
	_, _ = w.Write(rw.out)
}

// doqNoError and doqProtocolError are RFC 9250 application error codes.
const (
	doqNoError       = 0x0
	doqProtocolError = 0x2
)

// StartDoQ serves h over DNS-over-QUIC (RFC 9250) on 127.0.0.1 with ALPN
// "doq": one query per bidirectional stream, each message prefixed by its
// 2-byte length, message ID 0.
func StartDoQ(h dns.Handler, cert tls.Certificate) (*DNSServer, error) {
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, fmt.Errorf("doq server: listen: %w", err)
	}
	tr := &quic.Transport{Conn: pc}
	tlsConf := ServerTLS(cert, "doq")
	tlsConf.MinVersion = tls.VersionTLS13
	ln, err := tr.Listen(tlsConf, &quic.Config{})
	if err != nil {
		_ = tr.Close()
		_ = pc.Close()
		return nil, fmt.Errorf("doq server: quic listen: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &doqServer{h: h, ctx: ctx}
	s.wg.Add(1)
	go s.accept(ln)
	return &DNSServer{
		addr:   pc.LocalAddr().String(),
		cancel: cancel,
		shutdown: func() error {
			err := ln.Close()
			s.wg.Wait()
			return errors.Join(err, tr.Close(), pc.Close())
		},
	}, nil
}

type doqServer struct {
	h   dns.Handler
	ctx context.Context
	wg  sync.WaitGroup
}

func (s *doqServer) accept(ln *quic.Listener) {
	defer s.wg.Done()
	for {
		conn, err := ln.Accept(s.ctx)
		if err != nil {
			return
		}
		s.wg.Add(1)
		go s.serveConn(conn)
	}
}

func (s *doqServer) serveConn(conn *quic.Conn) {
	defer s.wg.Done()
	for {
		str, err := conn.AcceptStream(s.ctx)
		if err != nil {
			// The client closed the connection, or the server is closing:
			// either way this connection is done.
			_ = conn.CloseWithError(doqNoError, "")
			return
		}
		s.wg.Add(1)
		go s.serveStream(conn, str)
	}
}

func (s *doqServer) serveStream(conn *quic.Conn, str *quic.Stream) {
	defer s.wg.Done()
	_ = str.SetReadDeadline(time.Now().Add(10 * time.Second))
	var hdr [2]byte
	if _, err := io.ReadFull(str, hdr[:]); err != nil {
		str.CancelRead(doqProtocolError)
		str.CancelWrite(doqProtocolError)
		return
	}
	q := make([]byte, binary.BigEndian.Uint16(hdr[:]))
	if _, err := io.ReadFull(str, q); err != nil {
		str.CancelRead(doqProtocolError)
		str.CancelWrite(doqProtocolError)
		return
	}
	req := new(dns.Msg)
	if err := req.Unpack(q); err != nil || req.Id != 0 {
		// RFC 9250 section 4.2.1: a non-zero message ID is a protocol error.
		_ = conn.CloseWithError(doqProtocolError, "bad query")
		return
	}
	rw := &msgWriter{
		ctx:    conn.Context(),
		local:  streamAddr{conn.LocalAddr(), "quic"},
		remote: streamAddr{conn.RemoteAddr(), "quic"},
	}
	s.h.ServeDNS(rw, req)
	if rw.out == nil {
		// Never answer: keep the stream open until the client closes the
		// connection or the server stops.
		select {
		case <-conn.Context().Done():
		case <-s.ctx.Done():
		}
		return
	}
	out := make([]byte, 2+len(rw.out))
	binary.BigEndian.PutUint16(out, uint16(len(rw.out)))
	copy(out[2:], rw.out)
	_ = str.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := str.Write(out); err != nil {
		return
	}
	_ = str.Close()
}

// msgWriter is the dns.ResponseWriter for DoH and DoQ: it captures the one
// reply the handler writes.
type msgWriter struct {
	ctx           context.Context
	local, remote net.Addr
	out           []byte
}

func (w *msgWriter) LocalAddr() net.Addr      { return w.local }
func (w *msgWriter) RemoteAddr() net.Addr     { return w.remote }
func (w *msgWriter) Close() error             { return nil }
func (w *msgWriter) TsigStatus() error        { return nil }
func (w *msgWriter) TsigTimersOnly(bool)      {}
func (w *msgWriter) Hijack()                  {}
func (w *msgWriter) Context() context.Context { return w.ctx }
func (w *msgWriter) Write(b []byte) (int, error) {
	w.out = append([]byte(nil), b...)
	return len(b), nil
}
func (w *msgWriter) WriteMsg(m *dns.Msg) (err error) { w.out, err = m.Pack(); return err }

// streamAddr reports a DoH/DoQ peer with its own network name, so handlers
// that truncate only UDP answers (Zone) do not truncate DoQ ones.
type streamAddr struct {
	net.Addr
	network string
}

func (a streamAddr) Network() string { return a.network }

func (a streamAddr) String() string {
	if a.Addr == nil {
		return ""
	}
	return a.Addr.String()
}

func addrOf(v any) net.Addr {
	if a, ok := v.(net.Addr); ok {
		return a
	}
	return nil
}

func addrString(s string) net.Addr {
	if ap, err := net.ResolveTCPAddr("tcp", s); err == nil {
		return ap
	}
	return nil
}

// ctxHandler hands handlers the server's lifetime context through the
// ResponseWriter (see RequestContext).
type ctxHandler struct {
	ctx context.Context
	h   dns.Handler
}

func (c ctxHandler) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	c.h.ServeDNS(ctxWriter{ResponseWriter: w, ctx: c.ctx}, r)
}

type ctxWriter struct {
	dns.ResponseWriter
	ctx context.Context
}

func (w ctxWriter) Context() context.Context { return w.ctx }

// RequestContext returns a context that ends when the server serving w
// closes (and, for DoH and DoQ, when the client goes away). Handlers that
// wait use it so that Close never waits on them. For a ResponseWriter from
// elsewhere it returns context.Background().
func RequestContext(w dns.ResponseWriter) context.Context {
	if c, ok := w.(interface{ Context() context.Context }); ok {
		return c.Context()
	}
	return context.Background()
}

// Zone answers authoritatively from fixed records: the records whose owner
// name and type match the question (any type for ANY), NOERROR with no
// answer when the name exists with other types, NXDOMAIN when it does not.
// UDP answers larger than the client's buffer (512 bytes without EDNS) are
// truncated with the TC bit, as a real server would.
type Zone struct {
	rrs []dns.RR
}

var _ dns.Handler = (*Zone)(nil)

// NewZone parses records in presentation format, e.g.
// "www.example.com. 300 IN A 192.0.2.1".
func NewZone(records ...string) (*Zone, error) {
	z := &Zone{rrs: make([]dns.RR, 0, len(records))}
	for _, s := range records {
		rr, err := dns.NewRR(s)
		if err != nil {
			return nil, fmt.Errorf("zone record %q: %w", s, err)
		}
		if rr == nil {
			return nil, fmt.Errorf("zone record %q: empty", s)
		}
		z.rrs = append(z.rrs, rr)
	}
	return z, nil
}

// ServeDNS implements dns.Handler.
func (z *Zone) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(r)
	m.Authoritative = true
	if len(r.Question) != 1 {
		m.Rcode = dns.RcodeFormatError
		_ = w.WriteMsg(m)
		return
	}
	q := r.Question[0]
	found := false
	for _, rr := range z.rrs {
		h := rr.Header()
		if !strings.EqualFold(h.Name, q.Name) {
			continue
		}
		found = true
		if h.Rrtype == q.Qtype || q.Qtype == dns.TypeANY {
			m.Answer = append(m.Answer, dns.Copy(rr))
		}
	}
	if !found {
		m.Rcode = dns.RcodeNameError
	}
	size := dns.MinMsgSize
	if opt := r.IsEdns0(); opt != nil {
		size = max(int(opt.UDPSize()), dns.MinMsgSize)
		m.SetEdns0(uint16(size), false)
	}
	if w.RemoteAddr() != nil && w.RemoteAddr().Network() == "udp" {
		m.Truncate(size)
	}
	_ = w.WriteMsg(m)
}

// Rcode answers every query with rcode and no records.
func Rcode(rcode int) dns.Handler {
	return dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetRcode(r, rcode)
		_ = w.WriteMsg(m)
	})
}

// Refused answers REFUSED, as a resolver that does not serve the client.
func Refused() dns.Handler { return Rcode(dns.RcodeRefused) }

// ServFail answers SERVFAIL, as a resolver whose upstream is broken.
func ServFail() dns.Handler { return Rcode(dns.RcodeServerFailure) }

// NXDomain answers NXDOMAIN for every name.
func NXDomain() dns.Handler { return Rcode(dns.RcodeNameError) }

// Drop never answers. Over UDP the query is ignored; over TCP and DoT the
// connection stays open without a reply; over DoH and DoQ the request or
// stream is held until the client gives up.
func Drop() dns.Handler {
	return dns.HandlerFunc(func(dns.ResponseWriter, *dns.Msg) {})
}

// Slow answers with h after delay d. It gives up without answering when the
// server closes (or, for DoH and DoQ, when the client goes away).
func Slow(d time.Duration, h dns.Handler) dns.Handler {
	return dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
			h.ServeDNS(w, r)
		case <-RequestContext(w).Done():
		}
	})
}

// Truncated answers with h's reply cut to its header and question, with the
// TC bit set, as a server whose answer did not fit in a UDP datagram.
func Truncated(h dns.Handler) dns.Handler {
	return dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		h.ServeDNS(truncWriter{w}, r)
	})
}

type truncWriter struct{ dns.ResponseWriter }

func (t truncWriter) Context() context.Context { return RequestContext(t.ResponseWriter) }

func (t truncWriter) WriteMsg(m *dns.Msg) error {
	m.Truncated = true
	m.Answer, m.Ns, m.Extra = nil, nil, nil
	return t.ResponseWriter.WriteMsg(m)
}

// Switch is a handler whose behaviour can be changed at run time, so the
// demo can flip a target between healthy and failing. It is safe for
// concurrent use.
type Switch struct {
	cur atomic.Pointer[handlerBox]
}

type handlerBox struct{ h dns.Handler }

var _ dns.Handler = (*Switch)(nil)

// NewSwitch returns a Switch serving h.
func NewSwitch(h dns.Handler) *Switch {
	s := &Switch{}
	s.Set(h)
	return s
}

// Set makes every later query go to h.
func (s *Switch) Set(h dns.Handler) { s.cur.Store(&handlerBox{h: h}) }

// ServeDNS implements dns.Handler.
func (s *Switch) ServeDNS(w dns.ResponseWriter, r *dns.Msg) { s.cur.Load().h.ServeDNS(w, r) }
