package dnsprobe

import (
	"regexp"
	"slices"
	"testing"

	"github.com/miekg/dns"

	"github.com/vantage-probe/vantage/probe"
)

// Driving the prober against a DNS server per input is too slow to fuzz; the
// answer is what a server controls, so the fuzz target feeds raw answer
// bytes through the same two steps Probe runs after the exchange: unpack
// (malformed answers) and check (truncation, rcode, answer regexes).

// answerSeeds are packed answers a real server could send.
func answerSeeds(f testing.TB) [][]byte {
	f.Helper()
	rr := func(s string) dns.RR {
		r, err := dns.NewRR(s)
		if err != nil {
			f.Fatal(err)
		}
		return r
	}
	msg := func(rcode int, truncated bool, answers ...dns.RR) []byte {
		m := new(dns.Msg)
		m.SetQuestion("www.example.com.", dns.TypeA)
		m.Response, m.Rcode, m.Truncated, m.Answer = true, rcode, truncated, answers
		b, err := m.Pack()
		if err != nil {
			f.Fatal(err)
		}
		return b
	}
	return [][]byte{
		msg(dns.RcodeSuccess, false, rr("www.example.com. 300 IN A 192.0.2.1"), rr("www.example.com. 300 IN A 10.0.0.1")),
		msg(dns.RcodeSuccess, false, rr("www.example.com. 300 IN AAAA 2001:db8::1")),
		msg(dns.RcodeSuccess, false, rr(`www.example.com. 60 IN TXT "v=spf1 -all" "two\"quoted\\" "\255\000tab	x"`)),
		msg(dns.RcodeSuccess, false, rr("www.example.com. 60 IN CNAME edge.example.net."), rr("edge.example.net. 60 IN A 192.0.2.7")),
		msg(dns.RcodeSuccess, false, rr("example.com. 60 IN MX 10 mail.example.com."), rr(`example.com. 60 IN CAA 0 issue "letsencrypt.org"`)),
		msg(dns.RcodeNameError, false),
		msg(dns.RcodeServerFailure, false),
		msg(dns.RcodeSuccess, true, rr("www.example.com. 300 IN A 192.0.2.1")),
		msg(dns.RcodeSuccess, false),
		// A question whose name is a compression pointer to itself.
		{0, 1, 0x81, 0x80, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 0x0c, 0, 1, 0, 1},
	}
}

func FuzzAnswerCheck(f *testing.F) {
	for i, b := range answerSeeds(f) {
		f.Add(b, `^www\.example\.com\.\s+\d+\s+IN\s+A\s+192\.0\.2\.`, `\s10\.`, uint8(i%3), uint8(i))
		f.Add(b, `(?i)"v=spf1`, ``, uint8(0), uint8(i+1))
		f.Add(b, ``, `.`, uint8(1), uint8(i+2))
	}
	f.Add([]byte{}, `(`, `[`, uint8(0), uint8(0))
	f.Fuzz(func(t *testing.T, raw []byte, answerRE, failRE string, minAnswers, rcodes uint8) {
		valid := [][]string{nil, {"NOERROR"}, {"NXDOMAIN"}, {"NOERROR", "SERVFAIL"}}[rcodes%4]
		p, err := New(Options{Server: "127.0.0.1:53", Query: "www.example.com.", ValidRcodes: valid,
			AnswerRegex: answerRE, FailIfAnswerMatches: failRE, MinAnswers: int(minAnswers % 4)})
		if err != nil {
			for _, re := range []string{answerRE, failRE} {
				if _, cerr := regexp.Compile(re); cerr != nil {
					return // refused for the regex, as it must be
				}
			}
			t.Fatalf("New refused compilable regexes %q, %q: %v", answerRE, failRE, err)
		}
		m, reason, err := unpack(raw)
		if err != nil {
			if m != nil || reason != probe.ReasonDNSProtocol {
				t.Fatalf("malformed answer: msg %v, reason %q", m, reason)
			}
			return
		}
		facts := &probe.DNSFacts{}
		reason, err = p.check(m, facts)

		// Facts describe the answer whatever the verdict.
		if facts.AnswerRRs != len(m.Answer) || len(facts.Answers) != len(m.Answer) ||
			facts.AuthorityRRs != len(m.Ns) || facts.AdditionalRRs != len(m.Extra) ||
			facts.RcodeValue != m.Rcode || facts.Rcode == "" {
			t.Fatalf("facts %+v for %v", facts, m)
		}
		answers := make([]string, len(m.Answer))
		for i, rr := range m.Answer {
			answers[i] = rr.String()
		}
		if !slices.Equal(facts.Answers, answers) && len(answers) > 0 {
			t.Fatalf("answers %q, want %q", facts.Answers, answers)
		}

		// The verdict, recomputed with regexp.MatchString on the
		// presentation format of each answer RR.
		matches := func(re string) bool {
			for _, a := range answers {
				if regexp.MustCompile(re).MatchString(a) {
					return true
				}
			}
			return false
		}
		validRcode := slices.Contains(p.validRcodes, m.Rcode)
		want := probe.ReasonNone
		switch {
		case m.Truncated:
			want = probe.ReasonDNSProtocol
		case !validRcode:
			want = probe.ReasonRcodeMismatch
		case len(answers) < int(minAnswers%4):
			want = probe.ReasonAnswerMismatch
		case answerRE != "" && !matches(answerRE):
			want = probe.ReasonAnswerMismatch
		case failRE != "" && matches(failRE):
			want = probe.ReasonAnswerMismatch
		}
		if reason != want || (err == nil) != (want == probe.ReasonNone) {
			t.Fatalf("answers %q rcode %d tc %v, answer_regex %q, fail_if_answer_matches %q, min %d: reason %q (%v), want %q",
				answers, m.Rcode, m.Truncated, answerRE, failRE, minAnswers%4, reason, err, want)
		}
	})
}

// TestAnswerSeedsUnpack keeps the seeds meaningful: all but the last (a
// compression loop) unpack.
func TestAnswerSeedsUnpack(t *testing.T) {
	seeds := answerSeeds(t)
	for i, b := range seeds {
		_, _, err := unpack(b)
		if (err == nil) != (i < len(seeds)-1) {
			t.Errorf("seed %d: unpack error %v", i, err)
		}
	}
}
