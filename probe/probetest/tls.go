package probetest

import (
	"crypto/tls"
	"sync/atomic"
)

// TLSServer is a loopback TLS server presenting a certificate that can be
// swapped at run time (the demo renews an expiring one). It is a TCPServer
// whose connections handshake first: in TCPEcho mode it echoes inside TLS,
// TCPClose closes right after the handshake, TCPSilent never answers the
// ClientHello and TCPReset resets before the handshake.
type TLSServer struct {
	*TCPServer

	cert atomic.Pointer[tls.Certificate]
	sni  atomic.Pointer[string]
}

// StartTLS listens on 127.0.0.1 and serves TLS with cert in TCPEcho mode,
// offering nextProtos over ALPN.
func StartTLS(cert tls.Certificate, nextProtos ...string) (*TLSServer, error) {
	s := &TLSServer{}
	s.cert.Store(&cert)
	cfg := &tls.Config{
		// Read the certificate per handshake so SetCertificate takes
		// effect on the next connection without restarting the server.
		GetCertificate: func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
			s.sni.Store(&hello.ServerName)
			return s.cert.Load(), nil
		},
		NextProtos: nextProtos,
		MinVersion: tls.VersionTLS12,
	}
	ts, err := startTCP(TCPEcho, "", cfg)
	if err != nil {
		return nil, err
	}
	s.TCPServer = ts
	return s, nil
}

// SetCertificate makes the server present cert from the next handshake on.
func (s *TLSServer) SetCertificate(cert tls.Certificate) { s.cert.Store(&cert) }

// LastSNI is the server name the latest ClientHello asked for ("" when it
// sent none, or before any handshake), so tests can check what a client
// sends as SNI.
func (s *TLSServer) LastSNI() string {
	if p := s.sni.Load(); p != nil {
		return *p
	}
	return ""
}
