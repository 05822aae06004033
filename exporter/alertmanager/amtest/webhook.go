package amtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"
)

// Notification is one webhook call from Alertmanager: a group's alerts as
// the receiver saw them.
type Notification struct {
	Received    time.Time // when the webhook got it
	Status      string    // "firing" (any alert firing) or "resolved"
	Receiver    string
	GroupKey    string
	GroupLabels map[string]string
	Alerts      []NotifiedAlert
}

// NotifiedAlert is one alert of a Notification.
type NotifiedAlert struct {
	Status       string // "firing" or "resolved"
	Labels       map[string]string
	Annotations  map[string]string
	StartsAt     time.Time
	EndsAt       time.Time
	GeneratorURL string
	Fingerprint  string
}

// webhook is the receiver Alertmanager notifies: a real HTTP server on
// 127.0.0.1 that records every call.
type webhook struct {
	srv  *http.Server
	url  string
	done chan struct{} // closed when Serve has returned

	mu      sync.Mutex
	notes   []Notification
	errs    []string      // calls that could not be decoded
	changed chan struct{} // closed and replaced at each new call
}

// startWebhook binds first, then serves, so that the port is ours before
// Alertmanager's config names it.
func startWebhook() (*webhook, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("amtest: webhook listen: %w", err)
	}
	w := &webhook{
		url:     "http://" + ln.Addr().String() + "/hook",
		done:    make(chan struct{}),
		changed: make(chan struct{}),
	}
	w.srv = &http.Server{
		Handler:           http.HandlerFunc(w.serve),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          log.New(io.Discard, "", 0),
	}
	go func() {
		defer close(w.done)
		_ = w.srv.Serve(ln)
	}()
	return w, nil
}

// payload is Alertmanager's webhook body (version 4).
type payload struct {
	Receiver    string            `json:"receiver"`
	Status      string            `json:"status"`
	GroupKey    string            `json:"groupKey"`
	GroupLabels map[string]string `json:"groupLabels"`
	Alerts      []struct {
		Status       string            `json:"status"`
		Labels       map[string]string `json:"labels"`
		Annotations  map[string]string `json:"annotations"`
		StartsAt     time.Time         `json:"startsAt"`
		EndsAt       time.Time         `json:"endsAt"`
		GeneratorURL string            `json:"generatorURL"`
		Fingerprint  string            `json:"fingerprint"`
	} `json:"alerts"`
}

func (w *webhook) serve(rw http.ResponseWriter, r *http.Request) {
	received := time.Now()
	var p payload
	err := json.NewDecoder(io.LimitReader(r.Body, 16<<20)).Decode(&p)
	w.mu.Lock()
	defer w.mu.Unlock()
	if err != nil {
		w.errs = append(w.errs, fmt.Sprintf("%s %s: %v", r.Method, r.URL.Path, err))
		http.Error(rw, err.Error(), http.StatusBadRequest)
		return
	}
	n := Notification{
		Received:    received,
		Status:      p.Status,
		Receiver:    p.Receiver,
		GroupKey:    p.GroupKey,
		GroupLabels: p.GroupLabels,
	}
	for _, a := range p.Alerts {
		n.Alerts = append(n.Alerts, NotifiedAlert(a))
	}
	w.notes = append(w.notes, n)
	close(w.changed)
	w.changed = make(chan struct{})
}

// snapshot returns the notifications so far and a channel closed at the
// next one.
func (w *webhook) snapshot() ([]Notification, <-chan struct{}, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var err error
	if len(w.errs) > 0 {
		err = fmt.Errorf("amtest: webhook calls that could not be decoded: %q", w.errs)
	}
	return slices.Clone(w.notes), w.changed, err
}

func (w *webhook) close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err := w.srv.Shutdown(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		err = w.srv.Close()
	}
	<-w.done
	return err
}
