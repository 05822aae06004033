package agent

import (
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/vantage-probe/vantage/internal/testenv"
	"github.com/vantage-probe/vantage/probe/probetest"
)

// TestMetricsBehindTLSAndBasicAuth serves the agent over HTTPS with basic
// auth, checks every refusal, and has a real Prometheus scrape it with the
// matching scrape config.
func TestMetricsBehindTLSAndBasicAuth(t *testing.T) {
	dir := t.TempDir()
	ca, err := probetest.NewCA("agent CA")
	if err != nil {
		t.Fatal(err)
	}
	caFile, _ := ca.WriteCAFile(dir)
	cert, err := ca.Leaf(probetest.Days(30), "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM := probetest.PEM(cert)
	os.WriteFile(filepath.Join(dir, "tls.crt"), certPEM, 0o600)
	os.WriteFile(filepath.Join(dir, "tls.key"), keyPEM, 0o600)
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	target := probetest.NewHTTPServer(t, probetest.HTTPRespond(200, "ok"))
	path := filepath.Join(dir, "vantage.toml")
	writeConfig(t, path, baseConfig(fmt.Sprintf(`
[exporter]
tls_cert_file = "tls.crt"
tls_key_file = "tls.key"
basic_auth_users = { prom = "%s" }
[[target]]
name = "web"
type = "http"
url = "%s"
`, hash, target.URL)))
	a := testAgent(t, path)
	pool := ca.Pool()
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}, Timeout: 30 * time.Second} // a generous bound: CI runs every package at once under -race
	get := func(path, user, pass string) int {
		req, _ := http.NewRequest(http.MethodGet, "https://"+a.HTTPAddr()+path, nil)
		if user != "" {
			req.SetBasicAuth(user, pass)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, c := range []struct {
		path, user, pass string
		want             int
	}{
		{"/metrics", "", "", 401},
		{"/metrics", "prom", "wrong", 401},
		{"/metrics", "nobody", "s3cret", 401},
		{"/metrics", "prom", "s3cret", 200},
		{"/api/v1/targets", "", "", 401},
		{"/", "", "", 401},
		{"/healthz", "", "", 200},
		{"/readyz", "", "", 200},
	} {
		if got := get(c.path, c.user, c.pass); got != c.want {
			t.Errorf("GET %s as %q/%q = %d, want %d", c.path, c.user, c.pass, got, c.want)
		}
	}
	// Plain HTTP to the TLS port is refused.
	if resp, err := http.Get("http://" + a.HTTPAddr() + "/metrics"); err == nil {
		if resp.StatusCode == 200 {
			t.Error("plain HTTP served metrics on the TLS port")
		}
		resp.Body.Close()
	}

	if testing.Short() {
		t.Log("prometheus not run (-short)")
		return
	}
	bin := testenv.RequireBinary(t, "prometheus", "prometheus")
	promCfg := filepath.Join(dir, "prometheus.yml")
	writeConfig(t, promCfg, fmt.Sprintf(`global:
  scrape_interval: 1s
scrape_configs:
  - job_name: vantage
    scheme: https
    tls_config:
      ca_file: %s
    basic_auth:
      username: prom
      password: s3cret
    static_configs:
      - targets: ['%s']
`, caFile, a.HTTPAddr()))
	ln := reserveTCP(t)
	cmd := exec.Command(bin, "--config.file="+promCfg, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+ln, "--log.level=warn")
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	re := regexp.MustCompile(`"target":"web".*"value":\[[0-9.]+,"1"\]`)
	testenv.Poll(t, 60*time.Second, "Prometheus to scrape probe_success over TLS with basic auth", func() bool {
		resp, err := http.Get("http://" + ln + "/api/v1/query?query=probe_success")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return re.Match(b) && !strings.Contains(string(b), `"error"`)
	})
}
