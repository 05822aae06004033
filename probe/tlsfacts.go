package probe

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"time"
)

// TLSFactsFrom describes a completed handshake. It works whether or not the
// chain verified, so an expired certificate still reports its expiry.
func TLSFactsFrom(cs *tls.ConnectionState) *TLSFacts { return TLSFactsShared(nil, cs, "") }

// TLSFactsShared is TLSFactsFrom with the facts shared through s: every
// probe of every target served the same chain gets the same []Cert, and
// every probe that learnt the same facts the same *TLSFacts (results are
// never modified), instead of rendering the subject, issuer and fingerprint
// strings again (0.7 KB a target held in its latest result, and the
// rendering's garbage on every probe) and holding a copy per target (160
// bytes). serverName stands in for the SNI when the client sent none (an
// IP literal): the name verified against is still the useful fact.
func TLSFactsShared(s *Shared, cs *tls.ConnectionState, serverName string) *TLSFacts {
	f := &TLSFacts{
		Version:     tls.VersionName(cs.Version),
		CipherSuite: tls.CipherSuiteName(cs.CipherSuite),
		ServerName:  cs.ServerName,
		Verified:    len(cs.VerifiedChains) > 0,
	}
	if f.ServerName == "" {
		f.ServerName = serverName
	}
	sums := make([][32]byte, len(cs.PeerCertificates))
	for i, c := range cs.PeerCertificates {
		sums[i] = sha256.Sum256(c.Raw)
		if f.EarliestExpiry.IsZero() || c.NotAfter.Before(f.EarliestExpiry) {
			f.EarliestExpiry = c.NotAfter
		}
	}
	var chain chainKey
	f.Chain, chain = s.chain(sums, func() []Cert {
		chain := make([]Cert, 0, len(cs.PeerCertificates))
		for i, c := range cs.PeerCertificates {
			chain = append(chain, Cert{
				Subject:   c.Subject.String(),
				Issuer:    c.Issuer.String(),
				NotBefore: c.NotBefore,
				NotAfter:  c.NotAfter,
				SHA256:    hex.EncodeToString(sums[i][:]),
				DNSNames:  c.DNSNames,
			})
		}
		return chain
	})
	f.LastChainExpiry = lastChainExpiry(cs.VerifiedChains)
	return s.facts(f, chain)
}

// lastChainExpiry is, over the verified chains, the latest of each chain's
// earliest NotAfter: when the last still-valid path stops verifying
// (blackbox_exporter's getLastChainExpiry).
func lastChainExpiry(chains [][]*x509.Certificate) time.Time {
	var last time.Time
	for _, chain := range chains {
		var earliest time.Time
		for _, c := range chain {
			if earliest.IsZero() || c.NotAfter.Before(earliest) {
				earliest = c.NotAfter
			}
		}
		if last.IsZero() || earliest.After(last) {
			last = earliest
		}
	}
	return last
}

// VerifyChain verifies the peer chain of cs against roots (nil: system roots)
// for serverName at now, the way crypto/tls would, and classifies a failure:
// ReasonCertExpired when a certificate is outside its validity period,
// ReasonCertInvalid otherwise. Probers dial with InsecureSkipVerify and call
// this themselves so that facts survive a failed verification. On success it
// returns the verified chains, which callers may store in cs.VerifiedChains.
func VerifyChain(cs *tls.ConnectionState, roots *x509.CertPool, serverName string, now time.Time) ([][]*x509.Certificate, Reason, error) {
	if len(cs.PeerCertificates) == 0 {
		return nil, ReasonCertInvalid, errors.New("server presented no certificate")
	}
	opts := x509.VerifyOptions{
		Roots:         roots,
		DNSName:       serverName,
		CurrentTime:   now,
		Intermediates: x509.NewCertPool(),
	}
	for _, c := range cs.PeerCertificates[1:] {
		opts.Intermediates.AddCert(c)
	}
	chains, err := cs.PeerCertificates[0].Verify(opts)
	if err == nil {
		return chains, ReasonNone, nil
	}
	var inv x509.CertificateInvalidError
	if errors.As(err, &inv) && inv.Reason == x509.Expired {
		return nil, ReasonCertExpired, err
	}
	return nil, ReasonCertInvalid, err
}
