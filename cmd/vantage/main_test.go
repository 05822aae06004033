package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vantage-probe/vantage/agent/config"
	"github.com/vantage-probe/vantage/probe/probetest"
)

// cliEnv makes the test binary, run again by a test, run the command line
// in its arguments instead of the tests: a vantage command in a process of
// its own (another user namespace).
const cliEnv = "VANTAGE_TEST_CLI"

func TestMain(m *testing.M) {
	if os.Getenv(cliEnv) == "1" {
		os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
	}
	// `vantage agent` run by these tests keeps its state in a directory
	// of the test run, not the machine's /var/lib/vantage (another run
	// at the same moment would hold the same node's file).
	root, err := os.MkdirTemp("", "vantage-cmd-test-state-")
	if err != nil {
		panic(err)
	}
	os.Setenv(config.StateRootEnv, root)
	code := m.Run()
	os.RemoveAll(root)
	os.Exit(code)
}

func runCLI(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestUsageAndUnknownCommand(t *testing.T) {
	if code, _, stderr := runCLI(); code != exitUsage || !strings.Contains(stderr, "Commands:") {
		t.Errorf("no args: code %d, stderr %q", code, stderr)
	}
	if code, _, stderr := runCLI("frobnicate"); code != exitUsage || !strings.Contains(stderr, `unknown command "frobnicate"`) {
		t.Errorf("unknown command: code %d, stderr %q", code, stderr)
	}
	if code, stdout, _ := runCLI("version"); code != exitOK || !strings.HasPrefix(stdout, "vantage ") {
		t.Errorf("version: code %d, %q", code, stdout)
	}
}

func TestEverySubcommandExplainsItsFlags(t *testing.T) {
	for _, c := range commands() {
		code, _, stderr := runCLI(c.name, "-h")
		if code != exitOK || !strings.Contains(stderr, "Usage") {
			t.Errorf("%s -h: code %d, output %q", c.name, code, stderr)
		}
	}
}

func TestKeygen(t *testing.T) {
	code, out, _ := runCLI("keygen")
	k, err := base64.StdEncoding.DecodeString(strings.TrimSpace(out))
	if code != exitOK || err != nil || len(k) != 32 {
		t.Fatalf("keygen: code %d, %q, %v", code, out, err)
	}
	if code, _, _ := runCLI("keygen", "-bytes", "7"); code != exitUsage {
		t.Errorf("keygen -bytes 7: code %d, want 2", code)
	}
}

func TestProbeHTTPExitCodes(t *testing.T) {
	ok := probetest.NewHTTPServer(t, probetest.HTTPRespond(200, "all good"))
	bad := probetest.NewHTTPServer(t, probetest.HTTPRespond(503, "down"))
	code, out, _ := runCLI("probe", ok.URL)
	if code != exitOK || !strings.Contains(out, "OK") || !strings.Contains(out, "status 200") || !strings.Contains(out, "phases:") {
		t.Errorf("probe ok: code %d\n%s", code, out)
	}
	code, out, _ = runCLI("probe", bad.URL)
	if code != exitFail || !strings.Contains(out, "FAIL status_mismatch") {
		t.Errorf("probe 503: code %d\n%s", code, out)
	}
	code, out, _ = runCLI("probe", "-json", "-body-regex", "good", ok.URL)
	var r struct {
		OK     bool   `json:"ok"`
		Reason string `json:"reason"`
		HTTP   struct {
			StatusCode int `json:"status_code"`
		} `json:"http"`
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil || code != exitOK || !r.OK || r.HTTP.StatusCode != 200 {
		t.Errorf("probe -json: code %d, %+v, %v\n%s", code, r, err, out)
	}
}

func TestProbeTLSShowsExpiry(t *testing.T) {
	ca, err := probetest.NewCA("test")
	if err != nil {
		t.Fatal(err)
	}
	caFile, err := ca.WriteCAFile(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.Leaf(probetest.Days(5), "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := probetest.StartTLS(cert)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	code, out, _ := runCLI("probe", "-type", "tls", "-ca-file", caFile, "-min-days-left", "14", srv.Addr)
	// An expiring certificate warns; the endpoint answers, so the probe succeeds.
	if code != exitOK || !strings.Contains(out, "WARN cert_expiring") || !strings.Contains(out, "days left") {
		t.Errorf("tls probe of a 5-day cert with min 14: code %d\n%s", code, out)
	}
	code, out, _ = runCLI("probe", "-type", "tls", "-ca-file", caFile, srv.Addr)
	if code != exitOK || !strings.Contains(out, "expires") {
		t.Errorf("tls probe: code %d\n%s", code, out)
	}
}

func TestProbeDNSAndTCP(t *testing.T) {
	zone, err := probetest.NewZone("example.test. 60 IN A 192.0.2.7")
	if err != nil {
		t.Fatal(err)
	}
	dnsSrv, err := probetest.StartDNS(zone)
	if err != nil {
		t.Fatal(err)
	}
	defer dnsSrv.Close()
	code, out, _ := runCLI("probe", "-type", "dns", "-server", dnsSrv.Addr(), "example.test")
	if code != exitOK || !strings.Contains(out, "192.0.2.7") || !strings.Contains(out, "NOERROR") {
		t.Errorf("dns probe: code %d\n%s", code, out)
	}
	// A server that never answers: the summary says so, with no blank
	// rcode where the answer's would be.
	silent, err := probetest.StartDNS(probetest.Drop())
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	code, out, _ = runCLI("probe", "-type", "dns", "-timeout", "300ms", "-server", silent.Addr(), "example.test")
	if want := "  dns:      no answer from " + silent.Addr() + " over udp (timeout)\n"; code != exitFail || !strings.Contains(out, want) {
		t.Errorf("dns probe of a silent server: code %d, want %d and %q in\n%s", code, exitFail, want, out)
	}
	if !strings.Contains(out, "detail:   no answer from "+silent.Addr()+" over udp: timed out after") {
		t.Errorf("dns probe of a silent server: the detail does not say what happened:\n%s", out)
	}
	tcp, err := probetest.StartTCP(probetest.TCPEcho, "220 hello\r\n")
	if err != nil {
		t.Fatal(err)
	}
	defer tcp.Close()
	if code, out, _ := runCLI("probe", "-type", "tcp", "-expect", "^220", tcp.Addr); code != exitOK {
		t.Errorf("tcp probe: code %d\n%s", code, out)
	}
	if code, out, _ := runCLI("probe", "-type", "tcp", "-expect", "^500", "-timeout", "300ms", tcp.Addr); code != exitFail {
		t.Errorf("tcp probe with wrong expect: code %d\n%s", code, out)
	}
}

func TestProbeBadUsageExits2(t *testing.T) {
	for _, args := range [][]string{
		{"probe"},
		{"probe", "-type", "gopher", "x:1"},
		{"probe", "-nosuchflag", "http://x"},
		{"probe", "-type", "dns", "example.com"},
		{"probe", "example.com:443"},
		{"probe", "-status", "abc", "http://127.0.0.1:1"},
		{"probe", "-config", "x.toml"},
		{"probe", "-http-version", "7", "http://127.0.0.1:1"},
	} {
		code, _, stderr := runCLI(args...)
		if code != exitUsage || stderr == "" {
			t.Errorf("%v: code %d, stderr %q; want 2 and a message", args, code, stderr)
		}
	}
}

func TestCheckConfigPointsAtTheBrokenLine(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.toml")
	bad := filepath.Join(dir, "bad.toml")
	os.WriteFile(good, []byte("[agent]\nregion = \"eu\"\n[cluster]\nbind = \"127.0.0.1:7946\"\n[[target]]\nname = \"a\"\ntype = \"http\"\nurl = \"http://127.0.0.1:1/\"\n"), 0o600)
	os.WriteFile(bad, []byte("[agent]\nregion = \"eu\"\n[cluster]\nbind = \"127.0.0.1:7946\"\n[[target]]\nname = \"a\"\ntype = \"http\"\nurl = \"http://127.0.0.1:1/\"\ninterval = \"soon\"\n"), 0o600)
	code, out, _ := runCLI("check-config", good)
	if code != exitOK || !strings.Contains(out, "1 targets") && !strings.Contains(out, "1 target") {
		t.Errorf("good config: code %d, %q", code, out)
	}
	code, out, _ = runCLI("check-config", bad)
	if code != exitFail || !strings.Contains(out, bad+":9:") || !strings.Contains(out, "interval") {
		t.Errorf("bad config: code %d, %q; want FILE:7: ... interval", code, out)
	}
}

func TestProbeConfiguredTarget(t *testing.T) {
	srv := probetest.NewHTTPServer(t, probetest.HTTPRespond(200, "ok"))
	path := filepath.Join(t.TempDir(), "v.toml")
	os.WriteFile(path, []byte(fmt.Sprintf("[[target]]\nname = \"web\"\ntype = \"http\"\nurl = \"%s\"\n", srv.URL)), 0o600)
	if code, out, errs := runCLI("probe", "-config", path, "-target", "web"); code != exitOK {
		t.Errorf("probe -config -target: code %d\n%s%s", code, out, errs)
	}
	if code, _, _ := runCLI("probe", "-config", path, "-target", "nope"); code != exitUsage {
		t.Errorf("unknown target: code %d, want 2", code)
	}
}

func TestRulesCommand(t *testing.T) {
	code, out, errs := runCLI("rules", "-config", "../../configs/example.toml")
	if code != exitOK || !strings.Contains(out, "VantageTargetDown") {
		t.Fatalf("rules: code %d, %s", code, errs)
	}
}

func TestHealthcheck(t *testing.T) {
	ready := probetest.NewHTTPServer(t, probetest.HTTPRespond(http.StatusOK, "ready\n"))
	if code, _, _ := runCLI("healthcheck", "-url", ready.URL); code != exitOK {
		t.Errorf("healthcheck against a ready server: %d", code)
	}
	notReady := probetest.NewHTTPServer(t, probetest.HTTPRespond(http.StatusServiceUnavailable, "no"))
	if code, _, _ := runCLI("healthcheck", "-url", notReady.URL); code != exitFail {
		t.Errorf("healthcheck against a 503: %d", code)
	}
}

// Whatever the agent refuses at start, check-config refuses with the same
// message (the list: each used to pass check-config).
func TestCheckConfigRefusesWhatTheAgentRefuses(t *testing.T) {
	dir := t.TempDir()
	token := filepath.Join(dir, "token")
	os.WriteFile(token, []byte("t0ken\n"), 0o600)
	head := "[agent]\nlisten = \"127.0.0.1:0\"\n[cluster]\nbind = \"127.0.0.1:0\"\n"
	for name, body := range map[string]string{
		"userinfo and bearer": head + "[[target]]\nname = \"a\"\ntype = \"http\"\nurl = \"http://u:p@127.0.0.1:1/\"\n[target.http]\nbearer_token_file = \"token\"\n",
		"gossip on 0.0.0.0 without a key": "[agent]\nlisten = \"127.0.0.1:0\"\n[cluster]\nbind = \"0.0.0.0:0\"\n" +
			"[[target]]\nname = \"a\"\ntype = \"tcp\"\naddress = \"127.0.0.1:1\"\n",
		"missing ca_file":         head + "[[target]]\nname = \"a\"\ntype = \"tls\"\naddress = \"127.0.0.1:1\"\n[target.tls]\nca_file = \"nope.pem\"\n",
		"port out of range":       head + "[[target]]\nname = \"a\"\ntype = \"http\"\nurl = \"http://127.0.0.1:99999/\"\n",
		"interval that overflows": head + "[[target]]\nname = \"a\"\ntype = \"tcp\"\naddress = \"127.0.0.1:1\"\ninterval = \"100000d\"\n",
		"missing client key":      head + "[[target]]\nname = \"a\"\ntype = \"tcp\"\naddress = \"127.0.0.1:1\"\n[target.tcp]\ntls = true\ncert_file = \"c.pem\"\nkey_file = \"k.pem\"\n",
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(name, " ", "_")+".toml")
			os.WriteFile(path, []byte(body), 0o600)
			code, out, _ := runCLI("check-config", path)
			if code != exitFail || !strings.Contains(out, path+":") {
				t.Fatalf("check-config: code %d, %q; want a refusal naming the file and line", code, out)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			var o, e bytes.Buffer
			if code := run(ctx, []string{"agent", "-config", path, "-log-level", "error"}, &o, &e); code != exitFail {
				t.Fatalf("agent: code %d (stderr %q), want a refusal", code, e.String())
			}
			for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
				if !strings.Contains(e.String(), line) {
					t.Errorf("the agent's refusal %q lacks check-config's %q", e.String(), line)
				}
			}
		})
	}
}
