package config

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vantage-probe/vantage/probe"
	"github.com/vantage-probe/vantage/probe/probetest"
)

func netOf(t *Target) probe.Net {
	switch {
	case t.HTTP() != nil:
		return t.HTTP().Net
	case t.TLS != nil:
		return t.TLS.Net
	case t.DNS != nil:
		return t.DNS.Net
	case t.TCP != nil:
		return t.TCP.Net
	}
	return probe.Net{}
}

// TestNewProberProbesRealServers builds probers from config text and runs
// them against loopback servers: the options the loader fills in are the
// ones the probers need.
func TestNewProberProbesRealServers(t *testing.T) {
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Probe") != "vantage" {
			http.Error(w, "no header", http.StatusBadRequest)
			return
		}
		fmt.Fprint(w, "status: ok")
	}))
	defer hs.Close()

	tcp, err := probetest.StartTCP(probetest.TCPEcho, "220 ready\r\n")
	if err != nil {
		t.Fatal(err)
	}
	defer tcp.Close()

	dir := writeFiles(t, map[string]string{"main.toml": fmt.Sprintf(`
[[target]]
name = "web"
type = "http"
url = "%s/healthz"
[target.http]
headers = { X-Probe = "vantage" }
body_regex = "status: ok"

[[target]]
name = "web-wrong-body"
type = "http"
url = "%[1]s/"
[target.http]
headers = { X-Probe = "vantage" }
fail_if_body_matches = ["ok"]

[[target]]
name = "banner"
type = "tcp"
address = "%s"
[target.tcp]
expect = '^220 '
`, hs.URL, tcp.Addr)})
	cfg := mustLoad(t, dir)
	want := map[string]probe.Reason{"web": probe.ReasonNone, "web-wrong-body": probe.ReasonBodyMismatch, "banner": probe.ReasonNone}
	for _, tg := range cfg.Targets {
		p, err := tg.NewProber()
		if err != nil {
			t.Fatalf("%s: %v", tg.Name, err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		r := p.Probe(ctx)
		cancel()
		if r.OK != (want[tg.Name] == probe.ReasonNone) || r.Reason != want[tg.Name] {
			t.Errorf("%s: ok=%v reason=%q (%s), want reason %q", tg.Name, r.OK, r.Reason, r.Message, want[tg.Name])
		}
	}
}

// A CA bundle that does not exist is refused by Load at its key, as the
// agent would refuse to build the prober: check-config says the same.
func TestMissingCAFileIsAConfigError(t *testing.T) {
	dir := writeFiles(t, map[string]string{"main.toml": `
[[target]]
name = "needs-ca"
type = "tls"
address = "127.0.0.1:443"
[target.tls]
ca_file = "missing-ca.pem"
`})
	_, err := Load(filepath.Join(dir, "main.toml"))
	if err == nil || !strings.Contains(err.Error(), "main.toml:7:1: target[\"needs-ca\"].tls.ca_file:") || !strings.Contains(err.Error(), "no such file") {
		t.Fatalf("err = %v, want the ca_file key, its line and the reason", err)
	}
	if _, err := (&Target{Name: "empty"}).NewProber(); err == nil {
		t.Error("a target without options built a prober")
	}
}
