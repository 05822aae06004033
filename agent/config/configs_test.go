package config

import (
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/vantage-probe/vantage/configs"
)

// TestEveryExampleConfigLoads loads each embedded config the way the binary
// does, and each file on disk the way `vantage agent -config` does.
func TestEveryExampleConfigLoads(t *testing.T) {
	names, err := fs.Glob(configs.FS, "*.toml")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(names, "example.toml") || !slices.Contains(names, "demo.toml") {
		t.Fatalf("embedded configs %v lack example.toml or demo.toml", names)
	}
	onDisk, err := filepath.Glob(filepath.Join("..", "..", "configs", "*.toml"))
	if err != nil || len(onDisk) != len(names) {
		t.Fatalf("configs on disk %v (%v), embedded %v", onDisk, err, names)
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			data, err := fs.ReadFile(configs.FS, name)
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := Parse(name, data, WithFS(configs.FS))
			if err != nil {
				t.Fatalf("embedded %s:\n%v", name, err)
			}
			if len(cfg.Targets) == 0 {
				t.Errorf("%s has no targets", name)
			}
			// demo.toml names the farm's files by placeholder (/farm/ca.pem):
			// read from disk, it is checked as text, as the embedded copy is.
			var opts []Option
			if name == "demo.toml" {
				opts = append(opts, WithFS(os.DirFS(filepath.Join("..", "..", "configs"))))
			}
			disk, err := os.ReadFile(filepath.Join("..", "..", "configs", name))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := Parse(filepath.Join("..", "..", "configs", name), disk, opts...); err != nil {
				t.Errorf("on disk: %v", err)
			}
		})
	}
}

func TestExampleCoversEverything(t *testing.T) {
	data, err := fs.ReadFile(configs.FS, "example.toml")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := Parse("example.toml", data, WithFS(configs.FS))
	if err != nil {
		t.Fatal(err)
	}
	types := map[string]bool{}
	for _, tg := range cfg.Targets {
		types[tg.Type] = true
		// Every example target builds a real prober: nothing in it needs a
		// file or variable that is not there.
		if _, err := tg.NewProber(); err != nil {
			t.Errorf("%s: NewProber: %v", tg.Name, err)
		}
	}
	for _, typ := range Types {
		if !types[typ] {
			t.Errorf("example.toml has no %s target", typ)
		}
	}
	var absolute, recurring bool
	for _, m := range cfg.Maintenance {
		absolute = absolute || !m.Start.IsZero()
		recurring = recurring || m.Start.IsZero()
	}
	if !absolute || !recurring {
		t.Error("example.toml lacks an absolute or a recurring maintenance window")
	}
	// The example is the config reference's companion: every key of the
	// schema appears in it, set or commented out.
	for _, key := range schemaKeys(reflect.TypeFor[fileSchema]()) {
		re := regexp.MustCompile(`(?m)(^|[\s{,#])` + regexp.QuoteMeta(key) + `\s*=`)
		if !re.Match(data) {
			t.Errorf("example.toml does not show the key %q", key)
		}
	}
}

// schemaKeys lists every toml key name in the schema, tables included.
func schemaKeys(t reflect.Type) []string {
	var out []string
	seen := map[reflect.Type]bool{}
	var walk func(reflect.Type)
	walk = func(t reflect.Type) {
		for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct || seen[t] || reflect.PointerTo(t).Implements(reflect.TypeFor[leaf]()) {
			return
		}
		seen[t] = true
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if f.Anonymous {
				walk(f.Type)
				continue
			}
			ft := f.Type
			for ft.Kind() == reflect.Pointer || ft.Kind() == reflect.Slice {
				ft = ft.Elem()
			}
			// Tables are written as [name] headers, not "name =".
			if ft.Kind() != reflect.Struct || reflect.PointerTo(ft).Implements(reflect.TypeFor[leaf]()) || f.Tag.Get("toml") == "basic_auth" ||
				f.Tag.Get("toml") == "fail_if_header_matches" || f.Tag.Get("toml") == "fail_if_header_not_matches" || f.Tag.Get("toml") == "json" {
				out = append(out, f.Tag.Get("toml"))
			}
			walk(f.Type)
		}
	}
	walk(t)
	return out
}

// TestDemoConfigWithFarmAddresses loads demo.toml the way the demo uses it:
// placeholders replaced by real loopback addresses.
func TestDemoConfigWithFarmAddresses(t *testing.T) {
	data, err := fs.ReadFile(configs.FS, "demo.toml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	writeTLSFiles(t, dir, "ca.pem")
	data = []byte(strings.ReplaceAll(string(data), "/farm/ca.pem", filepath.ToSlash(filepath.Join(dir, "ca.pem"))))
	cfg, err := Parse("demo.toml", data)
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Regions(); !slices.Equal(got, []string{"ap-south", "eu-west", "us-east"}) {
		t.Errorf("demo regions %v, want three", got)
	}
	if cfg.Quorum.MinRegions != 2 {
		t.Errorf("demo quorum %d", cfg.Quorum.MinRegions)
	}
	for _, region := range []struct{ name, ip string }{{"eu-west", "127.0.1.2"}, {"us-east", "127.0.2.1"}, {"ap-south", "127.0.3.2"}} {
		c, err := Parse("demo.toml", data)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.ApplyOverrides(Overrides{Node: region.name + "-x", Region: region.name, Listen: "127.0.0.1:0",
			Bind: region.ip + ":0", SourceIP: region.ip}); err != nil {
			t.Fatal(err)
		}
		for _, tg := range c.Targets {
			if ip := netOf(tg).SourceIP.String(); ip != region.ip {
				t.Errorf("%s in %s probes from %s", tg.Name, region.name, ip)
			}
		}
	}
}
