package config

import (
	"fmt"
	"strings"
	"testing"
)

// BenchmarkParse10k is a reload of 10,000 HTTPS targets in 20 teams:
// decode, validate, defaults, fingerprints, shared options and labels, and
// the strings' own copies. B/op is the garbage a reload makes.
func BenchmarkParse10k(b *testing.B) {
	var sb strings.Builder
	sb.WriteString("[agent]\nregion = \"eu-west\"\n[defaults]\ninterval = \"40s\"\ntimeout = \"10s\"\n")
	for i := range 10000 {
		fmt.Fprintf(&sb, "\n[[target]]\nname = \"https-%05d\"\nlabels = { team = \"team%02d\" }\ntype = \"http\"\nurl = \"https://svc-%d.example.com/health\"\n[target.http]\nca_file = \"/etc/vantage/ca.pem\"\n", i, i%20, i%500)
	}
	data := []byte(sb.String())
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse("bench.toml", data); err != nil {
			b.Fatal(err)
		}
	}
}
