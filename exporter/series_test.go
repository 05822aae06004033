package exporter

import (
	"hash/fnv"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vantage-probe/vantage/probe"
)

// The cases the blackbox_exporter comparison (agent) does not meet on
// loopback: a DNS probe that got no answer, a DoT probe's tls phase, IPv6
// and bare (ICMP) addresses, a certificate subject that needs escaping.
func TestObservationEdgeCases(t *testing.T) {
	write := func(typ string, r *probe.Result) string {
		var b Buf
		WriteObservations(&b, RegionLabel("eu-west"), []Obs{{Labels: Labels("t", typ, nil), Type: typ, Result: r}})
		return b.String()
	}
	has := func(t *testing.T, text string, lines ...string) {
		t.Helper()
		for _, l := range lines {
			if !strings.Contains(text, "\n"+l+"\n") {
				t.Errorf("no line %s in:\n%s", l, text)
			}
		}
	}
	const id = `{target="t",type="%s",region="eu-west"`
	lbl := func(typ string) string { return strings.Replace(id, "%s", typ, 1) }

	t.Run("dns without an answer", func(t *testing.T) {
		out := write("dns", &probe.Result{Reason: probe.ReasonTimeout, RemoteAddr: "192.0.2.53:53",
			Phases: []probe.Phase{{Name: probe.PhaseConnect, Duration: time.Millisecond}, {Name: probe.PhaseRoundTrip, Duration: time.Second}},
			DNS:    &probe.DNSFacts{Server: "192.0.2.53:53", Transport: "udp"}})
		if strings.Contains(out, "probe_dns_rcode{") || strings.Contains(out, "probe_dns_serial{") {
			t.Errorf("an rcode or serial for a probe no answer came to:\n%s", out)
		}
		has(t, out,
			"probe_dns_query_succeeded"+lbl("dns")+"} 0",
			"probe_dns_duration_seconds"+lbl("dns")+`,phase="resolve"} 0`,
			"probe_dns_duration_seconds"+lbl("dns")+`,phase="connect"} 0.001`,
			"probe_dns_duration_seconds"+lbl("dns")+`,phase="request"} 1`)
		if strings.Contains(out, `phase="tls"`) || strings.Contains(out, `phase="round_trip"`) {
			t.Errorf("DNS over UDP wrote a tls or round_trip phase:\n%s", out)
		}
	})
	t.Run("dot over ipv6", func(t *testing.T) {
		out := write("dns", &probe.Result{OK: true, RemoteAddr: "[2001:db8::53]:853",
			Phases: []probe.Phase{{Name: probe.PhaseResolve, Duration: 2 * time.Millisecond}, {Name: probe.PhaseConnect, Duration: time.Millisecond},
				{Name: probe.PhaseTLS, Duration: 3 * time.Millisecond}, {Name: probe.PhaseRoundTrip, Duration: time.Millisecond}},
			DNS: &probe.DNSFacts{Rcode: "NXDOMAIN", RcodeValue: 3, Transport: "tls"}})
		h := fnv.New32a()
		ip := netip.MustParseAddr("2001:db8::53").As16()
		h.Write(ip[:])
		has(t, out,
			"probe_dns_rcode"+lbl("dns")+"} 3",
			"probe_dns_query_succeeded"+lbl("dns")+"} 1",
			"probe_dns_lookup_time_seconds"+lbl("dns")+"} 0.002",
			"probe_dns_duration_seconds"+lbl("dns")+`,phase="tls"} 0.003`,
			"probe_ip_protocol"+lbl("dns")+"} 6",
			"probe_ip_addr_hash"+lbl("dns")+"} "+strconv.FormatUint(uint64(h.Sum32()), 10))
	})
	t.Run("bare address", func(t *testing.T) {
		out := write("icmp", &probe.Result{OK: true, RemoteAddr: "192.0.2.1"})
		has(t, out, "probe_ip_protocol"+lbl("icmp")+"} 4")
		if strings.Contains(out, "probe_failed_due_to_regex") {
			t.Errorf("probe_failed_due_to_regex for a prober without regexes:\n%s", out)
		}
	})
	t.Run("certificate and regex", func(t *testing.T) {
		out := write("http", &probe.Result{Reason: probe.ReasonBodyMismatch, RemoteAddr: "192.0.2.1:443",
			HTTP: &probe.HTTPFacts{StatusCode: 200, DeclaredLength: -1, ContentLength: 12, Redirects: 2, LastModified: time.Unix(1_796_119_200, 0)},
			TLS: &probe.TLSFacts{Version: "TLS 1.3", Chain: []probe.Cert{{SHA256: "ab12", Issuer: `CN=CA\1`,
				Subject: "CN=a \"b\"\nc", DNSNames: []string{"a.test", "b.test"}}}}})
		has(t, out,
			"probe_failed_due_to_regex"+lbl("http")+"} 1",
			"probe_http_content_length"+lbl("http")+"} -1",
			"probe_http_uncompressed_body_length"+lbl("http")+"} 12",
			"probe_http_redirects"+lbl("http")+"} 2",
			"probe_http_ssl"+lbl("http")+"} 1",
			"probe_http_last_modified_timestamp_seconds"+lbl("http")+"} 1796119200",
			"probe_ssl_last_chain_info"+lbl("http")+`,fingerprint_sha256="ab12",issuer="CN=CA\\1",subject="CN=a \"b\"\nc",subjectalternative="a.test,b.test"} 1`)
	})
}
