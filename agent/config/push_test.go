package config

import (
	"errors"
	"maps"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestPushErrorsHavePositions: every problem in [exporter.push] is one
// error at its line, naming the field, wrapping its sentinel.
func TestPushErrorsHavePositions(t *testing.T) {
	const vm = "[exporter.push]\nurl = \"http://vm:8428/api/v1/import/prometheus\"\n"
	labeled := "[[target]]\nname = \"web\"\ntype = \"tcp\"\naddress = \"127.0.0.1:80\"\nlabels = { team = \"sre\" }\n"
	cases := []struct {
		name, toml string
		err        error
		field, msg string
	}{
		{"no url", "[exporter.push] # ERR\ninterval = \"10s\"\n" + okTCP, ErrRequired, "exporter.push", "url is required"},
		{"scheme", "[exporter.push]\nurl = \"vm:8428/api/v1/import/prometheus\" # ERR\n" + okTCP, ErrInvalid, "exporter.push.url", "scheme"},
		{"no host", "[exporter.push]\nurl = \"http:///api/v1/import/prometheus\" # ERR\n" + okTCP, ErrInvalid, "exporter.push.url", "no host"},
		{"no path", "[exporter.push]\nurl = \"http://vm:8428\" # ERR\n" + okTCP, ErrInvalid, "exporter.push.url",
			"http://vm:8428/api/v1/import/prometheus for VictoriaMetrics single-node or vmagent, http://vm:8428/insert/0/prometheus/api/v1/import/prometheus for vminsert"},
		{"credentials in url", "[exporter.push]\nurl = \"http://u:hunter2@vm:8428/api/v1/import/prometheus\" # ERR\n" + okTCP, ErrSecret, "exporter.push.url", "basic_auth"},
		{"port", "[exporter.push]\nurl = \"http://vm:84280/api/v1/import/prometheus\" # ERR\n" + okTCP, ErrInvalid, "exporter.push.url", "1-65535"},
		{"interval", vm + "interval = \"500ms\" # ERR\n" + okTCP, ErrInvalid, "exporter.push.interval", "at least 1s"},
		{"bad interval", vm + "interval = \"often\" # ERR\n" + okTCP, ErrDuration, "exporter.push.interval", ""},
		{"label name", vm + "labels = { \"fleet-name\" = \"prod\" } # ERR\n" + okTCP, ErrLabel, "exporter.push.labels.fleet-name", "label name"},
		{"instance label", vm + "labels = { instance = \"eu-1\" } # ERR\n" + okTCP, ErrLabel, "exporter.push.labels.instance", "node name"},
		{"series label", vm + "labels = { region = \"eu\" } # ERR\n" + okTCP, ErrLabel, "exporter.push.labels.region", "carry it twice"},
		{"le label", vm + "[exporter.push.labels]\nle = \"1\" # ERR\n" + okTCP, ErrLabel, "exporter.push.labels.le", "carry it twice"},
		{"empty value", vm + "labels = { fleet = \"\" } # ERR\n" + okTCP, ErrLabel, "exporter.push.labels.fleet", "empty value"},
		{"target's label", vm + "labels = { team = \"core\" } # ERR\n" + labeled, ErrLabel, "exporter.push.labels.team", `label of target "web" (`},
		{"password file", vm + "basic_auth = { username = \"vantage\", password_file = \"nope.pass\" } # ERR\n" + okTCP, ErrSecret, "exporter.push.basic_auth.password_file", "nope.pass"},
		{"two authorizations", "[exporter.push] # ERR\nurl = \"http://vm:8428/api/v1/import/prometheus\"\nbasic_auth = { username = \"u\" }\nbearer_token_env = \"HOME\"\n" + okTCP, ErrConflict, "exporter.push", "choose one"},
		{"client certificate", vm + "cert_file = \"c.pem\"\nkey_file = \"k.pem\" # ERR\n" + okTCP, ErrUnsupported, "exporter.push.key_file", "vmagent"},
		{"private CA", vm + "ca_file = \"ca.pem\" # ERR\n" + okTCP, ErrUnsupported, "exporter.push.ca_file", "system CA roots"},
		{"unknown key", vm + "intervall = \"5s\" # ERR\n" + okTCP, ErrUnknownKey, "exporter.push.intervall", `did you mean "interval"`},
	}
	env := WithLookupEnv(func(k string) (string, bool) { return "token", k == "HOME" })
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := writeFiles(t, map[string]string{"main.toml": c.toml})
			errs := loadErrors(t, dir, env)
			want := markedLine(t, c.toml)
			var e Error
			for _, x := range errs {
				// cert_file and key_file are each refused: the case
				// marks key_file's line.
				if int(x.Pos.Line) == want {
					e = x
				}
			}
			if e.Err == nil || (len(errs) != 1 && c.name != "client certificate") {
				t.Fatalf("want a problem at line %d, got %d:\n%v", want, len(errs), errs)
			}
			if e.Pos.File != filepath.Join(dir, "main.toml") || e.Pos.Col < 1 {
				t.Errorf("problem at %s, want main.toml:%d:COL", e.Pos, want)
			}
			if !errors.Is(e, c.err) || e.Field != c.field || !strings.Contains(e.Msg, c.msg) {
				t.Errorf("got %v (field %q, %v)\nwant %v, field %q, message containing %q", e, e.Field, e.Err, c.err, c.field, c.msg)
			}
			if strings.Contains(errs.Error(), "hunter2") {
				t.Error("the password is in the error")
			}
		})
	}
}

// TestPushLoads: defaults, labels with job overridable, credentials from
// files, and no push without the table.
func TestPushLoads(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"main.toml": `
[exporter.push]
url = "https://vminsert.example.com:8480/insert/0/prometheus/api/v1/import/prometheus?extra_label=env=prod"
labels = { fleet = "prod", job = "probers" }
bearer_token_file = "vm.token"
` + okTCP,
		"vm.token":   "t0ken\n",
		"plain.toml": "[exporter.push]\nurl = \"http://vm:8428/api/v1/import/prometheus\"\nbasic_auth = { username = \"vantage\", password_env = \"VM_PASSWORD\" }\n" + okTCP,
		"none.toml":  okTCP,
	})
	load := func(name string) *Config {
		t.Helper()
		p := filepath.Join(dir, name)
		cfg, err := Parse(p, []byte(mustRead(t, p)), WithLookupEnv(func(k string) (string, bool) { return "s3cret", k == "VM_PASSWORD" }))
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	p := load("main.toml").Exporter.Push
	if !p.Enabled() || p.URL != "https://vminsert.example.com:8480/insert/0/prometheus/api/v1/import/prometheus?extra_label=env=prod" ||
		p.Interval != 15*time.Second || !maps.Equal(p.Labels, map[string]string{"fleet": "prod", "job": "probers"}) ||
		p.BearerToken != "t0ken" || p.BasicAuthUser != "" {
		t.Errorf("push: %+v", p)
	}
	p = load("plain.toml").Exporter.Push
	if !maps.Equal(p.Labels, map[string]string{"job": "vantage"}) || p.BasicAuthUser != "vantage" || p.BasicAuthPassword != "s3cret" {
		t.Errorf("push with defaults: %+v", p)
	}
	if p := load("none.toml").Exporter.Push; p.Enabled() || p.Labels != nil {
		t.Errorf("push without [exporter.push]: %+v", p)
	}
}
