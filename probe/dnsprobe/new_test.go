package dnsprobe_test

import (
	"errors"
	"net/netip"
	"regexp/syntax"
	"strings"
	"testing"

	"github.com/vantage-probe/vantage/probe"
	"github.com/vantage-probe/vantage/probe/dnsprobe"
)

func TestNewRejects(t *testing.T) {
	base := dnsprobe.Options{Server: "127.0.0.1:53", Query: "example.com"}
	for _, c := range []struct {
		name   string
		modify func(*dnsprobe.Options)
		want   []string // substrings of the error: the key and the quoted value
	}{
		{"transport", func(o *dnsprobe.Options) { o.Transport = "sctp" }, []string{`transport "sctp"`}},
		{"no server", func(o *dnsprobe.Options) { o.Server = "" }, []string{"server"}},
		{"bad port", func(o *dnsprobe.Options) { o.Server = "127.0.0.1:99999" }, []string{`server "127.0.0.1:99999"`}},
		{"zero port", func(o *dnsprobe.Options) { o.Server = "127.0.0.1:0" }, []string{`server "127.0.0.1:0"`}},
		{"url on udp", func(o *dnsprobe.Options) { o.Server = "https://dns.example/dns-query" }, []string{`server "https://dns.example/dns-query"`}},
		{"http url", func(o *dnsprobe.Options) { o.Transport = "https"; o.Server = "http://dns.example/dns-query" }, []string{`server "http://dns.example/dns-query"`, "https://"}},
		{"url without host", func(o *dnsprobe.Options) { o.Transport = "https"; o.Server = "https:///dns-query" }, []string{`server "https:///dns-query"`}},
		{"ip family", func(o *dnsprobe.Options) { o.Net.IPProtocol = probe.IPv6 }, []string{`server "127.0.0.1:53"`, "ip6"}},
		{"no query", func(o *dnsprobe.Options) { o.Query = "" }, []string{"query"}},
		{"bad query", func(o *dnsprobe.Options) { o.Query = "a..b" }, []string{`query "a..b"`}},
		{"record", func(o *dnsprobe.Options) { o.Record = "AAA" }, []string{`record "AAA"`}},
		{"rcode", func(o *dnsprobe.Options) { o.ValidRcodes = []string{"NOERROR", "NOPE"} }, []string{`valid_rcodes "NOPE"`}},
		{"answer regex", func(o *dnsprobe.Options) { o.AnswerRegex = "(" }, []string{`answer_regex "("`}},
		{"fail regex", func(o *dnsprobe.Options) { o.FailIfAnswerMatches = "[" }, []string{`fail_if_answer_matches "["`}},
		{"min answers", func(o *dnsprobe.Options) { o.MinAnswers = -1 }, []string{"min_answers -1"}},
		{"udp size", func(o *dnsprobe.Options) { o.UDPSize = 100 }, []string{"udp_size 100"}},
		{"ca file", func(o *dnsprobe.Options) { o.Transport = "tls"; o.TLS.CAFile = "/nonexistent/ca.pem" }, []string{"ca_file"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			o := base
			c.modify(&o)
			p, err := dnsprobe.New(o)
			if err == nil || p != nil {
				t.Fatalf("New(%+v) = %v, %v; want an error", o, p, err)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

// TestNewReportsEverything checks that New reports all problems at once, as
// separate joined errors, with the underlying causes wrapped.
func TestNewReportsEverything(t *testing.T) {
	_, err := dnsprobe.New(dnsprobe.Options{
		Server:      "127.0.0.1:53",
		Transport:   "udp",
		Query:       "example.com",
		Record:      "BOGUS",
		ValidRcodes: []string{"WHAT"},
		AnswerRegex: "(",
	})
	if err == nil {
		t.Fatal("no error")
	}
	joined, ok := err.(interface{ Unwrap() []error })
	if !ok || len(joined.Unwrap()) != 3 {
		t.Fatalf("error %q: want 3 joined errors", err)
	}
	var syn *syntax.Error
	if !errors.As(err, &syn) {
		t.Errorf("regex error not wrapped: %v", err)
	}
}

func TestNewAccepts(t *testing.T) {
	for _, c := range []struct {
		transport, server string
		ipProto           probe.IPProtocol
		want              string // normalised server
	}{
		{"", "127.0.0.1", "", "127.0.0.1:53"},
		{"UDP", "127.0.0.1:5353", "", "127.0.0.1:5353"},
		{"tcp", "[::1]:53", "", "[::1]:53"},
		{"tcp", "::1", probe.IPv6, "[::1]:53"},
		{"tcp", "[::1]", probe.IPv6, "[::1]:53"},
		{"tls", "dns.example.com", "", "dns.example.com:853"},
		{"quic", "dns.example.com", "", "dns.example.com:853"},
		{"quic", "dns.example.com:8853", "", "dns.example.com:8853"},
		{"https", "dns.example.com", "", "https://dns.example.com:443/dns-query"},
		{"https", "dns.example.com:8443", "", "https://dns.example.com:8443/dns-query"},
		{"https", "https://dns.example.com", "", "https://dns.example.com/dns-query"},
		{"https", "https://dns.example.com/resolve?x=1", "", "https://dns.example.com/resolve?x=xxxxx"}, // shown redacted,
		{"https", "https://[2001:db8::53]:8443", "", "https://[2001:db8::53]:8443/dns-query"},
	} {
		o := dnsprobe.Options{Transport: c.transport, Server: c.server, Query: "example.com.", Record: "txt", ValidRcodes: []string{"NXDOMAIN", "noerror"}}
		o.Net.IPProtocol = c.ipProto
		p, err := dnsprobe.New(o)
		if err != nil {
			t.Errorf("New(%s %s): %v", c.transport, c.server, err)
			continue
		}
		if p.Server() != c.want {
			t.Errorf("New(%s %s).Server() = %q, want %q", c.transport, c.server, p.Server(), c.want)
		}
	}
	// A source address is accepted as is; it is used at dial time.
	o := dnsprobe.Options{Server: "127.0.0.1", Query: "x.", Net: probe.Net{SourceIP: netip.MustParseAddr("127.0.0.1")}}
	if _, err := dnsprobe.New(o); err != nil {
		t.Errorf("source ip: %v", err)
	}
}
