package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/vantage-probe/vantage/agent/config"
	"github.com/vantage-probe/vantage/internal/grpcwire"
	"github.com/vantage-probe/vantage/probe"
	"github.com/vantage-probe/vantage/probe/dnsprobe"
	"github.com/vantage-probe/vantage/probe/grpcprobe"
	"github.com/vantage-probe/vantage/probe/httpprobe"
	"github.com/vantage-probe/vantage/probe/icmpprobe"
	"github.com/vantage-probe/vantage/probe/tcpprobe"
	"github.com/vantage-probe/vantage/probe/tlsprobe"
)

const probeSynopsis = `Usage:
  vantage probe [-type http] [-method M] [-status 200,204] [-body-regex RE] [-cond 'status == UP'] [-http-version auto|1.1|2|3] [-ca-file F] [-insecure] URL
  vantage probe -type tls [-server-name N] [-min-days-left N] [-ca-file F] HOST:PORT
  vantage probe -type dns -server HOST:PORT [-transport udp|tcp|tls|https|quic] [-record A] [-rcode NOERROR] [-answer-regex RE] NAME
  vantage probe -type tcp [-tls] [-send S] [-expect RE] HOST:PORT
  vantage probe -type icmp [-packets N] [-min-replies N] [-packet-interval D] [-payload-size N] [-dont-fragment] HOST
  vantage probe -type grpc [-service NAME] [-tls] [-server-name N] [-ca-file F] HOST:PORT
  vantage probe -config FILE -target NAME

Runs one probe now and prints the result: success or the failure reason, each phase's
time, certificate expiry, DNS answers, ICMP replies, the gRPC serving status.
-json prints the Result as JSON.

-cond checks the HTTP body as JSON, like [target.http] json in the config; repeat it
for more conditions, all of which must hold: PATH OP VALUE with OP one of
==, !=, <, > (numbers), =~ (regex), or PATH exists, PATH !exists. A bare word is a
string; "quoted", numbers, true, false and null are JSON values:
  -cond 'status == UP' -cond 'checks.db.latency_ms < 300' -cond 'version =~ ^2\.'

ICMP needs an ICMP socket: an unprivileged one where net.ipv4.ping_group_range holds
your group, or a raw one with CAP_NET_RAW (root).
Exit status: 0 success, 1 probe failed, 2 bad usage or config.`

func runProbe(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("probe", probeSynopsis, stderr)
	typ := fs.String("type", "", "probe type: http, tls, dns, tcp, icmp, grpc (default http for an http(s):// URL)")
	timeout := fs.Duration("timeout", 10*time.Second, "probe timeout")
	asJSON := fs.Bool("json", false, "print the Result as JSON")
	cfgFile := fs.String("config", "", "config file: probe a configured target (with -target)")
	targetName := fs.String("target", "", "name of a configured target (with -config)")
	sourceIP := fs.String("source-ip", "", "local address to send the probe from")
	ipProto := fs.String("ip-protocol", "auto", "address family: auto, ip4, ip6")
	// HTTP
	method := fs.String("method", "GET", "http: request method")
	status := fs.String("status", "", "http: accepted status codes, comma-separated (default any 2xx)")
	bodyRegex := fs.String("body-regex", "", "http: regex the body must match")
	httpVersion := fs.String("http-version", "auto", "http: auto, 1.1, 2 or 3 (HTTP/3 over QUIC)")
	noFollow := fs.Bool("no-follow", false, "http: do not follow redirects")
	var headers, conds multiFlag
	fs.Var(&headers, "header", "http: request header 'Name: value' (repeatable)")
	fs.Var(&conds, "cond", "http: condition on the body as JSON, 'PATH OP VALUE' like 'status == UP' (repeatable; see above)")
	// TLS (shared)
	caFile := fs.String("ca-file", "", "PEM CA bundle to verify against instead of the system roots")
	insecure := fs.Bool("insecure", false, "do not verify the certificate (facts are still reported)")
	serverName := fs.String("server-name", "", "tls: SNI and verification name (default: the host)")
	minDays := fs.Int("min-days-left", 0, "tls: fail when the certificate expires in fewer days")
	// DNS
	server := fs.String("server", "", "dns: server HOST:PORT (or https:// URL for -transport https)")
	transport := fs.String("transport", "udp", "dns: udp, tcp, tls (DoT), https (DoH), quic (DoQ)")
	record := fs.String("record", "A", "dns: record type")
	rcode := fs.String("rcode", "NOERROR", "dns: accepted rcodes, comma-separated")
	answerRegex := fs.String("answer-regex", "", "dns: regex at least one answer must match")
	// TCP
	useTLS := fs.Bool("tls", false, "tcp, grpc: wrap the connection in TLS")
	send := fs.String("send", "", `tcp: string to send after connecting (\r \n \t escapes allowed)`)
	expect := fs.String("expect", "", "tcp: regex the response must match")
	// ICMP
	packets := fs.Int("packets", 1, "icmp: echo requests to send")
	minReplies := fs.Int("min-replies", 1, "icmp: replies needed to succeed")
	packetInterval := fs.Duration("packet-interval", icmpprobe.DefaultPacketInterval, "icmp: time between requests")
	payloadSize := fs.Int("payload-size", icmpprobe.DefaultPayloadSize, "icmp: data bytes after the ICMP header")
	dontFragment := fs.Bool("dont-fragment", false, "icmp: set the IPv4 don't-fragment bit (Linux)")
	// gRPC
	service := fs.String("service", "", "grpc: service name to ask about (default: the server as a whole)")
	if c := parse(fs, args); c >= 0 {
		return c
	}
	usageErr := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "probe: "+format+"\n", a...)
		fmt.Fprintln(stderr, "run 'vantage probe -h' for usage")
		return exitUsage
	}

	var prober probe.Prober
	var name, kind string
	to := *timeout
	if *cfgFile != "" || *targetName != "" {
		if *cfgFile == "" || *targetName == "" {
			return usageErr("-config and -target go together")
		}
		cfg, err := config.Load(*cfgFile)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return exitUsage
		}
		t := cfg.Target(*targetName)
		if t == nil {
			return usageErr("no target %q in %s", *targetName, *cfgFile)
		}
		p, err := t.NewProber()
		if err != nil {
			return usageErr("%v", err)
		}
		prober, name, kind, to = p, t.Name, t.Type, t.Timeout
	} else {
		if fs.NArg() != 1 {
			return usageErr("want exactly one TARGET, got %d arguments", fs.NArg())
		}
		target := fs.Arg(0)
		kind = *typ
		if kind == "" {
			if strings.HasPrefix(target, "http://") || strings.HasPrefix(target, "https://") {
				kind = "http"
			} else {
				return usageErr("-type is required for %q (http, tls, dns, tcp, icmp or grpc)", probe.RedactURL(target))
			}
		}
		var netOpts probe.Net
		if *sourceIP != "" {
			ip, err := netip.ParseAddr(*sourceIP)
			if err != nil {
				return usageErr("-source-ip %q: not an IP address", *sourceIP)
			}
			netOpts.SourceIP = ip
		}
		switch *ipProto {
		case "auto", "":
		case "ip4", "ip6":
			netOpts.IPProtocol = probe.IPProtocol(*ipProto)
		default:
			return usageErr("-ip-protocol %q: want auto, ip4 or ip6", *ipProto)
		}
		tlsOpts := probe.TLSOptions{CAFile: *caFile, InsecureSkipVerify: *insecure, ServerName: *serverName}
		var err error
		switch kind {
		case "http":
			o := httpprobe.Options{URL: target, Method: *method, HTTPVersion: *httpVersion, FollowRedirects: !*noFollow,
				TLS: tlsOpts, Net: netOpts}
			if *status != "" {
				for _, s := range strings.Split(*status, ",") {
					code, cerr := strconv.Atoi(strings.TrimSpace(s))
					if cerr != nil {
						return usageErr("-status %q: %q is not a status code", *status, s)
					}
					o.ValidStatus = append(o.ValidStatus, code)
				}
			}
			if *bodyRegex != "" {
				o.FailIfBodyNotMatches = []string{*bodyRegex}
			}
			for _, c := range conds {
				jc, cerr := httpprobe.ParseJSONCondition(c)
				if cerr != nil {
					return usageErr("-cond %v", cerr)
				}
				o.JSON = append(o.JSON, jc)
			}
			if len(headers) > 0 {
				o.Headers = map[string]string{}
				for _, h := range headers {
					k, v, ok := strings.Cut(h, ":")
					if !ok {
						return usageErr("-header %q: want 'Name: value'", h)
					}
					o.Headers[strings.TrimSpace(k)] = strings.TrimSpace(v)
				}
			}
			prober, err = httpprobe.New(o)
		case "tls":
			prober, err = tlsprobe.New(tlsprobe.Options{Address: target, MinDaysLeft: *minDays, TLS: tlsOpts, Net: netOpts})
		case "dns":
			if *server == "" {
				return usageErr("-type dns needs -server HOST:PORT")
			}
			prober, err = dnsprobe.New(dnsprobe.Options{Server: *server, Transport: *transport, Query: target, Record: *record,
				ValidRcodes: strings.Split(*rcode, ","), AnswerRegex: *answerRegex, Recursion: true, TLS: tlsOpts, Net: netOpts})
		case "tcp":
			s, uerr := strconv.Unquote(`"` + strings.ReplaceAll(*send, `"`, `\"`) + `"`)
			if uerr != nil {
				return usageErr("-send %q: bad escape", *send)
			}
			prober, err = tcpprobe.New(tcpprobe.Options{Address: target, UseTLS: *useTLS, TLS: tlsOpts, Send: s,
				Expect: *expect, Net: netOpts})
		case "icmp":
			prober, err = icmpprobe.New(icmpprobe.Options{Address: target, Packets: *packets, MinReplies: *minReplies,
				PacketInterval: *packetInterval, PayloadSize: *payloadSize, DontFragment: *dontFragment, Net: netOpts})
		case "grpc":
			prober, err = grpcprobe.New(grpcprobe.Options{Address: target, Service: *service, UseTLS: *useTLS, TLS: tlsOpts, Net: netOpts})
		default:
			return usageErr("-type %q: want http, tls, dns, tcp, icmp or grpc", kind)
		}
		if err != nil {
			return usageErr("%v", err)
		}
		name = probe.RedactURL(target) // the summary may be pasted into a ticket
	}

	pctx, cancel := context.WithTimeout(ctx, to)
	defer cancel()
	r := prober.Probe(pctx)
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(r)
	} else {
		printResult(stdout, kind, name, &r)
	}
	if !r.OK {
		return exitFail
	}
	return exitOK
}

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ", ") }
func (m *multiFlag) Set(s string) error { *m = append(*m, s); return nil }

func ms(d time.Duration) string {
	return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 1, 64) + " ms"
}

// printResult is the one-glance summary an on-call engineer reads.
func printResult(w io.Writer, kind, name string, r *probe.Result) {
	verdict := "OK"
	switch {
	case !r.OK:
		verdict = "FAIL " + string(r.Reason)
	case r.Warning != "":
		verdict = "OK, WARN " + string(r.Warning)
	}
	fmt.Fprintf(w, "%s %s: %s in %s\n", kind, name, verdict, ms(r.Duration))
	if r.Message != "" {
		fmt.Fprintf(w, "  detail:   %s\n", r.Message)
	}
	if r.RemoteAddr != "" {
		fmt.Fprintf(w, "  address:  %s\n", r.RemoteAddr)
	}
	if len(r.Phases) > 0 {
		parts := make([]string, 0, len(r.Phases))
		for _, p := range r.Phases {
			parts = append(parts, p.Name+" "+ms(p.Duration))
		}
		fmt.Fprintf(w, "  phases:   %s\n", strings.Join(parts, ", "))
	}
	if h := r.HTTP; h != nil {
		fmt.Fprintf(w, "  http:     status %d, HTTP/%s, %d bytes, %d redirects\n", h.StatusCode, h.Version, h.ContentLength, h.Redirects)
	}
	if t := r.TLS; t != nil {
		verified := "verified"
		if !t.Verified {
			verified = "NOT verified"
		}
		fmt.Fprintf(w, "  tls:      %s %s, %s\n", t.Version, t.CipherSuite, verified)
		if !t.EarliestExpiry.IsZero() {
			fmt.Fprintf(w, "  cert:     expires %s (%.1f days left)\n", t.EarliestExpiry.UTC().Format(time.RFC3339), t.DaysLeft(time.Now()))
		}
		if len(t.Chain) > 0 {
			fmt.Fprintf(w, "  subject:  %s (issuer %s)\n", t.Chain[0].Subject, t.Chain[0].Issuer)
		}
	}
	if d := r.DNS; d != nil && d.Rcode == "" {
		// Failed before any answer: there is no rcode to show.
		fmt.Fprintf(w, "  dns:      no answer from %s over %s (%s)\n", d.Server, d.Transport, r.Reason)
	} else if d != nil {
		fmt.Fprintf(w, "  dns:      %s from %s over %s, %d answers\n", d.Rcode, d.Server, d.Transport, d.AnswerRRs)
		for _, a := range d.Answers {
			fmt.Fprintf(w, "            %s\n", a)
		}
	}
	if t := r.TCP; t != nil && (t.BytesRead > 0 || t.Banner != "") {
		fmt.Fprintf(w, "  tcp:      %d bytes read, first line %q\n", t.BytesRead, t.Banner)
	}
	if i := r.ICMP; i != nil {
		fmt.Fprintf(w, "  icmp:     %d of %d replies over a %s socket", i.PacketsReceived, i.PacketsSent, i.Socket)
		if i.PacketsReceived > 0 {
			fmt.Fprintf(w, ", rtt min/avg/max %s/%s/%s", msNum(i.RTTMin), msNum(i.RTT), ms(i.RTTMax))
		}
		if i.ReplyHopLimit >= 0 {
			fmt.Fprintf(w, ", reply hop limit %d", i.ReplyHopLimit)
		}
		fmt.Fprintln(w)
	}
	if g := r.GRPC; g != nil {
		serving := g.ServingStatus
		if serving == "" {
			serving = "none (the RPC failed)"
		}
		transport := "plaintext"
		if g.TLS {
			transport = "TLS"
		}
		fmt.Fprintf(w, "  grpc:     serving status %s, status code %d (%s), %s\n", serving, g.StatusCode, grpcwire.CodeName(g.StatusCode), transport)
	}
}

// msNum is ms without the unit, for a list that names it once.
func msNum(d time.Duration) string { return strings.TrimSuffix(ms(d), " ms") }
