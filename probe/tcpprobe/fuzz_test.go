package tcpprobe

import (
	"context"
	"io"
	"os"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/vantage-probe/vantage/probe"
)

// Driving the prober against a TCP server per input is too slow to fuzz;
// roundTrip takes the connection as an io.ReadWriter, so the fuzz target
// hands it a server script instead: the banner, delivered in chunks whose
// sizes the fuzzer picks (TCP gives no message boundaries), then EOF or
// silence until the probe's deadline.

// script is the server side of one probe.
type script struct {
	data   []byte
	chunks []byte // sizes of successive reads, cycled; 0 counts as 1
	i      int
	open   bool // after the data, reads hit the deadline instead of EOF
	sent   []byte
}

func (s *script) Write(b []byte) (int, error) { s.sent = append(s.sent, b...); return len(b), nil }

func (s *script) Read(b []byte) (int, error) {
	if len(s.data) == 0 {
		if s.open {
			return 0, os.ErrDeadlineExceeded // what guard's deadline makes a blocked read return
		}
		return 0, io.EOF
	}
	n := 1
	if len(s.chunks) > 0 {
		n = max(1, int(s.chunks[s.i%len(s.chunks)]))
		s.i++
	}
	n = copy(b, s.data[:min(n, len(s.data))])
	s.data = s.data[n:]
	return n, nil
}

// reads lists how many bytes the prober has after each read of the script,
// up to the read limit: the prefixes Expect is tried on.
func reads(data, chunks []byte, limit int) []int {
	var out []int
	n, i := 0, 0
	for n < len(data) && n < limit {
		c := 1
		if len(chunks) > 0 {
			c = max(1, int(chunks[i%len(chunks)]))
			i++
		}
		n += min(c, len(data)-n, limit-n)
		out = append(out, n)
	}
	return out
}

func FuzzExpect(f *testing.F) {
	f.Add([]byte("SSH-2.0-OpenSSH_9.6\r\n"), []byte{4}, `^SSH-2\.0-`, uint16(0), false)
	f.Add([]byte("+PONG\r\n"), []byte{1, 2, 3}, `^\+PONG`, uint16(0), true)
	f.Add([]byte("220 mail.example.com ESMTP\r\n"), []byte{255}, `(?m)^220 `, uint16(8), false)
	f.Add([]byte("0123456789abcdef\n"), []byte{3}, `abc`, uint16(8), true)
	f.Add([]byte("HELLO"), []byte{}, `HELLO$`, uint16(0), false)
	f.Add([]byte("\xff\xfe\x00banner é\n"), []byte{2, 7}, `é`, uint16(11), false)
	f.Add([]byte{}, []byte{}, `^$`, uint16(0), false)
	f.Add([]byte("x"), []byte{}, `(`, uint16(0), false)
	f.Fuzz(func(t *testing.T, data, chunks []byte, expect string, limit uint16, open bool) {
		if expect == "" {
			return // no Expect: roundTrip only sends
		}
		p, err := New(Options{Address: "127.0.0.1:1", Send: "PING\r\n", Expect: expect, ReadLimit: int(limit)})
		if err != nil {
			if _, cerr := regexp.Compile(expect); cerr == nil {
				t.Fatalf("New refused compilable expect %q: %v", expect, err)
			}
			return
		}
		s := &script{data: data, chunks: chunks, open: open}
		var r probe.Result
		reason, msg := p.roundTrip(context.Background(), s, &r)

		if string(s.sent) != "PING\r\n" {
			t.Fatalf("sent %q", s.sent)
		}
		// The verdict, recomputed: Expect matches some prefix the prober
		// held after a read, never more than the read limit.
		re := regexp.MustCompile(expect)
		lim := p.readLimit
		matchedAt := -1
		for _, n := range reads(data, chunks, lim) {
			if re.MatchString(string(data[:n])) {
				matchedAt = n
				break
			}
		}
		switch {
		case matchedAt >= 0:
			if reason != probe.ReasonNone {
				t.Fatalf("expect %q matches the first %d bytes of %q, got %q: %s", expect, matchedAt, data, reason, msg)
			}
			if r.TCP == nil || r.TCP.BytesRead != matchedAt {
				t.Fatalf("matched after %d bytes, facts %+v", matchedAt, r.TCP)
			}
		case open && len(data) < lim:
			// The server went quiet before a match or the limit: the
			// probe's deadline ends it.
			if reason != probe.ReasonTimeout {
				t.Fatalf("silent server after %q: reason %q (%s), want timeout", data, reason, msg)
			}
			if r.TCP == nil || r.TCP.BytesRead != len(data) {
				t.Fatalf("read %+v, want %d bytes", r.TCP, len(data))
			}
		default:
			if reason != probe.ReasonExpectMismatch {
				t.Fatalf("expect %q on %q (limit %d): reason %q (%s), want expect_mismatch", expect, data, lim, reason, msg)
			}
			if want := min(len(data), lim); r.TCP == nil || r.TCP.BytesRead != want {
				t.Fatalf("read %+v, want %d bytes", r.TCP, want)
			}
			if len(data) >= lim && !strings.Contains(msg, "read_limit") {
				t.Fatalf("stopped by the read limit, message %q", msg)
			}
		}
		if r.TCP != nil {
			// One line, valid UTF-8, at most bannerMax bytes before
			// invalid sequences became U+FFFD.
			if !utf8.ValidString(r.TCP.Banner) || utf8.RuneCountInString(r.TCP.Banner) > bannerMax || strings.Contains(r.TCP.Banner, "\n") {
				t.Fatalf("banner %q", r.TCP.Banner)
			}
		}
	})
}
