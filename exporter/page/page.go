// Package page renders the agent's status page at "/": the fleet's targets by
// region at a glance, open and recent incidents, cluster members and each
// target's recent history.
//
// The page is server-rendered HTML with one inline stylesheet and inline SVG:
// no JavaScript, no external fonts or assets, so it works under the
// exporter's Content-Security-Policy (default-src 'none'; style-src
// 'unsafe-inline'; img-src data:) and in a terminal browser. It refreshes
// itself with <meta http-equiv="refresh">.
package page

import (
	"bytes"
	_ "embed"
	"html/template"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/vantage-probe/vantage/exporter"
)

// Options tune the page. The zero value is usable.
type Options struct {
	// Refresh is the auto-refresh period. Zero means 10s, about one probe
	// interval: often enough to follow an incident, rarely enough that a
	// wall screen of tabs does not load the agent. Negative disables it.
	Refresh time.Duration
	// Title names the fleet in the header and the browser tab; default
	// "Vantage".
	Title string
	// Now is the clock for ages and durations; default time.Now. Tests and
	// screenshots fix it so the page is reproducible.
	Now func() time.Time
	// MaxRows bounds the targets listed, problems first; the rest are
	// counted and linked (the next rows, and the API). Default 500:
	// every problem of a bad day fits, and a page costs the same whatever
	// the fleet's size, so a wall of readers cannot exhaust the agent.
	MaxRows int
}

const defaultMaxRows = 500

const defaultRefresh = 10 * time.Second

//go:embed page.html.tmpl
var pageTemplate string

//go:embed page.css
var pageCSS string

// handler serves the status page. It is safe for concurrent use.
type handler struct {
	src  exporter.Source
	opts Options
	tmpl *template.Template
	css  template.CSS
	// bufs recycles render buffers: a 1,000-target page is about 2 MB
	// and a wall screen reloads it every few seconds.
	bufs sync.Pool
}

// New returns the status page handler for src. The template is parsed once
// here; a template error is a programming error caught by the package's
// tests, so New panics on it rather than returning an error every caller
// would have to handle.
func New(src exporter.Source, opts Options) http.Handler {
	if opts.Refresh == 0 {
		opts.Refresh = defaultRefresh
	}
	if opts.Title == "" {
		opts.Title = "Vantage"
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.MaxRows <= 0 {
		opts.MaxRows = defaultMaxRows
	}
	h := &handler{
		src:  src,
		opts: opts,
		tmpl: template.Must(template.New("page").Funcs(funcs).Parse(pageTemplate)),
		// The stylesheet is our own embedded file, not data: trusted CSS.
		css: template.CSS(pageCSS),
	}
	h.bufs.New = func() any { return new(bytes.Buffer) }
	return h
}

var funcs = template.FuncMap{
	"plural": func(n int, one, many string) string {
		if n == 1 {
			return strconv.Itoa(n) + " " + one
		}
		return strconv.Itoa(n) + " " + many
	},
}

// ServeHTTP renders the page. The whole page is rendered into a buffer
// first, so a template error becomes a clean 500 and not half a page.
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	buf := h.bufs.Get().(*bytes.Buffer)
	buf.Reset()
	defer func() {
		// Do not keep a pathological buffer alive in the pool forever.
		if buf.Cap() <= 8<<20 {
			h.bufs.Put(buf)
		}
	}()
	// ?target= is what alerts link to (Alertmanager's generator URL);
	// ?name=, ?state= and ?offset= are the API's.
	v := r.URL.Query()
	if t := v.Get("target"); t != "" && v.Get("name") == "" {
		v.Set("name", t)
	}
	v.Del("limit")
	q, err := exporter.ParseTargetQuery(v, h.opts.MaxRows, h.opts.MaxRows)
	if err != nil {
		http.Error(w, "status page: "+err.Error(), http.StatusBadRequest)
		return
	}
	if err := h.render(buf, q); err != nil {
		http.Error(w, "status page: "+err.Error(), http.StatusInternalServerError)
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", "text/html; charset=utf-8")
	// The page is a live view: a cached copy would show a stale verdict.
	hd.Set("Cache-Control", "no-store")
	hd.Set("Content-Length", strconv.Itoa(buf.Len()))
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(buf.Bytes())
}

// render writes the page for the source's current state to buf: the
// templates of page.html.tmpl in order, with the grid's rows written
// directly between "grid-open" and "grid-close".
func (h *handler) render(buf *bytes.Buffer, q exporter.TargetQuery) error {
	d := build(h.src, h.opts, h.opts.Now(), q)
	d.CSS = h.css
	if err := h.tmpl.ExecuteTemplate(buf, "top", d); err != nil {
		return err
	}
	if len(d.Rows) == 0 {
		if err := h.tmpl.ExecuteTemplate(buf, "no-targets", d); err != nil {
			return err
		}
	} else {
		if err := h.tmpl.ExecuteTemplate(buf, "grid-open", d); err != nil {
			return err
		}
		writeRows(buf, d.Rows)
		if err := h.tmpl.ExecuteTemplate(buf, "grid-close", d); err != nil {
			return err
		}
	}
	return h.tmpl.ExecuteTemplate(buf, "bottom", d)
}
