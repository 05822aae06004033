package probetest

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// TCPMode is what a TCPServer (or TLSServer) does with each connection it
// accepts. The mode is read at accept time, so SetMode changes what new
// connections see and leaves established ones alone.
type TCPMode int32

const (
	// TCPEcho writes the server's banner, if any, then echoes whatever it
	// reads until the peer closes. For a TLSServer this happens after the
	// handshake, inside TLS. This is the healthy mode.
	TCPEcho TCPMode = iota
	// TCPClose closes each connection as soon as it is accepted (a TLSServer
	// handshakes first, then closes): a service that hangs up at once.
	TCPClose
	// TCPSilent holds each connection open and never writes (a TLSServer
	// never answers the ClientHello) until the peer or the server closes it:
	// a hung service, for timeout tests.
	TCPSilent
	// TCPReset aborts each connection with a TCP RST right after accept
	// (before any TLS handshake): a crashing service.
	TCPReset
)

// String names the mode for logs.
func (m TCPMode) String() string {
	switch m {
	case TCPEcho:
		return "echo"
	case TCPClose:
		return "close"
	case TCPSilent:
		return "silent"
	case TCPReset:
		return "reset"
	}
	return fmt.Sprintf("TCPMode(%d)", int32(m))
}

// TCPServer is a loopback TCP server whose behaviour is chosen by a TCPMode
// and can be switched at run time (healthy/failing), for tests and for the
// demo's target farm. Close stops it and closes every connection it holds.
type TCPServer struct {
	// Addr is the 127.0.0.1:port the server listens on.
	Addr string

	ln     net.Listener
	banner []byte
	// tlsConfig, when set, makes every connection speak TLS (see TLSServer).
	tlsConfig *tls.Config
	mode      atomic.Int32
	accepted  atomic.Int64

	mu     sync.Mutex
	conns  map[net.Conn]struct{} // open connections, closed by Close
	closed bool
	wg     sync.WaitGroup // the accept loop and one goroutine per connection
}

// StartTCP listens on 127.0.0.1 (port chosen by the kernel) and serves in
// mode; banner is what TCPEcho writes first on each connection ("" for none).
func StartTCP(mode TCPMode, banner string) (*TCPServer, error) {
	return startTCP(mode, banner, nil)
}

func startTCP(mode TCPMode, banner string, tlsConfig *tls.Config) (*TCPServer, error) {
	// Bind before serving, so Addr is usable the moment we return and no
	// port is ever freed and re-bound.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("probetest: listen: %w", err)
	}
	s := &TCPServer{
		Addr:      ln.Addr().String(),
		ln:        ln,
		banner:    []byte(banner),
		tlsConfig: tlsConfig,
		conns:     make(map[net.Conn]struct{}),
	}
	s.mode.Store(int32(mode))
	s.wg.Add(1)
	go s.acceptLoop()
	return s, nil
}

// SetMode switches what connections accepted from now on see.
func (s *TCPServer) SetMode(m TCPMode) { s.mode.Store(int32(m)) }

// Mode is the current mode.
func (s *TCPServer) Mode() TCPMode { return TCPMode(s.mode.Load()) }

// Accepted counts the connections accepted so far, so a test can tell that
// a probe really reached this server.
func (s *TCPServer) Accepted() int64 { return s.accepted.Load() }

// Active is the number of connections currently open on the server side.
// It falls back to zero once clients close theirs, which is how tests check
// that a prober leaks no connection.
func (s *TCPServer) Active() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// Close stops accepting, closes every open connection and waits for the
// server's goroutines to exit. It is safe to call more than once.
func (s *TCPServer) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	err := s.ln.Close()
	for c := range s.conns {
		_ = c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return err
}

func (s *TCPServer) acceptLoop() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Temporary failures (EMFILE under load) must not kill the
			// server, nor spin a core: back off a little and go on.
			time.Sleep(5 * time.Millisecond)
			continue
		}
		s.accepted.Add(1)
		if !s.track(c) {
			_ = c.Close()
			return
		}
		s.wg.Add(1)
		go s.serve(c, s.Mode())
	}
}

// track records c as open; false when the server is closing, so that a
// connection accepted during Close is not left behind.
func (s *TCPServer) track(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *TCPServer) serve(c net.Conn, mode TCPMode) {
	defer s.wg.Done()
	defer func() {
		_ = c.Close()
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
	}()
	switch mode {
	case TCPReset:
		if tc, ok := c.(*net.TCPConn); ok {
			// Linger 0 makes close send RST instead of FIN.
			_ = tc.SetLinger(0)
		}
		return
	case TCPSilent:
		// Read and drop until the peer (or Close) ends the connection, so
		// the goroutine exits with it and never writes a byte.
		_, _ = io.Copy(io.Discard, c)
		return
	}
	var rw io.ReadWriter = c
	if s.tlsConfig != nil {
		tc := tls.Server(c, s.tlsConfig)
		if err := tc.Handshake(); err != nil {
			return
		}
		rw = tc
	}
	if mode == TCPClose {
		return
	}
	if len(s.banner) > 0 {
		if _, err := rw.Write(s.banner); err != nil {
			return
		}
	}
	_, _ = io.Copy(rw, rw)
}

// RefusedAddr is a loopback address where every connection attempt is
// refused, for connect_refused tests.
//
// It holds its port: the port is the local end of a connected socket pair
// that RefusedAddr keeps open, so nothing listens there (a SYN to it gets a
// RST) and no listener can bind it until Close. This beats the common
// "listen, close, reuse the port" trick, which races with any other process
// that grabs the freed port. Refusal still relies on the kernel answering a
// SYN without listener by a RST, which every mainstream TCP stack does on
// loopback; treat it as best-effort on exotic stacks.
type RefusedAddr struct {
	// Addr is 127.0.0.1:port.
	Addr string

	client, server net.Conn
}

// ReserveRefusedAddr reserves a refusing loopback address; Close frees it.
func ReserveRefusedAddr() (*RefusedAddr, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("probetest: listen: %w", err)
	}
	// The listener only exists to give the client socket a peer; it is
	// closed before we return, its own port is not the one handed out.
	defer ln.Close()
	type accepted struct {
		c   net.Conn
		err error
	}
	ch := make(chan accepted, 1)
	go func() {
		c, err := ln.Accept()
		ch <- accepted{c, err}
	}()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		_ = ln.Close()
		<-ch
		return nil, fmt.Errorf("probetest: dial %s: %w", ln.Addr(), err)
	}
	a := <-ch
	if a.err != nil {
		_ = client.Close()
		return nil, fmt.Errorf("probetest: accept: %w", a.err)
	}
	return &RefusedAddr{Addr: client.LocalAddr().String(), client: client, server: a.c}, nil
}

// Close releases the port.
func (r *RefusedAddr) Close() error {
	return errors.Join(r.client.Close(), r.server.Close())
}
