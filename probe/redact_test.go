package probe

import (
	"net/url"
	"testing"
)

func TestRedactURL(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		// Nothing secret: unchanged.
		{"", ""},
		{"https://api.example.com/health", "https://api.example.com/health"},
		{"10.0.0.53:53", "10.0.0.53:53"},
		{"http://[::1]:8080/a/b", "http://[::1]:8080/a/b"},
		// Userinfo: the password hidden, the user kept; a user alone is
		// often a token (https://TOKEN@host/), so it is hidden.
		{"ftp://u:hunter2@h/", "ftp://u:xxxxx@h/"},
		{"https://u:@h/", "https://u:xxxxx@h/"},
		{"https://ghp_s3cret@github.com/x", "https://xxxxx@github.com/x"},
		{"https://u:p%40ss@h/", "https://u:xxxxx@h/"},
		// Query: every value, keys kept; bare parts are values too.
		{"https://api.example.com/health?token=s3cret", "https://api.example.com/health?token=xxxxx"},
		{"https://h/?token=s3cret&region=eu", "https://h/?token=xxxxx&region=xxxxx"},
		{"https://h/?a=1;b=2", "https://h/?a=xxxxx;b=xxxxx"},
		{"https://h/?s3cret", "https://h/?xxxxx"},
		{"https://h/?empty=&k", "https://h/?empty=&xxxxx"},
		{"https://h/?", "https://h/?"},
		{"https://h/?t=a=b", "https://h/?t=xxxxx"},
		// Fragments, the same way (OAuth's #access_token=...).
		{"https://h/cb#access_token=s3cret&state=x", "https://h/cb#access_token=xxxxx&state=xxxxx"},
		{"https://h/?k=s3cret#s3cret", "https://h/?k=xxxxx#xxxxx"},
		{"https://u:s3cret@h/?k=s3cret#f=s3cret", "https://u:xxxxx@h/?k=xxxxx#f=xxxxx"},
		// DoH server URLs and other strings with a query.
		{"https://dns.example/dns-query?key=s3cret", "https://dns.example/dns-query?key=xxxxx"},
		// Strings that do not parse are redacted all the same: a config
		// error quotes what it refuses.
		{"http://h:99999/?token=s3cret", "http://h:99999/?token=xxxxx"},
		{"http://[bad/?token=s3cret", "http://[bad/?token=xxxxx"},
		{"http://u:s3cret@h:port/", "http://u:xxxxx@h:port/"},
		// A '#' or '?' in a password: url.Parse takes it for the fragment
		// (and fails); the whole password is still hidden.
		{"http://u:s3#cret@h/", "http://u:xxxxx@h/"},
		{"http://u:s3?cret@h/", "http://u:xxxxx@h/"},
		// '@' in a query value or fragment is not userinfo.
		{"https://h/?mail=a@b", "https://h/?mail=xxxxx"},
		{"https://h?mail=a@b", "https://h?mail=xxxxx"},
		{"https://h#a@b", "https://h#xxxxx"},
	} {
		if got := RedactURL(c.in); got != c.want {
			t.Errorf("RedactURL(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// A redacted URL that parsed still parses, to the same host and path.
func TestRedactURLKeepsTheURL(t *testing.T) {
	for _, s := range []string{
		"https://u:p@api.example.com:8443/v1/health?token=s3cret&x=1#frag",
		"http://[::1]:80/p%20q?a=%2F",
		"https://h/?",
	} {
		in, err := url.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		out, err := url.Parse(RedactURL(s))
		if err != nil {
			t.Fatalf("RedactURL(%q) does not parse: %v", s, err)
		}
		if out.Scheme != in.Scheme || out.Host != in.Host || out.EscapedPath() != in.EscapedPath() {
			t.Errorf("RedactURL(%q) = %q: scheme, host or path changed", s, out)
		}
		for k := range in.Query() {
			if out.Query().Get(k) != "xxxxx" {
				t.Errorf("RedactURL(%q) = %q: key %q lost", s, out, k)
			}
		}
	}
}

// FuzzRedactURL: redaction never panics, and a URL that parsed parses
// again, with no password and no query value left, and stays as it is
// when redacted again.
func FuzzRedactURL(f *testing.F) {
	f.Add("https://u:s3cret@h/?k=s3cret#s3cret")
	f.Add("http://u:s3#cret@h/")
	f.Add("https://tok@h/?a=1;b&c=")
	f.Fuzz(func(t *testing.T, s string) {
		got := RedactURL(s)
		in, err := url.Parse(s)
		if err != nil {
			return
		}
		if again := RedactURL(got); again != got {
			t.Fatalf("RedactURL(%q) = %q, and again %q", s, got, again)
		}
		out, err := url.Parse(got)
		if err != nil {
			t.Fatalf("RedactURL(%q) = %q does not parse: %v", s, got, err)
		}
		if in.User != nil {
			_, hasPass := in.User.Password()
			p, _ := out.User.Password()
			if hasPass && p != "xxxxx" || !hasPass && out.User.Username() != "xxxxx" {
				t.Errorf("RedactURL(%q) = %q: userinfo %q", s, got, out.User)
			}
		}
		for k, vs := range out.Query() {
			for _, v := range vs {
				if v != "xxxxx" && v != "" {
					t.Errorf("RedactURL(%q) = %q: %s=%q", s, got, k, v)
				}
			}
		}
	})
}

func TestRedactParseError(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		// The cause quotes a piece of the password: not shown.
		{"http://u:s3c?ret@h:80/", "does not parse as a URL (in a password, '?', '#', '/' and '@' must be percent-encoded)"},
		{"http://u:s3c#ret@h/", "does not parse as a URL (in a password, '?', '#', '/' and '@' must be percent-encoded)"},
		// The cause quotes what RedactURL shows: kept, without the URL.
		{"http://h:port/?token=s3cret", `invalid port ":port" after host`},
		{"http://[bad/?token=s3cret", "missing ']' in host"},
		{"http://h/%zz?token=s3cret", `invalid URL escape "%zz"`},
	} {
		_, err := url.Parse(c.in)
		if err == nil {
			t.Fatalf("url.Parse(%q) did not fail", c.in)
		}
		if got := RedactParseError(c.in, err).Error(); got != c.want {
			t.Errorf("RedactParseError(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
