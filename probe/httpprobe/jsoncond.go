package httpprobe

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"unicode/utf8"
)

// ParseJSONCondition parses a condition written on one line, as
// `vantage probe -json` takes it: a path, an operator and, but for exists,
// a value:
//
//	status == UP                  equals (a bare word is a string)
//	status == "UP"                the same, quoted as in JSON
//	checks.db.ok == true          true, false, null and numbers are JSON values
//	version != 2                  not_equals
//	checks.db.latency_ms < 300    less_than (a number)
//	uptime > 60                   greater_than (a number)
//	build =~ ^v2\.                regex (the rest of the line; quote it to keep spaces at its ends)
//	checks.db exists              exists: true
//	legacy !exists                exists: false
//
// The path is as in JSONCondition; it ends at the first space or operator
// character outside a bracketed quoted key.
func ParseJSONCondition(s string) (JSONCondition, error) {
	if !utf8.ValidString(s) {
		return JSONCondition{}, fmt.Errorf("%q: not valid UTF-8", s)
	}
	s = strings.TrimSpace(s)
	end := pathEnd(s)
	path := s[:end]
	if path == "" {
		return JSONCondition{}, fmt.Errorf("%q: want PATH OP VALUE, like status == UP", s)
	}
	if err := CheckJSONPath(path); err != nil {
		return JSONCondition{}, fmt.Errorf("path %q: %w", path, err)
	}
	rest := strings.TrimSpace(s[end:])
	c := JSONCondition{Path: path}
	var word string
	for _, op := range []struct {
		word string
		op   JSONOp
	}{{"==", JSONEquals}, {"!=", JSONNotEquals}, {"=~", JSONRegex}, {"<", JSONLessThan}, {">", JSONGreaterThan},
		{"!exists", JSONExists}, {"exists", JSONExists}} {
		if strings.HasPrefix(rest, op.word) {
			word, c.Op = op.word, op.op
			break
		}
	}
	if c.Op == "" {
		return JSONCondition{}, fmt.Errorf("%q: after the path %q, want one of ==, !=, <, >, =~, exists, !exists", s, path)
	}
	value := strings.TrimSpace(rest[len(word):])
	switch c.Op {
	case JSONExists:
		if value != "" {
			return JSONCondition{}, fmt.Errorf("%q: %s takes no value", s, word)
		}
		c.Value = word == "exists"
	case JSONRegex:
		if strings.HasPrefix(value, `"`) {
			if err := json.Unmarshal([]byte(value), &value); err != nil {
				return JSONCondition{}, fmt.Errorf("%q: quoted regex: %v", s, err)
			}
		}
		if _, err := regexp.Compile(value); err != nil {
			return JSONCondition{}, fmt.Errorf("%q: regex: %v", s, err)
		}
		c.Value = value
	default:
		if value == "" {
			return JSONCondition{}, fmt.Errorf("%q: %s needs a value", s, word)
		}
		v, isJSON := jsonLiteral(value)
		if !isJSON {
			if strings.HasPrefix(value, `"`) {
				return JSONCondition{}, fmt.Errorf("%q: the value %s is not a JSON string", s, value)
			}
			v = value // a bare word
		}
		if (c.Op == JSONLessThan || c.Op == JSONGreaterThan) && !isNumber(v) {
			return JSONCondition{}, fmt.Errorf("%q: %s wants a number, got %s", s, word, value)
		}
		c.Value = v
	}
	return c, nil
}

// pathEnd returns the offset where the path at the start of s ends: the
// first space or operator character outside a bracketed quoted key.
func pathEnd(s string) int {
	inQuote := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case inQuote && c == '\\':
			i++
		case c == '"':
			inQuote = !inQuote
		case inQuote:
		case c == ' ' || c == '\t' || strings.IndexByte("=!<>", c) >= 0:
			return i
		}
	}
	return len(s)
}

// jsonLiteral decodes one JSON scalar (string, number, true, false, null);
// numbers as json.Number, so that large integers stay exact.
func jsonLiteral(s string) (any, bool) {
	d := json.NewDecoder(strings.NewReader(s))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, false
	}
	if _, err := d.Token(); !errors.Is(err, io.EOF) {
		return nil, false
	}
	switch v.(type) {
	case map[string]any, []any:
		return nil, false
	}
	return v, true
}

func isNumber(v any) bool {
	n, ok := v.(json.Number)
	if !ok {
		return false
	}
	_, ok = parseNumber(string(n))
	return ok
}

// String renders c as ParseJSONCondition reads it.
func (c JSONCondition) String() string {
	op := map[JSONOp]string{JSONEquals: "==", JSONNotEquals: "!=", JSONLessThan: "<", JSONGreaterThan: ">", JSONRegex: "=~"}[c.Op]
	switch c.Op {
	case JSONExists:
		if b, _ := c.Value.(bool); !b {
			return c.Path + " !exists"
		}
		return c.Path + " exists"
	case JSONRegex:
		s, _ := c.Value.(string)
		if s == "" || strings.TrimSpace(s) != s || strings.HasPrefix(s, `"`) {
			b, _ := json.Marshal(s)
			s = string(b)
		}
		return c.Path + " =~ " + s
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(c.Value); err != nil {
		return fmt.Sprintf("%s %s %v", c.Path, op, c.Value)
	}
	return c.Path + " " + op + " " + strings.TrimSpace(b.String())
}
