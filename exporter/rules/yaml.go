package rules

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// A rule file is small and its shape fixed, so it is written by hand rather
// than through a YAML library: every string value is a double-quoted scalar
// (yamlQuote), the only YAML form whose content cannot be mistaken for
// another type, a comment or a document marker.

type group struct {
	name     string
	interval time.Duration // 0: Prometheus' global evaluation interval
	comment  []string      // lines written above the group
	rules    []rule
}

type rule struct {
	comment []string // lines written above the rule
	record  string
	alert   string
	// expr is one PromQL expression split into lines for reading; YAML folds
	// the line breaks of a double-quoted scalar into single spaces, which
	// PromQL ignores between tokens.
	expr        []string
	forDur      time.Duration
	labels      []kv
	annotations []kv
}

type kv struct{ k, v string }

func writeFile(b *bytes.Buffer, header []string, groups []group) {
	for _, l := range header {
		comment(b, "", l)
	}
	b.WriteString("groups:\n")
	for _, g := range groups {
		if len(g.rules) == 0 {
			continue // Prometheus accepts empty groups, but they only add noise
		}
		for _, l := range g.comment {
			comment(b, "  ", l)
		}
		b.WriteString("  - name: ")
		b.WriteString(yamlQuote(g.name))
		if g.interval > 0 {
			b.WriteString("\n    interval: ")
			b.WriteString(yamlQuote(promDuration(g.interval)))
		}
		b.WriteString("\n    rules:\n")
		for i := range g.rules {
			writeRule(b, &g.rules[i])
		}
	}
}

func writeRule(b *bytes.Buffer, r *rule) {
	const ind = "        " // keys of a rule
	for _, l := range r.comment {
		comment(b, "      ", l)
	}
	if r.alert != "" {
		b.WriteString("      - alert: ")
		b.WriteString(yamlQuote(r.alert))
	} else {
		b.WriteString("      - record: ")
		b.WriteString(yamlQuote(r.record))
	}
	b.WriteString("\n" + ind + "expr: ")
	b.WriteString(yamlFolded(r.expr, ind+"  "))
	b.WriteByte('\n')
	if r.forDur > 0 {
		b.WriteString(ind + "for: ")
		b.WriteString(yamlQuote(promDuration(r.forDur)))
		b.WriteByte('\n')
	}
	writeMap(b, ind, "labels", r.labels)
	writeMap(b, ind, "annotations", r.annotations)
}

// writeMap writes a mapping whose keys are label names, checked by
// validLabelName before they get here, so they need no quoting.
func writeMap(b *bytes.Buffer, ind, key string, m []kv) {
	if len(m) == 0 {
		return
	}
	b.WriteString(ind + key + ":\n")
	for _, e := range m {
		b.WriteString(ind + "  " + e.k + ": ")
		b.WriteString(yamlQuote(e.v))
		b.WriteByte('\n')
	}
}

func comment(b *bytes.Buffer, ind, line string) {
	b.WriteString(ind)
	if line == "" {
		b.WriteString("#\n")
		return
	}
	// A comment ends at the line break; one inside would start YAML content.
	b.WriteString("# " + strings.NewReplacer("\n", " ", "\r", " ").Replace(line) + "\n")
}

// yamlQuote returns s as a YAML double-quoted scalar that parses back to
// exactly s.
func yamlQuote(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('"')
	yamlEscape(&b, s)
	b.WriteByte('"')
	return b.String()
}

// yamlFolded writes lines as one double-quoted scalar spread over several
// lines: YAML folds each line break plus the next line's indentation into a
// single space, so the value is the lines joined by " ". Lines are trimmed
// because YAML drops white space around a folded break anyway, and empty
// lines are skipped because YAML would keep them as "\n".
func yamlFolded(lines []string, ind string) string {
	var b strings.Builder
	b.WriteByte('"')
	first := true
	for _, l := range lines {
		l = strings.TrimSpace(l)
		if l == "" {
			continue
		}
		if !first {
			b.WriteString("\n" + ind)
		}
		first = false
		yamlEscape(&b, l)
	}
	b.WriteByte('"')
	return b.String()
}

// yamlEscape escapes what a double-quoted scalar cannot hold literally:
// backslash, double quote, and every character YAML treats as a control or
// line break (C0, DEL, C1 including NEL, the Unicode line and paragraph
// separators) and the BOM. Invalid UTF-8 (which YAML cannot carry; the
// TOML decoder never produces it) becomes U+FFFD.
func yamlEscape(b *strings.Builder, s string) {
	for _, r := range s {
		switch r {
		case '\\':
			b.WriteString(`\\`)
		case '"':
			b.WriteString(`\"`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		case utf8.RuneError:
			b.WriteString(`\uFFFD`)
		default:
			switch {
			case r < 0x20 || r == 0x7f || (r >= 0x80 && r <= 0x9f):
				fmt.Fprintf(b, `\x%02X`, r)
			case r == 0x2028 || r == 0x2029 || r == 0xfeff:
				fmt.Fprintf(b, `\u%04X`, r)
			default:
				b.WriteRune(r)
			}
		}
	}
}

// promDuration renders d in Prometheus's duration syntax with the largest
// unit that divides it (28d, 90m, 45s), which also reads best in rule names
// such as ratio_rate28d.
func promDuration(d time.Duration) string {
	units := []struct {
		suffix string
		size   time.Duration
	}{
		{"d", 24 * time.Hour}, {"h", time.Hour}, {"m", time.Minute}, {"s", time.Second}, {"ms", time.Millisecond},
	}
	for _, u := range units {
		if d%u.size == 0 {
			return strconv.FormatInt(int64(d/u.size), 10) + u.suffix
		}
	}
	// Below a millisecond Prometheus has no unit; round up so a window never
	// becomes 0.
	return strconv.FormatInt(int64((d+time.Millisecond-1)/time.Millisecond), 10) + "ms"
}
