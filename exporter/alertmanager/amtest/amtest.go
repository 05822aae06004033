// Package amtest runs a real Prometheus Alertmanager for tests and for the
// fault lab: the binary, a generated configuration routing every alert to
// a webhook this package serves and records, and helpers to read what
// Alertmanager holds and what it notified.
//
// It does not import package testing (the lab is a program); TB is the
// part of testing.TB that StartForTest needs.
package amtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/vantage-probe/vantage/internal/testenv"
)

// ErrNoBinary is returned by Binary (and Start) when no Alertmanager
// binary is found.
var ErrNoBinary = errors.New("amtest: no Alertmanager binary")

// EnvBinary names an Alertmanager binary to use instead of searching PATH.
const EnvBinary = "VANTAGE_ALERTMANAGER"

// Binary returns the Alertmanager binary: $VANTAGE_ALERTMANAGER if set,
// else prometheus-alertmanager (Debian's name) or alertmanager on PATH.
func Binary() (string, error) {
	if p := os.Getenv(EnvBinary); p != "" {
		path, err := exec.LookPath(p)
		if err != nil {
			return "", fmt.Errorf("%w: $%s=%q: %v", ErrNoBinary, EnvBinary, p, err)
		}
		return path, nil
	}
	for _, name := range []string{"prometheus-alertmanager", "alertmanager"} {
		if path, err := exec.LookPath(name); err == nil {
			return path, nil
		}
	}
	return "", fmt.Errorf("%w: neither prometheus-alertmanager nor alertmanager is on PATH (install Debian's prometheus-alertmanager, or set $%s)", ErrNoBinary, EnvBinary)
}

// Options shape the generated alertmanager.yml. Zero values take the
// defaults named on each field, small enough for tests.
type Options struct {
	// GroupBy is the route's group_by. Default ["alertname", "target"]:
	// one notification group per alert and target, as Vantage's alerts
	// are labelled.
	GroupBy []string
	// GroupWait is the route's group_wait. Default 200ms. Alertmanager
	// 0.25 accepts 0s; zero here means the default, ask for 1ms for
	// (almost) none. Note that a group's first alert whose startsAt is
	// more than group_wait ago is notified at once regardless.
	GroupWait time.Duration
	// GroupInterval is the route's group_interval: how soon a change in a
	// notified group (an alert resolved) is notified. Default 500ms;
	// Alertmanager rejects 0s.
	GroupInterval time.Duration
	// RepeatInterval is the route's repeat_interval. Default 1h: a test
	// that sees a second notification for an unchanged group sees a bug,
	// not a repeat. Alertmanager rejects 0s.
	RepeatInterval time.Duration
	// NoSendResolved turns the webhook's send_resolved off (it is on by
	// default).
	NoSendResolved bool
	// InhibitRules is raw YAML for the value of inhibit_rules (a list,
	// e.g. "- source_matchers: [alertname=A]\n  target_matchers: [alertname=B]\n  equal: [target]\n");
	// empty: none.
	InhibitRules string
	// RoutePrefix serves Alertmanager under a path (--web.route-prefix),
	// e.g. "/am"; URL then includes it. Empty: at the root.
	RoutePrefix string
}

func (o *Options) setDefaults() error {
	if o.GroupBy == nil {
		o.GroupBy = []string{"alertname", "target"}
	}
	if o.GroupWait == 0 {
		o.GroupWait = 200 * time.Millisecond
	}
	if o.GroupInterval == 0 {
		o.GroupInterval = 500 * time.Millisecond
	}
	if o.RepeatInterval == 0 {
		o.RepeatInterval = time.Hour
	}
	var errs []error
	for name, d := range map[string]time.Duration{"GroupWait": o.GroupWait, "GroupInterval": o.GroupInterval, "RepeatInterval": o.RepeatInterval} {
		// Alertmanager's durations have millisecond resolution.
		if d < time.Millisecond {
			errs = append(errs, fmt.Errorf("amtest: Options.%s %v: must be at least 1ms", name, d))
		}
	}
	if o.RoutePrefix != "" && (!strings.HasPrefix(o.RoutePrefix, "/") || strings.HasSuffix(o.RoutePrefix, "/")) {
		errs = append(errs, fmt.Errorf("amtest: Options.RoutePrefix %q: must start and not end with /", o.RoutePrefix))
	}
	return errors.Join(errs...)
}

// config renders alertmanager.yml.
func (o *Options) config(webhookURL string) string {
	ms := func(d time.Duration) string { return strconv.FormatInt(d.Milliseconds(), 10) + "ms" }
	var b strings.Builder
	b.WriteString("route:\n  receiver: hook\n  group_by: [")
	for i, l := range o.GroupBy {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(strconv.Quote(l))
	}
	fmt.Fprintf(&b, "]\n  group_wait: %s\n  group_interval: %s\n  repeat_interval: %s\n", ms(o.GroupWait), ms(o.GroupInterval), ms(o.RepeatInterval))
	fmt.Fprintf(&b, "receivers:\n  - name: hook\n    webhook_configs:\n      - url: %s\n        send_resolved: %t\n", strconv.Quote(webhookURL), !o.NoSendResolved)
	if strings.TrimSpace(o.InhibitRules) != "" {
		b.WriteString("inhibit_rules:\n")
		b.WriteString(o.InhibitRules)
		b.WriteString("\n")
	}
	return b.String()
}

// Server is a running Alertmanager and the webhook it notifies.
type Server struct {
	url    string          // base URL, with the route prefix
	ctx    context.Context // Start's: its end stops the process
	cmd    *exec.Cmd
	exited chan struct{} // closed when the process has been waited for
	err    error         // the process' exit error, set before exited closes
	out    *procLog
	hook   *webhook
	client *http.Client
	once   sync.Once
	cerr   error
}

// bindAttempts is how many ports Start tries: Alertmanager cannot take a
// bound socket, so the port is free when chosen and may be taken by
// another process before Alertmanager binds it.
const bindAttempts = 5

// Start writes dir/alertmanager.yml, starts Alertmanager on a free
// 127.0.0.1 port with its storage in dir/data and no cluster port, and
// returns once it answers /-/ready. ctx bounds the start and the process'
// life: when ctx ends the process is stopped (Close is still needed, for
// the webhook). On failure the error includes Alertmanager's output.
func Start(ctx context.Context, dir string, opts Options) (*Server, error) {
	bin, err := Binary()
	if err != nil {
		return nil, err
	}
	if err := opts.setDefaults(); err != nil {
		return nil, err
	}
	hook, err := startWebhook()
	if err != nil {
		return nil, err
	}
	cfgPath := filepath.Join(dir, "alertmanager.yml")
	if err := os.WriteFile(cfgPath, []byte(opts.config(hook.url)), 0o600); err != nil {
		_ = hook.close()
		return nil, fmt.Errorf("amtest: %w", err)
	}
	var errs []error
	for range bindAttempts {
		s, err := launch(ctx, bin, dir, cfgPath, opts.RoutePrefix)
		if err == nil {
			s.hook = hook
			return s, nil
		}
		errs = append(errs, err)
		if !errors.Is(err, errAddrInUse) {
			break
		}
	}
	_ = hook.close()
	return nil, errors.Join(errs...)
}

var errAddrInUse = errors.New("address already in use")

func launch(ctx context.Context, bin, dir, cfgPath, prefix string) (*Server, error) {
	addr, err := testenv.FreePort()
	if err != nil {
		return nil, fmt.Errorf("amtest: choosing a port: %w", err)
	}
	args := []string{
		"--config.file=" + cfgPath,
		"--storage.path=" + filepath.Join(dir, "data"),
		"--web.listen-address=" + addr,
		"--cluster.listen-address=", // empty: no HA gossip port
		"--log.level=debug",         // the logs are for failure messages
	}
	if prefix != "" {
		args = append(args, "--web.route-prefix="+prefix, "--web.external-url=http://"+addr+prefix)
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 5 * time.Second // then SIGKILL
	out := newProcLog(addr)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("amtest: starting %s: %w", bin, err)
	}
	s := &Server{
		url:    "http://" + addr + prefix,
		ctx:    ctx,
		cmd:    cmd,
		exited: make(chan struct{}),
		out:    out,
		client: &http.Client{Timeout: 5 * time.Second},
	}
	go func() {
		s.err = cmd.Wait()
		close(s.exited)
	}()

	fail := func(what error) (*Server, error) {
		s.stop()
		return nil, fmt.Errorf("amtest: Alertmanager on %s: %w\n--- Alertmanager output ---\n%s", addr, what, s.Logs())
	}
	// Our process logs "Listening on" with our address once it has bound
	// the port: only then can /-/ready be trusted to be its answer, not
	// another process' that took the port.
	select {
	case <-out.listening:
	case <-s.exited:
		if strings.Contains(out.String(), "address already in use") {
			return fail(errAddrInUse)
		}
		return fail(fmt.Errorf("exited before listening: %v", s.err))
	case <-ctx.Done():
		return fail(ctx.Err())
	}
	err = Poll(ctx, 20*time.Millisecond, func() bool {
		select {
		case <-s.exited:
			return true
		default:
		}
		resp, err := s.client.Get(s.url + "/-/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	select {
	case <-s.exited:
		return fail(fmt.Errorf("exited: %v", s.err))
	default:
	}
	if err != nil {
		return fail(fmt.Errorf("waiting for /-/ready: %w", err))
	}
	return s, nil
}

// URL is Alertmanager's base URL, e.g. http://127.0.0.1:40123 (plus the
// route prefix): what a notifier is configured with.
func (s *Server) URL() string { return s.url }

// Logs returns Alertmanager's output so far (its last megabyte).
func (s *Server) Logs() string { return s.out.String() }

// Notifications returns what the webhook has received so far, in order.
func (s *Server) Notifications() []Notification {
	n, _, _ := s.hook.snapshot()
	return n
}

// WaitNotifications waits until cond holds for the notifications received
// so far and returns them. It fails when ctx ends, or when Alertmanager
// sent the webhook something it could not decode.
func (s *Server) WaitNotifications(ctx context.Context, cond func([]Notification) bool) ([]Notification, error) {
	for {
		notes, changed, err := s.hook.snapshot()
		if err != nil {
			return notes, err
		}
		if cond(notes) {
			return notes, nil
		}
		select {
		case <-ctx.Done():
			return notes, fmt.Errorf("amtest: waiting for notifications (%d so far): %w", len(notes), ctx.Err())
		case <-changed:
		}
	}
}

// Close stops Alertmanager (SIGTERM, then SIGKILL after 5 s) and the
// webhook. It reports a process that had to be killed or exited with an
// error before being asked to stop.
func (s *Server) Close() error {
	s.once.Do(func() {
		s.cerr = errors.Join(s.stop(), s.hook.close())
	})
	return s.cerr
}

func (s *Server) stop() error {
	select {
	case <-s.exited:
		if s.ctx.Err() == nil {
			// Nobody asked it to stop: it crashed or was killed.
			return fmt.Errorf("amtest: Alertmanager %s had exited by itself (%v)\n--- Alertmanager output ---\n%s", s.url, s.err, s.Logs())
		}
		return nil
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	t := time.NewTimer(5 * time.Second)
	defer t.Stop()
	select {
	case <-s.exited:
		return nil
	case <-t.C:
		_ = s.cmd.Process.Kill()
		<-s.exited
		return fmt.Errorf("amtest: Alertmanager %s ignored SIGTERM for 5s and was killed", s.url)
	}
}

// Poll calls cond every interval until it reports true (nil) or ctx ends
// (ctx.Err()). It is the one waiting loop of this package and its users.
func Poll(ctx context.Context, interval time.Duration, cond func() bool) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if cond() {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// procLog keeps a process' output (its last logMax bytes) and closes
// listening when a line says the process listens on addr.
type procLog struct {
	mu        sync.Mutex
	buf       []byte
	needle    []byte
	listening chan struct{}
	heard     bool
}

const logMax = 1 << 20

func newProcLog(addr string) *procLog {
	return &procLog{needle: []byte("address=" + addr), listening: make(chan struct{})}
}

func (l *procLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, p...)
	if !l.heard {
		for line := range bytes.Lines(l.buf) {
			if bytes.Contains(line, []byte(`msg="Listening on"`)) && bytes.Contains(line, l.needle) {
				l.heard = true
				close(l.listening)
				break
			}
		}
	}
	if len(l.buf) > logMax {
		l.buf = append(l.buf[:0], l.buf[len(l.buf)-logMax/2:]...)
	}
	return len(p), nil
}

func (l *procLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return string(l.buf)
}
