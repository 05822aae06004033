package config

import (
	"bytes"
	"errors"
	"io/fs"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/vantage-probe/vantage/configs"
	"github.com/vantage-probe/vantage/probe"
)

// fuzzIncludes are the files a fuzzed config may include, so that includes are
// exercised without touching the disk.
var fuzzIncludes = map[string]string{
	"conf.d/a.toml":   "[[target]]\nname = \"inc-a\"\ntype = \"tcp\"\naddress = \"a.internal:22\"\n",
	"conf.d/b.toml":   "[[maintenance]]\ntargets = [\"inc-*\"]\nstart = 2026-12-01T02:00:00Z\nend = 2026-12-01T03:00:00Z\n",
	"conf.d/bad.toml": "[[target]]\nname = \"inc-bad\"\ntype = \"tcp\"\naddress = \"nohostport\"\n[agent]\nregion = \"x\"\n",
	"teams/c.toml":    "[[target]]\nname = \"inc-c\"\ntype = \"http\"\nurl = \"https://c.example.com/\"\n",
}

const fuzzName = "vantage.toml"

func fuzzFS() fstest.MapFS {
	m := fstest.MapFS{}
	for name, data := range fuzzIncludes {
		m[name] = &fstest.MapFile{Data: []byte(data)}
	}
	return m
}

// touchesSystemFiles reports configs naming device or process files: Parse
// reads secret and key files from the operating system even with WithFS,
// and /dev/zero or /dev/stdin would read forever. That is the operator's
// own doing, not something to fuzz.
func touchesSystemFiles(data []byte) bool {
	for _, s := range []string{"/dev", "/proc", "/sys", "dev/", "proc/", "sys/", `\u`, `\U`} {
		if bytes.Contains(data, []byte(s)) {
			return true
		}
	}
	return false
}

func fuzzParse(data []byte) (*Config, error) {
	return Parse(fuzzName, data,
		WithFS(fuzzFS()),
		WithHostname(func() (string, error) { return "fuzz-host", nil }),
		WithLookupEnv(func(k string) (string, bool) {
			if k == "PROBE_TOKEN" {
				return "s3cret", true
			}
			return "", false
		}))
}

func FuzzParse(f *testing.F) {
	for _, name := range []string{"example.toml", "demo.toml"} {
		data, err := fs.ReadFile(configs.FS, name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, s := range []string{
		"",
		okTCP,
		"include = [\"conf.d/*.toml\", \"teams/c.toml\"]\n" + okTCP,
		"include = [\"missing.toml\", \"[\"]\n",
		"[agent]\nregion = \"eu-west\"\nnode = \"n1\"\n[cluster]\nbind = \"127.0.0.1:7946\"\njoin = [\"10.0.0.1:7946\"]\nreplicas_per_region = 2\n[quorum]\nmin_regions = 2\n" + okTCP,
		"[defaults]\ninterval = \"1s\"\ntimeout = \"2s\"\n" + okTCP,
		"[defaults]\ninterval = \"28d\"\ntimeout = \"1w\"\nfailures = 0\n" + okTCP,
		"[[target]]\nname = \"x\"\ntype = \"http\"\nurl = \"https://h.example/\"\n[target.http]\nbody_regex = \"(\"\nvalid_status = [99, 200]\nhttp_version = \"3\"\n",
		"[[target]]\nname = \"x\"\ntype = \"http\"\nurl = \"http://h.example/\"\n[target.http]\nbearer_token_env = \"PROBE_TOKEN\"\nheaders = { \"X-A\" = \"b\" }\nfail_if_header_matches = [{ header = \"X-Cache\", regex = \"stale\", allow_missing = true }]\n",
		"[[target]]\nname = \"r\"\ntype = \"dns\"\nregions = [\"eu\", \"us\"]\nmin_regions = 3\n[target.dns]\nserver = \"127.0.0.1:53\"\nquery = \"example.com.\"\nrecord = \"AAAA\"\nanswer_regex = \"IN\"\nvalid_rcodes = [\"NXDOMAIN\"]\n",
		"[[target]]\nname = \"r\"\ntype = \"dns\"\n[target.dns]\nserver = \"https://dns.example/dns-query\"\ntransport = \"https\"\nquery = \"example.com\"\n",
		"[[target]]\nname = \"c\"\ntype = \"tls\"\naddress = \"[::1]:443\"\nip_protocol = \"ip4\"\n[target.tls]\nmin_days_left = -1\n",
		"[[target]]\nname = \"p\"\ntype = \"tcp\"\naddress = \"db:5432\"\nlabels = { team = \"x\", \"bad label\" = \"y\", __name__ = \"z\" }\n[target.tcp]\ntls = true\nsend = \"PING\\r\\n\"\nexpect = \"^\\\\+PONG\"\n",
		okTCP + okTCP,
		"[[target]]\nname = \"g\"\ntype = \"icmp\"\naddress = \"[::1]\"\nsource_ip = \"127.0.0.1\"\n[target.icmp]\npackets = 3\nmin_replies = 4\npacket_interval = \"5s\"\npayload_size = 0\ndont_fragment = true\n",
		"[[target]]\nname = \"g\"\ntype = \"icmp\"\naddress = \"gw.example\"\nip_protocol = \"ip6\"\n[target.icmp]\npackets = 100\npacket_interval = \"1ms\"\n",
		"[[target]]\nname = \"o\"\ntype = \"grpc\"\naddress = \"orders:50051\"\n[target.grpc]\nservice = \"orders.v1.Orders\"\ntls = true\nserver_name = \"orders\"\n",
		"[[target]]\nname = \"o\"\ntype = \"grpc\"\naddress = \"orders\"\n[target.grpc]\nca_file = \"ca.pem\"\n",
		"[[target]]\nname = \"j\"\ntype = \"http\"\nurl = \"http://h.example/\"\n[target.http]\njson = [{ path = \"status\", equals = \"UP\" }, { path = \"a[0].b\", less_than = 3.5 }, { path = \"x\", exists = false }, { path = \"v\", regex = \"^2\" }, { path = \"n\", not_equals = 7 }]\n",
		"[[target]]\nname = \"j\"\ntype = \"http\"\nurl = \"http://h.example/\"\n[[target.http.json]]\npath = \"a..b\"\nequals = 1\nregex = \"(\"\n[[target.http.json]]\ngreater_than = nan\n",
		okTCP + "[[maintenance]]\ntargets = [\"nomatch-*\"]\nstart = 2026-12-01T02:00:00Z\nend = 2026-12-01T01:00:00Z\n",
		okTCP + "[[maintenance]]\ntargets = [\"db\"]\nevery = \"sun\"\nat = \"02:00\"\nduration = \"1h\"\ntimezone = \"Mars/Olympus\"\n",
		"[agent]\nnode = 3\n[cluster]\njoin = \"x\"\n[nope]\nx = 1\n",
		"[[target]]\nname = \"x\"\ntype = \"gopher\"\n",
		"target = 1\n",
		"[agent\n",
		"a = \"\\xff\"\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if touchesSystemFiles(data) {
			t.Skip()
		}
		cfg, err := fuzzParse(data)
		if err != nil {
			if cfg != nil {
				t.Fatalf("Parse returned a config with errors:\n%v", err)
			}
			checkErrors(t, err)
			return
		}
		if cfg == nil {
			t.Fatal("Parse returned neither a config nor an error")
		}

		// Parsing is a function of the bytes: the same input gives the
		// same summary and the same target fingerprints.
		again, err := fuzzParse(data)
		if err != nil {
			t.Fatalf("second parse of the same bytes failed: %v", err)
		}
		if cfg.Summary() != again.Summary() || len(cfg.Targets) != len(again.Targets) {
			t.Fatalf("summary %q then %q", cfg.Summary(), again.Summary())
		}
		counts := map[string]int{}
		for i, tg := range cfg.Targets {
			counts[tg.Type]++
			if tg.Name != again.Targets[i].Name || tg.Fingerprint != again.Targets[i].Fingerprint {
				t.Fatalf("target %d: %q/%x then %q/%x", i, tg.Name, tg.Fingerprint, again.Targets[i].Name, again.Targets[i].Fingerprint)
			}
			if cfg.Target(tg.Name) != tg {
				t.Fatalf("Target(%q) does not find it", tg.Name)
			}
		}
		n := 0
		for _, typ := range Types {
			n += counts[typ]
		}
		if n != len(cfg.Targets) {
			t.Fatalf("%d targets of a known type out of %d", n, len(cfg.Targets))
		}

		// Re-validation: what the config layer accepts, the protocol's own
		// constructor accepts too, or an agent would fail at run time on a
		// config check-config called good. Files are left out: the config
		// layer names them and the prober reads them.
		for _, tg := range cfg.Targets {
			if namesFiles(tg) {
				continue
			}
			if _, err := tg.NewProber(); err != nil {
				t.Fatalf("config accepted target %q but its prober refuses it: %v", tg.Name, err)
			}
		}
	})
}

// checkErrors asserts what every caller of Parse relies on: the error is
// Errors, each problem names a file Parse read, and wraps a sentinel.
func checkErrors(t *testing.T, err error) {
	t.Helper()
	var errs Errors
	if !errors.As(err, &errs) || len(errs) == 0 {
		t.Fatalf("error %T is not a non-empty Errors: %v", err, err)
	}
	for _, e := range errs {
		if e.Pos.File != fuzzName && fuzzIncludes[e.Pos.File] == "" {
			t.Fatalf("problem without a known file name (%q): %v", e.Pos.File, e)
		}
		if !strings.HasPrefix(e.Error(), e.Pos.File) {
			t.Fatalf("problem does not start with its file name: %q", e.Error())
		}
		if e.Err == nil || !errors.Is(err, e.Err) {
			t.Fatalf("problem wraps no sentinel: %v", e)
		}
		if e.Msg == "" {
			t.Fatalf("problem without a message: %+v", e)
		}
	}
}

// namesFiles reports a target whose options name a file (CA bundle, client
// certificate): the prober reads it at construction, the config layer does
// not.
func namesFiles(tg *Target) bool {
	var o probe.TLSOptions
	switch {
	case tg.HTTP() != nil:
		o = tg.HTTP().TLS
	case tg.TLS != nil:
		o = tg.TLS.TLS
	case tg.DNS != nil:
		o = tg.DNS.TLS
	case tg.TCP != nil:
		o = tg.TCP.TLS
	case tg.GRPC != nil:
		o = tg.GRPC.TLS
	}
	return o.CAFile != "" || o.CertFile != "" || o.KeyFile != ""
}
