package probe_test

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/vantage-probe/vantage/probe"
	"github.com/vantage-probe/vantage/probe/probetest"
)

func TestSharedParsesEachFileOnce(t *testing.T) {
	dir := t.TempDir()
	ca, err := probetest.NewCA("shared")
	if err != nil {
		t.Fatal(err)
	}
	caFile, err := ca.WriteCAFile(dir)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Leaf(probetest.Days(30), "client")
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM := probetest.PEM(leaf)
	certFile, keyFile := filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
	if err := os.WriteFile(certFile, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	o := probe.TLSOptions{CAFile: caFile, CertFile: certFile, KeyFile: keyFile}

	s := probe.NewShared()
	a, err := o.ConfigShared(s, "a.example")
	if err != nil {
		t.Fatal(err)
	}
	b, err := o.ConfigShared(s, "b.example", "h2")
	if err != nil {
		t.Fatal(err)
	}
	if a.RootCAs == nil || a.RootCAs != b.RootCAs {
		t.Errorf("one Shared: CA pools %p and %p, want the same pool", a.RootCAs, b.RootCAs)
	}
	if len(a.Certificates) != 1 || len(b.Certificates) != 1 || &a.Certificates[0].Certificate[0][0] != &b.Certificates[0].Certificate[0][0] {
		t.Errorf("one Shared: the client key pair was loaded twice")
	}
	if a == b || a.ServerName != "a.example" || b.ServerName != "b.example" || len(b.NextProtos) != 1 {
		t.Errorf("configs must stay per prober: %q %q %v", a.ServerName, b.ServerName, b.NextProtos)
	}

	// Without a Shared (or with another one) every call reads the file.
	c, err := o.Config("a.example")
	if err != nil {
		t.Fatal(err)
	}
	d, err := o.ConfigShared(probe.NewShared(), "a.example")
	if err != nil {
		t.Fatal(err)
	}
	if c.RootCAs == a.RootCAs || d.RootCAs == a.RootCAs || c.RootCAs == d.RootCAs {
		t.Errorf("pools shared beyond one Shared")
	}
	if !c.RootCAs.Equal(a.RootCAs) {
		t.Errorf("the pools differ in content")
	}

	// A missing file is an error every time, naming the key.
	bad := probe.TLSOptions{CAFile: filepath.Join(dir, "missing.pem")}
	for range 2 {
		if _, err := bad.ConfigShared(s, "x"); err == nil || !strings.Contains(err.Error(), "ca_file") {
			t.Errorf("missing ca_file: err = %v, want one naming ca_file", err)
		}
	}
}

func TestSharedValue(t *testing.T) {
	type key struct{ n int }
	s := probe.NewShared()
	calls := 0
	build := func() any { calls++; return new(int) }
	x, y := s.Value(key{1}, build), s.Value(key{1}, build)
	z := s.Value(key{2}, build)
	if x != y || x == z || calls != 2 {
		t.Errorf("Value: same key gave %p and %p, other key %p, %d builds; want one value per key", x, y, z, calls)
	}
	var none *probe.Shared
	if none.Value(key{1}, build) == none.Value(key{1}, build) {
		t.Errorf("a nil Shared must share nothing")
	}
}

func TestTLSFactsShareChains(t *testing.T) {
	ca, err := probetest.NewCA("chains")
	if err != nil {
		t.Fatal(err)
	}
	state := func(names ...string) *tls.ConnectionState {
		t.Helper()
		leaf, err := ca.Leaf(probetest.Days(30), names...)
		if err != nil {
			t.Fatal(err)
		}
		c, err := x509.ParseCertificate(leaf.Certificate[0])
		if err != nil {
			t.Fatal(err)
		}
		return &tls.ConnectionState{Version: tls.VersionTLS13, PeerCertificates: []*x509.Certificate{c}}
	}
	a, b := state("a.example"), state("b.example")
	s := probe.NewShared()
	fa1, fa2, fb := probe.TLSFactsShared(s, a, ""), probe.TLSFactsShared(s, a, ""), probe.TLSFactsShared(s, b, "")
	if len(fa1.Chain) != 1 || &fa1.Chain[0] != &fa2.Chain[0] {
		t.Errorf("one chain, two descriptions: not shared")
	}
	if &fb.Chain[0] == &fa1.Chain[0] || fb.Chain[0].DNSNames[0] != "b.example" || fa1.Chain[0].DNSNames[0] != "a.example" {
		t.Errorf("different chains shared one description: %+v %+v", fa1.Chain, fb.Chain)
	}
	if fa1 != fa2 || fa1 == fb {
		t.Errorf("equal facts are not one value, or different facts are")
	}
	// The same chain under another name (SNI, or the fallback for an IP
	// literal) is other facts.
	noSNI := *a
	noSNI.ServerName = ""
	if f := probe.TLSFactsShared(s, &noSNI, "10.0.0.1"); f == fa1 || f.ServerName != "10.0.0.1" || &f.Chain[0] != &fa1.Chain[0] {
		t.Errorf("facts for another server name: %+v", f)
	}
	a.ServerName = "a.example"
	if f := probe.TLSFactsShared(s, a, "10.0.0.1"); f == fa1 || f.ServerName != "a.example" {
		t.Errorf("the fallback name replaced the SNI: %q", f.ServerName)
	}
	plain := probe.TLSFactsFrom(a)
	if &plain.Chain[0] == &fa1.Chain[0] || !reflect.DeepEqual(plain.Chain, fa1.Chain) || !plain.EarliestExpiry.Equal(fa1.EarliestExpiry) {
		t.Errorf("without a Shared the facts must be equal but not shared")
	}
}
