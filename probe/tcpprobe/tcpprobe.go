package tcpprobe

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/vantage-probe/vantage/probe"
	"github.com/vantage-probe/vantage/probe/tlsprobe"
)

// DefaultReadLimit is how many bytes a probe reads at most while waiting for
// Expect: enough for any banner or short reply, small enough to bound the
// work a misbehaving server can cause.
const DefaultReadLimit = 4096

// bannerMax is the longest banner kept in Result.TCP.
const bannerMax = 128

// Prober probes one tcp target: connect, optional TLS, optional send,
// optional expect. It is immutable after New (the regex is compiled and the
// TLS config built once) and safe for concurrent use.
type Prober struct {
	o         Options
	hs        *tlsprobe.Handshaker // nil without TLS
	expect    *regexp.Regexp       // nil without Expect
	send      []byte
	readLimit int
	dialer    *net.Dialer
	network   string
	// bufs recycles read buffers across probes of this target, so that a
	// probe with Expect allocates no ReadLimit-sized buffer each time.
	bufs sync.Pool
}

var _ probe.Prober = (*Prober)(nil)

// New validates o, compiles Expect and prepares the dialer and TLS config
// once. Errors name the TOML key at fault with its value quoted
// (`expect "(": ...`); every problem is reported, joined.
func New(o Options) (*Prober, error) { return NewShared(o, nil) }

// NewShared is New with the CA bundle and client key pair shared through s
// with the other probers of a configuration (nil: nothing shared).
func NewShared(o Options, s *probe.Shared) (*Prober, error) {
	var errs []error
	host, err := o.Net.SplitAddress(o.Address)
	if err != nil {
		errs = append(errs, err)
	}
	p := &Prober{
		o:         o,
		send:      []byte(o.Send),
		readLimit: o.ReadLimit,
		dialer:    o.Net.StreamDialerShared(s),
		network:   o.Net.Network("tcp"),
	}
	if o.Expect != "" {
		if p.expect, err = regexp.Compile(o.Expect); err != nil {
			errs = append(errs, fmt.Errorf("expect %q: %w", o.Expect, err))
		}
	}
	if o.ReadLimit < 0 {
		errs = append(errs, fmt.Errorf("read_limit %d: %w", o.ReadLimit, probe.ErrNegative))
	}
	if p.readLimit == 0 {
		p.readLimit = DefaultReadLimit
	}
	if o.UseTLS {
		if p.hs, err = tlsprobe.NewHandshakerShared(o.TLS, host, s); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	limit := p.readLimit
	p.bufs.New = func() any {
		b := make([]byte, limit)
		return &b
	}
	return p, nil
}

// Probe runs one probe. It fails with dns_error, connect_refused,
// connect_error, timeout, tls_handshake, cert_expired, cert_invalid,
// io_error (the connection broke while sending or reading) or
// expect_mismatch (EOF or the read limit came before a match). The
// round_trip phase runs from the send (or the end of connect and TLS) to
// the match. Expect is matched against everything read so far, so ^
// anchors at the first byte (use (?m) for lines). Result.TCP is filled when
// the probe read.
func (p *Prober) Probe(ctx context.Context) probe.Result {
	r := probe.Result{At: time.Now(), Phases: make([]probe.Phase, 0, 4)}
	conn := p.o.Net.Connect(ctx, p.dialer, p.network, p.o.Address, &r)
	if conn == nil {
		return probe.Finish(r)
	}
	// Closing the raw connection (never a tls.Conn) keeps the probe within
	// its deadline: tls.Conn.Close gives its close_notify a fresh 5 s one.
	defer conn.Close()
	rw := io.ReadWriter(conn)
	if p.hs != nil {
		// Handshake bounds itself by ctx.
		tc, reason, msg := p.hs.Handshake(ctx, conn, &r)
		if reason != probe.ReasonNone {
			return probe.Finish(r.Fail(reason, msg))
		}
		rw = tc
	}
	if len(p.send) == 0 && p.expect == nil {
		// Connect-only probes do no I/O, so they skip guard's deadline
		// and cancellation hook: the commonest probe stays as cheap as a
		// bare dial.
		r.OK = true
		return probe.Finish(r)
	}
	stop := guard(ctx, conn)
	defer stop()
	start := time.Now()
	reason, msg := p.roundTrip(ctx, rw, &r)
	r.AddPhase(probe.PhaseRoundTrip, time.Since(start))
	if reason != probe.ReasonNone {
		return probe.Finish(r.Fail(reason, msg))
	}
	r.OK = true
	return probe.Finish(r)
}

// roundTrip sends, then reads until Expect matches, and fills r.TCP.
func (p *Prober) roundTrip(ctx context.Context, rw io.ReadWriter, r *probe.Result) (probe.Reason, string) {
	if len(p.send) > 0 {
		if _, err := rw.Write(p.send); err != nil {
			return ioReason(ctx, err), "send: " + err.Error()
		}
	}
	if p.expect == nil {
		return probe.ReasonNone, ""
	}
	bp := p.bufs.Get().(*[]byte)
	defer p.bufs.Put(bp)
	buf := *bp
	n := 0
	for {
		m, err := rw.Read(buf[n:])
		n += m
		// Match as soon as data arrives: the server may keep the
		// connection open after its answer, so waiting for EOF or the
		// limit would turn every success into a timeout.
		if m > 0 && p.expect.Match(buf[:n]) {
			r.TCP = facts(buf[:n])
			return probe.ReasonNone, ""
		}
		if err == nil && n < len(buf) {
			continue
		}
		r.TCP = facts(buf[:n])
		switch {
		case err == nil:
			return probe.ReasonExpectMismatch, fmt.Sprintf("expect %q: no match in the first %d bytes (read_limit): %s", p.o.Expect, n, quote(buf[:n]))
		case errors.Is(err, io.EOF):
			return probe.ReasonExpectMismatch, fmt.Sprintf("expect %q: no match before EOF after %d bytes: %s", p.o.Expect, n, quote(buf[:n]))
		default:
			return ioReason(ctx, err), fmt.Sprintf("expect %q: read after %d bytes: %v", p.o.Expect, n, err)
		}
	}
}

// ioReason classifies an error after connect: timeout or io_error.
func ioReason(ctx context.Context, err error) probe.Reason {
	if probe.Classify(err, ctx.Err()) == probe.ReasonTimeout {
		return probe.ReasonTimeout
	}
	return probe.ReasonIOError
}

// facts describes what was read: its size and first line.
func facts(b []byte) *probe.TCPFacts {
	line := b
	if i := bytes.IndexByte(line, '\n'); i >= 0 {
		line = line[:i]
	}
	line = bytes.TrimSuffix(line, []byte{'\r'})
	if len(line) > bannerMax {
		line = line[:bannerMax]
		// Drop a multi-byte character the cut split in half, rather than
		// turn it into U+FFFD.
		j := len(line) - 1
		for j > len(line)-utf8.UTFMax && !utf8.RuneStart(line[j]) {
			j--
		}
		if !utf8.FullRune(line[j:]) {
			line = line[:j]
		}
	}
	return &probe.TCPFacts{BytesRead: len(b), Banner: strings.ToValidUTF8(string(line), "\uFFFD")}
}

// quote shows what was read in a failure message, cut to a useful length.
func quote(b []byte) string {
	const quoteMax = 128
	if len(b) > quoteMax {
		return strconv.Quote(string(b[:quoteMax])) + "..."
	}
	return strconv.Quote(string(b))
}
