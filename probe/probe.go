// Package probe defines what every protocol prober returns: a Result value
// with success, a machine-readable reason, phase timings and protocol facts.
//
// Probers live in sub-packages (httpprobe, tlsprobe, dnsprobe, tcpprobe,
// icmpprobe, grpcprobe).
// This package knows nothing of schedules, clusters or metrics: a Result is
// a plain value that the agent turns into metrics and the cluster into votes.
package probe

import (
	"context"
	"time"
)

// Prober runs one probe of one configured target. Implementations are built
// once per target (regexes compiled, TLS configs prepared) and are safe for
// concurrent use. Probe honours ctx's deadline: it returns no later than the
// deadline (plus scheduling noise) and leaves no goroutine or connection behind.
type Prober interface {
	Probe(ctx context.Context) Result
}

// Reason is a machine-readable failure cause. The empty reason means success.
type Reason string

// Failure reasons shared by all probers. They are stable: they appear in the
// JSON API, logs and the `reason` of `vantage probe -json`.
const (
	ReasonNone           Reason = ""
	ReasonDNSError       Reason = "dns_error"       // the target's host name did not resolve
	ReasonConnectRefused Reason = "connect_refused" // TCP RST / ICMP unreachable
	ReasonConnectError   Reason = "connect_error"   // any other dial failure (no route, source address)
	ReasonTimeout        Reason = "timeout"         // the probe's deadline passed
	ReasonTLSHandshake   Reason = "tls_handshake"   // handshake failed (protocol, alert, reset)
	ReasonCertExpiring   Reason = "cert_expiring"   // a warning, not a failure: valid chain, but expires within min_days_left
	ReasonCertExpired    Reason = "cert_expired"    // a certificate of the chain is past NotAfter
	ReasonCertInvalid    Reason = "cert_invalid"    // unknown authority, wrong host name, bad chain
	ReasonStatusMismatch Reason = "status_mismatch" // HTTP status not in valid_status
	ReasonBodyMismatch   Reason = "body_mismatch"   // body regex did not match / fail regex matched
	ReasonHeaderMismatch Reason = "header_mismatch" // header regex did not match / fail regex matched
	ReasonBodyTooLarge   Reason = "body_too_large"  // response body above the size limit
	ReasonHTTPError      Reason = "http_error"      // protocol error, too many redirects, version mismatch
	ReasonRcodeMismatch  Reason = "rcode_mismatch"  // DNS rcode not in valid_rcodes
	ReasonAnswerMismatch Reason = "answer_mismatch" // DNS answers did not match answer_regex / min_answers
	ReasonDNSProtocol    Reason = "dns_protocol"    // malformed or truncated DNS exchange
	ReasonExpectMismatch Reason = "expect_mismatch" // TCP expect regex did not match what was read
	ReasonIOError        Reason = "io_error"        // read/write failed after connect
	ReasonConfig         Reason = "config_error"    // the prober could not be built or run as configured
	ReasonJSONMismatch   Reason = "json_mismatch"   // a JSON body condition failed, or the body is not JSON
	// ReasonICMPUnreachable: an ICMP error came back for an echo request
	// (destination unreachable, time exceeded, packet too big, parameter
	// problem) and too few replies did; the message says which, from whom.
	ReasonICMPUnreachable Reason = "icmp_unreachable"
	// ReasonPacketLoss: some echo requests were answered, fewer than
	// min_replies. No reply at all is a timeout, as in blackbox_exporter.
	ReasonPacketLoss Reason = "packet_loss"
	// gRPC health checking (grpc.health.v1.Health/Check).
	ReasonNotServing     Reason = "not_serving"     // the server answered NOT_SERVING (or UNKNOWN)
	ReasonServiceUnknown Reason = "service_unknown" // the server does not know the service (NOT_FOUND, SERVICE_UNKNOWN)
	ReasonGRPCError      Reason = "grpc_error"      // the RPC failed with another gRPC status; the message names the code
)

// Phase names. HTTP uses the blackbox_exporter names so its dashboards work.
const (
	PhaseResolve    = "resolve"    // name resolution
	PhaseConnect    = "connect"    // TCP connect or QUIC handshake start
	PhaseTLS        = "tls"        // TLS handshake (or QUIC handshake)
	PhaseProcessing = "processing" // request written to first response byte
	PhaseTransfer   = "transfer"   // first byte to last byte of the response
	PhaseRoundTrip  = "round_trip" // DNS query to answer, TCP send to expect
	PhaseSetup      = "setup"      // ICMP: opening the socket and building the request
	PhaseRTT        = "rtt"        // ICMP: echo request to reply, the mean over replies
	PhaseCheck      = "check"      // gRPC: the health Check RPC, from the connection ready to the answer
)

// Phase is the time spent in one named step of a probe. Phases that repeat
// (one connection per redirect) are summed into one entry per name.
type Phase struct {
	Name     string        `json:"name"`
	Duration time.Duration `json:"duration_ns"`
}

// Result is the outcome of one probe. It is a value: probers allocate it,
// nobody mutates it after Probe returns.
type Result struct {
	OK     bool   `json:"ok"`
	Reason Reason `json:"reason,omitempty"`
	// Warning is set on a successful probe that found something to fix
	// before it fails (cert_expiring); Message then says what.
	Warning  Reason        `json:"warning,omitempty"`
	Message  string        `json:"message,omitempty"` // human detail, e.g. the underlying error
	At       time.Time     `json:"at"`                // when the probe started
	Duration time.Duration `json:"duration_ns"`       // wall time of the whole probe
	Phases   []Phase       `json:"phases,omitempty"`
	// RemoteAddr is the IP:port actually connected to (the last hop for HTTP).
	RemoteAddr string `json:"remote_addr,omitempty"`

	HTTP *HTTPFacts `json:"http,omitempty"`
	TLS  *TLSFacts  `json:"tls,omitempty"`
	DNS  *DNSFacts  `json:"dns,omitempty"`
	TCP  *TCPFacts  `json:"tcp,omitempty"`
	ICMP *ICMPFacts `json:"icmp,omitempty"`
	GRPC *GRPCFacts `json:"grpc,omitempty"`
}

// Phase returns the duration recorded for name, or 0.
func (r *Result) Phase(name string) time.Duration {
	for _, p := range r.Phases {
		if p.Name == name {
			return p.Duration
		}
	}
	return 0
}

// Latency is the figure a person reads as the target's latency (the
// status page, the API, the sparkline): the probe's duration, but for an
// ICMP probe with replies the mean round trip, because its duration also
// holds the gaps between its requests.
func (r *Result) Latency() time.Duration {
	if r.ICMP != nil && r.ICMP.PacketsReceived > 0 {
		return r.ICMP.RTT
	}
	return r.Duration
}

// AddPhase adds d to the phase called name, creating it if needed.
func (r *Result) AddPhase(name string, d time.Duration) {
	for i := range r.Phases {
		if r.Phases[i].Name == name {
			r.Phases[i].Duration += d
			return
		}
	}
	r.Phases = append(r.Phases, Phase{Name: name, Duration: d})
}

// Fail marks r failed with reason and message and returns it, for one-line returns.
func (r Result) Fail(reason Reason, msg string) Result {
	r.OK = false
	r.Reason = reason
	r.Message = msg
	return r
}

// HTTPFacts are what an HTTP probe learnt about the response.
type HTTPFacts struct {
	StatusCode    int    `json:"status_code"`
	Version       string `json:"version"` // "1.0", "1.1", "2", "3"
	Redirects     int    `json:"redirects"`
	ContentLength int64  `json:"content_length"` // bytes of body read (uncompressed)
	// DeclaredLength is the length the final response declared
	// (Content-Length), -1 when it declared none (a chunked body, or one
	// the transport decompressed): blackbox's probe_http_content_length.
	DeclaredLength int64  `json:"declared_length"`
	FinalURL       string `json:"final_url,omitempty"` // the last hop's URL, redacted (RedactURL)
	// LastModified is the final response's Last-Modified date; zero when
	// it sent none or an unparsable one.
	LastModified time.Time `json:"last_modified,omitzero"`
}

// VersionNumber maps Version to blackbox_exporter's probe_http_version value.
func (h *HTTPFacts) VersionNumber() float64 {
	switch h.Version {
	case "1.0":
		return 1.0
	case "1.1":
		return 1.1
	case "2":
		return 2
	case "3":
		return 3
	}
	return 0
}

// Cert describes one certificate of the chain the server presented.
type Cert struct {
	Subject   string    `json:"subject"`
	Issuer    string    `json:"issuer"`
	NotBefore time.Time `json:"not_before"`
	NotAfter  time.Time `json:"not_after"`
	SHA256    string    `json:"sha256"` // hex fingerprint of the DER
	DNSNames  []string  `json:"dns_names,omitempty"`
}

// TLSFacts are what a TLS handshake revealed. They are filled even when
// verification failed, so an expired certificate still reports its expiry.
type TLSFacts struct {
	Version     string `json:"version"` // "TLS 1.3"
	CipherSuite string `json:"cipher_suite"`
	ServerName  string `json:"server_name"`
	Verified    bool   `json:"verified"`
	// EarliestExpiry is the earliest NotAfter among the certificates the
	// server sent (blackbox's probe_ssl_earliest_cert_expiry).
	EarliestExpiry time.Time `json:"earliest_expiry"`
	// LastChainExpiry is, over the verified chains, the latest of each chain's
	// earliest NotAfter (probe_ssl_last_chain_expiry_timestamp_seconds); zero
	// when no chain verified.
	LastChainExpiry time.Time `json:"last_chain_expiry,omitempty"`
	Chain           []Cert    `json:"chain"` // as presented, leaf first
}

// DaysLeft is the number of days (fractional) until EarliestExpiry from now.
func (t *TLSFacts) DaysLeft(now time.Time) float64 {
	return t.EarliestExpiry.Sub(now).Hours() / 24
}

// DNSFacts are what a DNS exchange returned.
type DNSFacts struct {
	Rcode         string   `json:"rcode"` // "NOERROR", "NXDOMAIN", ...
	RcodeValue    int      `json:"rcode_value"`
	Answers       []string `json:"answers,omitempty"` // RRs in presentation format
	AnswerRRs     int      `json:"answer_rrs"`
	AuthorityRRs  int      `json:"authority_rrs"`
	AdditionalRRs int      `json:"additional_rrs"`
	// SOA says the answer section held an SOA record, whose serial is
	// Serial (blackbox's probe_dns_serial).
	SOA       bool   `json:"soa,omitempty"`
	Serial    uint32 `json:"serial,omitempty"`
	Server    string `json:"server"`
	Transport string `json:"transport"`
}

// TCPFacts are what a TCP probe read back.
type TCPFacts struct {
	BytesRead int    `json:"bytes_read"`
	Banner    string `json:"banner,omitempty"` // the first line read, truncated to 128 bytes
}

// ICMPFacts are what an ICMP echo probe counted. They are filled once a
// request was sent, whatever the outcome.
type ICMPFacts struct {
	PacketsSent     int `json:"packets_sent"`
	PacketsReceived int `json:"packets_received"` // matching echo replies; duplicates do not count
	// ReplyHopLimit is the TTL (IPv4) or hop limit (IPv6) of the latest
	// reply (blackbox's probe_icmp_reply_hop_limit); -1 when no reply came
	// or the kernel did not report it.
	ReplyHopLimit int `json:"reply_hop_limit"`
	// RTT is the mean round trip over the replies, between RTTMin and
	// RTTMax; all three are zero without a reply.
	RTT    time.Duration `json:"rtt_ns"`
	RTTMin time.Duration `json:"rtt_min_ns"`
	RTTMax time.Duration `json:"rtt_max_ns"`
	// Socket is the kind of socket used: "datagram" (unprivileged ICMP,
	// allowed by net.ipv4.ping_group_range) or "raw" (CAP_NET_RAW).
	Socket string `json:"socket"`
}

// GRPCFacts are what a gRPC health check returned. They are filled once the
// Check RPC was attempted.
type GRPCFacts struct {
	// StatusCode is the RPC's gRPC status code (0 OK, 4 DeadlineExceeded,
	// 5 NotFound, 12 Unimplemented, 14 Unavailable...): blackbox's
	// probe_grpc_status_code.
	StatusCode int `json:"status_code"`
	// ServingStatus is the answer's status name (SERVING, NOT_SERVING,
	// UNKNOWN, SERVICE_UNKNOWN); "" when the RPC failed
	// (probe_grpc_healthcheck_response{serving_status}).
	ServingStatus string `json:"serving_status,omitempty"`
	// TLS is whether the connection completed a TLS handshake
	// (probe_grpc_ssl).
	TLS bool `json:"tls"`
}
