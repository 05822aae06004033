package icmpprobe

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"

	"github.com/vantage-probe/vantage/probe"
)

// Defaults and limits of Options.
const (
	// DefaultPayloadSize is ping's: 64-byte ICMP messages.
	DefaultPayloadSize = 56
	// DefaultPacketInterval is cloudprober's: requests a little apart, so
	// that one burst of loss does not take them all, without making a
	// probe of a few packets noticeably longer.
	DefaultPacketInterval = 25 * time.Millisecond
	// MaxPackets keeps a probe a probe, not a flood.
	MaxPackets = 100
	// MaxPayloadSize is what fits an IPv4 datagram after the IPv4 and ICMP
	// headers.
	MaxPayloadSize = 65507
)

// ErrLimit is wrapped by errors about options above their limit.
var ErrLimit = errors.New("above the limit")

// nonceSize is the random part of each probe's payload, which tells its
// replies from those to anyone else's requests.
const nonceSize = 8

// Prober probes one icmp target. It is immutable after New, but for the
// sequence counter, and safe for concurrent use.
type Prober struct {
	host        string    // the address, without IPv6 brackets
	net         probe.Net // ip_protocol narrowed to the source address's family
	packets     int
	minReplies  int
	interval    time.Duration
	payloadSize int
	df          bool
	det         *detector
	// force, when set, is the kind of socket to use without detection:
	// tests reach each path with it.
	force Socket
	// seq numbers requests across probes, from a random start so that
	// agents restarted together do not send in step (blackbox_exporter
	// #411).
	seq atomic.Uint32
	// bufs recycles read buffers across probes.
	bufs sync.Pool
}

var _ probe.Prober = (*Prober)(nil)

// New validates o. Errors name the TOML key at fault with its value quoted
// (`packets 500: above the limit of 100`); every problem is reported,
// joined. The socket is chosen at the first probe, not here, so that a
// configuration can be checked where probes could not run.
func New(o Options) (*Prober, error) { return NewShared(o, nil) }

// NewShared is New with the choice of socket kind shared through s with
// the other probers of a configuration (nil: each prober decides alone).
func NewShared(o Options, s *probe.Shared) (*Prober, error) {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	p := &Prober{
		host:        o.Address,
		net:         o.Net,
		packets:     o.Packets,
		minReplies:  o.MinReplies,
		interval:    o.PacketInterval,
		payloadSize: o.PayloadSize,
		df:          o.DontFragment,
		det:         detectorFor(s),
	}
	if strings.HasPrefix(p.host, "[") && strings.HasSuffix(p.host, "]") {
		p.host = p.host[1 : len(p.host)-1]
	}
	switch o.Net.IPProtocol {
	case probe.IPAuto, probe.IPv4, probe.IPv6:
	default:
		bad("ip_protocol %q: must be ip4 or ip6", string(o.Net.IPProtocol))
	}
	ip, err := netip.ParseAddr(p.host)
	isIP := err == nil
	switch {
	case p.host == "":
		bad("address %q: %w", o.Address, probe.ErrNoHost)
	case !isIP && strings.Contains(p.host, ":"):
		// No host name has a colon: host:port, or a mistyped address.
		bad("address %q: want a host name or IP address, without a port", o.Address)
	case isIP && !familyOK(o.Net.IPProtocol, ip):
		bad("address %q: %w %q", o.Address, probe.ErrFamily, string(o.Net.IPProtocol))
	}
	if src := o.Net.SourceIP; src.IsValid() {
		switch {
		case !familyOK(o.Net.IPProtocol, src):
			bad("source_ip %q: not of ip_protocol %q", src.String(), string(o.Net.IPProtocol))
		case isIP && ip.Unmap().Is4() != src.Unmap().Is4():
			bad("source_ip %q: not of the family of address %q", src.String(), o.Address)
		case o.Net.IPProtocol == probe.IPAuto && src.Unmap().Is4():
			p.net.IPProtocol = probe.IPv4
		case o.Net.IPProtocol == probe.IPAuto:
			p.net.IPProtocol = probe.IPv6
		}
		p.net.SourceIP = src.Unmap()
	}
	switch {
	case o.Packets < 0:
		bad("packets %d: %w", o.Packets, probe.ErrNegative)
	case o.Packets > MaxPackets:
		bad("packets %d: %w of %d", o.Packets, ErrLimit, MaxPackets)
	case o.Packets == 0:
		p.packets = 1
	}
	switch {
	case o.MinReplies < 0:
		bad("min_replies %d: %w", o.MinReplies, probe.ErrNegative)
	case o.MinReplies > max(p.packets, 1):
		bad("min_replies %d: %w of packets (%d)", o.MinReplies, ErrLimit, p.packets)
	case o.MinReplies == 0:
		p.minReplies = 1
	}
	switch {
	case o.PacketInterval < 0:
		bad("packet_interval %v: %w", o.PacketInterval, probe.ErrNegative)
	case o.PacketInterval == 0:
		p.interval = DefaultPacketInterval
	}
	switch {
	case o.PayloadSize < 0:
		bad("payload_size %d: %w", o.PayloadSize, probe.ErrNegative)
	case o.PayloadSize > MaxPayloadSize:
		bad("payload_size %d: %w of %d", o.PayloadSize, ErrLimit, MaxPayloadSize)
	case o.PayloadSize == 0:
		p.payloadSize = DefaultPayloadSize
	}
	if o.DontFragment && !dontFragmentSupported {
		bad("dont_fragment: %w", errors.ErrUnsupported)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	p.seq.Store(mrand.Uint32())
	// Big enough for a reply, and for an error quoting a request: IPv6
	// errors quote up to the minimum MTU.
	size := max(8+p.payloadSize, 1280) + 64
	p.bufs.New = func() any {
		b := make([]byte, size)
		return &b
	}
	return p, nil
}

func familyOK(proto probe.IPProtocol, a netip.Addr) bool {
	is4 := a.Unmap().Is4()
	return !(proto == probe.IPv4 && !is4 || proto == probe.IPv6 && is4)
}

// Probe runs one probe. It fails with dns_error, config_error (no ICMP
// socket allowed), connect_error (the socket could not be opened or bound,
// or a request could not be sent: no route, a payload above the local MTU
// with dont_fragment), timeout (no reply), packet_loss (some replies, too
// few), icmp_unreachable (an ICMP error for a request, and too few
// replies) or io_error. Result.ICMP is filled once a request was sent.
func (p *Prober) Probe(ctx context.Context) probe.Result {
	r := probe.Result{At: time.Now(), Phases: make([]probe.Phase, 0, 3)}
	dst, took, err := p.net.ResolveIP(ctx, p.host)
	r.AddPhase(probe.PhaseResolve, took)
	if err != nil {
		reason := probe.ReasonDNSError
		if probe.Classify(err, ctx.Err()) == probe.ReasonTimeout {
			reason = probe.ReasonTimeout
		}
		return probe.Finish(r.Fail(reason, "resolve: "+err.Error()))
	}
	dst = dst.Unmap()
	r.RemoteAddr = dst.String()

	start := time.Now()
	c, err := p.open(dst.Is6())
	if err != nil {
		r.AddPhase(probe.PhaseSetup, time.Since(start))
		reason := probe.ReasonConnectError
		if errors.Is(err, ErrNoSocket) {
			reason = probe.ReasonConfig
		}
		return probe.Finish(r.Fail(reason, err.Error()))
	}
	defer c.close()
	x := p.newExchange(c, dst)
	bp := p.bufs.Get().(*[]byte)
	defer p.bufs.Put(bp)
	r.AddPhase(probe.PhaseSetup, time.Since(start))

	x.run(ctx, *bp)
	f := x.facts()
	rtt := f.RTT
	if x.nReplies == 0 && x.nSent > 0 {
		rtt = x.end.Sub(x.firstSent) // the time waited counts, so a timeout shows where it went
	}
	r.AddPhase(probe.PhaseRTT, rtt)
	if x.nSent > 0 {
		r.ICMP = f
	}
	reason, msg := x.verdict(ctx)
	if reason != probe.ReasonNone {
		return probe.Finish(r.Fail(reason, msg))
	}
	r.OK = true
	return probe.Finish(r)
}

func (p *Prober) open(v6 bool) (*conn, error) {
	if p.force != "" {
		return openSocket(p.force, v6, p.net.SourceIP, p.df)
	}
	return p.det.open(v6, p.net.SourceIP, p.df)
}

// exchange is the state of one probe's requests and replies.
type exchange struct {
	p   *Prober
	c   *conn
	m   matcher
	to  net.Addr
	id  int
	seq uint16 // the first request's sequence number

	nSent, nReplies, nSettled int
	sent                      []time.Time // per request
	rtt                       []time.Duration
	settled                   []bool // answered, or refused by an ICMP error
	hop                       int    // of the latest reply
	firstSent, end            time.Time

	icmpErr *event // the first ICMP error about a request
	sendErr error  // a request that could not be sent
	readErr error  // the socket failed

	buf []byte // the read buffer
}

func (p *Prober) newExchange(c *conn, dst netip.Addr) *exchange {
	x := &exchange{
		p:       p,
		c:       c,
		to:      c.to(dst),
		sent:    make([]time.Time, p.packets),
		rtt:     make([]time.Duration, p.packets),
		settled: make([]bool, p.packets),
		hop:     -1,
	}
	n := uint32(p.packets)
	x.seq = uint16(p.seq.Add(n) - n)
	payload := make([]byte, p.payloadSize)
	_, _ = rand.Read(payload[:min(nonceSize, len(payload))])
	for i := nonceSize; i < len(payload); i++ {
		payload[i] = "Vantage "[i%8]
	}
	x.m = matcher{v6: c.v6, id: -1, dst: dst, payload: payload}
	if c.kind == SocketRaw {
		// The kernel sets a datagram socket's identifier; a raw socket's is
		// the probe's own.
		x.id = int(mrand.Uint32() & 0xffff)
		x.m.id = x.id
	}
	return x
}

// longAgo is a deadline in the past: setting it fails a pending read at once.
var longAgo = time.Unix(1, 0)

// maxReadErrors bounds the consecutive failed reads a probe tolerates (each
// error read clears the socket's pending error; a socket that keeps
// failing is broken).
const maxReadErrors = 8

// run sends the requests on schedule and reads until each is answered or
// refused, or ctx is done. It runs on the probe's goroutine alone: read
// deadlines wake it for the next request, and a cancelled ctx cuts the
// read at once.
func (x *exchange) run(ctx context.Context, buf []byte) {
	x.buf = buf
	deadline, hasDeadline := ctx.Deadline()
	if ctx.Done() != nil {
		stop := context.AfterFunc(ctx, func() { _ = x.c.pc.SetReadDeadline(longAgo) })
		defer stop()
	}
	next := time.Now()
	readErrs := 0
	for {
		now := time.Now()
		for x.more() && !now.Before(next) {
			x.send()
			next = x.firstSent.Add(time.Duration(x.nSent) * x.p.interval)
			now = time.Now()
		}
		if !x.more() && x.nSettled == x.nSent {
			break // every request sent is answered or refused
		}
		rd := time.Time{}
		if hasDeadline {
			rd = deadline
		}
		if x.more() && (rd.IsZero() || next.Before(rd)) {
			rd = next
		}
		_ = x.c.pc.SetReadDeadline(rd)
		if ctx.Err() != nil {
			break // cancelled before the deadline above was set: AfterFunc's may be lost
		}
		n, hop, from, err := x.c.read(buf)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				if ctx.Err() != nil || hasDeadline && !time.Now().Before(deadline) {
					break
				}
				continue // time for the next request
			}
			// A datagram socket reports an ICMP error as a failed read,
			// and queues the details.
			evs := x.c.errQueue(&x.m, buf)
			for _, ev := range evs {
				x.handle(ev, -1)
			}
			if len(evs) == 0 && !icmpErrno(err) {
				if readErrs++; readErrs >= maxReadErrors {
					x.readErr = err
					break
				}
			}
			continue
		}
		readErrs = 0
		x.handle(x.m.parse(buf[:n], from), hop)
	}
	x.end = time.Now()
}

// more reports whether requests remain to be sent.
func (x *exchange) more() bool { return x.nSent < x.p.packets && x.sendErr == nil }

// send sends the next request.
func (x *exchange) send() {
	i := x.nSent
	typ := icmp.Type(ipv4.ICMPTypeEcho)
	if x.c.v6 {
		typ = ipv6.ICMPTypeEchoRequest
	}
	msg := icmp.Message{Type: typ, Body: &icmp.Echo{ID: x.id, Seq: int(x.seq + uint16(i)), Data: x.m.payload}}
	b, err := msg.Marshal(nil) // the kernel computes the ICMPv6 checksum
	if err == nil {
		x.sent[i] = time.Now()
		_, err = x.c.pc.WriteTo(b, x.to)
	}
	if err != nil && icmpErrno(err) {
		// A datagram socket reports a pending ICMP error about an earlier
		// request at its next call, a send included: then the error is in
		// the queue, and this request still to send.
		if evs := x.c.errQueue(&x.m, x.buf); len(evs) > 0 {
			for _, ev := range evs {
				x.handle(ev, -1)
			}
			x.sent[i] = time.Now()
			_, err = x.c.pc.WriteTo(b, x.to)
		}
	}
	if err != nil {
		x.sendErr = err
		return
	}
	if i == 0 {
		x.firstSent = x.sent[0]
	}
	x.nSent++
}

// handle records what a received message says: a reply, or an error.
func (x *exchange) handle(ev event, hop int) {
	if ev.kind == evNone {
		return
	}
	i := int(ev.seq - x.seq)
	if i >= x.nSent || x.settled[i] {
		return // not a request of this probe, or already settled (a duplicate)
	}
	x.settled[i] = true
	x.nSettled++
	if ev.kind == evError {
		if x.icmpErr == nil {
			x.icmpErr = &ev
		}
		return
	}
	x.rtt[i] = max(time.Since(x.sent[i]), 1) // on loopback a reply can come within the clock's step
	x.nReplies++
	x.hop = hop
}

func (x *exchange) facts() *probe.ICMPFacts {
	f := &probe.ICMPFacts{
		PacketsSent:     x.nSent,
		PacketsReceived: x.nReplies,
		ReplyHopLimit:   x.hop,
		Socket:          string(x.c.kind),
	}
	var sum time.Duration
	for _, d := range x.rtt {
		if d == 0 {
			continue
		}
		sum += d
		if f.RTTMin == 0 || d < f.RTTMin {
			f.RTTMin = d
		}
		f.RTTMax = max(f.RTTMax, d)
	}
	if x.nReplies > 0 {
		f.RTT = sum / time.Duration(x.nReplies)
	}
	return f
}

// verdict decides the probe from what the exchange saw.
func (x *exchange) verdict(ctx context.Context) (probe.Reason, string) {
	need := x.p.minReplies
	switch {
	case x.nReplies >= need:
		return probe.ReasonNone, ""
	case x.sendErr != nil && x.nReplies == 0 && x.icmpErr == nil:
		reason := probe.ReasonConnectError
		if probe.Classify(x.sendErr, ctx.Err()) == probe.ReasonTimeout {
			reason = probe.ReasonTimeout
		}
		return reason, fmt.Sprintf("send: %v%s", x.sendErr, x.mtuHint(x.sendErr))
	case x.icmpErr != nil:
		return probe.ReasonICMPUnreachable, fmt.Sprintf("%s (%s)", x.icmpErr, x.tally())
	case x.readErr != nil:
		return probe.ReasonIOError, fmt.Sprintf("read: %v (%s)", x.readErr, x.tally())
	case x.nReplies == 0:
		return probe.ReasonTimeout, fmt.Sprintf("no echo reply from %s (%s)", x.m.dst, x.tally())
	}
	return probe.ReasonPacketLoss, fmt.Sprintf("%s, min_replies %d", x.tally(), need)
}

// tally says how many requests were sent and answered.
func (x *exchange) tally() string {
	s := fmt.Sprintf("%d of %d requests answered", x.nReplies, x.nSent)
	if x.sendErr != nil {
		s += fmt.Sprintf(", then send: %v", x.sendErr)
	}
	return s
}

func (x *exchange) mtuHint(err error) string {
	if errors.Is(err, syscall.EMSGSIZE) && x.p.df {
		return fmt.Sprintf(" (dont_fragment with payload_size %d: above the route's MTU)", x.p.payloadSize)
	}
	return ""
}

// icmpErrno reports whether a failed read is how a datagram socket reports
// an ICMP error (its errno), so that it is not counted as the socket
// failing.
func icmpErrno(err error) bool {
	for _, e := range []error{syscall.EHOSTUNREACH, syscall.ENETUNREACH, syscall.EACCES, syscall.EMSGSIZE,
		syscall.ECONNREFUSED, syscall.EPROTO, syscall.ENOPROTOOPT, syscall.EHOSTDOWN, syscall.EOPNOTSUPP} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}
