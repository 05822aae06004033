package config

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/BurntSushi/toml"
)

// keyIndex knows where every key, table header and array element of one
// TOML document is written. BurntSushi/toml keeps key positions private
// (and, for arrays of tables, only the last occurrence), so after the
// document has parsed we walk its text once more; the text is known to be
// valid TOML, which keeps this scanner small.
//
// Paths name array elements by index: `target[2].http.headers`,
// `maintenance[0].targets[1]`.
type keyIndex struct {
	file       string
	pos        map[string]Pos
	keys       []indexedKey // every key in document order, as toml.MetaData.Keys lists them
	lineStarts []int
}

type indexedKey struct {
	plain string // key segments joined by "\x00", without indices
	path  string
}

// at returns the position of path, or of its nearest ancestor that is
// written in the file (a missing key is reported where its table starts).
func (ix *keyIndex) at(path string) Pos {
	for {
		if p, ok := ix.pos[path]; ok {
			return p
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			return Pos{File: ix.file}
		}
		path = path[:i]
	}
}

// has reports whether path is written in the file.
func (ix *keyIndex) has(path string) bool {
	_, ok := ix.pos[path]
	return ok
}

// keyPath returns the indexed path of the n-th occurrence (0-based) of the
// key k, matching MetaData.Keys' order.
func (ix *keyIndex) keyPath(k toml.Key, n int) (string, bool) {
	plain := strings.Join(k, "\x00")
	for _, e := range ix.keys {
		if e.plain == plain {
			if n == 0 {
				return e.path, true
			}
			n--
		}
	}
	return "", false
}

func indexKeys(file, src string) (ix *keyIndex) {
	ix = &keyIndex{file: file, pos: map[string]Pos{}, lineStarts: []int{0}}
	for i := 0; i < len(src); i++ {
		if src[i] == '\n' {
			ix.lineStarts = append(ix.lineStarts, i+1)
		}
	}
	s := &keyScanner{src: src, ix: ix, aot: map[string]int{}}
	// The input parsed as TOML already; a panic here means the scanner
	// disagrees with the parser on some corner of the grammar. Positions are
	// a convenience, so degrade to table-level positions rather than fail.
	defer func() { _ = recover() }()
	s.document()
	return ix
}

// pos32 is n as a Pos line or column, which a file of more than 2^31
// lines or columns would saturate.
func pos32(n int) int32 { return int32(min(n, math.MaxInt32)) }

func (ix *keyIndex) position(off int) Pos {
	line := sort.Search(len(ix.lineStarts), func(i int) bool { return ix.lineStarts[i] > off }) - 1
	return Pos{File: ix.file, Line: pos32(line + 1), Col: 0}
}

type keyScanner struct {
	src string
	i   int
	ix  *keyIndex
	aot map[string]int // indexed path of an array of tables -> entries so far
}

func (s *keyScanner) posAt(off int) Pos {
	p := s.ix.position(off)
	start := s.ix.lineStarts[p.Line-1]
	p.Col = pos32(utf8.RuneCountInString(s.src[start:off]) + 1)
	return p
}

func (s *keyScanner) eof() bool { return s.i >= len(s.src) }

func (s *keyScanner) peek() byte {
	if s.eof() {
		return 0
	}
	return s.src[s.i]
}

func (s *keyScanner) record(plain []string, path string, off int) {
	s.ix.keys = append(s.ix.keys, indexedKey{plain: strings.Join(plain, "\x00"), path: path})
	s.ix.pos[path] = s.posAt(off)
}

func (s *keyScanner) document() {
	table := ""
	var tablePlain []string
	for {
		s.skipBlank(true)
		if s.eof() {
			return
		}
		start := s.i
		if s.peek() == '[' {
			aot := strings.HasPrefix(s.src[s.i:], "[[")
			if aot {
				s.i += 2
			} else {
				s.i++
			}
			segs := s.keySegments()
			if aot {
				s.i += 2
			} else {
				s.i++
			}
			path := ""
			for k, seg := range segs {
				path = joinPath(path, seg)
				if k == len(segs)-1 && aot {
					n := s.aot[path]
					s.aot[path] = n + 1
					path += "[" + strconv.Itoa(n) + "]"
				} else if n, ok := s.aot[path]; ok {
					path += "[" + strconv.Itoa(n-1) + "]"
				}
			}
			s.record(segs, path, start)
			table, tablePlain = path, segs
			continue
		}
		segs := s.keySegments()
		s.i++ // '='
		plain := append(append([]string(nil), tablePlain...), segs...)
		path := table
		for _, seg := range segs {
			path = joinPath(path, seg)
		}
		s.record(plain, path, start)
		s.value(path, plain)
	}
}

func joinPath(prefix, seg string) string {
	if prefix == "" {
		return seg
	}
	return prefix + "." + seg
}

// skipBlank skips spaces, tabs and comments, and newlines when nl is set.
func (s *keyScanner) skipBlank(nl bool) {
	for !s.eof() {
		switch c := s.src[s.i]; {
		case c == ' ' || c == '\t' || c == '\r':
			s.i++
		case c == '\n' && nl:
			s.i++
		case c == '#':
			for !s.eof() && s.src[s.i] != '\n' {
				s.i++
			}
		default:
			return
		}
	}
}

// keySegments reads a dotted key up to '=' or ']'.
func (s *keyScanner) keySegments() []string {
	var segs []string
	for {
		s.skipBlank(false)
		switch s.peek() {
		case '"':
			start := s.i
			s.skipBasic()
			raw := s.src[start:s.i]
			if u, err := strconv.Unquote(raw); err == nil {
				segs = append(segs, u)
			} else {
				segs = append(segs, raw[1:len(raw)-1])
			}
		case '\'':
			start := s.i
			s.skipLiteral()
			segs = append(segs, s.src[start+1:s.i-1])
		default:
			start := s.i
			for !s.eof() && isBareKeyByte(s.src[s.i]) {
				s.i++
			}
			if s.i == start {
				panic(fmt.Sprintf("key scanner: unexpected %q", s.peek()))
			}
			segs = append(segs, s.src[start:s.i])
		}
		s.skipBlank(false)
		if s.peek() != '.' {
			return segs
		}
		s.i++
	}
}

func isBareKeyByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}

// skipBasic skips a "basic string" starting at the opening quote.
func (s *keyScanner) skipBasic() {
	s.i++
	for !s.eof() {
		switch s.src[s.i] {
		case '\\':
			s.i += 2
		case '"':
			s.i++
			return
		default:
			s.i++
		}
	}
}

// skipLiteral skips a 'literal string' starting at the opening quote.
func (s *keyScanner) skipLiteral() {
	s.i++
	for !s.eof() && s.src[s.i] != '\'' {
		s.i++
	}
	s.i++
}

// skipMulti skips a multi-line string whose delimiter is q (""" or ”').
func (s *keyScanner) skipMulti(q string) {
	s.i += 3
	for !s.eof() {
		if q[0] == '"' && s.src[s.i] == '\\' {
			s.i += 2
			continue
		}
		if strings.HasPrefix(s.src[s.i:], q) {
			s.i += 3
			// Up to two quotes right before the delimiter belong to the string.
			for n := 0; n < 2 && s.peek() == q[0]; n++ {
				s.i++
			}
			return
		}
		s.i++
	}
}

// value skips one value, recording keys of inline tables and the
// positions of array elements under path.
func (s *keyScanner) value(path string, plain []string) {
	s.skipBlank(false)
	rest := s.src[s.i:]
	switch {
	case strings.HasPrefix(rest, `"""`):
		s.skipMulti(`"""`)
	case strings.HasPrefix(rest, `'''`):
		s.skipMulti(`'''`)
	case rest[0] == '"':
		s.skipBasic()
	case rest[0] == '\'':
		s.skipLiteral()
	case rest[0] == '[':
		s.i++
		for k := 0; ; k++ {
			s.skipBlank(true)
			if s.peek() == ']' {
				s.i++
				return
			}
			elem := path + "[" + strconv.Itoa(k) + "]"
			s.ix.pos[elem] = s.posAt(s.i)
			s.value(elem, plain)
			s.skipBlank(true)
			if s.peek() == ',' {
				s.i++
			}
		}
	case rest[0] == '{':
		s.i++
		for {
			s.skipBlank(true)
			if s.peek() == '}' {
				s.i++
				return
			}
			start := s.i
			segs := s.keySegments()
			s.i++ // '='
			kp := path
			for _, seg := range segs {
				kp = joinPath(kp, seg)
			}
			kplain := append(append([]string(nil), plain...), segs...)
			s.record(kplain, kp, start)
			s.value(kp, kplain)
			s.skipBlank(true)
			if s.peek() == ',' {
				s.i++
			}
		}
	default:
		// Numbers, booleans, dates (which may hold one space).
		for !s.eof() && !strings.ContainsRune(",]}#\r\n", rune(s.src[s.i])) {
			s.i++
		}
	}
}
