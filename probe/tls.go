package probe

import (
	"crypto/tls"
	"fmt"
)

// TLSOptions are the client TLS settings shared by every prober that speaks
// TLS (HTTPS, TLS, DoT/DoH/DoQ, TCP with TLS).
type TLSOptions struct {
	CAFile             string // PEM bundle replacing the system roots
	CertFile, KeyFile  string // client certificate for mTLS
	ServerName         string // SNI and verification name; default: the target's host
	InsecureSkipVerify bool   // do not verify the chain (facts are still reported)
	MinVersion         uint16 // tls.VersionTLS12 when zero
}

// Config builds a *tls.Config once, at prober construction, so that no probe
// pays for reading files or parsing certificates. serverName is used when
// o.ServerName is empty. nextProtos sets ALPN. It shares nothing: probers
// built for an agent use ConfigShared.
func (o TLSOptions) Config(serverName string, nextProtos ...string) (*tls.Config, error) {
	return o.ConfigShared(nil, serverName, nextProtos...)
}

// ConfigShared is Config with the CA bundle and client key pair taken from
// s, parsed once per file however many targets name it.
func (o TLSOptions) ConfigShared(s *Shared, serverName string, nextProtos ...string) (*tls.Config, error) {
	c := &tls.Config{
		ServerName:         serverName,
		InsecureSkipVerify: o.InsecureSkipVerify, //nolint:gosec // operator's explicit choice
		MinVersion:         o.MinVersion,
		NextProtos:         nextProtos,
	}
	if c.MinVersion == 0 {
		c.MinVersion = tls.VersionTLS12
	}
	if o.ServerName != "" {
		c.ServerName = o.ServerName
	}
	if o.CAFile != "" {
		pool, err := s.caPool(o.CAFile)
		if err != nil {
			return nil, err
		}
		c.RootCAs = pool
	}
	if o.CertFile != "" || o.KeyFile != "" {
		if o.CertFile == "" || o.KeyFile == "" {
			return nil, fmt.Errorf("cert_file and key_file must be set together")
		}
		cert, err := s.keyPair(o.CertFile, o.KeyFile)
		if err != nil {
			return nil, err
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}
