package config

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// writeFiles writes name -> content under a fresh directory and returns it.
func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// markedLine returns the 1-based line of the only line holding "# ERR".
func markedLine(t *testing.T, src string) int {
	t.Helper()
	line := 0
	for i, l := range strings.Split(src, "\n") {
		if strings.Contains(l, "# ERR") {
			if line != 0 {
				t.Fatalf("two # ERR markers (lines %d and %d)", line, i+1)
			}
			line = i + 1
		}
	}
	if line == 0 {
		t.Fatal("no # ERR marker")
	}
	return line
}

// loadErrors loads main.toml from dir and returns its problems, failing
// the test when it loads cleanly or fails with something else than Errors.
func loadErrors(t *testing.T, dir string, opts ...Option) Errors {
	t.Helper()
	p := filepath.Join(dir, "main.toml")
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	opts = append([]Option{WithLookupEnv(func(string) (string, bool) { return "", false })}, opts...)
	cfg, err := Parse(p, data, opts...)
	if err == nil {
		t.Fatalf("loaded without error: %s", cfg.Summary())
	}
	var errs Errors
	if !errors.As(err, &errs) {
		t.Fatalf("error is %T, not Errors: %v", err, err)
	}
	return errs
}

const okTCP = `
[[target]]
name = "db"
type = "tcp"
address = "127.0.0.1:5432"
`

const (
	icmpT = "[[target]]\nname = \"gw\"\ntype = \"icmp\"\naddress = \"10.0.0.1\"\n[target.icmp]\n"
	grpcT = "[[target]]\nname = \"orders\"\ntype = \"grpc\"\naddress = \"orders:50051\"\n[target.grpc]\n"
	httpT = "[[target]]\nname = \"api\"\ntype = \"http\"\nurl = \"https://api.example.com/health\"\n[target.http]\n"
)

func TestErrorsHavePositions(t *testing.T) {
	cases := []struct {
		name string
		toml string // main.toml; the line with "# ERR" is where the one problem is
		err  error
		msg  string // substring of the message
	}{
		{"syntax", "[agent]\nregion = \"eu\"\nlisten = \"x # ERR\n", ErrSyntax, ""},
		{"unknown top-level key", "regoin = \"eu\" # ERR\n" + okTCP, ErrUnknownKey, "unknown key"},
		{"unknown key in target", okTCP + "intervall = \"5s\" # ERR\n", ErrUnknownKey, `did you mean "interval"`},
		{"unknown table", okTCP + "[target.htp] # ERR\nmethod = \"GET\"\n", ErrUnknownKey, "unknown key"},
		{"key with wrong case", "[agent]\nRegion = \"eu\" # ERR\n" + okTCP, ErrUnknownKey, `"region"`},
		{"unknown key in second target", okTCP + "[[target]]\nname = \"db2\"\ntype = \"tcp\"\naddress = \"h:1\"\n[target.tcp]\nsend_ = \"x\" # ERR\n", ErrUnknownKey, `did you mean "send"`},
		{"wrong type", okTCP + "interval = 30 # ERR\n", ErrType, "expected a string, got integer 30"},
		{"value for a table", okTCP + "tcp = \"x\" # ERR\n", ErrType, "expected a table, got a string"},
		{"value for an inline table", "[[target]]\nname = \"x\"\ntype = \"http\"\nurl = \"http://h/\"\n[target.http]\nbasic_auth = [\"u\"] # ERR\n", ErrType, "expected a table, got an array"},
		{"table for a value", okTCP + "interval = { a = 1 } # ERR\n", ErrType, "expected a string, got a table"},
		{"url password redacted", "[[target]]\nname = \"x\"\ntype = \"http\"\nurl = \"ftp://u:hunter2@h/\" # ERR\n", ErrInvalid, "ftp://u:xxxxx@h/"},
		{"url query redacted", "[[target]]\nname = \"x\"\ntype = \"http\"\nurl = \"http://h:99999/?token=hunter2#hunter2\" # ERR\n", ErrInvalid, `"http://h:99999/?token=xxxxx#xxxxx": port`},
		{"unparsable url redacted", "[[target]]\nname = \"x\"\ntype = \"http\"\nurl = \"http://u:hun?ter2@h:port/?token=hunter2\" # ERR\n", ErrInvalid, `"http://u:xxxxx@h:port/?token=xxxxx": does not parse as a URL`},
		{"unparsable url quotes what it shows", "[[target]]\nname = \"x\"\ntype = \"http\"\nurl = \"http://h:port/?token=hunter2\" # ERR\n", ErrInvalid, `"http://h:port/?token=xxxxx": invalid port ":port" after host`},
		{"doh url redacted", okTCP + "[[target]]\nname = \"r\"\ntype = \"dns\"\n[target.dns]\nserver = \"http://dns/q?key=hunter2\" # ERR\ntransport = \"https\"\nquery = \"example.com.\"\n", ErrInvalid, `"http://dns/q?key=xxxxx"`},
		{"wrong type in list", okTCP + "regions = [\"a\", 2] # ERR\n", ErrType, "array of strings"},
		{"bad duration", okTCP + "interval = \"5 minutes\" # ERR\n", ErrDuration, `"5 minutes"`},
		{"negative duration", okTCP + "timeout = \"-1s\" # ERR\n", ErrDuration, "negative"},
		{"interval below 1s", okTCP + "interval = \"500ms\" # ERR\n", ErrInvalid, "at least 1s"},
		{"interval that overflows the schedule", okTCP + "interval = \"100000d\" # ERR\n", ErrInvalid, "at most 24h0m0s"},
		{"defaults interval above a day", "[defaults]\ninterval = \"2d\" # ERR\n" + okTCP, ErrInvalid, "at most 24h0m0s"},
		{"timeout not below interval", okTCP + "interval = \"10s\"\ntimeout = \"10s\" # ERR\n", ErrImpossible, "below interval"},
		{"inherited timeout not below interval", "[defaults]\ntimeout = \"20s\"\n" + okTCP + "interval = \"15s\" # ERR\n", ErrImpossible, "timeout from [defaults] at"},
		{"defaults timeout not below interval", "[defaults]\ninterval = \"5s\"\ntimeout = \"5s\" # ERR\n" + okTCP, ErrImpossible, "below interval"},
		{"failures below 1", okTCP + "failures = 0 # ERR\n", ErrInvalid, "at least 1"},
		{"defaults failures below 1", "[defaults]\nfailures = -1 # ERR\n" + okTCP, ErrInvalid, "at least 1"},
		{"duplicate name", okTCP + "[[target]]\nname = \"db\" # ERR\ntype = \"tcp\"\naddress = \"127.0.0.1:1\"\n", ErrDuplicate, "main.toml:2:1"},
		{"missing name", "[[target]] # ERR\ntype = \"tcp\"\naddress = \"h:1\"\n", ErrRequired, "name"},
		{"missing type", "[[target]] # ERR\nname = \"x\"\naddress = \"h:1\"\n", ErrRequired, "type"},
		{"unknown type", "[[target]]\nname = \"x\"\ntype = \"smtp\" # ERR\n", ErrUnknownType, `"smtp"`},
		{"missing url", "[[target]] # ERR\nname = \"x\"\ntype = \"http\"\n", ErrRequired, "url"},
		{"missing address", "[[target]] # ERR\nname = \"x\"\ntype = \"tls\"\n", ErrRequired, "address"},
		{"address without port", "[[target]]\nname = \"x\"\ntype = \"tls\"\naddress = \"example.com\" # ERR\n", ErrInvalid, "host:port"},
		{"url on a tcp target", okTCP + "url = \"http://x/\" # ERR\n", ErrConflict, "http targets only"},
		{"missing dns table", "[[target]] # ERR\nname = \"x\"\ntype = \"dns\"\n", ErrRequired, "[target.dns]"},
		{"missing dns server", "[[target]]\nname = \"x\"\ntype = \"dns\"\n[target.dns] # ERR\nquery = \"example.com.\"\n", ErrRequired, "server"},
		{"missing dns query", "[[target]]\nname = \"x\"\ntype = \"dns\"\n[target.dns] # ERR\nserver = \"127.0.0.1\"\n", ErrRequired, "query"},
		{"bad dns query", "[[target]]\nname = \"x\"\ntype = \"dns\"\n[target.dns]\nserver = \"127.0.0.1\"\nquery = \"a..b\" # ERR\n", ErrInvalid, "domain name"},
		{"url scheme", "[[target]]\nname = \"x\"\ntype = \"http\"\nurl = \"ftp://example.com/\" # ERR\n", ErrInvalid, "scheme"},
		{"url without host", "[[target]]\nname = \"x\"\ntype = \"http\"\nurl = \"https:///path\" # ERR\n", ErrInvalid, "no host"},
		{"invalid body regex", "[[target]]\nname = \"x\"\ntype = \"http\"\nurl = \"http://h/\"\n[target.http]\nbody_regex = \"((\" # ERR\n", ErrRegex, "missing closing )"},
		{"invalid regex in a list", "[[target]]\nname = \"x\"\ntype = \"http\"\nurl = \"http://h/\"\n[target.http]\nfail_if_body_matches = [\n  \"ok\",\n  \"[\", # ERR\n]\n", ErrRegex, ""},
		{"invalid header regex, inline", "[[target]]\nname = \"x\"\ntype = \"http\"\nurl = \"http://h/\"\n[target.http]\nfail_if_header_matches = [{ header = \"A\", regex = \"*\" }] # ERR\n", ErrRegex, ""},
		{"invalid header regex, table", "[[target]]\nname = \"x\"\ntype = \"http\"\nurl = \"http://h/\"\n[[target.http.fail_if_header_not_matches]]\nheader = \"A\"\nregex = \"a\"\n[[target.http.fail_if_header_not_matches]]\nheader = \"B\"\nregex = \"(\" # ERR\n", ErrRegex, ""},
		{"header match without header", "[[target]]\nname = \"x\"\ntype = \"http\"\nurl = \"http://h/\"\n[[target.http.fail_if_header_matches]] # ERR\nregex = \"a\"\n", ErrRequired, "header"},
		{"invalid expect regex", okTCP + "[target.tcp]\nexpect = \"a{2,1}\" # ERR\n", ErrRegex, ""},
		{"invalid answer regex", "[[target]]\nname = \"x\"\ntype = \"dns\"\n[target.dns]\nserver = \"127.0.0.1\"\nquery = \"a.\"\nanswer_regex = \"(?P<\" # ERR\n", ErrRegex, ""},
		{"bad status", "[[target]]\nname = \"x\"\ntype = \"http\"\nurl = \"http://h/\"\n[target.http]\nvalid_status = [200,\n  2000] # ERR\n", ErrInvalid, "2000"},
		{"http3 over http", "[[target]]\nname = \"x\"\ntype = \"http\"\nurl = \"http://h/\"\n[target.http]\nhttp_version = \"3\" # ERR\n", ErrImpossible, "https"},
		{"bad http version", "[[target]]\nname = \"x\"\ntype = \"http\"\nurl = \"https://h/\"\n[target.http]\nhttp_version = \"1.0\" # ERR\n", ErrInvalid, "auto, 1.1, 2 or 3"},
		{"max_redirects 0", "[[target]]\nname = \"x\"\ntype = \"http\"\nurl = \"https://h/\"\n[target.http]\nmax_redirects = 0 # ERR\n", ErrInvalid, "follow_redirects = false"},
		{"ssl both ways", "[[target]]\nname = \"x\"\ntype = \"http\"\nurl = \"https://h/\"\n[target.http]\nfail_if_ssl = true\nfail_if_not_ssl = true # ERR\n", ErrConflict, ""},
		{"bad method", "[[target]]\nname = \"x\"\ntype = \"http\"\nurl = \"https://h/\"\n[target.http]\nmethod = \"GE T\" # ERR\n", ErrInvalid, "HTTP method"},
		{"table for another type", okTCP + "[target.http] # ERR\nmethod = \"GET\"\n", ErrConflict, "does not apply"},
		{"cert without key", okTCP + "[target.tcp]\ntls = true\ncert_file = \"c.pem\" # ERR\n", ErrConflict, "together"},
		{"tls keys without tls", okTCP + "[target.tcp]\nca_file = \"ca.pem\" # ERR\n", ErrConflict, "tls = true"},
		{"tls keys on dns over udp", "[[target]]\nname = \"x\"\ntype = \"dns\"\n[target.dns]\nserver = \"127.0.0.1\"\nquery = \"a.\"\nserver_name = \"x\" # ERR\n", ErrConflict, "udp"},
		{"min_regions above regions", okTCP + "regions = [\"a\", \"b\"]\nmin_regions = 3 # ERR\n", ErrImpossible, "more than the 2"},
		{"min_regions below 1", okTCP + "min_regions = 0 # ERR\n", ErrInvalid, "at least 1"},
		{"quorum below 1", "[quorum]\nmin_regions = 0 # ERR\n" + okTCP, ErrInvalid, "at least 1"},
		{"replicas below 1", "[cluster]\nreplicas_per_region = 0 # ERR\n" + okTCP, ErrInvalid, "at least 1"},
		{"bad region name", okTCP + "regions = [\"eu west\"] # ERR\n", ErrInvalid, ""},
		{"slo objective 1", okTCP + "slo_objective = 1.0 # ERR\n", ErrInvalid, "between 0 and 1"},
		{"slo objective 0", "[slo]\nobjective = 0 # ERR\n" + okTCP, ErrInvalid, "between 0 and 1"},
		{"slo window", "[slo]\nwindow = \"4 weeks\" # ERR\n" + okTCP, ErrDuration, ""},
		{"alertmanager scheme", "[alerting]\nalertmanagers = [\"am:9093\"] # ERR\n" + okTCP, ErrInvalid, "scheme must be http or https"},
		{"alertmanager port", "[alerting]\nalertmanagers = [\"http://am:99999\"] # ERR\n" + okTCP, ErrInvalid, "1-65535"},
		{"alertmanager credentials", "[alerting]\nalertmanagers = [\"http://u:hunter2@am:9093\"] # ERR\n" + okTCP, ErrSecret, "password_file"},
		{"alertmanager query redacted", "[alerting]\nalertmanagers = [\"http://am:9093/?token=hunter2\"] # ERR\n" + okTCP, ErrInvalid, `"http://am:9093/?token=xxxxx"`},
		{"alertmanager twice", "[alerting]\nalertmanagers = [\"http://am:9093\", \"http://am:9093/\"] # ERR\n" + okTCP, ErrDuplicate, "twice"},
		{"alertmanager query", "[alerting]\nalertmanagers = [\"http://am:9093/?x=1\"] # ERR\n" + okTCP, ErrInvalid, "base URL"},
		{"alerting resend", "[alerting]\nalertmanagers = [\"http://am:9093\"]\nresend_interval = \"soon\" # ERR\n" + okTCP, ErrDuration, ""},
		{"alerting external label", "[alerting]\nalertmanagers = [\"http://am:9093\"]\nexternal_labels = { target = \"x\" } # ERR\n" + okTCP, ErrLabel, "set by the alert"},
		{"alerting keys without alertmanagers", "[alerting] # ERR\nca_file = \"ca.pem\"\n" + okTCP, ErrConflict, "no alertmanagers"},
		{"external url", "[agent]\nexternal_url = \"probe-eu:9115\" # ERR\n" + okTCP, ErrInvalid, "scheme"},
		{"memory_limit without a unit", "[agent]\nmemory_limit = \"256\" # ERR\n" + okTCP, ErrInvalid, `"256": want a number and a unit`},
		{"memory_limit unknown unit", "[agent]\nmemory_limit = \"256 megs\" # ERR\n" + okTCP, ErrInvalid, "MiB"},
		{"memory_limit negative", "[agent]\nmemory_limit = \"-1GiB\" # ERR\n" + okTCP, ErrInvalid, "negative"},
		{"memory_limit too low", "[agent]\nmemory_limit = \"8MiB\" # ERR\n" + okTCP, ErrInvalid, "at least 16.0MiB"},
		{"memory_limit as a number", "[agent]\nmemory_limit = 268435456 # ERR\n" + okTCP, ErrType, ""},
		{"alertname label", okTCP + "labels = { alertname = \"x\" } # ERR\n", ErrLabel, "collides"},
		{"unknown record type", "[[target]]\nname = \"x\"\ntype = \"dns\"\n[target.dns]\nserver = \"127.0.0.1\"\nquery = \"a.\"\nrecord = \"AAA\" # ERR\n", ErrInvalid, "record type"},
		{"unknown rcode", "[[target]]\nname = \"x\"\ntype = \"dns\"\n[target.dns]\nserver = \"127.0.0.1\"\nquery = \"a.\"\nvalid_rcodes = [\"NOERROR\", \"NOPE\"] # ERR\n", ErrInvalid, "rcode"},
		{"bad transport", "[[target]]\nname = \"x\"\ntype = \"dns\"\n[target.dns]\nserver = \"127.0.0.1\"\nquery = \"a.\"\ntransport = \"dot\" # ERR\n", ErrInvalid, "udp, tcp, tls, https or quic"},
		{"doh url without https transport", "[[target]]\nname = \"x\"\ntype = \"dns\"\n[target.dns]\nserver = \"https://dns.example/dns-query\" # ERR\nquery = \"a.\"\n", ErrInvalid, "transport"},
		{"bad udp size", "[[target]]\nname = \"x\"\ntype = \"dns\"\n[target.dns]\nserver = \"127.0.0.1\"\nquery = \"a.\"\nudp_size = 100 # ERR\n", ErrInvalid, "512"},
		{"bad ip_protocol", okTCP + "ip_protocol = \"ipv4\" # ERR\n", ErrInvalid, "ip4, ip6 or auto"},
		{"ip_protocol against literal", "[[target]]\nname = \"x\"\ntype = \"tls\"\naddress = \"127.0.0.1:443\" # ERR\nip_protocol = \"ip6\"\n", ErrImpossible, "not an ip6 address"},
		{"ip_protocol against source_ip", okTCP + "source_ip = \"::1\"\nip_protocol = \"ip4\" # ERR\n", ErrImpossible, "source_ip"},
		{"bad source_ip", okTCP + "source_ip = \"10.0.0.300\" # ERR\n", ErrInvalid, "not an IP address"},
		{"bad agent source_ip", "[agent]\nsource_ip = \"eth0\" # ERR\n" + okTCP, ErrInvalid, "not an IP address"},
		{"bad listen", "[agent]\nlisten = \"9115\" # ERR\n" + okTCP, ErrInvalid, "host:port"},
		{"bad join", "[cluster]\njoin = [\"10.0.0.1:7946\", \"10.0.0.2\"] # ERR\n" + okTCP, ErrInvalid, "host:port"},
		{"bad label name", okTCP + "labels = { \"team-name\" = \"x\" } # ERR\n", ErrLabel, "label name"},
		{"reserved label", okTCP + "labels = { team = \"a\", region = \"x\" } # ERR\n", ErrLabel, "collides"},
		{"reserved label prefix", okTCP + "[target.labels]\n__name__ = \"x\" # ERR\n", ErrLabel, "reserved"},
		{"unreachable glob", okTCP + "[[maintenance]]\ntargets = [\"db\", \"web-*\"] # ERR\nfrom = \"01:00\"\nto = \"02:00\"\n", ErrUnreachable, `"web-*"`},
		{"bad glob", okTCP + "[[maintenance]]\ntargets = [\"db[\"] # ERR\nfrom = \"01:00\"\nto = \"02:00\"\n", ErrInvalid, "glob"},
		{"end before start", okTCP + "[[maintenance]]\ntargets = [\"db\"]\nstart = 2026-12-01T03:00:00Z\nend = 2026-12-01T02:00:00Z # ERR\n", ErrImpossible, "not after start"},
		{"start without end", okTCP + "[[maintenance]] # ERR\ntargets = [\"db\"]\nstart = 2026-12-01T03:00:00Z\n", ErrRequired, "end is required"},
		{"unknown weekday", okTCP + "[[maintenance]]\ntargets = [\"db\"]\nweekdays = [\"sat\", \"caturday\"] # ERR\nfrom = \"01:00\"\nto = \"02:00\"\n", ErrInvalid, "weekday"},
		{"bad time of day", okTCP + "[[maintenance]]\ntargets = [\"db\"]\nfrom = \"1:00\" # ERR\nto = \"02:00\"\n", ErrInvalid, "time of day"},
		{"to after midnight", okTCP + "[[maintenance]]\ntargets = [\"db\"]\nfrom = \"01:00\"\nto = \"24:01\" # ERR\n", ErrInvalid, "time of day"},
		{"empty window", okTCP + "[[maintenance]]\ntargets = [\"db\"]\nfrom = \"01:00\"\nto = \"01:00\" # ERR\n", ErrImpossible, "empty"},
		{"unknown time zone", okTCP + "[[maintenance]]\ntargets = [\"db\"]\nfrom = \"01:00\"\nto = \"02:00\"\ntimezone = \"Europe/Atlantis\" # ERR\n", ErrTimeZone, "Atlantis"},
		{"absolute and recurring", okTCP + "[[maintenance]] # ERR\ntargets = [\"db\"]\nstart = 2026-12-01T03:00:00Z\nend = 2026-12-01T04:00:00Z\nfrom = \"01:00\"\nto = \"02:00\"\n", ErrConflict, "not both"},
		{"missing include", "include = [\"teams/*.toml\", \"extra.toml\"] # ERR\n" + okTCP, ErrInclude, `"extra.toml"`},
		{"key file missing", "[cluster]\nsecret_key_file = \"gossip.key\" # ERR\n" + okTCP, ErrSecret, "gossip.key"},
		{"password file missing", "[[target]]\nname = \"x\"\ntype = \"http\"\nurl = \"https://h/\"\n[target.http]\nbasic_auth = { username = \"u\", password_file = \"nope.pass\" } # ERR\n", ErrSecret, "nope.pass"},
		{"token env unset", "[[target]]\nname = \"x\"\ntype = \"http\"\nurl = \"https://h/\"\n[target.http]\nbearer_token_env = \"VANTAGE_TEST_UNSET\" # ERR\n", ErrSecret, "not set"},
		{"two authorizations", "[[target]]\nname = \"x\"\ntype = \"http\"\nurl = \"https://h/\"\n[target.http] # ERR\nheaders = { Authorization = \"Basic eA==\" }\nbasic_auth = { username = \"u\" }\n", ErrConflict, "Authorization"},
		// ICMP
		{"icmp without address", "[[target]] # ERR\nname = \"x\"\ntype = \"icmp\"\n", ErrRequired, "host name or IP address"},
		{"icmp address with port", "[[target]]\nname = \"x\"\ntype = \"icmp\"\naddress = \"10.0.0.1:80\" # ERR\n", ErrInvalid, "without a port"},
		{"icmp address family", "[[target]]\nname = \"x\"\ntype = \"icmp\"\naddress = \"::1\" # ERR\nip_protocol = \"ip4\"\n", ErrImpossible, "not an ip4 address"},
		{"icmp address and source_ip", "[[target]]\nname = \"x\"\ntype = \"icmp\"\naddress = \"[::1]\" # ERR\nsource_ip = \"127.0.0.1\"\n", ErrImpossible, "address family"},
		{"icmp packets 0", icmpT + "packets = 0 # ERR\n", ErrInvalid, "1 to 100"},
		{"icmp packets 500", icmpT + "packets = 500 # ERR\n", ErrInvalid, "1 to 100"},
		{"icmp packets as a string", icmpT + "packets = \"3\" # ERR\n", ErrType, "expected an integer"},
		{"icmp min_replies above packets", icmpT + "packets = 2\nmin_replies = 3 # ERR\n", ErrImpossible, "more than the 2 packet(s)"},
		{"icmp min_replies 0", icmpT + "min_replies = 0 # ERR\n", ErrInvalid, "at least 1"},
		{"icmp packet_interval", icmpT + "packet_interval = \"fast\" # ERR\n", ErrDuration, `"fast"`},
		{"icmp packet_interval zero", icmpT + "packet_interval = \"0s\" # ERR\n", ErrInvalid, "above zero"},
		{"icmp payload_size", icmpT + "payload_size = 70000 # ERR\n", ErrInvalid, "1 to 65507"},
		{"icmp packets past the timeout", "[[target]]\nname = \"x\"\ntype = \"icmp\"\naddress = \"h\"\ntimeout = \"1s\"\n[target.icmp]\npacket_interval = \"200ms\"\npackets = 6 # ERR\n", ErrImpossible, "not below timeout 1s"},
		{"icmp default interval past the timeout", "[[target]]\nname = \"x\"\ntype = \"icmp\"\naddress = \"h\"\ntimeout = \"2s\"\n[target.icmp]\npackets = 100 # ERR\n", ErrImpossible, "100 packets 25ms apart take 2.475s"},
		{"icmp unknown key", icmpT + "count = 3 # ERR\n", ErrUnknownKey, "unknown key"},
		{"icmp table on tcp", okTCP + "[target.icmp] # ERR\npackets = 2\n", ErrConflict, "does not apply"},
		{"url on icmp", "[[target]]\nname = \"x\"\ntype = \"icmp\"\naddress = \"h\"\nurl = \"http://h/\" # ERR\n", ErrConflict, "http targets only"},
		// gRPC
		{"grpc without address", "[[target]] # ERR\nname = \"x\"\ntype = \"grpc\"\n", ErrRequired, "host:port"},
		{"grpc address without port", "[[target]]\nname = \"x\"\ntype = \"grpc\"\naddress = \"orders\" # ERR\n", ErrInvalid, "host:port"},
		{"grpc tls keys without tls", grpcT + "server_name = \"orders\" # ERR\n", ErrConflict, "tls = true"},
		{"grpc cert without key", grpcT + "tls = true\ncert_file = \"c.pem\" # ERR\n", ErrConflict, "together"},
		{"grpc tls as a string", grpcT + "tls = \"yes\" # ERR\n", ErrType, "boolean"},
		{"grpc service", grpcT + "service = \"a\\tb\" # ERR\n", ErrInvalid, "control characters"},
		{"grpc unknown key", grpcT + "servce = \"x\" # ERR\n", ErrUnknownKey, `did you mean "service"`},
		{"address on dns", "[[target]]\nname = \"x\"\ntype = \"dns\"\naddress = \"h:53\" # ERR\n[target.dns]\nserver = \"127.0.0.1\"\nquery = \"a.\"\n", ErrConflict, "tls, tcp, icmp and grpc targets only"},
		// JSON body conditions
		{"json without path", httpT + "json = [{ equals = \"UP\" }] # ERR\n", ErrRequired, "path is required"},
		{"json bad path", httpT + "json = [{ path = \"a..b\", equals = 1 }] # ERR\n", ErrInvalid, "empty segment at offset 2"},
		{"json without comparison", httpT + "json = [{ path = \"status\" }] # ERR\n", ErrRequired, "comparison is required"},
		{"json two comparisons", httpT + "json = [{ path = \"status\", equals = \"UP\", regex = \"U\" }] # ERR\n", ErrConflict, "not both equals and regex"},
		{"json less_than a string", httpT + "json = [{ path = \"ms\", less_than = \"300\" }] # ERR\n", ErrType, "expected a number"},
		{"json equals a table", httpT + "json = [{ path = \"s\", equals = { a = 1 } }] # ERR\n", ErrType, "expected a string, number or boolean, got a table"},
		{"json exists a string", httpT + "json = [{ path = \"s\", exists = \"yes\" }] # ERR\n", ErrType, "boolean"},
		{"json greater_than nan", httpT + "json = [{ path = \"n\", greater_than = nan }] # ERR\n", ErrInvalid, "finite"},
		{"json bad regex", httpT + "json = [{ path = \"v\", regex = \"(\" }] # ERR\n", ErrRegex, "missing closing )"},
		{"json unknown key", httpT + "json = [{ path = \"v\", equals = 1, regx = \"1\" }] # ERR\n", ErrUnknownKey, `did you mean "regex"`},
		{"json second of several lines", httpT + "json = [\n  { path = \"status\", equals = \"UP\" },\n  { path = \"a[\", exists = true }, # ERR\n]\n", ErrInvalid, "after '[' at offset 1"},
		{"json array of tables", httpT + "[[target.http.json]]\npath = \"ok\"\nequals = true\n[[target.http.json]]\npath = \"[x]\" # ERR\nequals = 1\n", ErrInvalid, "want an index or a quoted key"},
		{"multi-line strings before", "[[target]]\nname = \"x\"\ntype = \"http\"\nurl = \"https://h/\"\n[target.http]\nbody = \"\"\"\n[not.a.table]\nkey = \"\\\"\"\"\"\nheaders = { 'A' = '''\nx''' }\nbody_regex = \"(\" # ERR\n", ErrRegex, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := writeFiles(t, map[string]string{"main.toml": c.toml})
			errs := loadErrors(t, dir)
			want := markedLine(t, c.toml)
			if len(errs) != 1 {
				t.Fatalf("want 1 problem at line %d, got %d:\n%v", want, len(errs), errs)
			}
			e := errs[0]
			if e.Pos.File != filepath.Join(dir, "main.toml") || int(e.Pos.Line) != want {
				t.Errorf("problem at %s, want main.toml:%d: %v", e.Pos, want, e)
			}
			if e.Pos.Col < 1 {
				t.Errorf("no column: %v", e)
			}
			if !errors.Is(errs, c.err) {
				t.Errorf("errors.Is(%v) is false: %v", c.err, e)
			}
			if !strings.Contains(e.Error(), c.msg) {
				t.Errorf("message %q does not contain %q", e.Error(), c.msg)
			}
			if strings.Contains(e.Error(), "hunter2") {
				t.Errorf("message %q shows a secret", e.Error())
			}
		})
	}
}

// A syntax error is reported where it is: a table header missing its
// closing bracket is reported on its own line, not on the next (the
// parser has read the newline when it notices), at the column after the
// name.
func TestSyntaxErrorsOnTheirLine(t *testing.T) {
	for _, c := range []struct {
		name, toml string
		line, col  int
	}{
		{"array table without ]", "[agent]\nregion = \"eu\"\n\n[[target]\nname = \"x\"\ntype = \"tcp\"\n", 4, 9},
		{"array table without ]] before a blank line", "[[target]\n\nname = \"x\"\n", 1, 9},
		{"array table without ]] at the end", "[agent]\n[[target]", 2, 9},
		{"table without ]", "[agent]\nregion = \"eu\"\n[target.tcp\nsend = \"x\"\n", 3, 12},
		{"unterminated string", "[agent]\nregion = \"eu\nlisten = \"x\"\n", 2, 13},
		{"one ] too many", "[[target]]]\nname = \"x\"\n", 1, 11},
	} {
		t.Run(c.name, func(t *testing.T) {
			errs := loadErrors(t, writeFiles(t, map[string]string{"main.toml": c.toml}))
			if len(errs) != 1 || !errors.Is(errs, ErrSyntax) {
				t.Fatalf("want one syntax error, got %v", errs)
			}
			if p := errs[0].Pos; int(p.Line) != c.line || int(p.Col) != c.col {
				t.Errorf("syntax error at %d:%d, want %d:%d: %v", p.Line, p.Col, c.line, c.col, errs[0])
			}
		})
	}
}

func TestAllProblemsAtOnce(t *testing.T) {
	src := `[agent]
listen = "nope"                        # 2
[cluster]
replicas_per_region = 0                # 4
[[target]]
name = "a"
type = "http"
url = "ftp://x"                        # 8
interval = "1x"                        # 9
[target.http]
body_regex = "("                       # 11
[[target]]
name = "a"                             # 13
type = "tcp"
address = "h:1"
labels = { job = "x" }                 # 16
[[maintenance]]
targets = ["zzz*"]                     # 18
from = "02:00"
to = "3am"                             # 20
`
	dir := writeFiles(t, map[string]string{"main.toml": src})
	errs := loadErrors(t, dir)
	var lines []int
	for _, e := range errs {
		lines = append(lines, int(e.Pos.Line))
	}
	want := []int{2, 4, 8, 9, 11, 13, 16, 18, 20}
	if len(lines) != len(want) {
		t.Fatalf("lines %v, want %v:\n%v", lines, want, errs)
	}
	for i := range want {
		if lines[i] != want[i] {
			t.Fatalf("lines %v, want %v (sorted by line):\n%v", lines, want, errs)
		}
	}
	for _, sentinel := range []error{ErrInvalid, ErrDuration, ErrRegex, ErrDuplicate, ErrLabel, ErrUnreachable} {
		if !errors.Is(errs, sentinel) {
			t.Errorf("errors.Is(%v) is false", sentinel)
		}
	}
	// One problem per line of Error(), each starting with its position.
	out := strings.Split(errs.Error(), "\n")
	if len(out) != len(want) {
		t.Fatalf("Error() has %d lines, want %d:\n%s", len(out), len(want), errs.Error())
	}
	for i, l := range out {
		prefix := filepath.Join(dir, "main.toml") + ":" + strconv.Itoa(want[i]) + ":"
		if !strings.HasPrefix(l, prefix) {
			t.Errorf("line %d = %q, want prefix %q", i, l, prefix)
		}
	}
}

func TestErrorFormat(t *testing.T) {
	errs := Errors{
		{Pos: Pos{File: "b.toml", Line: 3, Col: 1}, Field: "target[\"x\"].url", Msg: "bad"},
		{Pos: Pos{File: "a.toml", Line: 9, Col: 5}, Field: "agent.listen", Msg: "worse"},
		{Pos: Pos{File: "a.toml"}, Field: "include", Msg: "no position"},
		{Pos: Pos{File: "a.toml", Line: 2, Col: 7}, Msg: "no field"},
		{Msg: "nothing at all"},
	}
	want := `nothing at all
a.toml: include: no position
a.toml:2:7: no field
a.toml:9:5: agent.listen: worse
b.toml:3:1: target["x"].url: bad`
	if got := errs.Error(); got != want {
		t.Errorf("Error() =\n%s\nwant\n%s", got, want)
	}
	// Error() sorts a copy: the caller's order is untouched.
	if errs[0].Pos.File != "b.toml" {
		t.Error("Error() reordered the slice")
	}
}

func TestLoadMissingFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "nope.toml")
	_, err := Load(p)
	if !errors.Is(err, ErrInclude) || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("err = %v, want ErrInclude wrapping ErrNotExist", err)
	}
	if !strings.HasPrefix(err.Error(), p+": ") {
		t.Errorf("err = %q, want it to start with the file name", err)
	}
}
