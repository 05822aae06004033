//go:build linux

package agent

import (
	"bufio"
	"context"
	"fmt"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vantage-probe/vantage/internal/blackboxtest"
	"github.com/vantage-probe/vantage/internal/testenv"
	"github.com/vantage-probe/vantage/probe/probetest"
)

// bbParityModules are blackbox_exporter's modules for the targets the agent
// probes in TestMetricsAsBlackboxExporterWritesThem, each the probe
// Vantage runs (%[1]q: the CA file).
const bbParityModules = `modules:
  http:
    prober: http
    timeout: 5s
    http: {preferred_ip_protocol: ip4}
  https:
    prober: http
    timeout: 5s
    http: {preferred_ip_protocol: ip4, tls_config: {ca_file: %[1]q}}
  tls:
    prober: tcp
    timeout: 5s
    tcp: {preferred_ip_protocol: ip4, tls: true, tls_config: {ca_file: %[1]q}}
  dns_udp:
    prober: dns
    timeout: 5s
    dns: {preferred_ip_protocol: ip4, query_name: www.example.test, query_type: A, transport_protocol: udp}
  dns_tcp:
    prober: dns
    timeout: 5s
    dns: {preferred_ip_protocol: ip4, query_name: www.example.test, query_type: A, transport_protocol: tcp}
  dns_soa:
    prober: dns
    timeout: 5s
    dns: {preferred_ip_protocol: ip4, query_name: example.test, query_type: SOA, transport_protocol: udp}
  tcp:
    prober: tcp
    timeout: 5s
    tcp: {preferred_ip_protocol: ip4}
`

// bbParityTimeout is the agent's probe timeout in the test: every duration
// either side writes must lie within it (seconds, not milliseconds).
const bbParityTimeout = 3 * time.Second

// TestMetricsAsBlackboxExporterWritesThem probes the same loopback targets
// (HTTP, HTTPS, TLS, DNS over UDP and TCP, TCP) with a real
// blackbox_exporter and a real agent, and holds every probe_* family either
// of them writes to the other's name, TYPE, label names and label values,
// modulo the labels that say which series it is (identityLabels); values
// that are facts (status, sizes, expiry dates, record counts, the address)
// must be equal, durations must be seconds within the timeout. A family
// one side writes and the other does not, or writes otherwise, must be a
// row of the README's table of deliberate differences, with its reason;
// a row no probe shows is stale and fails the test too.
func TestMetricsAsBlackboxExporterWritesThem(t *testing.T) {
	dir := t.TempDir()
	ca, err := probetest.NewCA("parity CA")
	if err != nil {
		t.Fatal(err)
	}
	caFile, err := ca.WriteCAFile(dir)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.Leaf(probetest.Days(30), "127.0.0.1", "localhost")
	if err != nil {
		t.Fatal(err)
	}
	// Plain HTTP streams its body (no Content-Length: blackbox_exporter
	// writes -1 for the declared length) and dates it.
	web := probetest.NewHTTPServer(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Last-Modified", "Tue, 01 Dec 2026 10:00:00 GMT")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte("ok"))
		w.(http.Flusher).Flush()
		_, _ = w.Write([]byte(" and more"))
	}))
	secure := probetest.NewHTTPSServer(t, probetest.HTTPRespond(http.StatusOK, "ok"), cert)
	tlsSrv, err := probetest.StartTLS(cert)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tlsSrv.Close() })
	zone, err := probetest.NewZone(
		"www.example.test. 300 IN A 192.0.2.1",
		"example.test. 300 IN SOA ns.example.test. admin.example.test. 2026120101 3600 600 86400 300",
		"example.test. 300 IN NS ns.example.test.")
	if err != nil {
		t.Fatal(err)
	}
	dnsSrv, err := probetest.StartDNS(zone)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = dnsSrv.Close() })
	tcpSrv, err := probetest.StartTCP(probetest.TCPEcho, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tcpSrv.Close() })

	cases := []struct {
		target, typ   string // the agent's target and its type (the table's prober)
		module, param string // blackbox_exporter's module and target parameter
		config        string // the [[target]] body after name and type
	}{
		{"web", "http", "http", web.URL, fmt.Sprintf("url = %q", web.URL)},
		{"secure", "http", "https", secure.URL, fmt.Sprintf("url = %q\n[target.http]\nca_file = %q", secure.URL, caFile)},
		{"cert", "tls", "tls", tlsSrv.Addr, fmt.Sprintf("address = %q\n[target.tls]\nca_file = %q", tlsSrv.Addr, caFile)},
		{"resolver-udp", "dns", "dns_udp", dnsSrv.Addr(), fmt.Sprintf("[target.dns]\nserver = %q\ntransport = \"udp\"\nquery = \"www.example.test.\"", dnsSrv.Addr())},
		{"resolver-tcp", "dns", "dns_tcp", dnsSrv.Addr(), fmt.Sprintf("[target.dns]\nserver = %q\ntransport = \"tcp\"\nquery = \"www.example.test.\"", dnsSrv.Addr())},
		{"zone-soa", "dns", "dns_soa", dnsSrv.Addr(), fmt.Sprintf("[target.dns]\nserver = %q\nquery = \"example.test.\"\nrecord = \"SOA\"", dnsSrv.Addr())},
		{"db", "tcp", "tcp", tcpSrv.Addr, fmt.Sprintf("address = %q", tcpSrv.Addr)},
	}
	bb := blackboxtest.Start(t, fmt.Sprintf(bbParityModules, caFile))

	var cfg strings.Builder
	for _, c := range cases {
		fmt.Fprintf(&cfg, "[[target]]\nname = %q\ntype = %q\ninterval = \"5s\"\ntimeout = %q\nlabels = { team = \"sre\" }\n%s\n",
			c.target, c.typ, bbParityTimeout.String(), c.config)
	}
	path := filepath.Join(dir, "vantage.toml")
	writeConfig(t, path, baseConfig(cfg.String()))
	a := testAgent(t, path)
	var (
		exposition string
		ours       map[string]*blackboxtest.Family
	)
	testenv.Poll(t, 30*time.Second, "every target probed successfully by the agent", func() bool {
		exposition = scrape(t, a)
		ours, err = blackboxtest.Parse(exposition)
		if err != nil {
			t.Fatal(err)
		}
		ok := map[string]bool{}
		if f := ours["probe_success"]; f != nil {
			for _, s := range f.Samples {
				ok[s.Labels["target"]] = s.Value == 1
			}
		}
		for _, c := range cases {
			if !ok[c.target] {
				return false
			}
		}
		return true
	})

	// Every family written for every kind of target is lint-clean.
	cmd := exec.Command(testenv.RequireBinary(t, "prometheus", "promtool"), "check", "metrics")
	cmd.Stdin = strings.NewReader(exposition)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}

	diffs := readDifferences(t)
	seen := map[difference]bool{}
	for _, c := range cases {
		t.Run(c.target, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			text, err := bb.Probe(ctx, c.module, c.param)
			if err != nil {
				t.Fatal(err)
			}
			theirs, err := blackboxtest.Parse(text)
			if err != nil {
				t.Fatal(err)
			}
			if f := theirs["probe_success"]; f == nil || len(f.Samples) != 1 || f.Samples[0].Value != 1 {
				t.Fatalf("blackbox_exporter's probe of %s failed:\n%s", c.param, text)
			}
			mine := ofTarget(ours, c.target)
			names := slices.Sorted(maps.Keys(theirs))
			for name := range mine {
				if !slices.Contains(names, name) {
					names = append(names, name)
				}
			}
			for _, name := range names {
				if !strings.HasPrefix(name, "probe_") {
					continue
				}
				problem := compareBlackboxFamily(name, theirs[name], mine[name])
				d := difference{family: name, prober: c.typ}
				_, listed := diffs[d]
				switch {
				case problem != "" && listed:
					seen[d] = true
				case problem != "":
					t.Errorf("%s (%s): %s, and the README's table of differences from blackbox_exporter has no row for it", name, c.typ, problem)
				case listed:
					t.Logf("%s (%s): as blackbox_exporter writes it", name, c.typ)
				}
			}
		})
	}
	for d := range diffs {
		if !seen[d] {
			t.Errorf("README: the row for %s (%s) lists a difference no probe showed: remove it", d.family, d.prober)
		}
	}
}

// identityLabels say which series a sample belongs to, so they are left out
// of the comparison. Vantage's target is blackbox_exporter's target URL
// parameter (relabelled from __param_target), type its module's prober,
// region the exporter's scrape job, and the target's own labels (here
// team) labels of that job's scrape config.
var identityLabels = []string{"target", "type", "region", "team"}

// ofTarget is the families of our scrape restricted to target's samples,
// without the identity labels.
func ofTarget(fams map[string]*blackboxtest.Family, target string) map[string]*blackboxtest.Family {
	out := map[string]*blackboxtest.Family{}
	for name, f := range fams {
		for _, s := range f.Samples {
			if s.Labels["target"] != target {
				continue
			}
			g := out[name]
			if g == nil {
				g = &blackboxtest.Family{Type: f.Type}
				out[name] = g
			}
			g.Samples = append(g.Samples, blackboxtest.Sample{Labels: withoutIdentity(s.Labels), Value: s.Value})
		}
	}
	return out
}

func withoutIdentity(labels map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range labels {
		if !slices.Contains(identityLabels, k) {
			out[k] = v
		}
	}
	return out
}

// compareBlackboxFamily says how ours differs from theirs ("" when it does
// not): presence, TYPE, the label sets of the samples, and each sample's
// value (facts equal, durations seconds within the timeout).
func compareBlackboxFamily(name string, theirs, ours *blackboxtest.Family) string {
	switch {
	case theirs == nil:
		return "Vantage writes it, blackbox_exporter does not"
	case ours == nil:
		return fmt.Sprintf("blackbox_exporter writes it (%s), Vantage does not", render(theirs))
	case theirs.Type != ours.Type:
		return fmt.Sprintf("TYPE %s, blackbox_exporter's %s", ours.Type, theirs.Type)
	}
	key := func(labels map[string]string) string {
		var b strings.Builder
		for _, k := range slices.Sorted(maps.Keys(labels)) {
			fmt.Fprintf(&b, "%s=%q,", k, labels[k])
		}
		return b.String()
	}
	ourValue := map[string]float64{}
	for _, s := range ours.Samples {
		ourValue[key(s.Labels)] = s.Value
	}
	if len(ourValue) != len(theirs.Samples) {
		return fmt.Sprintf("series %s, blackbox_exporter's %s", render(ours), render(theirs))
	}
	for _, s := range theirs.Samples {
		v, ok := ourValue[key(s.Labels)]
		switch {
		case !ok:
			return fmt.Sprintf("series %s, blackbox_exporter's %s", render(ours), render(theirs))
		case isDuration(name):
			if v < 0 || v > bbParityTimeout.Seconds() {
				return fmt.Sprintf("{%s} = %v: not seconds within the %v timeout", key(s.Labels), v, bbParityTimeout)
			}
		case v != s.Value:
			return fmt.Sprintf("{%s} = %v, blackbox_exporter's %v", key(s.Labels), v, s.Value)
		}
	}
	return ""
}

// isDuration: a family whose value is a timing, which differs from probe to
// probe; every other family's value is a fact of the target.
func isDuration(name string) bool {
	return strings.HasSuffix(name, "_seconds") && !strings.HasSuffix(name, "_timestamp_seconds")
}

func render(f *blackboxtest.Family) string {
	var parts []string
	for _, s := range f.Samples {
		parts = append(parts, fmt.Sprintf("%v %v", s.Labels, s.Value))
	}
	slices.Sort(parts)
	return f.Type + " [" + strings.Join(parts, "; ") + "]"
}

// difference is a row of the README's table: a family that one prober
// writes differently from blackbox_exporter.
type difference struct{ family, prober string }

// differencesHeader is the header line of the README's table.
const differencesHeader = "| family | probers | difference | why |"

// readDifferences reads the README's table of deliberate differences from
// blackbox_exporter; every row must give its reason.
func readDifferences(t *testing.T) map[difference]string {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[difference]string{}
	sc := bufio.NewScanner(f)
	in := false
	for line := 1; sc.Scan(); line++ {
		text := sc.Text()
		switch {
		case text == differencesHeader:
			in = true
			continue
		case !in:
			continue
		case !strings.HasPrefix(text, "|"):
			in = false
			continue
		case strings.HasPrefix(text, "|---"):
			continue
		}
		cells := strings.Split(strings.Trim(text, "|"), "|")
		if len(cells) != 4 {
			t.Fatalf("README.md:%d: %d cells in the differences table, want 4", line, len(cells))
		}
		family := strings.Trim(strings.TrimSpace(cells[0]), "`")
		why := strings.TrimSpace(cells[3])
		if why == "" || strings.TrimSpace(cells[2]) == "" {
			t.Errorf("README.md:%d: %s: a difference needs what and why", line, family)
		}
		for _, p := range strings.Split(cells[1], ",") {
			out[difference{family: family, prober: strings.TrimSpace(p)}] = why
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(out) == 0 {
		t.Fatalf("README.md has no table headed %q", differencesHeader)
	}
	return out
}
