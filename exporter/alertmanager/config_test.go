package alertmanager

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestNewRejectsBadConfigNamingEachProblem(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want []string // each must appear in the error
	}{
		{"no URL", Config{}, []string{"no Alertmanager URL"}},
		{"scheme", Config{URLs: []string{"ftp://am:9093"}}, []string{`URLs[0] "ftp://am:9093"`, `scheme must be http or https, not "ftp"`}},
		{"no scheme", Config{URLs: []string{"am:9093"}}, []string{`URLs[0] "am:9093"`, "scheme"}},
		{"no host", Config{URLs: []string{"http:///api"}}, []string{`URLs[0] "http:///api"`, "no host"}},
		{"unparsable", Config{URLs: []string{"http://am:port"}}, []string{`URLs[0] "http://am:port"`}},
		{"credentials", Config{URLs: []string{"http://u:pw@am:9093"}}, []string{`URLs[0] "http://u:xxxxx@am:9093"`, "credentials", "BasicAuthUser"}},
		{"query", Config{URLs: []string{"http://am:9093/?x=1"}}, []string{`URLs[0] "http://am:9093/?x=xxxxx"`, "no query"}},
		{"unparsable with a token", Config{URLs: []string{"http://am:port/?token=s3cret"}}, []string{`URLs[0] "http://am:port/?token=xxxxx"`}},
		{"duplicate", Config{URLs: []string{"http://am:9093", "http://am:9093/"}}, []string{`URLs[1] "http://am:9093/"`, "same Alertmanager as URLs[0]"}},
		{"negative", Config{URLs: []string{"http://am"}, Timeout: -time.Second, ResendInterval: -time.Minute, MaxPending: -1}, []string{"Timeout -1s", "ResendInterval -1m0s", "MaxPending -1"}},
		{"auth", Config{URLs: []string{"http://am"}, BasicAuthUser: "u", BearerToken: "t"}, []string{`basic auth (user "u") and BearerToken`}},
		{"password alone", Config{URLs: []string{"http://am"}, BasicAuthPassword: "p"}, []string{"BasicAuthPassword is set without BasicAuthUser"}},
		{"external labels", Config{URLs: []string{"http://am"}, ExternalLabels: map[string]string{"bad-name": "x", "empty": ""}}, []string{`name "bad-name"`, `ExternalLabels["empty"]`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, err := New(tc.cfg)
			if err == nil {
				t.Fatalf("New accepted %+v", tc.cfg)
			}
			if n != nil || !errors.Is(err, ErrInvalidConfig) {
				t.Errorf("New returned %v, %v; want nil and an ErrInvalidConfig", n, err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "s3cret") || strings.Contains(err.Error(), ":pw@") {
				t.Errorf("error %q shows a secret", err)
			}
		})
	}
}

func TestNewReportsEveryProblemAtOnce(t *testing.T) {
	_, err := New(Config{URLs: []string{"ftp://a", "http://"}, Timeout: -1})
	for _, w := range []string{"URLs[0]", "URLs[1]", "Timeout"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("error %v lacks %q", err, w)
		}
	}
}

func TestNewFillsDefaultsAndPostURLs(t *testing.T) {
	n, err := New(Config{URLs: []string{"http://am-1:9093", "https://host/prefix/", "http://h/a%2Fb"}})
	if err != nil {
		t.Fatal(err)
	}
	if n.cfg.Timeout != DefaultTimeout || n.cfg.ResendInterval != DefaultResendInterval || n.cfg.MaxPending != DefaultMaxPending {
		t.Errorf("defaults: %v %v %v", n.cfg.Timeout, n.cfg.ResendInterval, n.cfg.MaxPending)
	}
	for i, want := range []string{"http://am-1:9093/api/v2/alerts", "https://host/prefix/api/v2/alerts", "http://h/a%2Fb/api/v2/alerts"} {
		if got := n.senders[i].ep.post; got != want {
			t.Errorf("URL %q posts to %q, want %q", n.senders[i].ep.url, got, want)
		}
	}
	if st := n.Status(); len(st) != 3 || st[1].URL != "https://host/prefix/" {
		t.Errorf("Status %+v: want one per URL, as configured", st)
	}
}
