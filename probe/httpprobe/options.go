// Package httpprobe probes HTTP/1.1, HTTP/2 and HTTP/3 endpoints with a fresh
// connection per probe, timing each phase with net/http/httptrace.
//
// What a probe does, where a user could wonder:
//
//   - Every probe (and every redirect hop) opens a new connection, with a
//     full TLS handshake and no session resumption: it measures what a new
//     user sees. Nothing is pooled between probes.
//   - Phases follow blackbox_exporter: resolve, connect (TCP), tls
//     (handshake plus certificate verification), processing (connection
//     ready to first response byte), transfer (first byte to end of body),
//     summed over redirect hops; all five are always present. For HTTP/3,
//     connect is opening the UDP socket, tls is the whole QUIC handshake,
//     and processing ends when the response headers are decoded (quic-go
//     reports no first-byte event).
//   - Certificates are verified after the handshake, so an expired or
//     untrusted certificate fails the probe (cert_expired, cert_invalid)
//     while its chain and expiry are still reported.
//   - http_version "auto" lets ALPN choose h2 or HTTP/1.1; "1.1" offers only
//     http/1.1; "2" needs h2 over TLS (h2c is not supported) and fails with
//     http_error when the server negotiates HTTP/1.1; "3" is HTTP/3 over
//     QUIC (TLS 1.3) and needs an https URL.
//   - A Host header probes a virtual host: it is sent as the request's host
//     and, unless tls server_name is set, used as the TLS server name.
//   - Redirects follow net/http's rules: 301/302/303 turn other methods into
//     GET without body, 307/308 keep both; a Host override survives only
//     relative redirects. Credentials are stricter: Authorization, the
//     SecretHeaders and every header named like a credential (Cookie,
//     X-Api-Key, X-Auth-Token...: see credentialWords) are sent only to the
//     original host name, any port, and never from https down to http
//     (net/http also sends them to subdomains).
//   - Credentials in the URL act as basic auth and are removed from the URL.
//     No secret appears in a Result: URLs in it (final_url, a Location in
//     a message) have their query and fragment values redacted
//     (probe.RedactURL), and header values are never quoted.
//   - The response is decompressed transparently when the probe's own
//     Accept-Encoding (gzip) was used; content_length counts body bytes
//     read after decompression, up to max_body_bytes+1.
//   - JSON conditions decode the body (the bytes read, at most
//     max_body_bytes) once per probe, and only when conditions are set;
//     every condition is checked and every failure named in the message.
package httpprobe

import "github.com/vantage-probe/vantage/probe"

// Options describe one HTTP target. Zero values take the documented defaults.
type Options struct {
	URL     string
	Method  string            // default GET
	Headers map[string]string // sent as is; Host overrides the request host
	// SecretHeaders are sent like Headers, but their values are secrets
	// (read from files or the environment): never quoted in an error and
	// never sent to another host on a redirect. A name may not also be
	// in Headers; Host is not a secret.
	SecretHeaders map[string]string
	Body          string // request body

	// ValidStatus lists accepted status codes; empty means any 2xx.
	ValidStatus []int
	// FailIfBodyNotMatches: every regex must match the body.
	FailIfBodyNotMatches []string
	// FailIfBodyMatches: no regex may match the body.
	FailIfBodyMatches []string
	// FailIfHeaderNotMatches / FailIfHeaderMatches check one header each.
	FailIfHeaderNotMatches  []HeaderMatch
	FailIfHeaderMatches     []HeaderMatch
	FailIfSSL, FailIfNotSSL bool
	// JSON conditions must all hold on the body decoded as JSON; they are
	// checked after the status, header and body_regex checks pass.
	JSON []JSONCondition

	FollowRedirects bool  // default true in the config layer
	MaxRedirects    int   // default 10
	MaxBodyBytes    int64 // default 1 MiB; a larger body fails with body_too_large

	// HTTPVersion is "auto" (ALPN picks 2 or 1.1), "1.1", "2" (h2 over TLS
	// only) or "3" (QUIC, https only). Empty means auto.
	HTTPVersion string

	BasicAuthUser, BasicAuthPassword string // password never appears in results
	BearerToken                      string

	TLS probe.TLSOptions
	Net probe.Net
}

// HeaderMatch checks one response header against a regex.
type HeaderMatch struct {
	Header       string
	Regex        string
	AllowMissing bool // a missing header passes
}

// JSONCondition checks one value in a JSON response body (TOML:
// `json = [{ path = "status", equals = "UP" }]`).
//
// Path addresses the value: object keys separated by dots, array indexes in
// brackets, counted from 0: `checks.db.status`, `items[0].id`, `[2]` (an
// element of a top-level array), `a.b[1][0]`. A key holding '.', '[' or
// ']' is quoted in brackets as a JSON string: `labels["app.kubernetes.io/name"]`.
// A key of digits also indexes an array (`items.0.id` is `items[0].id`).
//
// Value depends on Op:
//   - equals, not_equals: a string, number or boolean (nil: JSON null). The
//     types must agree: a string never equals a number ("5" is not 5);
//     numbers compare by value (1, 1.0 and 1e0 are equal). not_equals
//     passes for a value of another type.
//   - less_than, greater_than: a number; the body's value must be a number.
//   - exists: true (the path must lead to a value, null included) or false
//     (it must not).
//   - regex: a regular expression (RE2) matched against a string, or the
//     literal text of a number or boolean.
//
// Apart from exists: false, a missing path fails the condition.
type JSONCondition struct {
	Path  string
	Op    JSONOp
	Value any // string, bool, int, int64, float64 or nil, as Op wants
}

// JSONOp is the comparison a JSONCondition makes; the names are the TOML keys.
type JSONOp string

// The JSON comparisons.
const (
	JSONEquals      JSONOp = "equals"
	JSONNotEquals   JSONOp = "not_equals"
	JSONLessThan    JSONOp = "less_than"
	JSONGreaterThan JSONOp = "greater_than"
	JSONExists      JSONOp = "exists"
	JSONRegex       JSONOp = "regex"
)
