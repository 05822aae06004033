package config

import (
	"net"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/vantage-probe/vantage/probe/httpprobe"
)

const fpBase = `
[[target]]
name = "web"
type = "http"
url = "https://web.example.com/"
regions = ["eu-west", "us-east", "ap-south"]
labels = { team = "web", severity = "page", tier = "1" }
[target.http]
headers = { A = "1", B = "2" }
body_regex = "ok"

[[target]]
name = "db"
type = "tcp"
address = "db:5432"
`

func fingerprints(t *testing.T, src string) map[string]uint64 {
	t.Helper()
	cfg := mustLoad(t, writeFiles(t, map[string]string{"main.toml": src}))
	out := map[string]uint64{}
	for _, tg := range cfg.Targets {
		out[tg.Name] = tg.Fingerprint
	}
	return out
}

func TestFingerprintStable(t *testing.T) {
	base := fingerprints(t, fpBase)
	if base["web"] == 0 || base["web"] == base["db"] {
		t.Fatalf("fingerprints %v", base)
	}
	if again := fingerprints(t, fpBase); again["web"] != base["web"] || again["db"] != base["db"] {
		t.Error("the same file gives different fingerprints")
	}
	// Reordered labels, headers, regions and targets, moved lines and
	// comments: same targets, same fingerprints.
	reordered := `# a comment that moves every line


[[target]]
name = "db"
address = "db:5432"
type = "tcp"

[[target]]
type = "http"
name = "web"
labels = { tier = "1", severity = "page", team = "web" }
regions = ["ap-south", "us-east", "eu-west"]
url = "https://web.example.com/"
[target.http]
body_regex = "ok"
headers = { B = "2", A = "1" }
`
	if got := fingerprints(t, reordered); got["web"] != base["web"] || got["db"] != base["db"] {
		t.Errorf("reordering changed fingerprints: %v vs %v", got, base)
	}
	// Writing a default out changes nothing either.
	explicit := strings.Replace(fpBase, `body_regex = "ok"`, "body_regex = \"ok\"\nmethod = \"GET\"\nfollow_redirects = true\nmax_redirects = 10", 1)
	if got := fingerprints(t, explicit); got["web"] != base["web"] {
		t.Error("spelling out defaults changed the fingerprint")
	}
}

func TestFingerprintChangesWithTheFile(t *testing.T) {
	base := fingerprints(t, fpBase)["web"]
	edits := map[string][2]string{
		"interval":  {`url = "https://web.example.com/"`, "url = \"https://web.example.com/\"\ninterval = \"10s\""},
		"url":       {`web.example.com/"`, `web.example.com/x"`},
		"label":     {`tier = "1"`, `tier = "2"`},
		"new label": {`tier = "1"`, `tier = "1", x = ""`},
		"region":    {`"ap-south"]`, `"ap-east"]`},
		"header":    {`B = "2"`, `B = "3"`},
		"regex":     {`body_regex = "ok"`, `body_regex = "OK"`},
		"name":      {`name = "web"`, `name = "web2"`},
	}
	for what, e := range edits {
		src := strings.Replace(fpBase, e[0], e[1], 1)
		if src == fpBase {
			t.Fatalf("%s: edit did not apply", what)
		}
		for name, fp := range fingerprints(t, src) {
			if fp == base {
				t.Errorf("changing the %s leaves %s's fingerprint unchanged", what, name)
			}
		}
	}
}

// TestFingerprintCoversEveryOption mutates every exported field of every
// protocol's Options, one at a time, and requires a new fingerprint: a
// field added to an Options struct later is covered without a test edit.
func TestFingerprintCoversEveryOption(t *testing.T) {
	src := `
[[target]]
name = "h"
type = "http"
url = "https://h/"
[[target]]
name = "s"
type = "tls"
address = "s:443"
[[target]]
name = "d"
type = "dns"
[target.dns]
server = "127.0.0.1"
query = "q."
[[target]]
name = "c"
type = "tcp"
address = "c:1"
[[target]]
name = "i"
type = "icmp"
address = "i"
[[target]]
name = "g"
type = "grpc"
address = "g:1"
`
	dir := writeFiles(t, map[string]string{"main.toml": src})
	for _, name := range []string{"h", "s", "d", "c", "i", "g"} {
		opts := optionsOf(mustLoad(t, dir).Target(name))
		for _, path := range leafPaths(opts.Type(), "") {
			tg := mustLoad(t, dir).Target(name)
			before := tg.fingerprint()
			o := optionsOf(tg)
			mutate(t, fieldByPath(o.Elem(), path))
			if h, ok := o.Interface().(*httpprobe.Options); ok {
				tg.SetHTTP(*h) // HTTP() is a copy
			}
			if tg.fingerprint() == before {
				t.Errorf("%s: changing %s leaves the fingerprint unchanged", tg.Type, path)
			}
		}
	}
	tg := mustLoad(t, dir).Target("c")
	before := tg.fingerprint()
	tg.Pos.Line += 10
	tg.Pos.File = "elsewhere.toml"
	if tg.fingerprint() != before {
		t.Error("the position changes the fingerprint")
	}
}

func optionsOf(t *Target) reflect.Value {
	for _, v := range []reflect.Value{reflect.ValueOf(t.HTTP()), reflect.ValueOf(t.TLS), reflect.ValueOf(t.DNS), reflect.ValueOf(t.TCP),
		reflect.ValueOf(t.ICMP), reflect.ValueOf(t.GRPC)} {
		if !v.IsNil() {
			return v
		}
	}
	panic("no options")
}

// leafPaths lists the dotted paths of the leaf fields of struct type t
// (pointer to struct); nested structs are walked, other values are leaves.
func leafPaths(t reflect.Type, prefix string) []string {
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	var out []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		p := prefix + f.Name
		if f.Type.Kind() == reflect.Struct && f.Type != reflect.TypeFor[netip.Addr]() {
			out = append(out, leafPaths(f.Type, p+".")...)
			continue
		}
		out = append(out, p)
	}
	return out
}

func fieldByPath(v reflect.Value, path string) reflect.Value {
	for _, name := range strings.Split(path, ".") {
		v = v.FieldByName(name)
	}
	return v
}

// mutate sets v to a value different from its current one.
func mutate(t *testing.T, v reflect.Value) {
	t.Helper()
	switch v.Kind() {
	case reflect.String:
		v.SetString(v.String() + "x")
	case reflect.Bool:
		v.SetBool(!v.Bool())
	case reflect.Int, reflect.Int64:
		v.SetInt(v.Int() + 7)
	case reflect.Uint16:
		v.SetUint(v.Uint() + 7)
	case reflect.Slice:
		v.Set(reflect.Append(v, reflect.New(v.Type().Elem()).Elem()))
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		m.SetMapIndex(reflect.ValueOf("X-New"), reflect.ValueOf("1"))
		v.Set(m)
	case reflect.Pointer:
		if v.Type() == reflect.TypeFor[*net.Resolver]() {
			v.Set(reflect.ValueOf(&net.Resolver{PreferGo: true}))
			return
		}
		t.Fatalf("cannot mutate %s", v.Type())
	case reflect.Struct:
		if v.Type() == reflect.TypeFor[netip.Addr]() {
			v.Set(reflect.ValueOf(netip.MustParseAddr("192.0.2.77")))
			return
		}
		t.Fatalf("cannot mutate %s", v.Type())
	default:
		t.Fatalf("cannot mutate %s (%s): teach the test", v.Type(), v.Kind())
	}
}
