package page

import (
	"bytes"
	"strconv"
)

// The target grid is the one part of the page that grows with the fleet. At
// 1,000 targets it is about 35,000 template actions, each a reflective call
// of html/template's escaper: some 80 ms a render. So the rows are written
// here by hand, straight into the output buffer between two templates.
//
// The rule that keeps this as safe as the template: markup comes only from
// string constants in this file, and every value goes through esc, which
// escapes for both element text and double-quoted attribute values. Class
// names are constants of model.go, and the SVG paths are numbers; they are
// escaped all the same, which costs a scan.

// writeRows writes the <tr> elements of the target grid to buf. Each row is
// appended to buf's spare capacity (AvailableBuffer), so nothing is built
// twice.
func writeRows(buf *bytes.Buffer, rows []row) {
	for i := range rows {
		r := &rows[i]
		buf.Grow(rowSize(r))
		buf.Write(appendRow(buf.AvailableBuffer(), r))
	}
}

// rowSize is a generous estimate of a row's HTML: markup and escaping
// overhead plus its values, so appendRow rarely outgrows buf.
func rowSize(r *row) int {
	n := 1000 + 2*(len(r.Name)+len(r.Endpoint)+len(r.Why)+len(r.Detail)+len(r.Leader)+len(r.CertTitle)) +
		2*len(r.Spark.Label) + len(r.Spark.Line) + len(r.Spark.Fails)
	for i := range r.Cells {
		c := &r.Cells[i]
		n += 120 + 2*(len(c.Title)+len(c.Text)+len(c.Region))
	}
	return n
}

func appendRow(b []byte, r *row) []byte {
	b = append(b, "\n<tr class=\""...)
	b = esc(b, r.Class)
	b = append(b, `"><th scope="row" class="tname"><span class="name">`...)
	b = esc(b, r.Name)
	b = append(b, `</span><span class="ep"><span class="type">`...)
	b = esc(b, r.Type)
	b = append(b, `</span>`...)
	b = esc(b, r.Endpoint)
	b = append(b, `</span>`...)
	if r.Cert != "" {
		b = append(b, `<span class="cert `...)
		b = esc(b, r.CertClass)
		b = append(b, `" title="`...)
		b = esc(b, r.CertTitle)
		b = append(b, `">`...)
		b = esc(b, r.Cert)
		b = append(b, `</span>`...)
	}
	b = append(b, `</th><td class="verdict" title="`...)
	b = esc(b, r.Why)
	b = append(b, `"><span class="badge">`...)
	b = esc(b, r.Verdict)
	b = append(b, `</span>`...)
	if r.Since != "" {
		b = append(b, `<span class="since">`...)
		b = esc(b, r.Since)
		b = append(b, `</span>`...)
	}
	b = append(b, `<span class="detail">`...)
	b = esc(b, r.Detail)
	b = append(b, `</span></td>`...)
	for i := range r.Cells {
		c := &r.Cells[i]
		b = append(b, `<td class="cell `...)
		b = esc(b, c.Class)
		b = append(b, `" title="`...)
		b = esc(b, c.Title)
		b = append(b, `"><span class="rg">`...)
		b = esc(b, c.Region)
		b = append(b, `</span><span class="sym">`...)
		b = esc(b, c.Sym)
		b = append(b, `</span>`...)
		b = esc(b, c.Text)
		b = append(b, `</td>`...)
	}
	b = append(b, `<td class="spark"><svg viewBox="0 0 100 24" width="100" height="24" role="img" aria-label="`...)
	b = esc(b, r.Spark.Label)
	b = append(b, `"><title>`...)
	b = esc(b, r.Spark.Label)
	b = append(b, `</title><path class="lat" d="`...)
	b = esc(b, r.Spark.Line)
	b = append(b, `"/><path class="fl" d="`...)
	b = esc(b, r.Spark.Fails)
	b = append(b, `"/>`...)
	if r.Spark.Line == "" && r.Spark.Fails == "" {
		b = append(b, `<path class="none" d="M2 12H98"/>`...)
	}
	b = append(b, `</svg></td><td class="slo">`...)
	if s := r.SLO; s != nil {
		b = append(b, `<span class="avail" title="`...)
		b = esc(b, s.Title)
		b = append(b, `">`...)
		b = esc(b, s.Avail)
		b = append(b, `</span><span class="budget `...)
		b = esc(b, s.Class)
		b = append(b, `"><svg viewBox="0 0 48 4" width="48" height="4" aria-hidden="true"><rect class="bg" width="48" height="4" rx="2"/><rect class="fg" width="`...)
		b = strconv.AppendInt(b, int64(s.BarWidth), 10)
		b = append(b, `" height="4" rx="2"/></svg>`...)
		b = esc(b, s.Budget)
		b = append(b, `</span>`...)
	} else {
		b = append(b, `<span class="muted">–</span>`...)
	}
	b = append(b, `</td><td class="leader">`...)
	if r.Leader != "" {
		b = esc(b, r.Leader)
		if r.LeaderSelf {
			b = append(b, `<span class="me">this agent</span>`...)
		}
	} else {
		b = append(b, `<span class="muted">–</span>`...)
	}
	return append(b, `</td></tr>`...)
}

// esc appends s escaped for HTML element content and for quoted attribute
// values, with the replacements html/template uses (so the page escapes
// the same way everywhere): NUL becomes U+FFFD.
func esc(b []byte, s string) []byte {
	last := 0
	for i := 0; i < len(s); i++ {
		if !special[s[i]] {
			continue
		}
		b = append(b, s[last:i]...)
		switch s[i] {
		case '&':
			b = append(b, "&amp;"...)
		case '<':
			b = append(b, "&lt;"...)
		case '>':
			b = append(b, "&gt;"...)
		case '"':
			b = append(b, "&#34;"...)
		case '\'':
			b = append(b, "&#39;"...)
		case 0:
			b = append(b, "\uFFFD"...)
		}
		last = i + 1
	}
	return append(b, s[last:]...)
}

// special marks the bytes esc replaces; a table beats a switch on the common
// path, where nothing needs escaping.
var special = [256]bool{'&': true, '<': true, '>': true, '"': true, '\'': true, 0: true}
