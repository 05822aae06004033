package config

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"unsafe"

	"github.com/vantage-probe/vantage/configs"
)

// A loaded config must hold none of the text of the files it was decoded
// from: toml hands out slices of a file's whole text, and the agent holds
// its config for months. Every string reachable from the Config, unexported
// fields included, is checked against the memory of every file's text; and
// equal strings must be one copy.
func TestConfigHoldsNoneOfTheFileText(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"gossip.key": "AAAAAAAAAAAAAAAAAAAAAA==\n",
		"password":   "hunter2\n",
		"teams/pay.toml": `[[target]]
name = "pay-api-2"
type = "http"
url = "https://pay.example.com/health"
labels = { team = "pay" }

[[maintenance]]
targets = ["pay-api-2"]
start = 2026-12-01T02:00:00+01:00
end = 2026-12-01T03:00:00+01:00
`,
		"extra/search.toml": `[[target]]
name = "search"
type = "tcp"
address = "search.internal:9200"
`,
	})
	// Absolute paths in the text: an include glob without wildcards names
	// its file, whose name the Config keeps (Files, Pos).
	main := filepath.Join(dir, "main.toml")
	if err := os.WriteFile(main, []byte(fmt.Sprintf(`include = ["teams/*.toml", %q]
[agent]
node = "node-1"
region = "eu-west"
listen = "127.0.0.1:9115"
source_ip = "127.0.0.1"
external_url = "https://vantage.example.com/"
[cluster]
bind = "127.0.0.1:7946"
advertise = "192.0.2.1:7946"
join = ["192.0.2.2:7946", "192.0.2.3:7946"]
secret_key_file = %q
label = "lab"
[exporter]
tls_cert_file = "server.pem"
tls_key_file = "server.key"
tls_client_ca_file = "clients.pem"
basic_auth_users = { ops = "$2y$10$abcdefghijklmnopqrstuv" }
[alerting]
alertmanagers = ["https://am-1.example.com:9093/"]
external_labels = { cluster = "eu-1" }
basic_auth = { username = "vantage", password_env = "AM_PASSWORD" }
ca_file = "am-ca.pem"
server_name = "am.example.com"

[[target]]
name = "pay-api"
type = "http"
url = "https://pay.example.com/health"
regions = ["eu-west", "us-east"]
ip_protocol = "ip4"
labels = { team = "pay", tier = "1" }
[target.http]
method = "POST"
headers = { X-Team = "pay", Host = "pay.internal" }
headers_file = { X-Api-Key = "password" }
headers_env = { X-Tenant = "AM_PASSWORD" }
body = "{\"ping\": true}"
valid_status = [200]
body_regex = "ok"
fail_if_body_matches = ["maintenance"]
fail_if_header_matches = [{ header = "X-Cache", regex = "stale" }]
fail_if_header_not_matches = [{ header = "Content-Type", regex = "json" }]
http_version = "2"
basic_auth = { username = "prober", password_file = "password" }
json = [{ path = "status", equals = "UP-and-running" }, { path = "build", regex = "^v2[.]" }]
ca_file = "ca.pem"
server_name = "pay.example.com"

[[target]]
name = "orders"
type = "grpc"
address = "orders.example.com:50051"
[target.grpc]
service = "orders.v1.Orders"
tls = true
server_name = "orders.internal"

[[target]]
name = "gateway"
type = "icmp"
address = "gw.example.com"

[[target]]
name = "pay-cert"
type = "tls"
address = "pay.example.com:443"
labels = { team = "pay" }
[target.tls]
ca_file = "ca.pem"
server_name = "pay.example.com"

[[target]]
name = "resolver"
type = "dns"
[target.dns]
server = "dns.example.com:853"
transport = "tls"
query = "pay.example.com."
record = "AAAA"
valid_rcodes = ["NOERROR", "NXDOMAIN"]
answer_regex = "IN"
fail_if_answer_matches = "spam"
server_name = "dns.example.com"

[[target]]
name = "smtp"
type = "tcp"
address = "mail.example.com:465"
[target.tcp]
tls = true
send = "EHLO vantage.example.com\r\n"
expect = "^220 "
server_name = "mail.example.com"

[[maintenance]]
targets = ["pay-*"]
weekdays = ["sat", "sun"]
from = "23:30"
to = "01:00"
timezone = "Europe/Berlin"
`, filepath.Join(dir, "extra", "search.toml"), filepath.Join(dir, "gossip.key"))), 0o600); err != nil {
		t.Fatal(err)
	}
	env := func(k string) (string, bool) { return "am-secret", k == "AM_PASSWORD" }
	writeTLSFiles(t, dir, "ca.pem", "am-ca.pem")

	var texts []textRange
	cfg, err := Parse(main, readFile(t, main), WithLookupEnv(env), recordTexts(t, &texts))
	if err != nil {
		t.Fatal(err)
	}
	if len(texts) != 2*3 {
		t.Fatalf("decoded %d texts, want 2 of each of 3 files", len(texts))
	}
	seen := checkNoText(t, cfg, texts)
	// The walk reached unexported fields, map keys and the zone's name.
	for _, want := range []string{"https://pay.example.com/health", "X-Team", "ops", "Europe/Berlin", "search.internal:9200", "EHLO vantage.example.com\r\n",
		"UP-and-running", "^v2[.]", "orders.v1.Orders", "gw.example.com"} {
		if !seen[want] {
			t.Errorf("the walk of the Config never met %q", want)
		}
	}

	// Equal strings are one copy, across targets, maps and files.
	a, b := cfg.Target("pay-api"), cfg.Target("pay-api-2")
	same := func(what, x, y string) {
		t.Helper()
		if x != y || unsafe.StringData(x) != unsafe.StringData(y) {
			t.Errorf("%s: %q and %q are two copies", what, x, y)
		}
	}
	same("url", a.url, b.url)
	same("type", a.Type, b.Type)
	same("label value", a.Labels["team"], cfg.Target("pay-cert").Labels["team"])
	same("server name", a.http.TLS.ServerName, cfg.Target("pay-cert").TLS.TLS.ServerName)
	same("region", a.Regions[0], cfg.Agent.Region)
	runtime.KeepAlive(texts)
}

// The same holds for the configs shipped in the binary, read from an
// fs.FS (where relative paths are kept as written).
func TestShippedConfigsHoldNoneOfTheFileText(t *testing.T) {
	names, err := fs.Glob(configs.FS, "*.toml")
	if err != nil || len(names) == 0 {
		t.Fatalf("configs: %v %v", names, err)
	}
	fsys := fstest.MapFS{
		"main.toml": {Data: []byte(`include = ["teams/*.toml"]
[exporter]
tls_cert_file = "server.pem"
tls_key_file = "server.key"
`)},
		"teams/a.toml": {Data: []byte("[[target]]\nname = \"a\"\ntype = \"tcp\"\naddress = \"a.internal:22\"\n[target.tcp]\ntls = true\nca_file = \"ca.pem\"\n")},
	}
	for _, c := range []struct {
		name string
		fsys fs.FS
	}{{"main.toml", fsys}, {names[0], configs.FS}, {names[len(names)-1], configs.FS}} {
		t.Run(c.name, func(t *testing.T) {
			data, err := fs.ReadFile(c.fsys, c.name)
			if err != nil {
				t.Fatal(err)
			}
			var texts []textRange
			cfg, err := Parse(c.name, data, WithFS(c.fsys), recordTexts(t, &texts), WithHostname(func() (string, error) { return "host-1", nil }))
			if err != nil {
				t.Fatal(err)
			}
			checkNoText(t, cfg, texts)
			runtime.KeepAlive(texts)
		})
	}
}

// textRange is the memory of one copy of a file's text.
type textRange struct {
	start, end uintptr
	keep       string // in that memory, so that it is not reused while checked
}

func rangeOf(s string) textRange {
	p := uintptr(unsafe.Pointer(unsafe.StringData(s)))
	return textRange{p, p + uintptr(len(s)), s}
}

func (r textRange) overlaps(o textRange) bool { return r.start < o.end && o.start < r.end }

// recordTexts is an Option that appends to texts, for every file decoded,
// the memory of its text and of toml's copy of it. toml reads the text
// into a copy of its own and hands out slices of that copy: its place is
// found from the decoded strings that occur once in the text, each at the
// same offset in the copy.
func recordTexts(t *testing.T, texts *[]textRange) Option {
	return func(l *loader) {
		l.decoded = func(text string, schema *fileSchema) {
			var copies []uintptr
			var anchor string
			walkStrings(reflect.ValueOf(schema), "schema", map[visit]bool{}, func(_, s string) {
				if len(s) < 3 || strings.Count(text, s) != 1 {
					return // too short to place, or written with escapes (toml then makes a copy)
				}
				copies = append(copies, rangeOf(s).start-uintptr(strings.Index(text, s)))
				anchor = s
			})
			slices.Sort(copies)
			if copies = slices.Compact(copies); len(copies) != 1 {
				t.Fatalf("toml's copy of the text found at %d places, want 1: the test cannot tell where toml keeps it", len(copies))
			}
			*texts = append(*texts, rangeOf(text), textRange{copies[0], copies[0] + uintptr(len(text)), anchor})
		}
	}
}

// checkNoText fails t for every string reachable from cfg whose memory
// lies in one of texts, and returns the strings it met.
func checkNoText(t *testing.T, cfg *Config, texts []textRange) map[string]bool {
	t.Helper()
	met := map[string]bool{}
	walkStrings(reflect.ValueOf(cfg), "cfg", map[visit]bool{}, func(path, s string) {
		met[s] = true
		if s == "" {
			return
		}
		for _, text := range texts {
			if rangeOf(s).overlaps(text) {
				t.Errorf("%s = %q lies in the text of a config file", path, s)
			}
		}
	})
	if len(met) < 10 {
		t.Fatalf("the walk met %d strings: it does not reach into the Config", len(met))
	}
	return met
}

// visit is a pointer already walked, with its type: a struct and its first
// field share an address.
type visit struct {
	p uintptr
	t reflect.Type
}

// walkStrings calls f with every string reachable from v, reading
// unexported fields too; it never writes.
func walkStrings(v reflect.Value, path string, seen map[visit]bool, f func(path, s string)) {
	switch v.Kind() {
	case reflect.String:
		f(path, v.String())
	case reflect.Pointer:
		if v.IsNil() || seen[visit{v.Pointer(), v.Type()}] {
			return
		}
		seen[visit{v.Pointer(), v.Type()}] = true
		walkStrings(v.Elem(), path, seen, f)
	case reflect.Interface:
		if !v.IsNil() {
			walkStrings(v.Elem(), path, seen, f)
		}
	case reflect.Struct:
		for i := range v.NumField() {
			walkStrings(v.Field(i), path+"."+v.Type().Field(i).Name, seen, f)
		}
	case reflect.Slice, reflect.Array:
		for i := range v.Len() {
			walkStrings(v.Index(i), fmt.Sprintf("%s[%d]", path, i), seen, f)
		}
	case reflect.Map:
		for it := v.MapRange(); it.Next(); {
			kp := fmt.Sprintf("%s[%v]", path, it.Key())
			walkStrings(it.Key(), kp+" (key)", seen, f)
			walkStrings(it.Value(), kp, seen, f)
		}
	}
}
