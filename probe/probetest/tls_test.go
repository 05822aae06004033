package probetest_test

import (
	"bufio"
	"crypto/tls"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/vantage-probe/vantage/probe/probetest"
)

func TestTLSServer(t *testing.T) {
	ca, err := probetest.NewCA("probetest CA")
	if err != nil {
		t.Fatal(err)
	}
	leaf1, err := ca.Leaf(probetest.Days(30), "one.test")
	if err != nil {
		t.Fatal(err)
	}
	leaf2, err := ca.Leaf(probetest.Days(60), "two.test")
	if err != nil {
		t.Fatal(err)
	}
	s, err := probetest.StartTLS(leaf1, "h2")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })

	handshake := func(name string) *tls.Conn {
		t.Helper()
		c := tcpDial(t, s.Addr)
		tc := tls.Client(c, &tls.Config{RootCAs: ca.Pool(), ServerName: name, NextProtos: []string{"h2"}})
		if err := tc.Handshake(); err != nil {
			t.Fatalf("handshake as %s: %v", name, err)
		}
		return tc
	}
	if s.LastSNI() != "" {
		t.Fatalf("LastSNI %q before any handshake", s.LastSNI())
	}
	tc := handshake("one.test")
	if s.LastSNI() != "one.test" {
		t.Fatalf("LastSNI %q, want one.test", s.LastSNI())
	}
	if p := tc.ConnectionState().NegotiatedProtocol; p != "h2" {
		t.Fatalf("ALPN %q, want h2", p)
	}
	if _, err := tc.Write([]byte("echo me\n")); err != nil {
		t.Fatal(err)
	}
	if line, err := bufio.NewReader(tc).ReadString('\n'); err != nil || line != "echo me\n" {
		t.Fatalf("echo inside TLS: %q, %v", line, err)
	}

	s.SetCertificate(leaf2)
	tc = handshake("two.test")
	if got := tc.ConnectionState().PeerCertificates[0].NotAfter; !got.Equal(leaf2.Leaf.NotAfter) {
		t.Fatalf("after SetCertificate NotAfter %v, want %v", got, leaf2.Leaf.NotAfter)
	}

	s.SetMode(probetest.TCPSilent)
	c := tcpDial(t, s.Addr)
	_ = c.SetDeadline(time.Now().Add(150 * time.Millisecond))
	err = tls.Client(c, &tls.Config{RootCAs: ca.Pool(), ServerName: "two.test"}).Handshake()
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("silent TLS server: handshake %v, want a timeout", err)
	}
}
