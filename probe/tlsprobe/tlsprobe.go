package tlsprobe

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/vantage-probe/vantage/probe"
)

// Prober probes one tls target: resolve, connect, handshake, verify the
// chain, check how long it has left. It is immutable after New and safe for
// concurrent use.
type Prober struct {
	o       Options
	hs      *Handshaker
	dialer  *net.Dialer
	network string
}

var _ probe.Prober = (*Prober)(nil)

// New validates o and prepares its dialer and TLS config once. Errors name
// the TOML key at fault with its value quoted (`address "x": ...`); every
// problem is reported, joined.
func New(o Options) (*Prober, error) { return NewShared(o, nil) }

// NewShared is New with the CA bundle and client key pair shared through s
// with the other probers of a configuration (nil: nothing shared).
func NewShared(o Options, s *probe.Shared) (*Prober, error) {
	var errs []error
	host, err := o.Net.SplitAddress(o.Address)
	if err != nil {
		errs = append(errs, err)
	}
	if o.MinDaysLeft < 0 {
		errs = append(errs, fmt.Errorf("min_days_left %d: %w", o.MinDaysLeft, probe.ErrNegative))
	}
	hs, err := NewHandshakerShared(o.TLS, host, s)
	if err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return &Prober{o: o, hs: hs, dialer: o.Net.StreamDialerShared(s), network: o.Net.Network("tcp")}, nil
}

// Probe runs one probe. It fails with dns_error, connect_refused,
// connect_error, timeout, tls_handshake, cert_expired, cert_invalid or
// cert_expiring. Result.TLS is filled whenever the handshake completed, so a
// failed verification still reports the chain and its expiry.
func (p *Prober) Probe(ctx context.Context) probe.Result {
	r := probe.Result{At: time.Now(), Phases: make([]probe.Phase, 0, 3)}
	conn := p.o.Net.Connect(ctx, p.dialer, p.network, p.o.Address, &r)
	if conn == nil {
		return probe.Finish(r)
	}
	// Closing the raw connection skips TLS close_notify on purpose:
	// tls.Conn.Close would give its alert a fresh 5 s write deadline, past
	// the probe's own. The handshake is the only I/O, and Handshake bounds
	// it by ctx.
	defer conn.Close()
	if _, reason, msg := p.hs.Handshake(ctx, conn, &r); reason != probe.ReasonNone {
		return probe.Finish(r.Fail(reason, msg))
	}
	r.OK = true
	if p.o.MinDaysLeft > 0 {
		// A certificate that expires soon is a warning, not a failure: the
		// endpoint answers, so the target is up and nobody is paged; the
		// expiry raises its own alert (a ticket) from the exported date.
		if reason, msg := checkExpiry(r.TLS, p.o.MinDaysLeft, time.Now()); reason != probe.ReasonNone {
			r.Warning, r.Message = reason, msg
		}
	}
	return probe.Finish(r)
}

// checkExpiry warns with cert_expiring when the chain expires fewer than
// minDaysLeft days after now. The date that counts is the expiry of the
// verified chain (the earliest NotAfter along it, the latest such date when
// several chains verify): that is when clients start failing, and an unused
// expired cross-sign the server still sends does not count. Without a
// verified chain (InsecureSkipVerify) it is the earliest NotAfter presented.
func checkExpiry(f *probe.TLSFacts, minDaysLeft int, now time.Time) (probe.Reason, string) {
	exp := f.LastChainExpiry
	if exp.IsZero() {
		exp = f.EarliestExpiry
	}
	days := exp.Sub(now).Hours() / 24
	if days >= float64(minDaysLeft) {
		return probe.ReasonNone, ""
	}
	when := fmt.Sprintf("expires in %.1f days", days)
	if days < 0 {
		// Only reachable without verification, which rejects expired chains.
		when = fmt.Sprintf("expired %.1f days ago", -days)
	}
	return probe.ReasonCertExpiring, fmt.Sprintf("certificate chain %s (%s), under min_days_left %d",
		when, exp.UTC().Format(time.RFC3339), minDaysLeft)
}
