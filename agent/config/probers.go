package config

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"strings"

	"github.com/vantage-probe/vantage/probe"
)

// afterValid queues a check that reads the operating system's files, run
// by checkFiles once the config has no other error.
func (l *loader) afterValid(check func()) { l.later = append(l.later, check) }

// checkFiles runs the queued file checks, then builds every target's
// prober, as the agent will, and reports a refusal at the target's
// position. The file checks name the exact key; building the probers is
// the net under them, so that whatever the agent would refuse at start,
// check-config refuses with the same message. A config read through an
// fs.FS (the embedded demo, tests) names files that are not on it: those
// are checked when the agent builds its probers.
func (l *loader) checkFiles(cfg *Config) {
	if l.fsys != nil {
		return
	}
	for _, check := range l.later {
		check()
	}
	if len(l.c.errs) > 0 {
		return
	}
	shared := probe.NewShared()
	for i, t := range cfg.Targets {
		if _, err := t.NewProberShared(shared); err != nil {
			l.c.add(ErrInvalid, t.Pos, targetField(t.Name, i), "%v", err)
		}
	}
}

// checkFile runs check on a file once per load, however many targets name
// it (10k targets sharing one CA bundle read it once).
func (l *loader) checkFile(key string, check func(key string) error) error {
	if err, ok := l.files[key]; ok {
		return err
	}
	if l.files == nil {
		l.files = map[string]error{}
	}
	err := check(key)
	l.files[key] = err
	return err
}

// checkCABundle reads a PEM bundle as the probers do.
func checkCABundle(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("%q: %w", path, unwrapPath(err))
	}
	if !x509.NewCertPool().AppendCertsFromPEM(b) {
		return fmt.Errorf("%q: no PEM certificate in file", path)
	}
	return nil
}

// checkKeyPair loads a client certificate and its key ("cert\x00key").
func checkKeyPair(pair string) error {
	cert, key, _ := strings.Cut(pair, "\x00")
	if _, err := tls.LoadX509KeyPair(cert, key); err != nil {
		return fmt.Errorf("%q with key %q: %w", cert, key, unwrapPath(err))
	}
	return nil
}
