// Package tlsprobe performs a TLS handshake and reports the presented chain's
// expiry; it fails when the chain does not verify, and warns (Result.Warning,
// the probe still succeeds) when it expires within MinDaysLeft.
package tlsprobe

import "github.com/vantage-probe/vantage/probe"

// Options describe one TLS target.
type Options struct {
	Address     string // host:port
	MinDaysLeft int    // warn with cert_expiring when fewer days are left; 0 disables
	TLS         probe.TLSOptions
	Net         probe.Net
}
