package probetest_test

import (
	"bufio"
	"errors"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/vantage-probe/vantage/probe/probetest"
)

// waitFor polls cond until it holds or a generous bound passes.
func tcpWaitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(5 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

func tcpStart(t *testing.T, mode probetest.TCPMode, banner string) *probetest.TCPServer {
	t.Helper()
	s, err := probetest.StartTCP(mode, banner)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func tcpDial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	return c
}

func TestTCPEchoWithBanner(t *testing.T) {
	s := tcpStart(t, probetest.TCPEcho, "HELLO vantage\r\n")
	c := tcpDial(t, s.Addr)
	br := bufio.NewReader(c)
	line, err := br.ReadString('\n')
	if err != nil || line != "HELLO vantage\r\n" {
		t.Fatalf("banner = %q, %v", line, err)
	}
	if _, err := c.Write([]byte("ping\n")); err != nil {
		t.Fatal(err)
	}
	if line, err = br.ReadString('\n'); err != nil || line != "ping\n" {
		t.Fatalf("echo = %q, %v", line, err)
	}
	if s.Accepted() != 1 || s.Active() != 1 {
		t.Fatalf("accepted %d active %d, want 1 and 1", s.Accepted(), s.Active())
	}
	_ = c.Close()
	tcpWaitFor(t, "server to drop the connection", func() bool { return s.Active() == 0 })
}

func TestTCPClose(t *testing.T) {
	s := tcpStart(t, probetest.TCPClose, "never sent")
	c := tcpDial(t, s.Addr)
	b, err := io.ReadAll(c)
	if err != nil || len(b) != 0 {
		t.Fatalf("read %q, %v; want clean EOF with nothing", b, err)
	}
}

func TestTCPReset(t *testing.T) {
	s := tcpStart(t, probetest.TCPReset, "")
	tcpExpectReset(t, s.Addr)
}

// tcpExpectReset checks that a connection to addr is reset. The RST may
// beat the client's connect to completion (gVisor does that on loopback),
// so a reset dial counts as well as a reset read.
func tcpExpectReset(t *testing.T, addr string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err == nil {
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		_, err = c.Read(make([]byte, 1))
	}
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("error %v, want connection reset", err)
	}
}

func TestTCPSilentHoldsUntilClose(t *testing.T) {
	s := tcpStart(t, probetest.TCPSilent, "never sent")
	c := tcpDial(t, s.Addr)
	if _, err := c.Write([]byte("anyone there?\n")); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	n, err := c.Read(make([]byte, 16))
	var ne net.Error
	if n != 0 || !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("read %d bytes, %v; want a timeout with nothing", n, err)
	}
	// Close must end a connection the server holds open.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("connection still open after server Close")
	}
	if s.Active() != 0 {
		t.Fatalf("active = %d after Close", s.Active())
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := net.DialTimeout("tcp", s.Addr, time.Second); err == nil {
		t.Fatal("dial succeeded after Close")
	}
}

func TestTCPSetMode(t *testing.T) {
	s := tcpStart(t, probetest.TCPEcho, "OK\n")
	if s.Mode() != probetest.TCPEcho {
		t.Fatalf("mode %v", s.Mode())
	}
	s.SetMode(probetest.TCPReset)
	if s.Mode().String() != "reset" {
		t.Fatalf("mode %v", s.Mode())
	}
	tcpExpectReset(t, s.Addr)
	s.SetMode(probetest.TCPEcho)
	c := tcpDial(t, s.Addr)
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || line != "OK\n" {
		t.Fatalf("healthy again: %q, %v", line, err)
	}
}

func TestRefusedAddr(t *testing.T) {
	r, err := probetest.ReserveRefusedAddr()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for range 5 {
		c, err := net.DialTimeout("tcp", r.Addr, 5*time.Second)
		if err == nil {
			c.Close()
			t.Fatalf("dial %s succeeded", r.Addr)
		}
		if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("dial %s: %v, want connection refused", r.Addr, err)
		}
	}
	// The port stays reserved: nobody can listen on it meanwhile.
	if ln, err := net.Listen("tcp", r.Addr); err == nil {
		ln.Close()
		t.Fatalf("listen on reserved %s succeeded", r.Addr)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
}
