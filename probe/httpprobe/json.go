package httpprobe

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"
)

// jsonCheck is a JSONCondition compiled by New: the path parsed, the value
// converted, the regex compiled. It is read-only and shared by every probe.
type jsonCheck struct {
	src    string // the path as configured, for messages
	path   []pathElem
	op     JSONOp
	want   jsonValue // equals, not_equals, less_than, greater_than
	exists bool      // exists
	re     *regexp.Regexp
}

// pathElem is one step of a path: an object key, or an array index.
type pathElem struct {
	key string
	// index is the array index of a [N] step (isIndex), or of a key made of
	// digits, which indexes an array too; -1 for other keys.
	index   int
	isIndex bool
}

// jsonValue is a condition's operand.
type jsonValue struct {
	kind jsonKind
	s    string // a string
	b    bool
	num  number
}

type jsonKind uint8

const (
	kindNull jsonKind = iota
	kindBool
	kindNumber
	kindString
)

// number is a JSON number: exact as an int64 when it is one, a float64
// otherwise.
type number struct {
	i     int64
	f     float64
	isInt bool
}

func parseNumber(s string) (number, bool) {
	if i, err := strconv.ParseInt(s, 10, 64); err == nil {
		return number{i: i, f: float64(i), isInt: true}, true
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return number{}, false
	}
	return number{f: f}, true // out of range: ±Inf, which still compares
}

func compareNumbers(a, b number) int {
	if a.isInt && b.isInt {
		return cmp.Compare(a.i, b.i)
	}
	return cmp.Compare(a.f, b.f)
}

func (n number) String() string {
	if n.isInt {
		return strconv.FormatInt(n.i, 10)
	}
	return strconv.FormatFloat(n.f, 'g', -1, 64)
}

// maxIndexDigits bounds an array index: nine digits fit any int.
const maxIndexDigits = 9

// parsePath parses a JSONCondition path (see JSONCondition for the syntax).
// Errors say what is wrong and at which byte offset.
func parsePath(s string) ([]pathElem, error) {
	if s == "" {
		return nil, errors.New("empty path")
	}
	var out []pathElem
	i := 0
	for {
		// A key, except that a path may begin with brackets.
		if !(i == 0 && s[0] == '[') {
			j := i
			for j < len(s) && s[j] != '.' && s[j] != '[' && s[j] != ']' {
				j++
			}
			if j == i {
				if j < len(s) && s[j] == ']' {
					return nil, fmt.Errorf("unexpected ']' at offset %d", j)
				}
				return nil, fmt.Errorf("empty segment at offset %d", i)
			}
			out = append(out, keyElem(s[i:j]))
			i = j
		}
		for i < len(s) && s[i] == '[' {
			e, next, err := parseBracket(s, i)
			if err != nil {
				return nil, err
			}
			out = append(out, e)
			i = next
		}
		if i == len(s) {
			return out, nil
		}
		if s[i] != '.' {
			return nil, fmt.Errorf("unexpected %q at offset %d", s[i], i)
		}
		i++
	}
}

// CheckJSONPath reports what is wrong with a JSONCondition path, and at
// which byte offset; nil when it is valid. Config validation calls it to
// name the path at its own position.
func CheckJSONPath(path string) error {
	_, err := parsePath(path)
	return err
}

// keyElem is a key step; a key of digits can index an array too.
func keyElem(k string) pathElem {
	e := pathElem{key: k, index: -1}
	if len(k) <= maxIndexDigits && strings.Trim(k, "0123456789") == "" {
		e.index, _ = strconv.Atoi(k)
	}
	return e
}

// parseBracket parses the [N] or ["key"] starting at s[i] == '[' and
// returns the offset after its ']'.
func parseBracket(s string, i int) (pathElem, int, error) {
	j := i + 1
	if j < len(s) && s[j] == '"' {
		// A JSON string: find its closing quote, skipping escapes.
		k := j + 1
		for ; k < len(s) && s[k] != '"'; k++ {
			if s[k] == '\\' {
				k++
			}
		}
		if k >= len(s) {
			return pathElem{}, 0, fmt.Errorf("unterminated quoted key at offset %d", j)
		}
		var key string
		if err := json.Unmarshal([]byte(s[j:k+1]), &key); err != nil {
			return pathElem{}, 0, fmt.Errorf("quoted key at offset %d: %v", j, err)
		}
		if k+1 >= len(s) || s[k+1] != ']' {
			return pathElem{}, 0, fmt.Errorf("missing ']' after the quoted key at offset %d", k+1)
		}
		return pathElem{key: key, index: -1}, k + 2, nil
	}
	k := j
	for k < len(s) && s[k] >= '0' && s[k] <= '9' {
		k++
	}
	switch {
	case k == j:
		return pathElem{}, 0, fmt.Errorf("want an index or a quoted key after '[' at offset %d", i)
	case k-j > maxIndexDigits:
		return pathElem{}, 0, fmt.Errorf("index %s at offset %d is too large", s[j:k], j)
	case k >= len(s) || s[k] != ']':
		return pathElem{}, 0, fmt.Errorf("missing ']' at offset %d", k)
	}
	n, _ := strconv.Atoi(s[j:k])
	return pathElem{index: n, isIndex: true}, k + 1, nil
}

// compileJSON turns the conditions into checks; bad names each problem by
// its TOML key, json[i].
func compileJSON(conds []JSONCondition, bad func(format string, args ...any)) []jsonCheck {
	var out []jsonCheck
	for i, c := range conds {
		ok := true
		path, err := parsePath(c.Path)
		if err != nil {
			bad("json[%d].path %q: %v", i, c.Path, err)
			ok = false
		}
		jc := jsonCheck{src: c.Path, path: path, op: c.Op}
		switch c.Op {
		case JSONEquals, JSONNotEquals:
			v, err := operand(c.Value)
			if err != nil {
				bad("json[%d]: %s wants a string, number or boolean, %v", i, c.Op, err)
				ok = false
			}
			jc.want = v
		case JSONLessThan, JSONGreaterThan:
			v, err := operand(c.Value)
			if err == nil && v.kind != kindNumber {
				err = fmt.Errorf("got %s", showValue(c.Value))
			}
			if err != nil {
				bad("json[%d]: %s wants a number, %v", i, c.Op, err)
				ok = false
			}
			jc.want = v
		case JSONExists:
			b, isBool := c.Value.(bool)
			if !isBool {
				bad("json[%d]: exists wants true or false, got %s", i, showValue(c.Value))
				ok = false
			}
			jc.exists = b
		case JSONRegex:
			s, isString := c.Value.(string)
			if !isString {
				bad("json[%d]: regex wants a string, got %s", i, showValue(c.Value))
				ok = false
				break
			}
			if jc.re, err = regexp.Compile(s); err != nil {
				bad("json[%d].regex %q: %v", i, s, err)
				ok = false
			}
		default:
			bad("json[%d]: op %q: must be equals, not_equals, less_than, greater_than, exists or regex", i, string(c.Op))
			ok = false
		}
		if ok {
			out = append(out, jc)
		}
	}
	return out
}

// operand converts a configured value (TOML gives int64, float64, string
// or bool) into a jsonValue.
func operand(v any) (jsonValue, error) {
	switch v := v.(type) {
	case nil:
		return jsonValue{kind: kindNull}, nil
	case string:
		return jsonValue{kind: kindString, s: v}, nil
	case bool:
		return jsonValue{kind: kindBool, b: v}, nil
	case int:
		return intValue(int64(v)), nil
	case int32:
		return intValue(int64(v)), nil
	case int64:
		return intValue(v), nil
	case float32:
		return floatValue(float64(v))
	case float64:
		return floatValue(v)
	case json.Number:
		n, ok := parseNumber(string(v))
		if !ok {
			return jsonValue{}, fmt.Errorf("got %q, not a number", string(v))
		}
		return jsonValue{kind: kindNumber, num: n}, nil
	}
	return jsonValue{}, fmt.Errorf("got %s", showValue(v))
}

func intValue(i int64) jsonValue {
	return jsonValue{kind: kindNumber, num: number{i: i, f: float64(i), isInt: true}}
}

func floatValue(f float64) (jsonValue, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return jsonValue{}, fmt.Errorf("got %v, not a finite number", f)
	}
	if f == math.Trunc(f) && math.Abs(f) < 1<<53 {
		return intValue(int64(f)), nil
	}
	return jsonValue{kind: kindNumber, num: number{f: f}}, nil
}

// showValue renders a configured value in an error: strings quoted, other
// values with their Go type.
func showValue(v any) string {
	switch v := v.(type) {
	case nil:
		return "nothing"
	case string:
		return strconv.Quote(v)
	case bool, int, int32, int64, float32, float64:
		return fmt.Sprint(v)
	}
	return fmt.Sprintf("%v (%T)", v, v)
}

func (v jsonValue) String() string {
	switch v.kind {
	case kindString:
		return strconv.Quote(v.s)
	case kindBool:
		return strconv.FormatBool(v.b)
	case kindNumber:
		return v.num.String()
	}
	return "null"
}

// checkJSON decodes body and checks every condition on it. It returns ""
// when all hold, else every failure, joined, for the result's message.
func (p *Prober) checkJSON(body []byte) string {
	root, err := decodeJSON(body)
	if err != nil {
		return "json: body is not JSON: " + err.Error()
	}
	var fails []string
	for i := range p.jsonChecks {
		if msg := p.jsonChecks[i].check(root); msg != "" {
			fails = append(fails, msg)
		}
	}
	if len(fails) == 0 {
		return ""
	}
	return "json: " + strings.Join(fails, "; ")
}

// decodeJSON decodes one JSON value, numbers kept as their text
// (json.Number) so that large integers compare exactly. Anything but
// white space after the value makes the body not JSON.
func decodeJSON(body []byte) (any, error) {
	d := json.NewDecoder(bytes.NewReader(body))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("empty body")
		}
		return nil, err
	}
	if _, err := d.Token(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("data after the JSON value at offset %d", d.InputOffset())
	}
	return v, nil
}

// lookup follows the path from root. found is false when a key or index
// is missing or a step meets a value that is not an object or array.
func lookup(root any, path []pathElem) (v any, found bool) {
	v = root
	for _, e := range path {
		switch c := v.(type) {
		case map[string]any:
			if e.isIndex {
				return nil, false
			}
			if v, found = c[e.key]; !found {
				return nil, false
			}
		case []any:
			if e.index < 0 || e.index >= len(c) {
				return nil, false
			}
			v = c[e.index]
		default:
			return nil, false
		}
	}
	return v, true
}

// check returns "" when the condition holds on root, else why not:
// `status is "DOWN", want "UP"`.
func (c *jsonCheck) check(root any) string {
	v, found := lookup(root, c.path)
	if c.op == JSONExists {
		switch {
		case found == c.exists:
			return ""
		case c.exists:
			return c.src + " is missing, want it present"
		}
		return fmt.Sprintf("%s is %s, want it absent", c.src, describe(v))
	}
	var want string
	switch c.op {
	case JSONEquals:
		want = c.want.String()
	case JSONNotEquals:
		want = "anything but " + c.want.String()
	case JSONLessThan:
		want = "less than " + c.want.String()
	case JSONGreaterThan:
		want = "greater than " + c.want.String()
	case JSONRegex:
		want = "a match for " + strconv.Quote(c.re.String())
	}
	if !found {
		return fmt.Sprintf("%s is missing, want %s", c.src, want)
	}
	if c.holds(v) {
		return ""
	}
	return fmt.Sprintf("%s is %s, want %s", c.src, describe(v), want)
}

// holds applies the comparison to a value that was found.
func (c *jsonCheck) holds(v any) bool {
	switch c.op {
	case JSONEquals:
		return equal(v, c.want)
	case JSONNotEquals:
		return !equal(v, c.want)
	case JSONLessThan, JSONGreaterThan:
		s, ok := v.(json.Number)
		if !ok {
			return false
		}
		n, ok := parseNumber(string(s))
		if !ok {
			return false
		}
		if c.op == JSONLessThan {
			return compareNumbers(n, c.want.num) < 0
		}
		return compareNumbers(n, c.want.num) > 0
	case JSONRegex:
		switch v := v.(type) {
		case string:
			return c.re.MatchString(v)
		case json.Number:
			return c.re.MatchString(string(v))
		case bool:
			return c.re.MatchString(strconv.FormatBool(v))
		}
	}
	return false
}

// equal compares a decoded value with an operand of the same type; values
// of different types are never equal.
func equal(v any, w jsonValue) bool {
	switch v := v.(type) {
	case nil:
		return w.kind == kindNull
	case string:
		return w.kind == kindString && v == w.s
	case bool:
		return w.kind == kindBool && v == w.b
	case json.Number:
		if w.kind != kindNumber {
			return false
		}
		n, ok := parseNumber(string(v))
		return ok && compareNumbers(n, w.num) == 0
	}
	return false // objects and arrays
}

// quoteMax bounds a string shown in a message: enough to recognise a
// status, and a body cannot flood the logs.
const quoteMax = 64

// describe renders a decoded value for a message: strings quoted (cut to
// quoteMax bytes), numbers and booleans as written, containers by kind.
func describe(v any) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case string:
		if len(v) > quoteMax {
			cut := quoteMax
			for cut > 0 && !utf8.RuneStart(v[cut]) {
				cut--
			}
			return strconv.Quote(v[:cut]) + "..."
		}
		return strconv.Quote(v)
	case json.Number:
		return string(v)
	case bool:
		return strconv.FormatBool(v)
	case map[string]any:
		return "an object"
	case []any:
		return fmt.Sprintf("an array of %d", len(v))
	}
	return fmt.Sprintf("%v", v)
}
