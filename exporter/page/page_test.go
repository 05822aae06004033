package page

import (
	"fmt"
	"html/template"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vantage-probe/vantage/cluster"
	"github.com/vantage-probe/vantage/exporter"
)

func get(t *testing.T, h http.Handler) (*http.Response, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	res := rec.Result()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, string(b)
}

func demoPage(t *testing.T) string {
	t.Helper()
	res, body := get(t, New(hostileSource(fixedNow), Options{Now: func() time.Time { return fixedNow }}))
	if res.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", res.StatusCode, body)
	}
	if ct := res.Header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Errorf("Content-Type = %q", ct)
	}
	if cc := res.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store", cc)
	}
	return body
}

// rowOf returns the <tr> of the target grid whose row header is name.
func rowOf(t *testing.T, body, name string) string {
	t.Helper()
	grid := body[strings.Index(body, `<table class="grid">`):]
	grid = grid[:strings.Index(grid, "</table>")]
	for _, tr := range strings.Split(grid, "<tr")[1:] {
		if strings.Contains(tr, `<span class="name">`+name+`</span>`) {
			return tr
		}
	}
	t.Fatalf("no grid row for %q", name)
	return ""
}

func TestPageShowsEveryTargetRegionAndVerdict(t *testing.T) {
	body := demoPage(t)
	src := hostileSource(fixedNow)
	for _, tv := range src.targets {
		if strings.Contains(tv.Name, "<") {
			continue // checked escaped in TestPageEscapes
		}
		rowOf(t, body, tv.Name)
	}
	for _, r := range regions3 {
		if !strings.Contains(body, `<th scope="col" class="region">`+r+`</th>`) {
			t.Errorf("no column for region %q", r)
		}
	}
	cases := []struct {
		target, class string
		want          []string
	}{
		{"checkout-api", "down", []string{">DOWN<", "2/3 failing, quorum 2", "for 7m12s", "connect_refused", "this agent"}},
		{"search-api", "supp", []string{">UP<", "1/3 failing, quorum 2", `class="cell fail"`, "timeout"}},
		{"resolver", "unknown", []string{">UNKNOWN<", "1 region reporting, quorum 2", "isolated", "stale 2m5s"}},
		{"edge-cert", "maint", []string{">MAINT<", "in maintenance, 3/3 failing", `class="cell maint"`, "⚙"}},
		{"billing-db", "unknown", []string{">UNKNOWN<", "no data"}},
		{"ledger", "up", []string{">UP<", "2/2 reporting", `class="cell pend"`, "io_error", "not probed from this region", "98% left"}},
		{"auth-api", "up", []string{">UP<", "3/3 reporting", "✓", "24 ms"}},
	}
	for _, c := range cases {
		tr := rowOf(t, body, c.target)
		if !strings.HasPrefix(tr, ` class="`+c.class+`"`) {
			t.Errorf("%s: row class: %.40s, want %q", c.target, tr, c.class)
		}
		for _, w := range c.want {
			if !strings.Contains(tr, w) {
				t.Errorf("%s: row lacks %q:\n%s", c.target, w, tr)
			}
		}
	}
	// The failing cell's reason is visible text, not only a tooltip.
	if !regexp.MustCompile(`<td class="cell fail" title="[^"]*"><span class="rg">eu-west</span><span class="sym">✕</span>connect_refused</td>`).MatchString(rowOf(t, body, "checkout-api")) {
		t.Error("failing cell does not show its reason as text")
	}
	// The up cell's tooltip carries latency, agent and age.
	if !strings.Contains(rowOf(t, body, "auth-api"), `title="eu-west: up · 24 ms · agent agent-eu-1 · 4s ago"`) {
		t.Error("up cell tooltip lacks latency, agent or age")
	}
}

func TestPageOrdersRowsByUrgency(t *testing.T) {
	body := demoPage(t)
	want := []string{"checkout-api", "search-api", "billing-db", "resolver", "edge-cert", "auth-api", "cdn-origin", "ledger"}
	last := -1
	for _, name := range want {
		i := strings.Index(body, `<span class="name">`+name+`</span>`)
		if i < 0 {
			t.Fatalf("%q missing", name)
		}
		if i < last {
			t.Errorf("%q listed out of order; want %v", name, want)
		}
		last = i
	}
}

func TestPageSummaryAndAgent(t *testing.T) {
	body := demoPage(t)
	for _, w := range []string{
		`<meta http-equiv="refresh" content="10">`,
		"<title>(1 down) Vantage · status</title>",
		`<span class="n">1</span><span class="l"><span aria-hidden="true">✕ </span>down</span>`,
		`<span class="n">1</span><span class="l"><span aria-hidden="true">! </span>suppressed</span>`,
		`<span class="n">2</span><span class="l"><span aria-hidden="true">? </span>unknown</span>`,
		`<span class="n">1</span><span class="l"><span aria-hidden="true">⚙ </span>maintenance</span>`,
		`<span class="n">4</span><span class="l"><span aria-hidden="true">✓ </span>up</span>`,
		`<span class="n">9</span><span class="l">targets · 3 regions</span>`,
		"1 target down",
		"<dd>agent-eu-1</dd>", "<dd>eu-west</dd>", "<dd>v0.9.2</dd>", "<dd>6d2h</dd>", "<dd>6 targets</dd>",
		// Banners.
		"region (eu-west) is isolated",
		"Configuration reload failed (/etc/vantage/vantage.toml)",
		`payments.toml:14:3: target &#34;checkout-cert&#34;: tls.min_days_left`,
	} {
		if !strings.Contains(body, w) {
			t.Errorf("page lacks %q", w)
		}
	}
}

func TestPageIncidents(t *testing.T) {
	body := demoPage(t)
	open := section(t, body, "h-open")
	for _, w := range []string{"checkout-api", "09:19:41", "09:19:46", "5s", "ongoing 7m12s", "eu-west, us-east", "connect_refused"} {
		if !strings.Contains(open, w) {
			t.Errorf("open incidents lack %q", w)
		}
	}
	if strings.Contains(open, "search-api") {
		t.Error("a resolved incident is listed as open")
	}
	recent := section(t, body, "h-recent")
	for _, w := range []string{"search-api", "04:23:53", "7s", "4m31s", "2 flaps", "status_mismatch", "resolver", "Mar 13 06:26", "ap-south, eu-west, us-east"} {
		if !strings.Contains(recent, w) {
			t.Errorf("recent incidents lack %q", w)
		}
	}
	if strings.Contains(recent, "ongoing") {
		t.Error("an open incident is listed as resolved")
	}
	// Newest first.
	if strings.Index(recent, "search-api") > strings.Index(recent, "resolver") {
		t.Error("recent incidents not newest first")
	}
	// Each incident links to its record (GET /api/v1/incidents/{id}).
	if !strings.Contains(open, `<a href="api/v1/incidents/checkout-api@1"`) || !strings.Contains(recent, `<a href="api/v1/incidents/search-api@2"`) {
		t.Errorf("incidents do not link to their records:\n%s\n%s", open, recent)
	}
}

func TestPageMembers(t *testing.T) {
	body := demoPage(t)
	m := section(t, body, "h-members")
	for _, w := range []string{
		`<span class="count">7</span>`,
		// ap-south: 1 alive, 1 suspect, 0 dead, 1 left.
		`<th scope="row">ap-south</th><td class="num">1</td><td class="num st-suspect">1</td><td class="num">0</td><td class="num">1</td>`,
		`<th scope="row">us-east</th><td class="num">1</td><td class="num">0</td><td class="num st-dead">1</td>`,
		`<th scope="row">eu-west <span class="flag warn">isolated</span></th>`,
		`class="chip st-dead"`, "config differs", "this agent",
	} {
		if !strings.Contains(m, w) {
			t.Errorf("members lack %q:\n%s", w, m)
		}
	}
}

// section returns the <section> labelled by the heading id.
func section(t *testing.T, body, id string) string {
	t.Helper()
	i := strings.Index(body, `<section aria-labelledby="`+id+`">`)
	if i < 0 {
		t.Fatalf("no section %q", id)
	}
	s := body[i:]
	return s[:strings.Index(s, "</section>")]
}

func TestPageEscapes(t *testing.T) {
	body := demoPage(t)
	if strings.Contains(body, "<script") {
		t.Fatal("page contains an unescaped <script")
	}
	for _, w := range []string{
		`&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;`,
		`https://evil.example.com/?q=&lt;b&gt;&amp;x=&#34;y&#34;`,
	} {
		if !strings.Contains(body, w) {
			t.Errorf("page lacks escaped %q", w)
		}
	}
	if strings.Contains(body, "<b>") {
		t.Error("endpoint markup not escaped")
	}
}

func TestPageEmptyFleet(t *testing.T) {
	src := &fakeSource{self: exporter.SelfView{Node: "solo", Region: "eu-west", ConfigOK: true, ConfigFile: "vantage.toml"}}
	res, body := get(t, New(src, Options{Title: "Acme probes", Refresh: -1}))
	if res.StatusCode != http.StatusOK {
		t.Fatalf("status %d", res.StatusCode)
	}
	for _, w := range []string{"No targets configured", "<h1>Acme probes</h1>", "No cluster members known yet", "No resolved incidents"} {
		if !strings.Contains(body, w) {
			t.Errorf("empty page lacks %q", w)
		}
	}
	for _, bad := range []string{`http-equiv="refresh"`, `class="grid"`, "h-open", `class="banner`} {
		if strings.Contains(body, bad) {
			t.Errorf("empty page has %q", bad)
		}
	}
}

func TestPageRefreshAndMethods(t *testing.T) {
	h := New(demoSource(fixedNow), Options{Refresh: 30 * time.Second})
	if _, body := get(t, h); !strings.Contains(body, `<meta http-equiv="refresh" content="30">`) {
		t.Error("refresh option not honoured")
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/", nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST: status %d, want 405", rec.Code)
	}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodHead, "/", nil))
	if rec.Code != http.StatusOK || rec.Body.Len() != 0 || rec.Header().Get("Content-Length") == "" {
		t.Errorf("HEAD: status %d, body %d bytes, Content-Length %q", rec.Code, rec.Body.Len(), rec.Header().Get("Content-Length"))
	}
}

// The page must not grow a script or an external reference: the exporter's
// CSP would block it and the page would silently break.
func TestPageIsSelfContained(t *testing.T) {
	body := demoPage(t)
	for _, re := range []string{`<script`, `(?i)src=`, `(?i)href="https?:`, `(?i)url\(\s*['"]?https?:`, `@import`, `\son[a-z]+=`} {
		if loc := regexp.MustCompile(re).FindStringIndex(body); loc != nil {
			t.Errorf("page matches %s: %q", re, body[max(0, loc[0]-40):min(len(body), loc[1]+40)])
		}
	}
}

func TestPageRecentIncidentsCapped(t *testing.T) {
	src := demoSource(fixedNow)
	src.incidents = nil
	for i := range maxRecent + 5 {
		at := fixedNow.Add(-time.Duration(i+1) * time.Hour)
		src.incidents = append(src.incidents, cluster.Incident{Target: "t", StartedAt: at, DetectedAt: at.Add(time.Second), ResolvedAt: at.Add(time.Minute)})
	}
	_, body := get(t, New(src, Options{Now: func() time.Time { return fixedNow }}))
	recent := section(t, body, "h-recent")
	if n := strings.Count(recent, "<tr><th scope=\"row\">t</th>"); n != maxRecent {
		t.Errorf("%d recent incidents listed, want %d", n, maxRecent)
	}
	if !strings.Contains(recent, "5 older resolved incidents not shown") {
		t.Error("hidden incidents not mentioned")
	}
}

func TestSparkline(t *testing.T) {
	base := fixedNow
	ps := []exporter.Point{
		{At: base, OK: true, Latency: 10 * time.Millisecond},
		{At: base.Add(time.Second), OK: true, Latency: 20 * time.Millisecond},
		{At: base.Add(2 * time.Second), OK: false, Latency: 5 * time.Second},
		{At: base.Add(4 * time.Second), OK: true, Latency: 20 * time.Millisecond},
	}
	s := sparkline(ps)
	// x by time over 2..98; y: 20ms is the top (2), 10ms the middle (12).
	if want := "M2.0 12.0L26.0 2.0M98.0 2.0h1"; s.Line != want {
		t.Errorf("line = %q, want %q", s.Line, want)
	}
	if want := "M50.0 1V23"; s.Fails != want {
		t.Errorf("fails = %q, want %q", s.Fails, want)
	}
	if want := "last 4 probes: 1 failed, avg 16 ms, max 20 ms"; s.Label != want {
		t.Errorf("label = %q, want %q", s.Label, want)
	}
	if s := sparkline(nil); s.Line != "" || s.Label != "no history yet" {
		t.Errorf("empty history: %+v", s)
	}
}

func TestFormatting(t *testing.T) {
	for d, want := range map[time.Duration]string{
		850 * time.Millisecond: "850ms", 12 * time.Second: "12s", 4*time.Minute + 12*time.Second: "4m12s",
		5 * time.Minute: "5m", 2*time.Hour + 3*time.Minute: "2h03m", 76 * time.Hour: "3d4h", -time.Second: "0ms",
	} {
		if got := human(d); got != want {
			t.Errorf("human(%v) = %q, want %q", d, got, want)
		}
	}
	for d, want := range map[time.Duration]string{
		2100 * time.Microsecond: "2.1 ms", 42 * time.Millisecond: "42 ms", 1234 * time.Millisecond: "1.23 s",
	} {
		if got := latency(d); got != want {
			t.Errorf("latency(%v) = %q, want %q", d, got, want)
		}
	}
	for f, want := range map[float64]string{0.9995: "99.95%", 1: "100%", 0.9999996: "99.999%", 0.5: "50%", 0.123456: "12.345%"} {
		if got := percent(f); got != want {
			t.Errorf("percent(%v) = %q, want %q", f, got, want)
		}
	}
}

// BenchmarkRender1000 renders a 1,000-target, 3-region fleet with a full
// 60-point history per target through the HTTP handler.
func BenchmarkRender1000(b *testing.B) {
	h := New(bigSource(fixedNow, 1000), Options{Now: func() time.Time { return fixedNow }})
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	w := &discard{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(w, req)
	}
	b.ReportMetric(float64(w.n)/float64(b.N), "B/page")
}

type discard struct {
	h http.Header
	n int
}

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) WriteHeader(int)             {}
func (d *discard) Write(p []byte) (int, error) { d.n += len(p); return len(p), nil }

// TestPageEscapesEveryField puts markup in every string the page shows,
// including those rows.go writes by hand, and checks none survives.
func TestPageEscapesEveryField(t *testing.T) {
	const evil = `<i>"'&`
	src := demoSource(fixedNow)
	src.self.Node, src.self.Region, src.self.Version, src.self.ConfigFile, src.self.ConfigError = evil, evil, evil, evil, evil
	tv := &src.targets[1] // checkout-api: down, with SLO and history
	tv.Name, tv.Type, tv.Endpoint, tv.Leader, tv.Reason = evil, evil, evil, evil, evil
	for i := range tv.Regions {
		tv.Regions[i].Region += evil
		tv.Regions[i].Reason, tv.Regions[i].Agent = evil, evil
	}
	src.incidents[0].Target, src.incidents[0].Reason, src.incidents[0].Regions = evil, evil, []string{evil}
	src.members[0].Name, src.members[0].Region, src.members[0].Addr, src.members[0].Version = evil, evil, evil, evil
	_, body := get(t, New(src, Options{Title: evil, Now: func() time.Time { return fixedNow }}))
	if strings.Contains(body, "<i>") || strings.Contains(body, `"'&`) {
		i := max(strings.Index(body, "<i>"), strings.Index(body, `"'&`))
		t.Fatalf("unescaped markup: %q", body[max(0, i-80):min(len(body), i+40)])
	}
	if n := strings.Count(body, "&lt;i&gt;&#34;&#39;&amp;"); n < 20 {
		t.Errorf("escaped value shown %d times, want every field (>= 20)", n)
	}
}

// esc must escape exactly as html/template does, so hand-written rows and
// template output cannot differ.
func FuzzEsc(f *testing.F) {
	for _, s := range []string{"", "plain", `<script>alert("x")</script>`, "a&b'c\x00d", "ünï<>"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := string(esc(nil, s)), template.HTMLEscapeString(s); got != want {
			t.Errorf("esc(%q) = %q, want %q", s, got, want)
		}
	})
}

func TestSummaryHeadline(t *testing.T) {
	counts := func(cats ...cluster.Category) (n [cluster.NumCategories]int) {
		for _, c := range cats {
			n[c]++
		}
		return n
	}
	for _, c := range []struct {
		counts      [cluster.NumCategories]int
		class, want string
	}{
		{counts(), "unknown", "No targets configured"},
		{counts(cluster.CatUp, cluster.CatUp), "up", "All targets up"},
		{counts(cluster.CatUp, cluster.CatMaintenance), "up", "All targets up or in maintenance"},
		{counts(cluster.CatUp, cluster.CatFailing), "supp", "Up, 1 target failing below quorum"},
		{counts(cluster.CatUp, cluster.CatUnknown, cluster.CatFailing), "unknown", "1 target unknown"},
		{counts(cluster.CatDown, cluster.CatDown, cluster.CatUnknown), "down", "2 targets down"},
	} {
		s := summarize(c.counts)
		if s.Class != c.class || s.Headline != c.want {
			t.Errorf("summarize(%v) = %q %q, want %q %q", c.counts, s.Class, s.Headline, c.class, c.want)
		}
		if icons[s.Class] == "" {
			t.Errorf("no favicon for class %q", s.Class)
		}
	}
}

// TestPageShowsAlertDelivery: the header says how many Alertmanagers take
// the agent's alerts, and a banner names each one that does not, with its
// error: a fleet that cannot page must say so where on-call looks.
func TestPageShowsAlertDelivery(t *testing.T) {
	src := &fakeSource{self: exporter.SelfView{Node: "solo", Region: "eu-west", ConfigOK: true,
		Alertmanagers: []exporter.AlertmanagerView{
			{URL: "http://am-1:9093", OK: true, Sent: 12, LastSuccess: fixedNow},
			{URL: "http://am-2:9093", OK: false, Pending: 3, LastError: "POST http://am-2:9093/api/v2/alerts: connection refused", LastErrorAt: fixedNow.Add(-time.Minute)},
		}}}
	_, body := get(t, New(src, Options{Refresh: -1}))
	for _, w := range []string{"<dt>Paging</dt><dd>1/2 Alertmanagers</dd>", "cannot deliver its alerts to 1 of 2 Alertmanagers",
		"<code>http://am-2:9093</code>", "3 alerts waiting", "connection refused"} {
		if !strings.Contains(body, w) {
			t.Errorf("page lacks %q", w)
		}
	}
	if strings.Contains(body, "<code>http://am-1:9093</code>") {
		t.Error("a working Alertmanager is listed as failing")
	}
	src.self.Alertmanagers[0].OK = false
	if _, body := get(t, New(src, Options{Refresh: -1})); !strings.Contains(body, "cannot deliver its alerts to any Alertmanager") ||
		!strings.Contains(body, "the Prometheus rules page for its targets") {
		t.Error("no Alertmanager reachable: the banner does not say the rules take over")
	}
}

// TestPageShowsPush: with [exporter.push] the header says whether the
// agent's series reach VictoriaMetrics, and since when they do not.
func TestPageShowsPush(t *testing.T) {
	src := &fakeSource{self: exporter.SelfView{Node: "solo", Region: "eu-west", ConfigOK: true}}
	if _, body := get(t, New(src, Options{Refresh: -1, Now: func() time.Time { return fixedNow }})); strings.Contains(body, "<dt>Push</dt>") {
		t.Error("a push item without [exporter.push]")
	}
	src.self.Push = &exporter.PushView{URL: "http://vm:8428/api/v1/import/prometheus", Interval: "15s", OK: true,
		Success: 4, LastSuccess: fixedNow.Add(-3 * time.Second)}
	if _, body := get(t, New(src, Options{Refresh: -1, Now: func() time.Time { return fixedNow }})); !strings.Contains(body, `<dt>Push</dt><dd title="http://vm:8428/api/v1/import/prometheus every 15s">ok 3s ago</dd>`) {
		t.Errorf("push ok: header lacks the item:\n%s", headerOf(body))
	}
	src.self.Push.OK = false
	src.self.Push.LastError = `cannot push metrics to "http://vm:8428/api/v1/import/prometheus": connection refused`
	src.self.Push.LastErrorAt = fixedNow.Add(-time.Second)
	if _, body := get(t, New(src, Options{Refresh: -1, Now: func() time.Time { return fixedNow }})); !strings.Contains(body, `<dd class="bad" title="cannot push metrics to &#34;http://vm:8428/api/v1/import/prometheus&#34;: connection refused">failing, last ok 3s ago</dd>`) {
		t.Errorf("push failing: header lacks the item:\n%s", headerOf(body))
	}
}

func headerOf(body string) string {
	i, j := strings.Index(body, "<header"), strings.Index(body, "</header>")
	if i < 0 || j < i {
		return body
	}
	return body[i:j]
}

func getURL(t *testing.T, h http.Handler, target string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, target, nil))
	return rec.Code, rec.Body.String()
}

// The grid lists at most MaxRows targets, problems first; the rest are
// counted and linked. ?target= (what alerts link to) shows one target,
// ?state= a category; the summary tiles always count the whole fleet.
func TestPageIsBoundedAndFilters(t *testing.T) {
	src := hostileSource(fixedNow)
	h := New(src, Options{Now: func() time.Time { return fixedNow }, MaxRows: 3})
	code, body := getURL(t, h, "/")
	if code != http.StatusOK {
		t.Fatalf("status %d", code)
	}
	if n := strings.Count(body, `<span class="name">`); n != 3 {
		t.Errorf("%d rows listed, want MaxRows 3", n)
	}
	// The three most urgent (see TestPageOrdersRowsByUrgency).
	for _, name := range []string{"checkout-api", "search-api", "billing-db"} {
		rowOf(t, body, name)
	}
	more := len(src.targets) - 3
	if !strings.Contains(body, fmt.Sprintf("Listed 1–3 of %d, problems first. %d more:", len(src.targets), more)) ||
		!strings.Contains(body, `href="?offset=3"`) || !strings.Contains(body, `href="api/v1/targets?offset=3"`) {
		t.Errorf("no count and links for the %d targets not listed", more)
	}
	if !strings.Contains(section(t, body, "h-targets"), fmt.Sprintf(`Targets <span class="count">%d</span>`, len(src.targets))) {
		t.Error("the heading does not count the whole fleet")
	}

	// The next page starts where the first ended.
	_, body = getURL(t, h, "/?offset=3")
	if strings.Contains(body, `<span class="name">checkout-api</span>`) || !strings.Contains(body, "Listed 4–6 of") {
		t.Error("?offset=3 does not list the fourth to sixth targets")
	}

	// One target, as an alert's link asks.
	_, body = getURL(t, h, "/?target=ledger")
	if n := strings.Count(body, `<span class="name">`); n != 1 || !strings.Contains(body, `<span class="name">ledger</span>`) ||
		!strings.Contains(body, "1 target with target ledger") {
		t.Errorf("?target=ledger lists %d rows", n)
	}
	_, body = getURL(t, h, "/?target=nope")
	if !strings.Contains(body, "No target with target nope") {
		t.Error("an unknown ?target= is not said so")
	}
	_, body = getURL(t, h, "/?state=down")
	if n := strings.Count(body, `<span class="name">`); n != 1 || !strings.Contains(body, `<span class="name">checkout-api</span>`) {
		t.Errorf("?state=down lists %d rows", n)
	}
	if code, _ := getURL(t, h, "/?state=sideways"); code != http.StatusBadRequest {
		t.Errorf("?state=sideways: status %d, want 400", code)
	}
}

// Every certificate's days left, from whichever region saw the earliest,
// in the warning colour under min_days_left.
func TestPageShowsCertificateDaysLeft(t *testing.T) {
	body := demoPage(t)
	if row := rowOf(t, body, "edge-cert"); !strings.Contains(row, `<span class="cert warn" title="earliest certificate expires`) ||
		!strings.Contains(row, ">cert 5d</span>") || !strings.Contains(row, "warns under 14 days") {
		t.Errorf("edge-cert row lacks a warning 5 days left: %s", row)
	}
	if row := rowOf(t, body, "checkout-api"); !strings.Contains(row, `<span class="cert ok"`) || !strings.Contains(row, ">cert 60d</span>") {
		t.Errorf("checkout-api row lacks 60 days left: %s", row)
	}
	if row := rowOf(t, body, "ledger"); strings.Contains(row, `class="cert`) {
		t.Errorf("a target without a certificate shows one: %s", row)
	}
}

// An incident shows the regions that made the quorum apart from those
// that failed at another time, and says time to detect is counted from
// the first failed probe.
func TestPageIncidentRegionsAsTheQuorumSawThem(t *testing.T) {
	open := section(t, demoPage(t), "h-open")
	if !strings.Contains(open, `<td>eu-west, us-east <span class="muted">(also ap-south)</span></td>`) {
		t.Errorf("open incident does not show quorum regions eu-west, us-east and also ap-south:\n%s", open)
	}
	if !strings.Contains(open, `Time to detect <span class="sub">from first failed probe</span>`) {
		t.Error("time to detect is not labelled as counted from the first failed probe")
	}
}
