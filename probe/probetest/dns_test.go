package probetest_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/quic-go/quic-go"

	"github.com/vantage-probe/vantage/probe/probetest"
)

func dnsZone(t *testing.T) *probetest.Zone {
	t.Helper()
	z, err := probetest.NewZone(
		"www.example.com. 60 IN A 192.0.2.1",
		"www.example.com. 60 IN TXT \"hello\"",
	)
	if err != nil {
		t.Fatal(err)
	}
	return z
}

func dnsCert(t *testing.T) (tls.Certificate, *tls.Config) {
	t.Helper()
	ca, err := probetest.NewCA("dns test CA")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.Leaf(probetest.Days(30), "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	return cert, &tls.Config{RootCAs: ca.Pool(), ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
}

func dnsClose(t *testing.T, s *probetest.DNSServer) {
	t.Helper()
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
}

// dnsAsk sends one query with miekg's client over network ("udp", "tcp",
// "tcp-tls").
func dnsAsk(t *testing.T, network, addr string, tc *tls.Config, name string, qtype uint16) *dns.Msg {
	t.Helper()
	c := &dns.Client{Net: network, TLSConfig: tc, Timeout: 10 * time.Second}
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	r, _, err := c.Exchange(m, addr)
	if err != nil {
		t.Fatalf("%s exchange with %s: %v", network, addr, err)
	}
	return r
}

func TestStartDNSServesUDPAndTCPOnOnePort(t *testing.T) {
	s, err := probetest.StartDNS(dnsZone(t))
	if err != nil {
		t.Fatal(err)
	}
	dnsClose(t, s)
	if !strings.HasPrefix(s.Addr(), "127.0.0.1:") || s.URL() != "" {
		t.Errorf("addr %q url %q", s.Addr(), s.URL())
	}
	for _, network := range []string{"udp", "tcp"} {
		r := dnsAsk(t, network, s.Addr(), nil, "www.example.com.", dns.TypeA)
		if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 || !r.Authoritative {
			t.Fatalf("%s: %v", network, r)
		}
		if a, ok := r.Answer[0].(*dns.A); !ok || !a.A.Equal(net.IPv4(192, 0, 2, 1)) {
			t.Errorf("%s: answer %v", network, r.Answer[0])
		}
		// Case-insensitive names, NODATA for another type, NXDOMAIN for
		// another name.
		if r := dnsAsk(t, network, s.Addr(), nil, "WWW.Example.COM.", dns.TypeTXT); len(r.Answer) != 1 {
			t.Errorf("%s: TXT by upper-case name: %v", network, r)
		}
		if r := dnsAsk(t, network, s.Addr(), nil, "www.example.com.", dns.TypeAAAA); r.Rcode != dns.RcodeSuccess || len(r.Answer) != 0 {
			t.Errorf("%s: NODATA: %v", network, r)
		}
		if r := dnsAsk(t, network, s.Addr(), nil, "nope.example.com.", dns.TypeA); r.Rcode != dns.RcodeNameError {
			t.Errorf("%s: missing name rcode %s, want NXDOMAIN", network, dns.RcodeToString[r.Rcode])
		}
	}
}

func TestNewZoneRejectsBadRecord(t *testing.T) {
	_, err := probetest.NewZone("www.example.com. 60 IN A not-an-ip")
	if err == nil || !strings.Contains(err.Error(), `"www.example.com. 60 IN A not-an-ip"`) {
		t.Errorf("error %v should quote the record", err)
	}
}

func TestZoneTruncatesOnlyUDP(t *testing.T) {
	var recs []string
	for i := range 60 {
		recs = append(recs, "big.example.com. 60 IN A 192.0.2."+strconv.Itoa(i))
	}
	z, err := probetest.NewZone(recs...)
	if err != nil {
		t.Fatal(err)
	}
	s, err := probetest.StartDNS(z)
	if err != nil {
		t.Fatal(err)
	}
	dnsClose(t, s)
	if r := dnsAsk(t, "udp", s.Addr(), nil, "big.example.com.", dns.TypeA); !r.Truncated || len(r.Answer) >= 60 {
		t.Errorf("udp: TC=%v with %d answers, want truncated", r.Truncated, len(r.Answer))
	}
	if r := dnsAsk(t, "tcp", s.Addr(), nil, "big.example.com.", dns.TypeA); r.Truncated || len(r.Answer) != 60 {
		t.Errorf("tcp: TC=%v with %d answers, want all 60", r.Truncated, len(r.Answer))
	}
}

func TestRcodeHandlersAndSwitch(t *testing.T) {
	sw := probetest.NewSwitch(dnsZone(t))
	s, err := probetest.StartDNS(sw)
	if err != nil {
		t.Fatal(err)
	}
	dnsClose(t, s)
	for _, c := range []struct {
		h    dns.Handler
		want int
	}{
		{probetest.Refused(), dns.RcodeRefused},
		{probetest.ServFail(), dns.RcodeServerFailure},
		{probetest.NXDomain(), dns.RcodeNameError},
		{probetest.Rcode(dns.RcodeNotImplemented), dns.RcodeNotImplemented},
		{dnsZone(t), dns.RcodeSuccess},
	} {
		sw.Set(c.h)
		r := dnsAsk(t, "udp", s.Addr(), nil, "www.example.com.", dns.TypeA)
		if r.Rcode != c.want {
			t.Errorf("rcode %s, want %s", dns.RcodeToString[r.Rcode], dns.RcodeToString[c.want])
		}
	}
	sw.Set(probetest.Drop())
	c := &dns.Client{Net: "udp", Timeout: 200 * time.Millisecond}
	m := new(dns.Msg)
	m.SetQuestion("www.example.com.", dns.TypeA)
	if _, _, err := c.Exchange(m, s.Addr()); err == nil {
		t.Error("Drop answered")
	}
}

// TestSlowIsReleasedByClose checks that Close does not wait out a slow
// handler's delay.
func TestSlowIsReleasedByClose(t *testing.T) {
	reached := make(chan struct{}, 1)
	inner := dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {})
	h := dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		reached <- struct{}{}
		probetest.Slow(time.Hour, inner).ServeDNS(w, r)
	})
	s, err := probetest.StartDNS(h)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("udp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	m := new(dns.Msg)
	m.SetQuestion("www.example.com.", dns.TypeA)
	b, _ := m.Pack()
	if _, err := conn.Write(b); err != nil {
		t.Fatal(err)
	}
	<-reached
	done := make(chan error, 1)
	go func() { done <- s.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("close: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close waited for the slow handler")
	}
}

func TestStartDoT(t *testing.T) {
	cert, clientTLS := dnsCert(t)
	s, err := probetest.StartDoT(dnsZone(t), cert)
	if err != nil {
		t.Fatal(err)
	}
	dnsClose(t, s)
	r := dnsAsk(t, "tcp-tls", s.Addr(), clientTLS, "www.example.com.", dns.TypeA)
	if len(r.Answer) != 1 {
		t.Errorf("answer %v", r)
	}
}

func TestStartDoH(t *testing.T) {
	cert, clientTLS := dnsCert(t)
	s, err := probetest.StartDoH(dnsZone(t), cert)
	if err != nil {
		t.Fatal(err)
	}
	dnsClose(t, s)
	if s.URL() != "https://"+s.Addr()+"/dns-query" {
		t.Errorf("url %q for addr %q", s.URL(), s.Addr())
	}
	tr := &http.Transport{TLSClientConfig: clientTLS, ForceAttemptHTTP2: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}

	q := new(dns.Msg)
	q.SetQuestion("www.example.com.", dns.TypeA)
	q.Id = 0
	packed, _ := q.Pack()

	check := func(name string, resp *http.Response, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/dns-message" || resp.ProtoMajor != 2 {
			t.Fatalf("%s: %s %s %q", name, resp.Proto, resp.Status, resp.Header.Get("Content-Type"))
		}
		m := new(dns.Msg)
		if err := m.Unpack(body); err != nil || len(m.Answer) != 1 {
			t.Errorf("%s: answer %v (%v)", name, m, err)
		}
	}
	resp, err := client.Post(s.URL(), "application/dns-message", bytes.NewReader(packed))
	check("POST", resp, err)
	resp, err = client.Get(s.URL() + "?dns=" + base64.RawURLEncoding.EncodeToString(packed))
	check("GET", resp, err)

	resp, err = client.Post(s.URL(), "text/plain", bytes.NewReader(packed))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnsupportedMediaType {
		t.Errorf("wrong content type: status %d, want 415", resp.StatusCode)
	}
}

// TestDoHDropHeldUntilClose checks that a dropped DoH request hangs (as a
// resolver that never answers) yet does not hold up Close.
func TestDoHDropHeldUntilClose(t *testing.T) {
	cert, clientTLS := dnsCert(t)
	s, err := probetest.StartDoH(probetest.Drop(), cert)
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{TLSClientConfig: clientTLS, ForceAttemptHTTP2: true}
	defer tr.CloseIdleConnections()
	q := new(dns.Msg)
	q.SetQuestion("www.example.com.", dns.TypeA)
	packed, _ := q.Pack()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, s.URL(), bytes.NewReader(packed))
	req.Header.Set("Content-Type", "application/dns-message")
	if resp, err := tr.RoundTrip(req); err == nil {
		resp.Body.Close()
		t.Fatalf("dropped DoH query answered %s", resp.Status)
	}
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- s.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("close: %v", err)
		}
		t.Logf("close took %v", time.Since(start))
	case <-time.After(10 * time.Second):
		t.Fatal("Close hung on a dropped request")
	}
}

// doqAsk runs one raw RFC 9250 exchange with the given message ID.
func doqAsk(t *testing.T, addr string, clientTLS *tls.Config, id uint16) (*dns.Msg, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tc := clientTLS.Clone()
	tc.NextProtos = []string{"doq"}
	conn, err := quic.DialAddr(ctx, addr, tc, nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer conn.CloseWithError(0, "")
	if got := conn.ConnectionState().TLS.NegotiatedProtocol; got != "doq" {
		t.Errorf("ALPN %q, want doq", got)
	}
	str, err := conn.OpenStreamSync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	q := new(dns.Msg)
	q.SetQuestion("www.example.com.", dns.TypeA)
	q.Id = id
	packed, _ := q.Pack()
	out := binary.BigEndian.AppendUint16(nil, uint16(len(packed)))
	if _, err := str.Write(append(out, packed...)); err != nil {
		t.Fatal(err)
	}
	_ = str.Close()
	_ = str.SetReadDeadline(time.Now().Add(10 * time.Second))
	b, err := io.ReadAll(str)
	if err != nil {
		return nil, err
	}
	if len(b) < 2 || int(binary.BigEndian.Uint16(b)) != len(b)-2 {
		t.Fatalf("bad framing: %d bytes", len(b))
	}
	m := new(dns.Msg)
	return m, m.Unpack(b[2:])
}

func TestStartDoQ(t *testing.T) {
	cert, clientTLS := dnsCert(t)
	s, err := probetest.StartDoQ(dnsZone(t), cert)
	if err != nil {
		t.Fatal(err)
	}
	dnsClose(t, s)
	m, err := doqAsk(t, s.Addr(), clientTLS, 0)
	if err != nil || len(m.Answer) != 1 || m.Id != 0 || m.Truncated {
		t.Fatalf("answer %v (%v)", m, err)
	}
	// RFC 9250 section 4.2.1: a non-zero ID is a protocol error that
	// closes the connection.
	_, err = doqAsk(t, s.Addr(), clientTLS, 1234)
	var appErr *quic.ApplicationError
	if !errors.As(err, &appErr) || appErr.ErrorCode != 0x2 {
		t.Errorf("non-zero ID: error %v, want DOQ_PROTOCOL_ERROR", err)
	}
}
