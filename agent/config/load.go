package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unique"

	"github.com/BurntSushi/toml"

	"github.com/vantage-probe/vantage/probe/httpprobe"
)

// Option changes how Parse finds included files, secrets and defaults.
type Option func(*loader)

// WithFS resolves include globs inside fsys (io/fs paths, relative to the
// directory of the name given to Parse), for configs embedded in the binary.
// Other files a config names (CA bundles, secrets) are still read from the
// operating system.
func WithFS(fsys fs.FS) Option { return func(l *loader) { l.fsys = fsys } }

// WithLookupEnv replaces os.LookupEnv for password_env and bearer_token_env,
// so callers (and tests) control the environment a config sees.
func WithLookupEnv(lookup func(string) (string, bool)) Option {
	return func(l *loader) { l.lookupEnv = lookup }
}

// WithHostname replaces os.Hostname as the default [agent].node.
func WithHostname(hostname func() (string, error)) Option {
	return func(l *loader) { l.hostname = hostname }
}

type loader struct {
	fsys      fs.FS
	lookupEnv func(string) (string, bool)
	hostname  func() (string, error)
	c         collector
	// labels and http intern (see interned) targets' label maps and HTTP
	// options without URL: the targets of a team file usually carry the
	// same few labels and differ in their URL alone, so one copy serves
	// them all.
	labels map[uint64][]map[string]string
	http   map[uint64][]*httpprobe.Options
	// files are the outcomes of reading the CA bundles and key pairs
	// targets name, by path: one read per file per load.
	files map[string]error
	later []func() // see afterValid
	// handles keep the strings interned in this parse canonical until it
	// ends (see intern).
	handles []unique.Handle[string]
	// decoded, when set, sees each file's text and its schema as toml
	// decoded it (from a copy of the text, which toml makes): tests check
	// that no string of the Config lies in either text.
	decoded func(text string, schema *fileSchema)
}

// source is one parsed file.
type source struct {
	name   string // as given or as globbed: what errors print
	dir    string // base for relative paths in the file ("" for an fs.FS root)
	ix     *keyIndex
	schema fileSchema
}

// Load reads, decodes and validates the config file and the files
// it includes. On any problem it returns Errors listing all of them.
func Load(file string) (*Config, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		var pe *fs.PathError
		msg := err.Error()
		if errors.As(err, &pe) {
			msg = pe.Err.Error()
		}
		return nil, Errors{{Pos: Pos{File: file}, Msg: "cannot read: " + msg, Err: fmt.Errorf("%w: %w", ErrInclude, err)}}
	}
	return Parse(file, data)
}

// Parse decodes and validates data as the config file called name. Without
// WithFS, includes and relative paths are resolved on the operating system
// relative to name's directory.
func Parse(name string, data []byte, opts ...Option) (*Config, error) {
	l := &loader{lookupEnv: os.LookupEnv, hostname: os.Hostname}
	for _, o := range opts {
		o(l)
	}
	dir := filepath.Dir(name)
	if l.fsys != nil {
		dir = path.Dir(name)
	}
	main := l.decode(name, dir, data)
	if main == nil {
		return nil, l.c.err()
	}
	srcs := []*source{main}
	srcs = append(srcs, l.includes(main)...)
	cfg := l.build(srcs)
	if err := l.c.err(); err != nil {
		return nil, err
	}
	l.checkFiles(cfg)
	if err := l.c.err(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// decode parses one file strictly: syntax errors, unknown keys and type
// mismatches become Errors. It returns nil when the file did not parse.
func (l *loader) decode(name, dir string, data []byte) *source {
	s := &source{name: name, dir: dir}
	text := string(data)
	md, err := toml.Decode(text, &s.schema)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			l.c.add(ErrSyntax, syntaxPos(name, text, pe.Position), "", "%s", pe.Message)
		} else {
			// A value where a table belongs fails the whole decode; toml
			// names the line and key in its message only.
			pos, field, msg := Pos{File: name}, "", strings.TrimPrefix(err.Error(), "toml: ")
			if m := decodeErrRe.FindStringSubmatch(err.Error()); m != nil {
				line, _ := strconv.Atoi(m[1])
				pos.Line = pos32(line)
				field, msg = m[2], tableMismatch(m[3])
				// The text parsed, so the key index can add the column.
				ix := indexKeys(name, text)
				for _, e := range ix.keys {
					if p := ix.pos[e.path]; e.plain == strings.ReplaceAll(field, ".", "\x00") && p.Line == pos.Line {
						pos = p
						break
					}
				}
			}
			l.c.add(ErrType, pos, field, "%s", msg)
		}
		return nil
	}
	if l.decoded != nil {
		l.decoded(text, &s.schema)
	}
	s.ix = indexKeys(name, text)
	// Values first: errors about unknown keys name targets by their name.
	l.leaves(s, reflect.ValueOf(&s.schema).Elem(), "")
	l.unknownKeys(s, md)
	return s
}

// syntaxPos is where a parse error is, from its byte offset: the lexer's
// line has already moved past a newline that ended a header too early
// ("[[target]" then a newline), while the offset and column point at the
// line the bracket is missing from.
func syntaxPos(name, text string, p toml.Position) Pos {
	if p.Start < 0 || p.Start > len(text) {
		return Pos{File: name, Line: pos32(p.Line), Col: pos32(p.Col)}
	}
	before := text[:p.Start]
	return Pos{File: name, Line: pos32(1 + strings.Count(before, "\n")), Col: pos32(p.Start - strings.LastIndexByte(before, '\n'))}
}

// intern returns the one copy of s that every string equal to it in this
// parse shares, in memory of its own: a decoded string is a slice of the
// file's whole text. unique forgets a value once no handle to it is left,
// and a parse of many targets spans garbage collections: the loader holds
// the handles until Parse returns, so that equal strings decoded on either
// side of a collection are still one copy.
func (l *loader) intern(s string) string {
	if s == "" {
		return ""
	}
	h := unique.Make(s)
	l.handles = append(l.handles, h)
	return h.Value()
}

var (
	decodeErrRe  = regexp.MustCompile(`^toml: line (\d+) \(last key "([^"]*)"\): (.*)$`)
	foundRe      = regexp.MustCompile(`expected table but found (\S+)`)
	tomlTypeName = map[string]string{"string": "a string", "int64": "an integer", "float64": "a float", "bool": "a boolean", "time.Time": "a datetime"}
)

// tableMismatch rephrases toml's Go-typed messages in TOML terms.
func tableMismatch(msg string) string {
	if m := foundRe.FindStringSubmatch(msg); m != nil {
		got := tomlTypeName[m[1]]
		if got == "" {
			got = "an array"
		}
		return "expected a table, got " + got
	}
	if strings.Contains(msg, "destination has type slice") {
		return "expected an array of tables ([[...]])"
	}
	return msg
}

// unknownKeys reports keys the schema does not have: undecoded keys, and
// keys that toml matched to a field only case-insensitively.
func (l *loader) unknownKeys(s *source, md toml.MetaData) {
	undecoded := map[string]bool{}
	for _, k := range md.Undecoded() {
		undecoded[k.String()] = true
	}
	seen := map[string]int{}
	var reported []string
	for _, k := range md.Keys() {
		ks := k.String()
		n := seen[ks]
		seen[ks]++
		schema := reflect.TypeFor[fileSchema]()
		if !undecoded[ks] && (schemaKnows(schema, k, false) || !schemaKnows(schema, k, true)) {
			// Decoded and spelt right, or decoded as part of a value that
			// is not a table (reported as a type error).
			continue
		}
		if slices.ContainsFunc(reported, func(p string) bool { return strings.HasPrefix(ks, p+".") }) {
			continue // inside an unknown table already reported
		}
		if n == 0 {
			reported = append(reported, ks)
		}
		field := ks
		p, found := s.ix.keyPath(k, n)
		if found {
			field = displayPath(s, p)
		}
		l.c.add(ErrUnknownKey, s.ix.at(p), field, "unknown key%s", suggest(k))
	}
}

// schemaKnows reports whether key names a field of t with exactly the
// spelling of its toml tag, or, with fold, in any case (toml itself matches
// field names case-insensitively, which a strict config must not).
func schemaKnows(t reflect.Type, key toml.Key, fold bool) bool {
	for i := 0; i < len(key); i++ {
		for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
			t = t.Elem()
		}
		if t.Kind() == reflect.Map {
			t = t.Elem()
			continue
		}
		if reflect.PointerTo(t).Implements(reflect.TypeFor[leaf]()) {
			// An opt leaf: a table of strings takes one more segment.
			v := reflect.New(t).Elem().Field(0) // opt.V
			return v.Kind() == reflect.Map && i == len(key)-1
		}
		if t.Kind() != reflect.Struct {
			return false
		}
		f, ok := fieldByTag(t, key[i], fold)
		if !ok {
			return false
		}
		t = f.Type
	}
	return true
}

func fieldByTag(t reflect.Type, name string, fold bool) (reflect.StructField, bool) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if f.Anonymous && f.Type.Kind() == reflect.Struct {
			if g, ok := fieldByTag(f.Type, name, fold); ok {
				return g, true
			}
			continue
		}
		if tag := f.Tag.Get("toml"); tag == name || fold && strings.EqualFold(tag, name) {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

// suggest proposes the known key a misspelt one probably meant.
func suggest(k toml.Key) string {
	t := reflect.TypeFor[fileSchema]()
	parent := k[:len(k)-1]
	for _, seg := range parent {
		for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct {
			return ""
		}
		f, ok := fieldByTag(t, seg, true)
		if !ok {
			return ""
		}
		t = f.Type
	}
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct || reflect.PointerTo(t).Implements(reflect.TypeFor[leaf]()) {
		return ""
	}
	last := k[len(k)-1]
	best, bestD := "", 3
	var walk func(reflect.Type)
	walk = func(t reflect.Type) {
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if f.Anonymous && f.Type.Kind() == reflect.Struct {
				walk(f.Type)
				continue
			}
			name := f.Tag.Get("toml")
			if d := editDistance(strings.ToLower(last), name); d < bestD {
				best, bestD = name, d
			}
		}
	}
	walk(t)
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// leaves walks the decoded schema: it converts every opt (see convert) and
// reports every opt whose TOML value had the wrong type, at that value's
// position.
func (l *loader) leaves(s *source, v reflect.Value, p string) {
	if !v.CanAddr() || !v.Addr().CanInterface() {
		// An unexported embedded table (tlsClientSchema): walk its fields.
		if v.Kind() == reflect.Struct {
			for i := 0; i < v.NumField(); i++ {
				l.leaves(s, v.Field(i), joinPath(p, v.Type().Field(i).Tag.Get("toml")))
			}
		}
		return
	}
	if lf, ok := v.Addr().Interface().(leaf); ok {
		lf.convert(l)
		if want, got, bad := lf.typeProblem(); bad {
			l.c.add(ErrType, s.ix.at(p), displayPath(s, p), "expected %s, got %s", want, got)
		}
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			l.leaves(s, v.Elem(), p)
		}
	case reflect.Slice:
		for i := 0; i < v.Len(); i++ {
			l.leaves(s, v.Index(i), fmt.Sprintf("%s[%d]", p, i))
		}
	case reflect.Map:
		// A table of opts (basic_auth_users): its values are copies, so
		// each is converted in an addressable copy and stored back.
		for it := v.MapRange(); it.Next(); {
			e := reflect.New(v.Type().Elem()).Elem()
			e.Set(it.Value())
			l.leaves(s, e, joinPath(p, it.Key().String()))
			v.SetMapIndex(it.Key(), e)
		}
	case reflect.Struct:
		t := v.Type()
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if f.Anonymous {
				l.leaves(s, v.Field(i), p)
				continue
			}
			l.leaves(s, v.Field(i), joinPath(p, f.Tag.Get("toml")))
		}
	}
}

// displayPath turns an indexed path into the Field of an Error: targets are
// named by their name when they have one.
func displayPath(s *source, p string) string {
	var i int
	if _, err := fmt.Sscanf(p, "target[%d]", &i); err == nil && i < len(s.schema.Target) {
		rest := strings.TrimPrefix(p, fmt.Sprintf("target[%d]", i))
		return targetField(s.schema.Target[i].Name.or(""), i) + rest
	}
	return p
}

func targetField(name string, i int) string {
	if name == "" {
		return fmt.Sprintf("target[%d]", i)
	}
	return fmt.Sprintf("target[%q]", name)
}

// includes decodes the files the main file includes, in glob order.
func (l *loader) includes(main *source) []*source {
	globs := main.schema.Include
	if !globs.ok() {
		return nil
	}
	var out []*source
	seen := map[string]bool{}
	for i, g := range globs.V {
		p := fmt.Sprintf("include[%d]", i)
		pos := main.ix.at(p)
		var matches []string
		var err error
		if l.fsys != nil {
			full := g
			if !path.IsAbs(g) {
				full = path.Join(main.dir, g)
			}
			matches, err = fs.Glob(l.fsys, full)
		} else {
			full := g
			if !filepath.IsAbs(g) {
				full = filepath.Join(main.dir, g)
			}
			matches, err = filepath.Glob(full)
		}
		if err != nil {
			l.c.add(ErrInclude, pos, "include", "glob %q: %v", g, err)
			continue
		}
		if len(matches) == 0 && !hasWildcard(g) {
			l.c.add(ErrInclude, pos, "include", "file %q does not exist", g)
			continue
		}
		for _, m := range matches {
			if seen[m] || path.Clean(filepath.ToSlash(m)) == path.Clean(filepath.ToSlash(main.name)) {
				continue
			}
			seen[m] = true
			var data []byte
			var dir string
			if l.fsys != nil {
				data, err = fs.ReadFile(l.fsys, m)
				dir = path.Dir(m)
			} else {
				data, err = os.ReadFile(m)
				dir = filepath.Dir(m)
			}
			if err != nil {
				l.c.add(ErrInclude, pos, "include", "%q: %v", m, err)
				continue
			}
			s := l.decode(m, dir, data)
			if s == nil {
				continue
			}
			l.onlyTargets(s)
			out = append(out, s)
		}
	}
	return out
}

func hasWildcard(g string) bool { return strings.ContainsAny(g, `*?[\`) }

// onlyTargets reports everything but [[target]] and [[maintenance]] in an
// included file, once per top-level name: agent and cluster settings belong
// to the main file, where one owner decides them.
func (l *loader) onlyTargets(s *source) {
	reported := map[string]bool{}
	for _, e := range s.ix.keys {
		top, _, _ := strings.Cut(e.plain, "\x00")
		if top == "target" || top == "maintenance" || reported[top] {
			continue
		}
		reported[top] = true
		if !schemaKnows(reflect.TypeFor[fileSchema](), toml.Key{top}, false) {
			continue // reported as an unknown key already
		}
		l.c.add(ErrInvalid, s.ix.at(e.path), top,
			"an included file may hold only [[target]] and [[maintenance]] tables")
	}
}
