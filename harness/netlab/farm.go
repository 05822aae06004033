package netlab

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"
)

// farm is the lab's target farm: one HTTP server on FarmAddr:FarmPort,
// listening in the farm's namespace, serving every target at /t/NAME with
// 200 "ok", or 500 while the harness has the target down (an outage every
// region sees). It runs in the harness's process, so the harness sets
// failure modes and reads the counts directly; the agents reach it only
// through the lab's bridge, like any remote service. Every request is
// recorded with its time and source address: probes per target per source,
// that is per agent.
type farm struct {
	srv *http.Server
	ln  net.Listener

	mu   sync.Mutex
	down map[string]bool
	hits map[string][]farmHit // by target, in arrival order
}

type farmHit struct {
	At   time.Time
	From string // source IP
}

func newFarm(ln net.Listener) *farm {
	f := &farm{ln: ln, down: map[string]bool{}, hits: map[string][]farmHit{}}
	f.srv = &http.Server{Handler: http.HandlerFunc(f.serve), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = f.srv.Serve(ln) }()
	return f
}

func (f *farm) close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err := f.srv.Shutdown(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		return f.srv.Close()
	}
	return err
}

func (f *farm) serve(w http.ResponseWriter, r *http.Request) {
	name, ok := strings.CutPrefix(r.URL.Path, "/t/")
	if !ok || name == "" {
		http.NotFound(w, r)
		return
	}
	from, _, _ := net.SplitHostPort(r.RemoteAddr)
	now := time.Now()
	f.mu.Lock()
	f.hits[name] = append(f.hits[name], farmHit{At: now, From: from})
	down := f.down[name]
	f.mu.Unlock()
	if down {
		http.Error(w, "outage", http.StatusInternalServerError)
		return
	}
	_, _ = io.WriteString(w, "ok\n")
}

// setDown puts target name in an outage (500 for everyone) or ends it, and
// returns when the change took effect: the ground truth.
func (f *farm) setDown(name string, down bool) time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.down[name] = down
	return time.Now()
}

// hitsOf returns every request the farm received, by target, with the
// source mapped to an agent by agentOf (sources it does not know are kept
// as their address).
func (f *farm) allHits(agentOf func(ip string) (node, region string)) []Hit {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []Hit
	for t, hs := range f.hits {
		for _, h := range hs {
			node, region := agentOf(h.From)
			if node == "" {
				node = h.From
			}
			out = append(out, Hit{At: h.At, Target: t, Agent: node, Region: region})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].At.Before(out[j].At) })
	return out
}

// count returns how many requests target name received from ip in [from, to).
func (f *farm) count(name, ip string, from, to time.Time) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, h := range f.hits[name] {
		if h.From == ip && !h.At.Before(from) && h.At.Before(to) {
			n++
		}
	}
	return n
}
