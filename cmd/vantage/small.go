package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"flag"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"time"
)

func newFlagSet(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "%s\n\nFlags:\n", synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// parse parses flags; the returned code is >= 0 when the caller must exit.
func parse(fs *flag.FlagSet, args []string) int {
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return exitOK
		}
		return exitUsage
	}
	return -1
}

func runVersion(_ context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("version", "Usage: vantage version\n\nPrints the build version and Go version.", stderr)
	if c := parse(fs, args); c >= 0 {
		return c
	}
	fmt.Fprintf(stdout, "vantage %s (%s, %s/%s)\n", version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return exitOK
}

func runKeygen(_ context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("keygen", "Usage: vantage keygen [-bytes 32] > gossip.key\n\n"+
		"Prints a new random gossip encryption key (AES-256 by default), base64 encoded, for\n"+
		"[cluster] secret_key_file. Rotation: add the new key as a second line on every agent\n"+
		"and reload; move it to the first line and reload; delete the old line and reload.", stderr)
	n := fs.Int("bytes", 32, "key length in bytes: 16, 24 or 32 (AES-128/192/256)")
	if c := parse(fs, args); c >= 0 {
		return c
	}
	if *n != 16 && *n != 24 && *n != 32 {
		fmt.Fprintf(stderr, "keygen: -bytes must be 16, 24 or 32, not %d\n", *n)
		return exitUsage
	}
	k := make([]byte, *n)
	if _, err := rand.Read(k); err != nil {
		fmt.Fprintf(stderr, "keygen: %v\n", err)
		return exitFail
	}
	fmt.Fprintln(stdout, base64.StdEncoding.EncodeToString(k))
	return exitOK
}

func runHealthcheck(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("healthcheck", "Usage: vantage healthcheck [-url URL]\n\n"+
		"Exits 0 when the agent's /readyz answers 200, 1 otherwise. For a container HEALTHCHECK\n"+
		"(the image has no shell or curl).", stderr)
	url := fs.String("url", "http://127.0.0.1:9115/readyz", "readiness URL of the local agent")
	timeout := fs.Duration("timeout", 3*time.Second, "give up after this long")
	insecure := fs.Bool("insecure", false, "accept any certificate (an https:// URL to the agent's own self-signed endpoint)")
	if c := parse(fs, args); c >= 0 {
		return c
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, *url, nil)
	if err != nil {
		fmt.Fprintf(stderr, "healthcheck: %v\n", err)
		return exitUsage
	}
	client := &http.Client{Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: *insecure}, //nolint:gosec // operator's choice, loopback only
	}}
	resp, err := client.Do(req)
	if err != nil {
		fmt.Fprintf(stderr, "healthcheck: %v\n", err)
		return exitFail
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(stderr, "healthcheck: %s: %s", resp.Status, body)
		return exitFail
	}
	fmt.Fprintf(stdout, "%s", body)
	return exitOK
}
