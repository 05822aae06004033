package exporter

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/vantage-probe/vantage/cluster"
	"github.com/vantage-probe/vantage/probe"
)

// Source is what the exporter shows; the agent implements it.
type Source interface {
	// Ready returns nil when the config is loaded and the cluster joined.
	Ready() error
	// Targets returns the targets q selects, problems first then by name,
	// with counts over the whole fleet. It costs the page it returns, not
	// the fleet: the status page and the API of a 50k-target fleet ask for
	// a few hundred.
	Targets(q TargetQuery) TargetPage
	// Live returns nil while the agent's loops keep turning; an error
	// names the loop that stopped (/healthz answers 503 with it, so an
	// orchestrator restarts a wedged agent).
	Live() error
	Incidents() []cluster.Incident
	Members() []cluster.Member
	Self() SelfView
}

// SelfView describes the agent serving the request.
type SelfView struct {
	Node          string    `json:"node"`
	AgentID       string    `json:"agent_id"`
	Region        string    `json:"region"`
	Version       string    `json:"version"`
	Started       time.Time `json:"started"`
	Isolated      bool      `json:"isolated"`
	ConfigFile    string    `json:"config_file"`
	ConfigOK      bool      `json:"config_ok"`
	ConfigError   string    `json:"config_error,omitempty"`
	LastReload    time.Time `json:"last_reload"`
	GossipAddr    string    `json:"gossip_addr"`
	TargetsProbed int       `json:"targets_probed"`
	// Alertmanagers is the delivery of this agent's direct alerts, one
	// entry per Alertmanager; empty without [alerting].
	Alertmanagers []AlertmanagerView `json:"alertmanagers,omitempty"`
	// Push is how pushing this agent's series goes; nil without
	// [exporter.push].
	Push *PushView `json:"push,omitempty"`
	// State is how writing the state directory goes; nil without one.
	State *StateView `json:"state,omitempty"`
}

// StateView is the state directory's health.
type StateView struct {
	Path        string    `json:"path"`
	OK          bool      `json:"ok"` // the last write succeeded
	WriteErrors uint64    `json:"write_errors"`
	LastWrite   time.Time `json:"last_write,omitzero"`
}

// PushView is the state of [exporter.push].
type PushView struct {
	URL         string    `json:"url"`
	Interval    string    `json:"interval"`
	OK          bool      `json:"ok"` // the last push succeeded
	Success     uint64    `json:"success"`
	Errors      uint64    `json:"errors"`
	LastSuccess time.Time `json:"last_success,omitzero"`
	LastError   string    `json:"last_error,omitempty"`
	LastErrorAt time.Time `json:"last_error_at,omitzero"`
	// LastDuration and LastBytes (uncompressed) describe the last push.
	LastDuration time.Duration `json:"last_duration_ns,omitempty"`
	LastBytes    int           `json:"last_bytes,omitempty"`
}

// AlertmanagerView is how delivery to one Alertmanager goes.
type AlertmanagerView struct {
	URL         string    `json:"url"`
	OK          bool      `json:"ok"` // the last request it answered was accepted
	Pending     int       `json:"pending"`
	Sent        uint64    `json:"sent"`
	Failed      uint64    `json:"failed"`
	Dropped     uint64    `json:"dropped"`
	LastSuccess time.Time `json:"last_success,omitzero"`
	LastError   string    `json:"last_error,omitempty"`
	LastErrorAt time.Time `json:"last_error_at,omitzero"`
}

// LocalView is this agent's own latest probe of a target, in full.
type LocalView struct {
	Result      probe.Result `json:"result"`
	Failing     bool         `json:"failing"`
	Consecutive int          `json:"consecutive_failures"`
	Success     uint64       `json:"probes_success"`
	Failure     uint64       `json:"probes_failure"`
}

// Point is one sample of a target's recent history: this agent's probes,
// or for a target it does not probe, the results its region's prober
// shared.
type Point struct {
	At      time.Time     `json:"at"`
	OK      bool          `json:"ok"`
	Latency time.Duration `json:"latency_ns"`
}

// TargetView is one target for the API and the status page.
type TargetView struct {
	Name     string            `json:"name"`
	Type     string            `json:"type"`
	Endpoint string            `json:"endpoint"`
	Labels   map[string]string `json:"labels,omitempty"`
	Interval string            `json:"interval"`
	Timeout  string            `json:"timeout"`
	// CertWarnDays is how many days before a certificate's expiry the
	// target warns (min_days_left); 0 for targets that see none.
	CertWarnDays int `json:"cert_min_days_left,omitempty"`
	cluster.TargetStatus
	Local   *LocalView `json:"local,omitempty"`
	History []Point    `json:"history,omitempty"`
}

// TargetQuery selects targets for the API and the page.
type TargetQuery struct {
	Name string // one target by exact name; "" for any
	// Categories keeps targets in these categories; empty for any.
	Categories []cluster.Category
	Offset     int
	Limit      int // at most this many views; 0 for no limit
}

// Match reports whether a target with this name and category is selected
// (Offset and Limit aside).
func (q *TargetQuery) Match(name string, c cluster.Category) bool {
	return (q.Name == "" || q.Name == name) && (len(q.Categories) == 0 || slices.Contains(q.Categories, c))
}

// TargetPage is one page of targets.
type TargetPage struct {
	// Counts is every target of the fleet by category, whatever q selects:
	// the page's headline and the API's summary.
	Counts [cluster.NumCategories]int
	// Total is how many targets q selects; Views holds at most q.Limit of
	// them from q.Offset.
	Total int
	Views []TargetView
}

// Server is the agent's HTTP server.
type Server struct {
	src  Source
	reg  *Registry
	log  *slog.Logger
	mux  *http.ServeMux
	http *http.Server
	ln   net.Listener
	// Page serves "/"; nil gives a plain-text summary.
	Page http.Handler
	auth atomic.Pointer[basicAuth]
	tls  atomic.Pointer[tls.Config]
}

// API list pages: the default and the largest a client may ask for. A
// target's view is about 1 KB of JSON and 10 KB of garbage to encode: ten
// concurrent requests for the largest page stay near 100 MB of garbage
// whatever the fleet's size.
const (
	defaultAPILimit = 500
	maxAPILimit     = 1000
)

// NewServer binds addr at once (so a taken port fails start-up, not later)
// and returns a server ready to Serve.
func NewServer(addr string, src Source, reg *Registry, log *slog.Logger, web WebConfig) (*Server, error) {
	s := &Server{src: src, reg: reg, log: log, mux: http.NewServeMux()}
	if err := s.SetWebConfig(web); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	if s.tls.Load() != nil {
		// The TLS config is read per handshake, so a reload can swap the
		// certificate (renewal) without restarting the listener.
		ln = tls.NewListener(ln, &tls.Config{
			MinVersion: tls.VersionTLS12,
			GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
				return s.tls.Load(), nil
			},
		})
	}
	s.ln = ln
	s.mux.HandleFunc("GET /metrics", s.metrics)
	s.mux.HandleFunc("GET /healthz", s.healthz)
	s.mux.HandleFunc("GET /readyz", s.ready)
	s.mux.HandleFunc("GET /api/v1/targets", s.targets)
	s.mux.HandleFunc("GET /api/v1/targets/{name}", s.target)
	s.mux.HandleFunc("GET /api/v1/incidents", s.incidents)
	s.mux.HandleFunc("GET /api/v1/incidents/{id}", s.incident)
	s.mux.HandleFunc("GET /api/v1/report", s.report)
	s.mux.HandleFunc("GET /api/v1/members", s.members)
	s.mux.HandleFunc("GET /api/v1/status", s.self)
	s.mux.HandleFunc("GET /{$}", s.page)
	s.http = &http.Server{
		Handler:           securityHeaders(s.authMiddleware(s.mux)),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    16 << 10,
	}
	return s, nil
}

// SetWebConfig installs TLS and basic-auth settings (at start and on
// reload). Turning TLS on or off needs a restart; certificates and users
// change live.
func (s *Server) SetWebConfig(web WebConfig) error {
	tc, err := web.tlsConfig()
	if err != nil {
		return err
	}
	if s.ln != nil && (tc == nil) != (s.tls.Load() == nil) {
		return fmt.Errorf("turning exporter TLS on or off takes effect on restart")
	}
	if tc != nil {
		s.tls.Store(tc)
	}
	s.auth.Store(newBasicAuth(web.Users))
	return nil
}

// TLS reports whether the server speaks HTTPS.
func (s *Server) TLS() bool { return s.tls.Load() != nil }

// Addr is the bound address.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Handler exposes the mux (tests, the demo).
func (s *Server) Handler() http.Handler { return s.http.Handler }

// Serve serves until Shutdown.
func (s *Server) Serve() error {
	err := s.http.Serve(s.ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown stops accepting and waits for requests in flight.
func (s *Server) Shutdown(ctx context.Context) error { return s.http.Shutdown(ctx) }

func securityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
		h.ServeHTTP(w, r)
	})
}

func (s *Server) metrics(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	s.reg.WritePrometheus(w)
}

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if err := s.src.Live(); err != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte("unhealthy: " + err.Error() + "\n"))
		return
	}
	_, _ = w.Write([]byte("ok\n"))
}

func (s *Server) ready(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if err := s.src.Ready(); err != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte("not ready: " + err.Error() + "\n"))
		return
	}
	_, _ = w.Write([]byte("ready\n"))
}

func (s *Server) writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		s.log.Debug("api write", "err", err)
	}
}

// targets serves /api/v1/targets?name=N&state=down,failing&offset=O&limit=L:
// problems first, then by name; next_offset says where the next page
// starts.
func (s *Server) targets(w http.ResponseWriter, r *http.Request) {
	q, err := ParseTargetQuery(r.URL.Query(), defaultAPILimit, maxAPILimit)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	p := s.src.Targets(q)
	views := p.Views
	if views == nil {
		views = []TargetView{}
	}
	counts := make(map[string]int, cluster.NumCategories)
	for c, n := range p.Counts {
		counts[cluster.Category(c).String()] = n
	}
	resp := struct {
		Agent      SelfView       `json:"agent"`
		Counts     map[string]int `json:"counts"`
		Total      int            `json:"total"`
		Offset     int            `json:"offset"`
		Limit      int            `json:"limit"`
		NextOffset int            `json:"next_offset,omitempty"`
		Targets    []TargetView   `json:"targets"`
	}{Agent: s.src.Self(), Counts: counts, Total: p.Total, Offset: q.Offset, Limit: q.Limit, Targets: views}
	if next := q.Offset + len(views); next < p.Total {
		resp.NextOffset = next
	}
	s.writeJSON(w, resp)
}

// ParseTargetQuery reads name, state (comma-separated categories, or
// "problem" for down, failing and unknown), offset and limit.
func ParseTargetQuery(v url.Values, defaultLimit, maxLimit int) (TargetQuery, error) {
	q := TargetQuery{Name: v.Get("name"), Limit: defaultLimit}
	for _, st := range strings.Split(v.Get("state"), ",") {
		switch st = strings.TrimSpace(st); st {
		case "":
		case "problem":
			q.Categories = append(q.Categories, cluster.CatDown, cluster.CatFailing, cluster.CatUnknown)
		default:
			c, ok := cluster.ParseCategory(st)
			if !ok {
				return q, fmt.Errorf("state %q: want down, failing, unknown, maintenance, up or problem", st)
			}
			q.Categories = append(q.Categories, c)
		}
	}
	for _, f := range []struct {
		key string
		dst *int
		max int
	}{{"offset", &q.Offset, math.MaxInt32}, {"limit", &q.Limit, maxLimit}} {
		if raw := v.Get(f.key); raw != "" {
			n, err := strconv.Atoi(raw)
			if err != nil || n < 0 || (f.key == "limit" && n == 0) {
				return q, fmt.Errorf("%s %q: want a positive whole number", f.key, raw)
			}
			*f.dst = min(n, f.max)
		}
	}
	return q, nil
}

func (s *Server) target(w http.ResponseWriter, r *http.Request) {
	p := s.src.Targets(TargetQuery{Name: r.PathValue("name"), Limit: 1})
	if len(p.Views) == 0 {
		http.Error(w, "no such target", http.StatusNotFound)
		return
	}
	s.writeJSON(w, p.Views[0])
}

func (s *Server) incidents(w http.ResponseWriter, _ *http.Request) {
	ins := s.src.Incidents()
	if ins == nil {
		ins = []cluster.Incident{}
	}
	s.writeJSON(w, struct {
		Incidents []cluster.Incident `json:"incidents"`
	}{ins})
}

// History is what an agent that keeps its state answers besides Source:
// one incident by ID, and the SLO report of a period. The agent implements
// it; a Source without it answers 404 and 501.
type History interface {
	// Incident returns the incident with this ID: in memory, or in the
	// state file (older than the 1,000 kept in memory).
	Incident(id string) (cluster.Incident, bool, error)
	// Report is the SLO report of [from, to) for the targets glob
	// selects ("" for all), as JSON.
	Report(from, to time.Time, glob string) (any, error)
}

func (s *Server) incident(w http.ResponseWriter, r *http.Request) {
	h, ok := s.src.(History)
	if !ok {
		http.Error(w, "no such incident", http.StatusNotFound)
		return
	}
	in, found, err := h.Incident(r.PathValue("id"))
	switch {
	case err != nil:
		http.Error(w, "reading the state: "+err.Error(), http.StatusInternalServerError)
	case !found:
		http.Error(w, "no such incident", http.StatusNotFound)
	default:
		s.writeJSON(w, in)
	}
}

// report answers /api/v1/report?from=RFC3339&to=RFC3339&target=GLOB; from
// defaults to 28 days before to, to to now.
func (s *Server) report(w http.ResponseWriter, r *http.Request) {
	h, ok := s.src.(History)
	if !ok {
		http.Error(w, "this agent keeps no reports", http.StatusNotImplemented)
		return
	}
	q := r.URL.Query()
	to := time.Now()
	var err error
	if v := q.Get("to"); v != "" {
		if to, err = time.Parse(time.RFC3339, v); err != nil {
			http.Error(w, "to: want an RFC 3339 time like 2026-12-01T00:00:00Z", http.StatusBadRequest)
			return
		}
	}
	from := to.Add(-28 * 24 * time.Hour)
	if v := q.Get("from"); v != "" {
		if from, err = time.Parse(time.RFC3339, v); err != nil {
			http.Error(w, "from: want an RFC 3339 time like 2026-11-01T00:00:00Z", http.StatusBadRequest)
			return
		}
	}
	if !from.Before(to) {
		http.Error(w, "from must be before to", http.StatusBadRequest)
		return
	}
	rep, err := h.Report(from, to, q.Get("target"))
	if err != nil {
		http.Error(w, "report: "+err.Error(), http.StatusInternalServerError)
		return
	}
	s.writeJSON(w, rep)
}

func (s *Server) members(w http.ResponseWriter, _ *http.Request) {
	s.writeJSON(w, struct {
		Members []cluster.Member `json:"members"`
	}{s.src.Members()})
}

func (s *Server) self(w http.ResponseWriter, _ *http.Request) {
	s.writeJSON(w, s.src.Self())
}

func (s *Server) page(w http.ResponseWriter, r *http.Request) {
	if s.Page != nil {
		s.Page.ServeHTTP(w, r)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	for _, t := range s.src.Targets(TargetQuery{Limit: defaultAPILimit}).Views {
		_, _ = w.Write([]byte(t.Name + "\t" + t.Verdict + "\t" + t.Reason + "\n"))
	}
}
