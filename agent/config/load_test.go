package config

import (
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/vantage-probe/vantage/probe"
	"github.com/vantage-probe/vantage/probe/httpprobe"
	"github.com/vantage-probe/vantage/probe/probetest"
)

func mustLoad(t *testing.T, dir string, opts ...Option) *Config {
	t.Helper()
	p := filepath.Join(dir, "main.toml")
	opts = append([]Option{WithHostname(func() (string, error) { return "host-1", nil })}, opts...)
	data := readFile(t, p)
	cfg, err := Parse(p, data, opts...)
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	return cfg
}

// writeTLSFiles writes a real CA bundle and client key pair under each of
// names into dir (PEM: ".pem" names get the certificate, "k.pem"/"*-key.pem"
// the key): Load reads them as the probers will.
func writeTLSFiles(t *testing.T, dir string, names ...string) {
	t.Helper()
	ca, err := probetest.NewCA("test CA")
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Leaf(probetest.Days(30), "client")
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM := probetest.PEM(leaf)
	for _, n := range names {
		b := certPEM
		if base := filepath.Base(n); base == "k.pem" || strings.HasSuffix(base, "-key.pem") {
			b = keyPEM
		}
		if !filepath.IsAbs(n) {
			n = filepath.Join(dir, n)
		}
		if err := os.WriteFile(n, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

func readFile(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestIncludes(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"main.toml": `include = ["teams/*.toml", "extra/one.toml", "none/*.toml"]
[[target]]
name = "main-api"
type = "http"
url = "https://api.example.com/"
`,
		"teams/b-payments.toml": `# payments team
[[target]]
name = "pay-api"
type = "http"
url = "https://pay.example.com/"

[[maintenance]]
targets = ["main-*", "pay-*"]   # may name targets of any file
start = 2026-12-01T02:00:00Z
end = 2026-12-01T03:00:00Z
`,
		"teams/a-search.toml": `[[target]]
name = "search"
type = "tcp"
address = "search.internal:9200"
`,
		"extra/one.toml": `[[target]]
name = "one"
type = "tls"
address = "one.example.com:443"
`,
		"teams/notes.txt": "not toml, not matched",
	})
	cfg := mustLoad(t, dir)
	var names []string
	for _, tg := range cfg.Targets {
		names = append(names, tg.Name)
	}
	// Main file first, then each glob's matches in sorted order.
	want := []string{"main-api", "search", "pay-api", "one"}
	if !slices.Equal(names, want) {
		t.Errorf("targets %v, want %v", names, want)
	}
	wantFiles := []string{
		filepath.Join(dir, "main.toml"), filepath.Join(dir, "teams/a-search.toml"),
		filepath.Join(dir, "teams/b-payments.toml"), filepath.Join(dir, "extra/one.toml"),
	}
	if !slices.Equal(cfg.Files, wantFiles) {
		t.Errorf("Files %v, want %v", cfg.Files, wantFiles)
	}
	if p := cfg.Target("pay-api").Pos; p.File != filepath.Join(dir, "teams/b-payments.toml") || p.Line != 2 {
		t.Errorf("pay-api at %s, want b-payments.toml:2", p)
	}
	if len(cfg.Maintenance) != 1 || cfg.Maintenance[0].Pos.Line != 7 {
		t.Fatalf("maintenance %+v", cfg.Maintenance)
	}
	at := time.Date(2026, 12, 1, 2, 30, 0, 0, time.UTC)
	if !cfg.InMaintenance("main-api", at) || !cfg.InMaintenance("pay-api", at) || cfg.InMaintenance("search", at) {
		t.Error("maintenance from an included file does not cover the right targets")
	}
}

func TestIncludeErrorsNameTheIncludedFile(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"main.toml": `include = ["conf.d/*.toml"]
[[target]]
name = "api"
type = "tcp"
address = "h:1"
`,
		"conf.d/team.toml": `
[[target]]
name = "team-db"
type = "tcp"
address = "db:5432"
interval = "soon"

[agent]
region = "elsewhere"

[[target]]
name = "api"
type = "tcp"
address = "h:2"
`,
		"conf.d/broken.toml": "[[target]]\nname = \"x\nbad = 1\n",
	})
	errs := loadErrors(t, dir)
	team := filepath.Join(dir, "conf.d/team.toml")
	broken := filepath.Join(dir, "conf.d/broken.toml")
	type where struct {
		file string
		line int
		err  error
	}
	want := []where{
		{broken, 2, ErrSyntax},
		{team, 6, ErrDuration},
		{team, 8, ErrInvalid},    // [agent] in an included file
		{team, 12, ErrDuplicate}, // "api" is in main.toml already
	}
	if len(errs) != len(want) {
		t.Fatalf("got %d problems, want %d:\n%v", len(errs), len(want), errs)
	}
	for i, w := range want {
		e := errs[i]
		if e.Pos.File != w.file || int(e.Pos.Line) != w.line || !errors.Is(e, w.err) {
			t.Errorf("problem %d = %v (%v), want %s:%d (%v)", i, e, e.Err, w.file, w.line, w.err)
		}
	}
	if !strings.Contains(errs[3].Msg, filepath.Join(dir, "main.toml")+":2:1") {
		t.Errorf("duplicate does not say where the first one is: %v", errs[3])
	}
	if !strings.Contains(errs[2].Msg, "only [[target]] and [[maintenance]]") {
		t.Errorf("message %q", errs[2].Msg)
	}
}

func TestIncludeFromFS(t *testing.T) {
	fsys := fstest.MapFS{
		"etc/main.toml":         {Data: []byte("include = [\"teams/*.toml\", \"fixed.toml\"]\n")},
		"etc/teams/a.toml":      {Data: []byte("[[target]]\nname = \"a\"\ntype = \"tcp\"\naddress = \"a:1\"\n")},
		"etc/fixed.toml":        {Data: []byte("[[target]]\nname = \"b\"\ntype = \"tcp\"\naddress = \"b:1\"\n")},
		"etc/teams/broken.toml": {Data: []byte("[[target]]\nname = \"c\"\ntype = \"tcp\"\naddress = \"c\"\n")},
	}
	_, err := Parse("etc/main.toml", fsys["etc/main.toml"].Data, WithFS(fsys))
	var errs Errors
	if !errors.As(err, &errs) || len(errs) != 1 || errs[0].Pos.File != "etc/teams/broken.toml" || errs[0].Pos.Line != 4 {
		t.Fatalf("err = %v, want one problem at etc/teams/broken.toml:4", err)
	}
	delete(fsys, "etc/teams/broken.toml")
	cfg, err := Parse("etc/main.toml", fsys["etc/main.toml"].Data, WithFS(fsys))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Summary() != "2 targets: 2 tcp" {
		t.Errorf("Summary = %q", cfg.Summary())
	}
}

func TestDefaultsInheritance(t *testing.T) {
	dir := writeFiles(t, map[string]string{"main.toml": `
[defaults]
interval = "1m"
timeout = "20s"
failures = 3

[slo]
objective = 0.99

[[target]]
name = "inherits"
type = "http"
url = "https://a.example.com/"

[[target]]
name = "own-interval"
type = "tcp"
address = "b:1"
interval = "2m"

[[target]]
name = "own-everything"
type = "tls"
address = "c:443"
interval = "45s"
timeout = "3s"
failures = 1
slo_objective = 0.9999

[[target]]
name = "resolver"
type = "dns"
[target.dns]
server = "127.0.0.53"
query = "example.com"
`})
	cfg := mustLoad(t, dir)
	check := func(name string, interval, timeout time.Duration, failures int, slo float64) {
		t.Helper()
		tg := cfg.Target(name)
		if tg == nil {
			t.Fatalf("no target %q", name)
		}
		if tg.Interval != interval || tg.Timeout != timeout || tg.Failures != failures || tg.SLOObjective != slo {
			t.Errorf("%s: interval %v timeout %v failures %d slo %v, want %v %v %d %v",
				name, tg.Interval, tg.Timeout, tg.Failures, tg.SLOObjective, interval, timeout, failures, slo)
		}
	}
	check("inherits", time.Minute, 20*time.Second, 3, 0.99)
	check("own-interval", 2*time.Minute, 20*time.Second, 3, 0.99)
	check("own-everything", 45*time.Second, 3*time.Second, 1, 0.9999)

	h := cfg.Target("inherits").HTTP()
	if h.Method != "GET" || !h.FollowRedirects || h.MaxRedirects != 10 || h.MaxBodyBytes != 1<<20 || h.HTTPVersion != "auto" {
		t.Errorf("http defaults: %+v", h)
	}
	d := cfg.Target("resolver").DNS
	if d.Transport != "udp" || d.Record != "A" || !slices.Equal(d.ValidRcodes, []string{"NOERROR"}) || !d.Recursion || d.UDPSize != 0 {
		t.Errorf("dns defaults: %+v", d)
	}
	if tl := cfg.Target("own-everything").TLS; tl.MinDaysLeft != DefaultCertDays || tl.Address != "c:443" {
		t.Errorf("tls: %+v", tl)
	}
	if tc := cfg.Target("own-interval").TCP; tc.ReadLimit != 4096 || tc.UseTLS {
		t.Errorf("tcp defaults: %+v", tc)
	}
	if cfg.Agent.Node != "host-1" || cfg.Agent.Region != "default" || cfg.Agent.Listen != "127.0.0.1:9115" || cfg.Agent.SourceIP.IsValid() {
		t.Errorf("agent defaults: %+v", cfg.Agent)
	}
	c := cfg.Cluster
	if c.Bind != "0.0.0.0:7946" || c.Label != "vantage" || c.ReplicasPerRegion != 1 || c.RejoinInterval != 30*time.Second || c.GossipInterval != 0 {
		t.Errorf("cluster defaults: %+v", c)
	}
	if q := cfg.Quorum; q.MinRegions != 2 || !q.ConfirmOnFailure || q.RecoverySuccesses != 1 {
		t.Errorf("quorum defaults: %+v", q)
	}
	if cfg.SLO.Window != 28*24*time.Hour || cfg.Exporter.LatencyHistogram {
		t.Errorf("slo/exporter defaults: %+v %+v", cfg.SLO, cfg.Exporter)
	}
}

func TestTimeoutDefaultFollowsShortIntervals(t *testing.T) {
	dir := writeFiles(t, map[string]string{"main.toml": `
[defaults]
interval = "5s"
[[target]]
name = "fast"
type = "tcp"
address = "h:1"
[[target]]
name = "slow"
type = "tcp"
address = "h:1"
interval = "1m"
[[target]]
name = "fastest"
type = "tcp"
address = "h:1"
interval = "1s"
`})
	cfg := mustLoad(t, dir)
	for name, want := range map[string]time.Duration{"fast": 4 * time.Second, "slow": 10 * time.Second, "fastest": 800 * time.Millisecond} {
		if got := cfg.Target(name).Timeout; got != want {
			t.Errorf("%s: timeout %v, want %v", name, got, want)
		}
	}
	if cfg.Defaults.Timeout != 4*time.Second {
		t.Errorf("Defaults.Timeout = %v, want 4s", cfg.Defaults.Timeout)
	}
}

func TestFullSchemaDecodes(t *testing.T) {
	absCert := filepath.Join(t.TempDir(), "c.pem")
	dir := writeFiles(t, map[string]string{
		"token":      "  s3cr3t-token\n",
		"gossip.key": "# rotation: first encrypts\nAAAAAAAAAAAAAAAAAAAAAA==\n",
		"main.toml": `
[agent]
node = "n1"
region = "eu-west"
listen = ":9115"
source_ip = "127.0.0.1"
[cluster]
bind = "127.0.0.1:0"
advertise = "192.0.2.1:7946"
join = ["127.0.0.1:7946", "[::1]:7946"]
secret_key_file = "gossip.key"
label = "lab"
insecure = true
replicas_per_region = 2
gossip_interval = "100ms"
probe_interval = "1s"
probe_timeout = "500ms"
suspicion_mult = 5
tcp_timeout = "2s"
rejoin_interval = "1m"
[quorum]
min_regions = 1
confirm_on_failure = false
recovery_successes = 3
[exporter]
latency_histogram = true
[slo]
window = "1w"

[[target]]
name = "web"
type = "http"
url = "https://web.example.com/x"
regions = ["eu-west", "us-east"]
min_regions = 2
ip_protocol = "ip6"
source_ip = "::1"
labels = { team = "web", tier = "1" }
[target.http]
method = "POST"
headers = { "Content-Type" = "application/json", Host = "web" }
body = "{}"
valid_status = [200, 201]
body_regex = "ok"
fail_if_body_matches = ["error"]
fail_if_body_not_matches = ["^\\{"]
fail_if_header_matches = [{ header = "X-A", regex = "bad", allow_missing = true }]
fail_if_ssl = false
fail_if_not_ssl = true
follow_redirects = false
max_redirects = 3
max_body_bytes = 2048
http_version = "2"
bearer_token_file = "token"
ca_file = "ca.pem"
cert_file = "ABS_CERT"
key_file = "k.pem"
server_name = "web.internal"
insecure_skip_verify = true
json = [{ path = "status", equals = "UP" }, { path = "checks.db.ms", less_than = 300 }, { path = "n", not_equals = 2.5 },
  { path = "up", greater_than = -1 }, { path = "legacy", exists = false }, { path = "v", regex = "^2" }]
[[target.http.fail_if_header_not_matches]]
header = "Content-Type"
regex = "json"

[[target]]
name = "gw"
type = "icmp"
address = "gw.example.com"
ip_protocol = "ip4"
[target.icmp]
packets = 5
min_replies = 3
packet_interval = "100ms"
payload_size = 1400
dont_fragment = true

[[target]]
name = "orders"
type = "grpc"
address = "orders.example.com:50051"
[target.grpc]
service = "orders.v1.Orders"
tls = true
ca_file = "ca.pem"
server_name = "orders.internal"

[[target]]
name = "mail"
type = "tcp"
address = "mail.example.com:465"
[target.tcp]
tls = true
send = "EHLO x\r\n"
expect = "^220"
read_limit = 100
server_name = "mail"

[[target]]
name = "doq"
type = "dns"
[target.dns]
server = "dns.example.com"
transport = "quic"
query = "example.com."
record = "mx"
valid_rcodes = ["noerror", "NXDOMAIN"]
answer_regex = "MX"
fail_if_answer_matches = "spam"
min_answers = 2
recursion = false
udp_size = 1232
insecure_skip_verify = true
`})
	main := filepath.Join(dir, "main.toml")
	if err := os.WriteFile(main, []byte(strings.ReplaceAll(string(readFile(t, main)), "ABS_CERT", absCert)), 0o600); err != nil {
		t.Fatal(err)
	}
	writeTLSFiles(t, dir, "ca.pem", absCert, "k.pem")
	cfg := mustLoad(t, dir)
	if cfg.Cluster.SecretKeyFile != filepath.Join(dir, "gossip.key") {
		t.Errorf("secret_key_file not resolved against the config's directory: %q", cfg.Cluster.SecretKeyFile)
	}
	if c := cfg.Cluster; c.ReplicasPerRegion != 2 || c.GossipInterval != 100*time.Millisecond || c.ProbeTimeout != 500*time.Millisecond ||
		c.SuspicionMult != 5 || c.TCPTimeout != 2*time.Second || c.RejoinInterval != time.Minute || !c.Insecure || len(c.Join) != 2 {
		t.Errorf("cluster: %+v", c)
	}
	if q := cfg.Quorum; q.MinRegions != 1 || q.ConfirmOnFailure || q.RecoverySuccesses != 3 {
		t.Errorf("quorum: %+v", q)
	}
	if cfg.SLO.Window != 7*24*time.Hour || !cfg.Exporter.LatencyHistogram {
		t.Errorf("slo %+v exporter %+v", cfg.SLO, cfg.Exporter)
	}
	w := cfg.Target("web")
	h := w.HTTP()
	if h.BearerToken != "s3cr3t-token" {
		t.Errorf("bearer token %q, want it read and trimmed", h.BearerToken)
	}
	if !slices.Equal(h.FailIfBodyNotMatches, []string{"ok", `^\{`}) || len(h.FailIfHeaderMatches) != 1 || !h.FailIfHeaderMatches[0].AllowMissing ||
		len(h.FailIfHeaderNotMatches) != 1 || h.FailIfHeaderNotMatches[0].Regex != "json" {
		t.Errorf("http checks: %+v", h)
	}
	if h.FollowRedirects || h.MaxRedirects != 3 || h.MaxBodyBytes != 2048 || h.HTTPVersion != "2" || h.Method != "POST" || h.Headers["Host"] != "web" {
		t.Errorf("http: %+v", h)
	}
	if h.TLS.CAFile != filepath.Join(dir, "ca.pem") || h.TLS.CertFile != absCert || !h.TLS.InsecureSkipVerify || h.TLS.ServerName != "web.internal" {
		t.Errorf("http tls: %+v", h.TLS)
	}
	if h.Net.IPProtocol != probe.IPv6 || h.Net.SourceIP != netip.MustParseAddr("::1") {
		t.Errorf("net: %+v", h.Net)
	}
	if w.MinRegions != 2 || !slices.Equal(w.Regions, []string{"eu-west", "us-east"}) || w.Labels["tier"] != "1" {
		t.Errorf("target: %+v", w)
	}
	m := cfg.Target("mail").TCP
	if !m.UseTLS || m.Send != "EHLO x\r\n" || m.ReadLimit != 100 || m.TLS.ServerName != "mail" || m.Net.SourceIP != netip.MustParseAddr("127.0.0.1") {
		t.Errorf("tcp: %+v", m)
	}
	d := cfg.Target("doq").DNS
	if d.Record != "MX" || !slices.Equal(d.ValidRcodes, []string{"NOERROR", "NXDOMAIN"}) || d.Recursion || d.UDPSize != 1232 || d.MinAnswers != 2 || !d.TLS.InsecureSkipVerify {
		t.Errorf("dns: %+v", d)
	}
	wantJSON := []httpprobe.JSONCondition{{Path: "status", Op: httpprobe.JSONEquals, Value: "UP"},
		{Path: "checks.db.ms", Op: httpprobe.JSONLessThan, Value: 300.0}, {Path: "n", Op: httpprobe.JSONNotEquals, Value: 2.5},
		{Path: "up", Op: httpprobe.JSONGreaterThan, Value: -1.0}, {Path: "legacy", Op: httpprobe.JSONExists, Value: false},
		{Path: "v", Op: httpprobe.JSONRegex, Value: "^2"}}
	if !reflect.DeepEqual(h.JSON, wantJSON) {
		t.Errorf("json:\n%#v\nwant\n%#v", h.JSON, wantJSON)
	}
	i := cfg.Target("gw").ICMP
	if i.Address != "gw.example.com" || i.Packets != 5 || i.MinReplies != 3 || i.PacketInterval != 100*time.Millisecond ||
		i.PayloadSize != 1400 || !i.DontFragment || i.Net.IPProtocol != probe.IPv4 || i.Net.SourceIP != netip.MustParseAddr("127.0.0.1") {
		t.Errorf("icmp: %+v", i)
	}
	g := cfg.Target("orders").GRPC
	if g.Address != "orders.example.com:50051" || g.Service != "orders.v1.Orders" || !g.UseTLS || g.TLS.CAFile != filepath.Join(dir, "ca.pem") ||
		g.TLS.ServerName != "orders.internal" {
		t.Errorf("grpc: %+v", g)
	}
	if got := cfg.Target("orders").Endpoint(); got != "orders.example.com:50051 orders.v1.Orders" {
		t.Errorf("grpc endpoint %q", got)
	}
	if cfg.Target("orders").CertWarnDays() != DefaultCertDays || cfg.Target("gw").CertWarnDays() != 0 {
		t.Errorf("cert warn days: grpc over TLS %d, icmp %d", cfg.Target("orders").CertWarnDays(), cfg.Target("gw").CertWarnDays())
	}
	if got := cfg.Regions(); !slices.Equal(got, []string{"eu-west", "us-east"}) {
		t.Errorf("Regions = %v", got)
	}
}

func TestSecrets(t *testing.T) {
	const secret = "hunter2-very-secret"
	dir := writeFiles(t, map[string]string{
		"secrets/pass": "\n  " + secret + "  \n",
		"main.toml": `
[[target]]
name = "file"
type = "http"
url = "https://a.example.com/"
[target.http]
basic_auth = { username = "probe", password_file = "secrets/pass" }

[[target]]
name = "env"
type = "http"
url = "https://b.example.com/"
[target.http]
basic_auth = { username = "probe", password_env = "PROBE_PASS" }
bearer_token_env = "PROBE_TOKEN"
`})
	env := map[string]string{"PROBE_PASS": " " + secret + "\n", "PROBE_TOKEN": "tok"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	_, err := Parse(filepath.Join(dir, "main.toml"), readFile(t, filepath.Join(dir, "main.toml")), WithLookupEnv(lookup))
	// basic_auth and a bearer token together is a conflict.
	if !errors.Is(err, ErrConflict) {
		t.Fatalf("err = %v, want ErrConflict", err)
	}
	if strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), "tok\"") {
		t.Fatalf("a secret leaked into the error: %v", err)
	}

	src := strings.Replace(string(readFile(t, filepath.Join(dir, "main.toml"))), "bearer_token_env = \"PROBE_TOKEN\"\n", "", 1)
	cfg, err := Parse(filepath.Join(dir, "main.toml"), []byte(src), WithLookupEnv(lookup))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"file", "env"} {
		h := cfg.Target(name).HTTP()
		if h.BasicAuthUser != "probe" || h.BasicAuthPassword != secret {
			t.Errorf("%s: user %q password %q, want probe and the trimmed secret", name, h.BasicAuthUser, h.BasicAuthPassword)
		}
	}
	before := cfg.Target("env").Fingerprint
	env["PROBE_PASS"] = "rotated"
	cfg2, err := Parse(filepath.Join(dir, "main.toml"), []byte(src), WithLookupEnv(lookup))
	if err != nil {
		t.Fatal(err)
	}
	if cfg2.Target("env").Fingerprint == before {
		t.Error("a rotated password leaves the fingerprint unchanged: the prober would keep the old one")
	}
	if cfg2.Target("file").Fingerprint != cfg.Target("file").Fingerprint {
		t.Error("fingerprint of an unchanged target changed")
	}

	// Empty secrets are errors at the key that names them.
	env["PROBE_PASS"] = "  "
	errs := func() Errors {
		_, err := Parse(filepath.Join(dir, "main.toml"), []byte(src), WithLookupEnv(lookup))
		var e Errors
		if !errors.As(err, &e) {
			t.Fatalf("err = %v", err)
		}
		return e
	}()
	if len(errs) != 1 || errs[0].Pos.Line != 14 || !errors.Is(errs[0], ErrSecret) || !strings.Contains(errs[0].Msg, `"PROBE_PASS" is empty`) {
		t.Errorf("got %v, want one ErrSecret at line 14", errs)
	}
}

// Secret headers come from files and the environment, read at load like
// the other secrets: trimmed, each error at its key naming the file or
// variable and never the value.
func TestSecretHeaders(t *testing.T) {
	const key, tok = "k3y-very-secret", "t0ken-very-secret"
	dir := writeFiles(t, map[string]string{
		"secrets/api.key": "\n  " + key + "  \n",
		"secrets/empty":   " \n",
		"secrets/two":     "line1\nline2-very-secret\n",
		"main.toml": `
[[target]]
name = "api"
type = "http"
url = "https://api.example.com/"
[target.http]
headers = { "X-Probe" = "vantage" }
headers_file = { "X-Api-Key" = "secrets/api.key" }
headers_env = { "X-Tenant-Token" = "TENANT_TOKEN" }
`})
	env := map[string]string{"TENANT_TOKEN": " " + tok + "\n", "EMPTY": " "}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	main := filepath.Join(dir, "main.toml")
	cfg, err := Parse(main, readFile(t, main), WithLookupEnv(lookup))
	if err != nil {
		t.Fatal(err)
	}
	h := cfg.Target("api").HTTP()
	if !maps.Equal(h.SecretHeaders, map[string]string{"X-Api-Key": key, "X-Tenant-Token": tok}) || !maps.Equal(h.Headers, map[string]string{"X-Probe": "vantage"}) {
		t.Errorf("headers %v, secret headers %v", h.Headers, h.SecretHeaders)
	}
	before := cfg.Target("api").Fingerprint
	env["TENANT_TOKEN"] = "rotated"
	cfg2, err := Parse(main, readFile(t, main), WithLookupEnv(lookup))
	if err != nil {
		t.Fatal(err)
	}
	if cfg2.Target("api").Fingerprint == before {
		t.Error("a rotated secret header leaves the fingerprint unchanged: the prober would keep the old one")
	}
	env["TENANT_TOKEN"] = tok

	for _, c := range []struct {
		name, http string
		err        error
		msg        string // in the one problem, found at the line marked # ERR
	}{
		{"missing file", `headers_file = { "X-Api-Key" = "secrets/nope" } # ERR`, ErrSecret, "secrets/nope"},
		{"empty file", `headers_file = { "X-Api-Key" = "secrets/empty" } # ERR`, ErrSecret, `secrets/empty" is empty`},
		{"two lines", `headers_file = { "X-Api-Key" = "secrets/two" } # ERR`, ErrSecret, `secrets/two" holds a line break`},
		{"unset variable", `headers_env = { "X-Api-Key" = "NOPE" } # ERR`, ErrSecret, `"NOPE" is not set`},
		{"empty variable", `headers_env = { "X-Api-Key" = "EMPTY" } # ERR`, ErrSecret, `"EMPTY" is empty`},
		{"bad name", `headers_file = { "X Api Key" = "secrets/api.key" } # ERR`, ErrInvalid, "not a header name"},
		{"inline and file", "headers = { \"x-api-key\" = \"inline\" }\nheaders_file = { \"X-Api-Key\" = \"secrets/api.key\" } # ERR", ErrConflict, `"X-Api-Key" is also set in headers`},
		{"file and env", "headers_file = { \"X-Api-Key\" = \"secrets/api.key\" }\nheaders_env = { \"x-api-key\" = \"TENANT_TOKEN\" } # ERR", ErrConflict, `"x-api-key" is also set in headers_file`},
		{"host", `headers_file = { Host = "secrets/api.key" } # ERR`, ErrInvalid, "Host"},
		{"authorization twice", "bearer_token_env = \"TENANT_TOKEN\"\nheaders_file = { Authorization = \"secrets/api.key\" } # ERR", ErrConflict, "Authorization"},
	} {
		t.Run(c.name, func(t *testing.T) {
			src := "[[target]]\nname = \"api\"\ntype = \"http\"\nurl = \"https://api.example.com/\"\n[target.http]\n" + c.http + "\n"
			_, err := Parse(main, []byte(src), WithLookupEnv(lookup))
			var errs Errors
			if !errors.As(err, &errs) || len(errs) != 1 {
				t.Fatalf("err = %v, want one problem", err)
			}
			e := errs[0]
			if want := markedLine(t, src); int(e.Pos.Line) != want && !(c.err == ErrConflict && c.msg == "Authorization") {
				t.Errorf("problem at line %d, want %d: %v", e.Pos.Line, want, e)
			}
			if !errors.Is(e, c.err) || !strings.Contains(e.Error(), c.msg) {
				t.Errorf("got %v, want %v with %q", e, c.err, c.msg)
			}
			for _, v := range []string{key, tok, "very-secret", "inline"} {
				if strings.Contains(e.Error(), v) {
					t.Errorf("%v shows a secret", e)
				}
			}
		})
	}
}

func TestOverrides(t *testing.T) {
	dir := writeFiles(t, map[string]string{"main.toml": `
[agent]
region = "eu-west"
source_ip = "127.0.0.1"
[[target]]
name = "inherits"
type = "tcp"
address = "127.0.0.1:1"
[[target]]
name = "own"
type = "tcp"
address = "127.0.0.1:1"
source_ip = "127.0.0.2"
`})
	cfg := mustLoad(t, dir)
	fpInherits, fpOwn := cfg.Target("inherits").Fingerprint, cfg.Target("own").Fingerprint

	err := cfg.ApplyOverrides(Overrides{Listen: "nope", Join: []string{"a:1", "b"}, Region: "eu west", SourceIP: "x"})
	var errs Errors
	if !errors.As(err, &errs) || len(errs) != 4 {
		t.Fatalf("err = %v, want 4 problems", err)
	}
	for _, flag := range []string{"-listen", "-join", "-region", "-source-ip"} {
		if !strings.Contains(err.Error(), flag+": ") {
			t.Errorf("no problem names %s: %v", flag, err)
		}
	}
	if cfg.Agent.Region != "eu-west" {
		t.Error("a failed ApplyOverrides changed the config")
	}

	err = cfg.ApplyOverrides(Overrides{Node: "n9", Region: "us-east", Listen: "127.0.0.1:0", Bind: "127.0.0.1:0",
		Join: []string{"127.0.0.1:7946", " "}, SourceIP: "127.0.0.3"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Agent.Node != "n9" || cfg.Agent.Region != "us-east" || cfg.Agent.Listen != "127.0.0.1:0" || cfg.Cluster.Bind != "127.0.0.1:0" ||
		!slices.Equal(cfg.Cluster.Join, []string{"127.0.0.1:7946"}) {
		t.Errorf("overrides not applied: %+v %+v", cfg.Agent, cfg.Cluster)
	}
	if got := cfg.Target("inherits").TCP.Net.SourceIP; got != netip.MustParseAddr("127.0.0.3") {
		t.Errorf("inheriting target's source IP = %v, want the override", got)
	}
	if got := cfg.Target("own").TCP.Net.SourceIP; got != netip.MustParseAddr("127.0.0.2") {
		t.Errorf("target's own source_ip = %v, want it kept", got)
	}
	if cfg.Target("inherits").Fingerprint == fpInherits || cfg.Target("own").Fingerprint != fpOwn {
		t.Error("fingerprints do not follow the source IP override")
	}
	// Empty overrides change nothing.
	before := *cfg
	if err := cfg.ApplyOverrides(Overrides{}); err != nil || cfg.Agent != before.Agent || cfg.Cluster.Bind != before.Cluster.Bind {
		t.Errorf("empty overrides: err %v, agent %+v", err, cfg.Agent)
	}
}

func TestRemoveTarget(t *testing.T) {
	cfg := mustLoad(t, writeFiles(t, map[string]string{"main.toml": okTCP + "[[target]]\nname = \"gw\"\ntype = \"icmp\"\naddress = \"10.0.0.1\"\n"}))
	if !cfg.RemoveTarget("gw") || cfg.RemoveTarget("gw") || cfg.RemoveTarget("nope") {
		t.Fatal("RemoveTarget removed something twice, or nothing once")
	}
	if cfg.Target("gw") != nil || cfg.Target("db") == nil || len(cfg.Targets) != 1 || cfg.Summary() != "1 target: 1 tcp" {
		t.Errorf("after removing gw: %s, Target(db) %v", cfg.Summary(), cfg.Target("db"))
	}
}

func TestSummaryAndLookups(t *testing.T) {
	dir := writeFiles(t, map[string]string{"main.toml": `
[[target]]
name = "a"
type = "tcp"
address = "h:1"
regions = ["us-east", "eu-west"]
[[target]]
name = "b"
type = "tls"
address = "h:443"
regions = ["ap-south", "eu-west"]
[[target]]
name = "c"
type = "tls"
address = "h:443"
`})
	cfg := mustLoad(t, dir)
	if got := cfg.Summary(); got != "3 targets: 2 tls, 1 tcp" {
		t.Errorf("Summary = %q", got)
	}
	if got := cfg.Regions(); !slices.Equal(got, []string{"ap-south", "eu-west", "us-east"}) {
		t.Errorf("Regions = %v", got)
	}
	if cfg.Target("b") == nil || cfg.Target("b").Type != TypeTLS || cfg.Target("zz") != nil {
		t.Error("Target lookup")
	}
	hand := &Config{Targets: []*Target{{Name: "x", Type: TypeHTTP}}}
	if hand.Target("x") == nil || hand.Summary() != "1 target: 1 http" {
		t.Errorf("hand-built config: %q", hand.Summary())
	}
	if (&Config{}).Summary() != "0 targets" {
		t.Error("empty summary")
	}
}

// Targets with the same labels share one read-only map (memory per target,
// issue 3); any difference in a name or a value gets a map of its own, and
// each target still exports exactly its own labels.
func TestSameLabelsShareOneMap(t *testing.T) {
	cfg, err := Parse("labels.toml", []byte(`
[[target]]
name = "a"
type = "tcp"
address = "127.0.0.1:1"
labels = { team = "pay", tier = "1" }
[[target]]
name = "b"
type = "tcp"
address = "127.0.0.1:2"
labels = { tier = "1", team = "pay" }
[[target]]
name = "c"
type = "tcp"
address = "127.0.0.1:3"
labels = { team = "pay", tier = "2" }
[[target]]
name = "d"
type = "tcp"
address = "127.0.0.1:4"
labels = { team = "pay", tie = "r1" }
`))
	if err != nil {
		t.Fatal(err)
	}
	ptr := func(name string) uintptr { return reflect.ValueOf(cfg.Target(name).Labels).Pointer() }
	if ptr("a") != ptr("b") {
		t.Errorf("a and b have the same labels in another order, but two maps")
	}
	if ptr("a") == ptr("c") || ptr("a") == ptr("d") || ptr("c") == ptr("d") {
		t.Errorf("targets with different labels share a map")
	}
	if got := cfg.Target("d").Labels; len(got) != 2 || got["tie"] != "r1" || got["team"] != "pay" {
		t.Errorf("d's labels: %v", got)
	}
	if cfg.Target("a").Fingerprint == cfg.Target("b").Fingerprint {
		t.Errorf("a and b differ in more than labels, yet have one fingerprint")
	}
}

// Targets that differ in their URL alone share one read-only copy of their
// HTTP options (memory per target, issue 3), each still probing its own
// URL; any other difference gets options of its own; a -source-ip
// override changes every target and keeps what was shared shared.
func TestHTTPOptionsSharedBetweenTargetsConfiguredAlike(t *testing.T) {
	cfg, err := Parse("http.toml", []byte(`
[defaults]
timeout = "2s"
[[target]]
name = "a"
type = "http"
url = "https://a.example/health"
[[target]]
name = "b"
type = "http"
url = "https://b.example/health"
[[target]]
name = "c"
type = "http"
url = "https://c.example/health"
[target.http]
body_regex = "ok"
[[target]]
name = "d"
type = "http"
url = "https://d.example/health"
source_ip = "127.0.0.9"
`))
	if err != nil {
		t.Fatal(err)
	}
	tg := func(n string) *Target { return cfg.Target(n) }
	if tg("a").http != tg("b").http {
		t.Errorf("a and b differ only in their URL, yet have two option sets")
	}
	if tg("a").http == tg("c").http || tg("a").http == tg("d").http {
		t.Errorf("targets with other options share a's")
	}
	for _, n := range []string{"a", "b", "c", "d"} {
		if got, want := tg(n).HTTP().URL, "https://"+n+".example/health"; got != want || tg(n).Endpoint() != want {
			t.Errorf("%s: URL %q, endpoint %q, want %q", n, got, tg(n).Endpoint(), want)
		}
	}
	// HTTP() is the caller's copy: writing to it changes no target.
	h := tg("a").HTTP()
	h.Method, h.URL = "POST", "https://x.example/"
	if tg("b").HTTP().Method != "GET" || tg("a").HTTP().URL != "https://a.example/health" {
		t.Errorf("a change to HTTP()'s result reached the shared options")
	}
	fa, fb := tg("a").Fingerprint, tg("b").Fingerprint
	if err := cfg.ApplyOverrides(Overrides{SourceIP: "127.0.0.7"}); err != nil {
		t.Fatal(err)
	}
	for n, want := range map[string]string{"a": "127.0.0.7", "b": "127.0.0.7", "c": "127.0.0.7", "d": "127.0.0.9"} {
		if got := tg(n).HTTP().Net.SourceIP.String(); got != want {
			t.Errorf("%s probes from %s after the override, want %s", n, got, want)
		}
	}
	if tg("a").http != tg("b").http || tg("a").http == tg("c").http {
		t.Errorf("the override split or merged shared options")
	}
	if tg("a").Fingerprint == fa || tg("b").Fingerprint == fb {
		t.Errorf("the override left the fingerprints unchanged")
	}
}

// TestAlertingLoads: [alerting] with credentials from files, and the
// default external_url made from a wildcard listen address.
func TestAlertingLoads(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"main.toml": `
[agent]
node = "n1"
listen = "0.0.0.0:9115"
[alerting]
alertmanagers = ["http://am-1:9093/", "https://am-2.example.com/prefix"]
resend_interval = "30s"
external_labels = { cluster = "prod" }
basic_auth = { username = "vantage", password_file = "am.pass" }
ca_file = "am-ca.pem"
` + okTCP,
		"am.pass": "s3cret\n",
	})
	writeTLSFiles(t, dir, "am-ca.pem")
	cfg, err := Parse(filepath.Join(dir, "main.toml"), []byte(mustRead(t, filepath.Join(dir, "main.toml"))),
		WithHostname(func() (string, error) { return "probe-eu-1", nil }))
	if err != nil {
		t.Fatal(err)
	}
	a := cfg.Alerting
	if !a.Enabled() || !slices.Equal(a.Alertmanagers, []string{"http://am-1:9093", "https://am-2.example.com/prefix"}) ||
		a.ResendInterval != 30*time.Second || a.Timeout != 10*time.Second || a.ExternalLabels["cluster"] != "prod" ||
		a.BasicAuthUser != "vantage" || a.BasicAuthPassword != "s3cret" || a.TLS.CAFile != filepath.Join(dir, "am-ca.pem") {
		t.Errorf("alerting: %+v", a)
	}
	if cfg.Agent.ExternalURL != "http://probe-eu-1:9115" {
		t.Errorf("external_url %q, want the host name for a wildcard listen", cfg.Agent.ExternalURL)
	}
	if strings.Contains(strings.Join(cfg.Alerting.Alertmanagers, " "), "s3cret") {
		t.Error("password in the URLs")
	}
}

func mustRead(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestMemoryLimitLoads: [agent] memory_limit in each unit, and none by
// default (the agent then derives one).
func TestMemoryLimitLoads(t *testing.T) {
	for in, want := range map[string]int64{
		"":                               0,
		"memory_limit = \"256MiB\"\n":    256 << 20,
		"memory_limit = \"1.5GiB\"\n":    3 << 29,
		"memory_limit = \"500MB\"\n":     500e6,
		"memory_limit = \"16MiB\"\n":     16 << 20,
		"memory_limit = \"20971520B\"\n": 20 << 20,
	} {
		cfg, err := Parse("main.toml", []byte("[agent]\nnode = \"n1\"\n"+in+okTCP))
		if err != nil {
			t.Errorf("%q: %v", in, err)
			continue
		}
		if cfg.Agent.MemoryLimit != want {
			t.Errorf("%q: MemoryLimit = %d, want %d", in, cfg.Agent.MemoryLimit, want)
		}
	}
}

// TestTargetFindsEveryNameAndNoOther checks the name index against the
// targets it indexes: every name finds its own target, in any file order,
// and a name not configured (before, between and after the others) finds
// none.
func TestTargetFindsEveryNameAndNoOther(t *testing.T) {
	var b strings.Builder
	b.WriteString("[cluster]\nbind = \"127.0.0.1:0\"\n")
	names := []string{"m", "b", "z", "a", "q-1", "q", "é"}
	for _, n := range names {
		fmt.Fprintf(&b, "[[target]]\nname = %q\ntype = \"tcp\"\naddress = \"127.0.0.1:1\"\n", n)
	}
	cfg := mustLoad(t, writeFiles(t, map[string]string{"main.toml": b.String()}))
	for _, n := range names {
		if tg := cfg.Target(n); tg == nil || tg.Name != n {
			t.Errorf("Target(%q) = %v", n, tg)
		}
	}
	for _, n := range []string{"", "0", "aa", "c", "q-", "q-2", "zz", "ü"} {
		if tg := cfg.Target(n); tg != nil {
			t.Errorf("Target(%q) = %q, want none", n, tg.Name)
		}
	}
}
