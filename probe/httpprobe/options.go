// Package httpprobe probes HTTP/1.1, HTTP/2 and HTTP/3 endpoints with a fresh
// connection per probe, timing each phase with net/http/httptrace.
package httpprobe

import "github.com/vantage-probe/vantage/probe"

// Options describe one HTTP target. Zero values take the documented defaults.
type Options struct {
	URL     string
	Method  string            // default GET
	Headers map[string]string // sent as is; Host overrides the request host
	Body    string            // request body

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

	FollowRedirects bool  // default true in the config layer
	MaxRedirects    int   // default 10
	MaxBodyBytes    int64 // default 1 MiB; a larger body fails with body_too_large

	// HTTPVersion is "auto" (ALPN picks 2 or 1.1), "1.1", "2" or "3" (QUIC).
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
