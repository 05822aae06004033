package lab

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/vantage-probe/vantage/probe/probetest"
)

// Mode is what a farm target does with a request.
type Mode int

const (
	Healthy Mode = iota // 200 "ok"
	Down                // 503, for everyone
	Slow                // answers 200 only after the farm's slow delay: past any probe timeout
)

func (m Mode) String() string {
	switch m {
	case Healthy:
		return "healthy"
	case Down:
		return "down"
	case Slow:
		return "slow"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// Farm is the lab's target farm: one HTTP server on 127.0.0.1 serving every
// target at /t/NAME. Each target can be healthy, down (503) or slow, and can
// fail (502) only for clients whose source address starts with a prefix,
// which is how a fault is made visible to one region only: every agent of a
// region probes from its own loopback address 127.X.R.N. One server and a
// path per target keep the farm light on a shared 2-core machine.
//
// Every flip returns the moment it took effect: the lab's ground truth.
// Every request is logged (time, target, source address) so the lab can
// count probe traffic per target.
type Farm struct {
	srv  *probetest.HTTPServer
	slow time.Duration
	ok   http.Handler

	mu       sync.Mutex
	targets  map[string]*farmTarget
	blockAll map[string]bool // source prefixes that fail every target
}

type farmTarget struct {
	mode    Mode
	blocked map[string]bool // source prefixes that get 502
	hits    []Hit
}

// Hit is one request the farm received.
type Hit struct {
	At     time.Time
	Target string
	From   string // source IP
	Status int    // what the farm answered (0: the client went away first)
}

// StartFarm serves targets named names. slow is how long a Slow target
// waits before answering; it must exceed the probes' timeout.
func StartFarm(names []string, slow time.Duration) (*Farm, error) {
	f := &Farm{slow: slow, targets: make(map[string]*farmTarget, len(names)), blockAll: map[string]bool{}}
	for _, n := range names {
		f.targets[n] = &farmTarget{blocked: map[string]bool{}}
	}
	f.ok = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") })
	srv, err := probetest.StartHTTP(http.HandlerFunc(f.serve))
	if err != nil {
		return nil, fmt.Errorf("target farm: %w", err)
	}
	f.srv = srv
	return f, nil
}

// URL is the URL agents probe for target name.
func (f *Farm) URL(name string) string { return f.srv.URL + "/t/" + name }

// Close stops the server; slow requests in flight are aborted.
func (f *Farm) Close() error { return f.srv.Close() }

func (f *Farm) serve(w http.ResponseWriter, r *http.Request) {
	name, ok := strings.CutPrefix(r.URL.Path, "/t/")
	from, _, _ := net.SplitHostPort(r.RemoteAddr)
	now := time.Now()
	f.mu.Lock()
	t := f.targets[name]
	if !ok || t == nil {
		f.mu.Unlock()
		http.NotFound(w, r)
		return
	}
	mode, status := t.mode, http.StatusOK
	switch {
	case mode == Down:
		status = http.StatusServiceUnavailable
	case f.blockedLocked(t, from):
		status = http.StatusBadGateway
	}
	t.hits = append(t.hits, Hit{At: now, Target: name, From: from, Status: status})
	f.mu.Unlock()

	switch {
	case status == http.StatusServiceUnavailable:
		http.Error(w, "outage", status)
	case status == http.StatusBadGateway:
		http.Error(w, "no route from your region", status)
	case mode == Slow:
		// HTTPSlow aborts when the probe gives up first, as it will.
		probetest.HTTPSlow(f.slow, f.ok).ServeHTTP(w, r)
	default:
		f.ok.ServeHTTP(w, r)
	}
}

func (f *Farm) blockedLocked(t *farmTarget, from string) bool {
	for p := range f.blockAll {
		if strings.HasPrefix(from, p) {
			return true
		}
	}
	for p := range t.blocked {
		if strings.HasPrefix(from, p) {
			return true
		}
	}
	return false
}

// Set switches target name to mode and returns when it took effect.
func (f *Farm) Set(name string, m Mode) time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	if t := f.targets[name]; t != nil {
		t.mode = m
	}
	return time.Now()
}

// Block makes target name fail (502) for clients whose address starts with
// prefix, or stops doing so; it returns when the change took effect.
func (f *Farm) Block(name, prefix string, on bool) time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	if t := f.targets[name]; t != nil {
		if on {
			t.blocked[prefix] = true
		} else {
			delete(t.blocked, prefix)
		}
	}
	return time.Now()
}

// BlockAll makes every target fail for clients whose address starts with
// prefix (a region cut off from everything), or stops doing so.
func (f *Farm) BlockAll(prefix string, on bool) time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	if on {
		f.blockAll[prefix] = true
	} else {
		delete(f.blockAll, prefix)
	}
	return time.Now()
}

// Hits returns the requests target name received in [from, to), oldest first.
func (f *Farm) Hits(name string, from, to time.Time) []Hit {
	f.mu.Lock()
	defer f.mu.Unlock()
	t := f.targets[name]
	if t == nil {
		return nil
	}
	i := sort.Search(len(t.hits), func(i int) bool { return !t.hits[i].At.Before(from) })
	var out []Hit
	for ; i < len(t.hits) && t.hits[i].At.Before(to); i++ {
		out = append(out, t.hits[i])
	}
	return out
}
