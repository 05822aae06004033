package probe

import (
	"errors"
	"net/url"
	"strconv"
	"strings"
)

// Redacted stands in for a secret in anything shown: API, status page,
// logs, probe messages, errors.
const Redacted = "xxxxx"

// RedactURL returns s fit to show. Whatever could hold a secret is
// replaced by Redacted and the rest is kept as written:
//
//   - userinfo: the password (https://user:xxxxx@host/); a user without a
//     password as a whole, since that is how tokens are often passed
//     (https://xxxxx@host/);
//   - the query: every value, keys kept (?token=xxxxx&region=xxxxx); a
//     part without '=' counts as a value (?xxxxx);
//   - the fragment, the same way (#access_token=xxxxx).
//
// The path is shown as it is. s need not parse as a URL (a config error
// quotes what it refuses), so this works on the text, with url.Parse's
// boundaries: the userinfo runs to the last '@' of the authority (after
// "://" or a leading "//", up to the first '/', '?' or '#'), the query
// from the first '?' to the first '#', the fragment from there. In a URL
// that does not parse, the userinfo runs to the last '@' before the first
// '/': a password holding '?' or '#' makes a URL that does not parse, and
// is hidden whole. A URL that parsed still parses, to the same scheme, host and path.
func RedactURL(s string) string {
	if !strings.ContainsAny(s, "@?#") {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	rest := s
	i := -1 // where the authority starts
	switch {
	case strings.HasPrefix(rest, "//"): // scheme-relative: //host/path
		i = 2
	default:
		// A scheme's "://": nothing before it that ends a scheme.
		if j := strings.Index(rest, "://"); j > 0 && !strings.ContainsAny(rest[:j], "/?#@") {
			i = j + 3
		}
	}
	if i >= 0 {
		b.WriteString(rest[:i])
		rest = rest[i:]
		// The authority ends where url.Parse ends it; in a URL that does
		// not parse, at the first '/' only.
		end := strings.IndexAny(rest, "/?#")
		if _, err := url.Parse(s); err != nil && strings.Contains(rest, "@") {
			end = strings.IndexByte(rest, '/')
		}
		if end < 0 {
			end = len(rest)
		}
		if at := strings.LastIndexByte(rest[:end], '@'); at >= 0 {
			if user, _, ok := strings.Cut(rest[:at], ":"); ok {
				b.WriteString(user)
				b.WriteByte(':')
			}
			b.WriteString(Redacted)
			b.WriteByte('@')
			rest = rest[at+1:]
		}
	}
	frag, hasFrag := "", false
	if i := strings.IndexByte(rest, '#'); i >= 0 {
		rest, frag, hasFrag = rest[:i], rest[i+1:], true
	}
	if i := strings.IndexByte(rest, '?'); i >= 0 {
		b.WriteString(rest[:i+1])
		redactPairs(&b, rest[i+1:])
	} else {
		b.WriteString(rest)
	}
	if hasFrag {
		b.WriteByte('#')
		redactPairs(&b, frag)
	}
	return b.String()
}

// redactPairs writes a query (or fragment) with every value redacted:
// key=value and bare parts, separated by '&' or ';' as written.
func redactPairs(b *strings.Builder, q string) {
	for q != "" {
		part := q
		sep := strings.IndexAny(q, "&;")
		if sep >= 0 {
			part = q[:sep]
		}
		switch k, v, ok := strings.Cut(part, "="); {
		case part == "":
		case !ok:
			b.WriteString(Redacted)
		case v == "":
			b.WriteString(part)
		default:
			b.WriteString(k)
			b.WriteByte('=')
			b.WriteString(Redacted)
		}
		if sep < 0 {
			return
		}
		b.WriteByte(q[sep])
		q = q[sep+1:]
	}
}

// RedactParseError returns the cause of url.Parse(s)'s error err, fit to
// show beside RedactURL(s): without url.Error's copy of s, and without a
// piece of s that the redaction hides. url.Parse quotes what it trips on,
// such as the "port" of http://user:pa?ss@host/, which is a piece of the
// password; such a cause is replaced by a description that quotes nothing.
func RedactParseError(s string, err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	shown := RedactURL(s)
	msg := err.Error()
	for i := strings.IndexByte(msg, '"'); i >= 0; i = strings.IndexByte(msg, '"') {
		q, qerr := strconv.QuotedPrefix(msg[i:])
		if qerr != nil {
			break
		}
		if v, _ := strconv.Unquote(q); !strings.Contains(shown, v) {
			return errors.New("does not parse as a URL (in a password, '?', '#', '/' and '@' must be percent-encoded)")
		}
		msg = msg[i+len(q):]
	}
	return err
}
