package probe_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"errors"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/vantage-probe/vantage/probe"
	"github.com/vantage-probe/vantage/probe/probetest"
)

func factsCA(t *testing.T, name string) *probetest.CA {
	t.Helper()
	ca, err := probetest.NewCA(name)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func factsLeaf(t *testing.T, ca *probetest.CA, notAfter time.Time, names ...string) tls.Certificate {
	t.Helper()
	c, err := ca.Leaf(notAfter, names...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// factsIntermediate makes a CA signed by root, expiring at notAfter.
func factsIntermediate(t *testing.T, root *probetest.CA, notAfter time.Time) *probetest.CA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: "facts intermediate"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, root.Cert, &key.PublicKey, root.Key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &probetest.CA{Cert: cert, Key: key}
}

// presented is the ConnectionState of a client that was shown certs.
func presented(certs ...*x509.Certificate) *tls.ConnectionState {
	return &tls.ConnectionState{PeerCertificates: certs}
}

// TestTLSFactsFromHandshake runs a real handshake (over an in-memory pipe)
// without verification, verifies afterwards as probers do, and checks every
// fact.
func TestTLSFactsFromHandshake(t *testing.T) {
	ca := factsCA(t, "Facts Root")
	leaf := factsLeaf(t, ca, probetest.Days(30), "facts.test")

	cc, sc := net.Pipe()
	defer cc.Close()
	defer sc.Close()
	_ = cc.SetDeadline(time.Now().Add(10 * time.Second))
	_ = sc.SetDeadline(time.Now().Add(10 * time.Second))
	srv := tls.Server(sc, probetest.ServerTLS(leaf))
	done := make(chan error, 1)
	go func() { done <- srv.Handshake() }()
	cli := tls.Client(cc, &tls.Config{ServerName: "facts.test", InsecureSkipVerify: true}) //nolint:gosec // verified below
	if err := cli.Handshake(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	cs := cli.ConnectionState()

	unverified := probe.TLSFactsFrom(&cs)
	if unverified.Verified || !unverified.LastChainExpiry.IsZero() {
		t.Fatalf("before verification: Verified %v LastChainExpiry %v, want false and zero", unverified.Verified, unverified.LastChainExpiry)
	}
	if !unverified.EarliestExpiry.Equal(leaf.Leaf.NotAfter) {
		t.Fatalf("EarliestExpiry %v, want the leaf's %v even unverified", unverified.EarliestExpiry, leaf.Leaf.NotAfter)
	}

	chains, reason, err := probe.VerifyChain(&cs, ca.Pool(), "facts.test", time.Now())
	if err != nil || reason != probe.ReasonNone || len(chains) == 0 {
		t.Fatalf("VerifyChain = %d chains, %q, %v", len(chains), reason, err)
	}
	cs.VerifiedChains = chains
	f := probe.TLSFactsFrom(&cs)

	if f.Version != "TLS 1.3" {
		t.Errorf("Version %q, want TLS 1.3", f.Version)
	}
	if !strings.HasPrefix(f.CipherSuite, "TLS_") {
		t.Errorf("CipherSuite %q, want a TLS_* name", f.CipherSuite)
	}
	if f.ServerName != "facts.test" {
		t.Errorf("ServerName %q", f.ServerName)
	}
	if !f.Verified {
		t.Error("Verified false after a successful VerifyChain")
	}
	if !f.LastChainExpiry.Equal(leaf.Leaf.NotAfter) {
		t.Errorf("LastChainExpiry %v, want the leaf's %v (the root lasts longer)", f.LastChainExpiry, leaf.Leaf.NotAfter)
	}
	if len(f.Chain) != 2 {
		t.Fatalf("chain of %d certs, want leaf and CA as presented", len(f.Chain))
	}
	sum := sha256.Sum256(leaf.Leaf.Raw)
	c0 := f.Chain[0]
	if c0.Subject != "CN=facts.test" || !strings.Contains(c0.Issuer, "CN=Facts Root") ||
		c0.SHA256 != hex.EncodeToString(sum[:]) || len(c0.DNSNames) != 1 || c0.DNSNames[0] != "facts.test" ||
		!c0.NotAfter.Equal(leaf.Leaf.NotAfter) || !c0.NotBefore.Equal(leaf.Leaf.NotBefore) {
		t.Errorf("leaf facts %+v", c0)
	}
	if !strings.Contains(f.Chain[1].Subject, "CN=Facts Root") || !f.Chain[1].NotAfter.Equal(ca.Cert.NotAfter) {
		t.Errorf("second cert %+v, want the root", f.Chain[1])
	}
}

func TestVerifyChain(t *testing.T) {
	root := factsCA(t, "Verify Root")
	other := factsCA(t, "Other Root")
	inter := factsIntermediate(t, root, probetest.Days(400))
	valid := factsLeaf(t, root, probetest.Days(90), "ok.test")
	expired := factsLeaf(t, root, probetest.Days(-2), "ok.test")
	ipLeaf := factsLeaf(t, root, probetest.Days(90), "127.0.0.1")
	stranger := factsLeaf(t, other, probetest.Days(90), "ok.test")
	viaInter := factsLeaf(t, inter, probetest.Days(90), "ok.test")

	now := time.Now()
	tests := []struct {
		name       string
		cs         *tls.ConnectionState
		serverName string
		now        time.Time
		reason     probe.Reason
		// errAs, when set, checks the error's type.
		errAs func(error) bool
	}{
		{name: "valid", cs: presented(valid.Leaf, root.Cert), serverName: "ok.test", now: now},
		{name: "leaf only, root from the pool", cs: presented(valid.Leaf), serverName: "ok.test", now: now},
		{name: "IP SAN", cs: presented(ipLeaf.Leaf), serverName: "127.0.0.1", now: now},
		{name: "intermediate presented", cs: presented(viaInter.Leaf, inter.Cert), serverName: "ok.test", now: now},
		{
			name: "intermediate missing", cs: presented(viaInter.Leaf), serverName: "ok.test", now: now,
			reason: probe.ReasonCertInvalid, errAs: isUnknownAuthority,
		},
		{
			name: "expired", cs: presented(expired.Leaf, root.Cert), serverName: "ok.test", now: now,
			reason: probe.ReasonCertExpired, errAs: isExpired,
		},
		{
			name: "not yet valid", cs: presented(valid.Leaf), serverName: "ok.test", now: now.Add(-72 * time.Hour),
			reason: probe.ReasonCertExpired, errAs: isExpired,
		},
		{
			name: "wrong host name", cs: presented(valid.Leaf), serverName: "other.test", now: now,
			reason: probe.ReasonCertInvalid, errAs: func(err error) bool { var h x509.HostnameError; return errors.As(err, &h) },
		},
		{
			name: "unknown authority", cs: presented(stranger.Leaf, other.Cert), serverName: "ok.test", now: now,
			reason: probe.ReasonCertInvalid, errAs: isUnknownAuthority,
		},
		{name: "no certificate", cs: presented(), serverName: "ok.test", now: now, reason: probe.ReasonCertInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			chains, reason, err := probe.VerifyChain(tt.cs, root.Pool(), tt.serverName, tt.now)
			if reason != tt.reason {
				t.Fatalf("reason %q (%v), want %q", reason, err, tt.reason)
			}
			if tt.reason == probe.ReasonNone {
				if err != nil || len(chains) == 0 {
					t.Fatalf("%d chains, %v; want a verified chain", len(chains), err)
				}
				if got := chains[0][len(chains[0])-1]; !got.Equal(root.Cert) {
					t.Fatalf("chain ends at %s, want the root", got.Subject)
				}
				return
			}
			if err == nil || chains != nil {
				t.Fatalf("%d chains, err %v; want an error and no chain", len(chains), err)
			}
			if tt.errAs != nil && !tt.errAs(err) {
				t.Fatalf("error %v (%T) of the wrong kind", err, err)
			}
		})
	}
}

func isExpired(err error) bool {
	var inv x509.CertificateInvalidError
	return errors.As(err, &inv) && inv.Reason == x509.Expired
}

func isUnknownAuthority(err error) bool {
	var ua x509.UnknownAuthorityError
	return errors.As(err, &ua)
}

// TestTLSFactsExpiredStillReported: a chain that fails verification keeps
// its expiry facts, which the expiry metric is exported from.
func TestTLSFactsExpiredStillReported(t *testing.T) {
	root := factsCA(t, "Expired Root")
	leaf := factsLeaf(t, root, probetest.Days(-3), "old.test")
	cs := presented(leaf.Leaf, root.Cert)
	chains, reason, _ := probe.VerifyChain(cs, root.Pool(), "old.test", time.Now())
	cs.VerifiedChains = chains
	f := probe.TLSFactsFrom(cs)
	if reason != probe.ReasonCertExpired || f.Verified {
		t.Fatalf("reason %q verified %v", reason, f.Verified)
	}
	if !f.EarliestExpiry.Equal(leaf.Leaf.NotAfter) || f.DaysLeft(time.Now()) > -2.9 {
		t.Fatalf("EarliestExpiry %v (%.2f days left), want the expired leaf's %v", f.EarliestExpiry, f.DaysLeft(time.Now()), leaf.Leaf.NotAfter)
	}
	if !f.LastChainExpiry.IsZero() {
		t.Fatalf("LastChainExpiry %v, want zero without a verified chain", f.LastChainExpiry)
	}
}

// TestTLSFactsChainExpiries: EarliestExpiry looks at what was presented,
// LastChainExpiry at the verified chains, taking the chain that lasts.
func TestTLSFactsChainExpiries(t *testing.T) {
	root := factsCA(t, "Expiry Root")
	soon := factsLeaf(t, root, probetest.Days(5), "a.test").Leaf
	later := factsLeaf(t, root, probetest.Days(50), "a.test").Leaf
	unused := factsLeaf(t, root, probetest.Days(-1), "x.test").Leaf // sent, not on any verified chain

	cs := presented(later, root.Cert, unused)
	cs.VerifiedChains = [][]*x509.Certificate{{soon, root.Cert}, {later, root.Cert}}
	f := probe.TLSFactsFrom(cs)
	if !f.EarliestExpiry.Equal(unused.NotAfter) {
		t.Errorf("EarliestExpiry %v, want the presented %v", f.EarliestExpiry, unused.NotAfter)
	}
	if !f.LastChainExpiry.Equal(later.NotAfter) {
		t.Errorf("LastChainExpiry %v, want the longest-lasting chain's %v", f.LastChainExpiry, later.NotAfter)
	}
	if len(f.Chain) != 3 || !f.Verified {
		t.Errorf("chain %d certs verified %v", len(f.Chain), f.Verified)
	}
	if d := f.DaysLeft(time.Now()); d > -0.9 || d < -1.1 {
		t.Errorf("DaysLeft %.3f, want about -1", d)
	}
}
