package config

import (
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
)

func TestKeyIndex(t *testing.T) {
	src := `# comment [not.a.table]
title = "x" # a = 1
"quoted.key" = 1
dotted.inner = 2
multi = """
[fake]
key = "\"""""
lit = '''
[fake2]'''
arr = [
  1,   # comment
  [2, 3],
  { a = 1, b = { c = "}" } },
]
date = 1979-05-27 07:32:00Z
[[target]]
name = "a"
[target.http]
headers = { "X-A" = "1", 'y' = '2' }
[[target.http.fail_if_header_matches]]
header = "h0"
[[target.http.fail_if_header_matches]]
header = "h1"
[[target]]
name = "b"   # second
[[target.http.fail_if_header_matches]]
header = "b0"
  [ table . "with spaces" ]
  "ključ" = "ü"
`
	var v map[string]any
	md, err := toml.Decode(src, &v)
	if err != nil {
		t.Fatal(err)
	}
	ix := indexKeys("f.toml", src)
	lineOf := func(needle string) int {
		for i, l := range strings.Split(src, "\n") {
			if strings.Contains(l, needle) {
				return i + 1
			}
		}
		t.Fatalf("%q not in source", needle)
		return 0
	}
	cases := []struct {
		path       string
		line, col  int
		lineNeedle string
	}{
		{"title", 0, 1, "title ="},
		{"quoted.key", 0, 1, `"quoted.key"`},
		{"dotted.inner", 0, 1, "dotted.inner"},
		{"multi", 0, 1, "multi ="},
		{"lit", 0, 1, "lit ="},
		{"arr", 0, 1, "arr ="},
		{"arr[0]", 0, 3, "  1,"},
		{"arr[1]", 0, 3, "[2, 3]"},
		{"arr[1][1]", 0, 7, "[2, 3]"},
		{"arr[2].a", 0, 5, "{ a = 1"},
		{"arr[2].b.c", 0, 18, "{ a = 1"},
		{"date", 0, 1, "date ="},
		{"target[0]", 0, 1, `name = "a"`},
		{"target[0].name", 0, 1, `name = "a"`},
		{"target[0].http", 0, 1, "[target.http]"},
		{"target[0].http.headers.X-A", 0, 13, "headers ="},
		{"target[0].http.headers.y", 0, 26, "headers ="},
		{"target[0].http.fail_if_header_matches[1].header", 0, 1, `"h1"`},
		{"target[1].name", 0, 1, `name = "b"`},
		{"target[1].http.fail_if_header_matches[0].header", 0, 1, `"b0"`},
		{"table.with spaces", 0, 3, "[ table"},
		{"table.with spaces.ključ", 0, 3, "ključ"},
	}
	// Headers sit one line above the key the needle finds.
	for i := range cases {
		c := &cases[i]
		c.line = lineOf(c.lineNeedle)
		if c.path == "target[0]" {
			c.line--
		}
	}
	for _, c := range cases {
		p, ok := ix.pos[c.path]
		if !ok {
			t.Errorf("%s: not indexed", c.path)
			continue
		}
		if int(p.Line) != c.line || int(p.Col) != c.col || p.File != "f.toml" {
			t.Errorf("%s at %s, want f.toml:%d:%d", c.path, p, c.line, c.col)
		}
	}
	// Missing keys fall back to their table.
	if p := ix.at("target[1].http.fail_if_header_matches[0].regex"); int(p.Line) != lineOf(`"b0"`)-1 {
		t.Errorf("fallback at %s", p)
	}
	// Every key toml knows, in toml's order, maps to an indexed path.
	seen := map[string]int{}
	for _, k := range md.Keys() {
		n := seen[k.String()]
		seen[k.String()]++
		if _, ok := ix.keyPath(k, n); !ok {
			t.Errorf("toml key %q (occurrence %d) has no indexed path", k, n)
		}
	}
	if len(ix.keys) != len(md.Keys()) {
		t.Errorf("indexed %d keys, toml lists %d", len(ix.keys), len(md.Keys()))
	}
}
