// Package tcpprobe connects to host:port, optionally wraps TLS, optionally
// sends a string and expects a regex in what comes back.
package tcpprobe

import "github.com/vantage-probe/vantage/probe"

// Options describe one TCP target.
type Options struct {
	Address   string // host:port
	UseTLS    bool
	TLS       probe.TLSOptions
	Send      string // written after connect (and handshake); Go escapes like \r\n are the config's job
	Expect    string // regex that must match the data read
	ReadLimit int    // bytes read at most while waiting for Expect; default 4096
	Net       probe.Net
}
