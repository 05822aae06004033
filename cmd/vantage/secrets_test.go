package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vantage-probe/vantage/internal/testenv"
	"github.com/vantage-probe/vantage/probe/probetest"
)

// secretFarm serves the targets of the secrets tests: /ok answers 200,
// /hop redirects to /final (500) with a token in the Location, /badloc
// redirects to a Location no probe can follow, with a token in it, and
// /key checks the secret headers, then redirects to another host, which
// records what it is sent (other).
func secretFarm(t *testing.T, other *probetest.HTTPServer) *probetest.HTTPServer {
	t.Helper()
	_, otherPort, _ := net.SplitHostPort(other.Addr)
	mux := http.NewServeMux()
	mux.HandleFunc("/key", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Api-Key") != "s3cret-header-file" || r.Header.Get("X-Tenant") != "s3cret-header-env" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		http.Redirect(w, r, "http://localhost:"+otherPort+"/landed", http.StatusFound)
	})
	mux.Handle("/ok", probetest.HTTPRespond(200, "ok"))
	mux.Handle("/hop", probetest.HTTPRedirectTo(http.StatusFound, "/final?token=s3cret-loc"))
	mux.Handle("/final", probetest.HTTPRespond(500, "no"))
	mux.Handle("/badloc", probetest.HTTPRedirectTo(http.StatusFound, "ftp://elsewhere.test/?token=s3cret-badloc"))
	return probetest.NewHTTPServer(t, mux)
}

// A token in a target's URL, and a secret header, are shown nowhere: not
// in the API, the status page, /metrics, the logs, probe failure messages
// (a refused connection, a redirect to a URL with a token, a Location no
// probe can follow), nor what `vantage probe` prints; and the secret
// headers do not follow a redirect to another host.
func TestSecretsInURLsAreShownNowhere(t *testing.T) {
	var mu sync.Mutex
	var otherSaw []string // secret headers the other host was sent
	otherHits := 0
	other := probetest.NewHTTPServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		otherHits++
		for _, h := range []string{"X-Api-Key", "X-Tenant"} {
			if v := r.Header.Get(h); v != "" {
				otherSaw = append(otherSaw, h+": "+v)
			}
		}
	}))
	srv := secretFarm(t, other)
	refused, err := probetest.ReserveRefusedAddr()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = refused.Close() })

	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "api.key"), []byte("s3cret-header-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("VANTAGE_TEST_TENANT", "s3cret-header-env")
	path := filepath.Join(dir, "vantage.toml")
	body := fmt.Sprintf(`
[agent]
node = "t1"
region = "eu-west"
listen = "127.0.0.1:0"
[cluster]
bind = "127.0.0.1:0"
[quorum]
min_regions = 1
[defaults]
interval = "1s"
timeout = "500ms"

[[target]]
name = "ok"
type = "http"
url = "%[1]s/ok?token=s3cret-ok&region=eu#frag=s3cret-frag"

[[target]]
name = "userinfo"
type = "http"
url = "http://probe:s3cret-pass@%[2]s/ok?key=s3cret-ui"

[[target]]
name = "apikey"
type = "http"
url = "%[1]s/key?token=s3cret-key"
ip_protocol = "ip4"
[target.http]
headers = { "X-Probe" = "vantage" }
headers_file = { "X-Api-Key" = "api.key" }
headers_env = { "X-Tenant" = "VANTAGE_TEST_TENANT" }

[[target]]
name = "refused"
type = "http"
url = "http://%[3]s/health?token=s3cret-refused"

[[target]]
name = "hop"
type = "http"
url = "%[1]s/hop?token=s3cret-hop"

[[target]]
name = "badloc"
type = "http"
url = "%[1]s/badloc?token=s3cret-badloc-from"

[[target]]
name = "doh"
type = "dns"
[target.dns]
server = "https://%[3]s/dns-query?key=s3cret-doh"
transport = "https"
query = "example.com."
`, srv.URL, srv.Addr, refused.Addr)
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	names := []string{"ok", "userinfo", "apikey", "refused", "hop", "badloc", "doh"}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr testenv.Output
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"agent", "-config", path, "-log-format", "json", "-log-level", "debug"}, &stdout, &stderr)
	}()
	addrRe := regexp.MustCompile(`status page http://([^/]+)/`)
	var base string
	testenv.Poll(t, 20*time.Second, "the agent's address on stderr", func() bool {
		if m := addrRe.FindStringSubmatch(stderr.String()); m != nil {
			base = "http://" + m[1]
		}
		return base != ""
	})
	get := func(p string) string {
		t.Helper()
		resp, err := http.Get(base + p)
		if err != nil {
			t.Fatalf("GET %s: %v", p, err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d, %v", p, resp.StatusCode, err)
		}
		return string(b)
	}
	// Every target probed and failing as planned (so that the failure
	// messages were made, logged and shown), and every incident open.
	testenv.Poll(t, 20*time.Second, "every target probed, the failing ones with incidents", func() bool {
		var api struct {
			Targets []struct {
				Name  string `json:"name"`
				Local *struct {
					Result struct {
						OK bool `json:"ok"`
					} `json:"result"`
				} `json:"local"`
			} `json:"targets"`
		}
		if err := json.Unmarshal([]byte(get("/api/v1/targets")), &api); err != nil {
			t.Fatal(err)
		}
		probed := 0
		for _, tv := range api.Targets {
			if tv.Local != nil && (tv.Local.Result.OK == (tv.Name == "ok" || tv.Name == "userinfo" || tv.Name == "apikey")) {
				probed++
			}
		}
		return probed == len(names) && strings.Count(get("/api/v1/incidents"), `"target"`) >= 4
	})
	surfaces := map[string]string{}
	for _, p := range []string{"/api/v1/targets", "/api/v1/incidents", "/api/v1/members", "/api/v1/status", "/", "/metrics"} {
		surfaces[p] = get(p)
	}
	for _, n := range names {
		surfaces["/api/v1/targets/"+n] = get("/api/v1/targets/" + n)
	}
	cancel()
	if code := <-done; code != exitOK {
		t.Errorf("agent exited %d", code)
	}
	surfaces["the agent's log"] = stderr.String() + stdout.String()

	// The endpoints are shown, with their keys.
	for _, want := range []string{"token=xxxxx", "region=xxxxx", "frag=xxxxx", "probe:xxxxx@", "key=xxxxx", "redirect 1: bad Location"} {
		if !strings.Contains(surfaces["/api/v1/targets"], want) {
			t.Errorf("/api/v1/targets lacks %q", want)
		}
	}
	if !strings.Contains(surfaces["/"], "token=xxxxx") || !strings.Contains(surfaces["the agent's log"], `"target failing"`) {
		t.Error("the page does not show the endpoint, or the log has no failure: the test proves nothing")
	}
	// The secret headers reached their host (apikey is up) but not the
	// host it redirects to.
	mu.Lock()
	if otherHits == 0 || len(otherSaw) > 0 {
		t.Errorf("the other host had %d requests and was sent %q; want requests without secret headers", otherHits, otherSaw)
	}
	mu.Unlock()
	for where, text := range surfaces {
		if i := strings.Index(text, "s3cret"); i >= 0 {
			t.Errorf("%s shows a secret: ...%s...", where, text[max(0, i-120):min(len(text), i+40)])
		}
	}

	// vantage probe, by URL and by configured target, text and JSON.
	for _, args := range [][]string{
		{"probe", srv.URL + "/badloc?token=s3cret-cli"},
		{"probe", "-json", srv.URL + "/badloc?token=s3cret-cli"},
		{"probe", srv.URL + "/hop?token=s3cret-cli"},
		{"probe", "-json", srv.URL + "/hop?token=s3cret-cli"},
		{"probe", "http://" + refused.Addr + "/?token=s3cret-cli"},
		{"probe", "-json", "-config", path, "-target", "hop"},
		{"probe", "-config", path, "-target", "badloc"},
		{"probe", "-config", path, "-target", "doh"},
		{"probe", "-type", "dns", "-transport", "https", "-server", "https://" + refused.Addr + "/q?key=s3cret-cli", "example.com."},
	} {
		code, out, errOut := runCLI(args...)
		if code != exitFail {
			t.Errorf("%q: exit %d, want %d (a failed probe)\n%s%s", args, code, exitFail, out, errOut)
		}
		if strings.Contains(out+errOut, "s3cret") {
			t.Errorf("%q shows a secret:\n%s%s", args, out, errOut)
		}
	}
	for _, args := range [][]string{{"probe", "-config", path, "-target", "apikey"}, {"probe", "-json", "-config", path, "-target", "apikey"}} {
		code, out, errOut := runCLI(args...)
		if code != exitOK || strings.Contains(out+errOut, "s3cret") {
			t.Errorf("%q: exit %d, want %d without a secret:\n%s%s", args, code, exitOK, out, errOut)
		}
	}
}

// check-config quotes the URLs it refuses redacted.
func TestCheckConfigRedactsURLs(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "bad.toml")
	body := `[agent]
listen = "127.0.0.1:0"
[cluster]
bind = "127.0.0.1:0"
[alerting]
alertmanagers = ["http://am:9093/?token=s3cret-am", "ftp://am:9093/?token=s3cret-am2"]
[[target]]
name = "port"
type = "http"
url = "http://h:99999/?token=s3cret-port"
[[target]]
name = "parse"
type = "http"
url = "http://[bad/?token=s3cret-parse"
[[target]]
name = "scheme"
type = "http"
url = "ftp://u:s3cret-pass@h/?token=s3cret-scheme"
[[target]]
name = "doh"
type = "dns"
[target.dns]
server = "http://dns.example/q?key=s3cret-doh"
transport = "https"
query = "example.com."
`
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCLI("check-config", path)
	if code != exitFail || strings.Count(out, path+":") < 6 {
		t.Fatalf("check-config: exit %d, want six problems:\n%s%s", code, out, errOut)
	}
	if strings.Contains(out+errOut, "s3cret") {
		t.Errorf("check-config shows a secret:\n%s%s", out, errOut)
	}
	if !strings.Contains(out, "token=xxxxx") {
		t.Errorf("check-config does not quote the URLs it refuses:\n%s", out)
	}
}
