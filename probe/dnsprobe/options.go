// Package dnsprobe sends one DNS query with miekg/dns over UDP, TCP, DoT
// (RFC 7858), DoH (RFC 8484) or DoQ (RFC 9250) and checks the answer.
package dnsprobe

import "github.com/vantage-probe/vantage/probe"

// Options describe one DNS target.
type Options struct {
	// Server is host:port for udp/tcp/tls/quic (default ports 53/53/853/853),
	// or for https either host:port (path /dns-query) or a full https:// URL.
	Server    string
	Transport string // udp (default) | tcp | tls | https | quic
	Query     string // the name asked, made fully qualified
	Record    string // A (default), AAAA, MX, TXT, CNAME, NS, SOA, SRV, PTR, CAA, ...

	ValidRcodes []string // default ["NOERROR"]
	// AnswerRegex, when set, must match at least one answer RR in
	// presentation format; FailIfAnswerMatches must match none.
	AnswerRegex         string
	FailIfAnswerMatches string
	MinAnswers          int    // fail when fewer answer RRs come back
	Recursion           bool   // RD flag; the config layer defaults it to true
	UDPSize             uint16 // EDNS0 buffer; 0 sends no OPT record

	TLS probe.TLSOptions // for tls, https and quic
	Net probe.Net
}
