package page

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"image/png"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vantage-probe/vantage/exporter"
	"github.com/vantage-probe/vantage/internal/testenv"
)

var updateScreenshot = flag.Bool("update-screenshot", false,
	"write docs/status-page.png (1280x900) and docs/status-page-phone.png (390x844) from the Chromium test")

// TestChromium loads the page from the real exporter server (with its
// Content-Security-Policy) in headless Chromium: the DOM Chromium built must
// show every target and region, and the console must be silent (no CSP
// violation, no error). It takes desktop and phone screenshots, written to
// docs/ with -update-screenshot.
func TestChromium(t *testing.T) {
	bin := testenv.RequireBinary(t, "chromium", "chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
	if testing.Short() {
		t.Skip("starts a browser")
	}
	// The DOM check loads a fleet with a hostile target name; the
	// screenshots, meant for the docs, the same fleet without it.
	src := hostileSource(fixedNow)
	srv, err := exporter.NewServer("127.0.0.1:0", src, exporter.NewRegistry(), slog.New(slog.NewTextHandler(io.Discard, nil)), exporter.WebConfig{})
	if err != nil {
		t.Fatal(err)
	}
	now := func() time.Time { return fixedNow }
	hostile, clean := New(src, Options{Now: now}), New(demoSource(fixedNow), Options{Now: now})
	srv.Page = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Has("hostile") {
			hostile.ServeHTTP(w, r)
			return
		}
		clean.ServeHTTP(w, r)
	})
	done := make(chan error, 1)
	go func() { done <- srv.Serve() }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Error(err)
		}
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	url := "http://" + srv.Addr() + "/"

	// One deadline for all three browser runs: the test must stay well
	// under 30 s even on a loaded machine, and a hung browser must not hang
	// the test binary. The runs are independent, so they run at once.
	ctx, cancel := context.WithTimeout(t.Context(), 25*time.Second)
	defer cancel()
	dir := t.TempDir()
	shots := []struct {
		size   string
		w, h   int
		docsAs string
	}{
		{"1280,900", 1280, 900, "status-page.png"},
		{"390,844", 390, 844, "status-page-phone.png"},
	}
	runs := []run{{size: "1280,900", action: "--dump-dom", query: "?hostile"}}
	for i, s := range shots {
		out := filepath.Join(dir, fmt.Sprintf("shot%d.png", i))
		runs = append(runs, run{size: s.size, action: "--screenshot=" + out, png: out})
	}
	var wg sync.WaitGroup
	for i := range runs {
		wg.Go(func() { runs[i].do(ctx, bin, dir, url) })
	}
	wg.Wait()
	for _, r := range runs {
		if r.err != nil {
			t.Fatalf("chromium %s: %v\n%s", r.action, r.err, r.stderr)
		}
		checkConsole(t, r.action, r.stderr)
	}

	dom := runs[0].stdout
	for _, tv := range src.targets {
		// Chromium serializes text escaping only &, < and >.
		if !strings.Contains(dom, domText.Replace(tv.Name)) {
			t.Errorf("DOM lacks target %q", tv.Name)
		}
	}
	for _, r := range regions3 {
		if !strings.Contains(dom, `<th scope="col" class="region">`+r+`</th>`) {
			t.Errorf("DOM lacks region column %q", r)
		}
	}
	for _, w := range []string{">DOWN<", ">UNKNOWN<", ">MAINT<", ">UP<", "2/3 failing, quorum 2", "Open incidents", "Recent incidents", "is isolated", "Configuration reload failed"} {
		if !strings.Contains(dom, w) {
			t.Errorf("DOM lacks %q", w)
		}
	}
	// The hostile target name is text in the DOM, not an element.
	if strings.Contains(dom, "<script") {
		t.Error("Chromium's DOM has a <script> element")
	}

	for i, shot := range shots {
		b, err := os.ReadFile(runs[i+1].png)
		if err != nil {
			t.Fatalf("%s: no screenshot: %v", shot.docsAs, err)
		}
		cfg, err := png.DecodeConfig(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("%s: %v", shot.docsAs, err)
		}
		if cfg.Width != shot.w || cfg.Height != shot.h {
			t.Errorf("%s is %dx%d, want %dx%d", shot.docsAs, cfg.Width, cfg.Height, shot.w, shot.h)
		}
		if *updateScreenshot {
			dst := filepath.Join("..", "..", "docs", shot.docsAs)
			if err := os.WriteFile(dst, b, 0o644); err != nil {
				t.Fatal(err)
			}
			t.Logf("wrote %s", dst)
		}
	}
}

var domText = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

// run is one headless Chromium invocation and its outcome.
type run struct {
	size, action, png string
	query             string
	stdout, stderr    string
	err               error
}

// do runs Chromium. Each run gets its own profile directory: a shared one
// is locked by a concurrent run.
func (r *run) do(ctx context.Context, bin, dir, url string) {
	prof, err := os.MkdirTemp(dir, "profile-")
	if err != nil {
		r.err = err
		return
	}
	cmd := exec.CommandContext(ctx, bin,
		"--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
		"--no-first-run", "--no-default-browser-check", "--disable-extensions",
		"--force-device-scale-factor=1", "--user-data-dir="+prof,
		"--enable-logging=stderr", "--v=0",
		"--window-size="+r.size, r.action, url+r.query)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 5 * time.Second
	r.err = cmd.Run()
	r.stdout, r.stderr = stdout.String(), stderr.String()
}

// checkConsole fails on any console message Chromium logged: page errors,
// and CSP violations, which Chromium reports on the console.
func checkConsole(t *testing.T, what, stderr string) {
	t.Helper()
	for _, line := range strings.Split(stderr, "\n") {
		for _, bad := range []string{"CONSOLE", "Uncaught", "Refused to", "Content Security Policy"} {
			if strings.Contains(line, bad) {
				t.Errorf("%s: chromium logged: %s", what, line)
				break
			}
		}
	}
}
