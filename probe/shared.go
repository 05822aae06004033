package probe

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"sync"
	"time"
)

// Shared holds what the probers built from one configuration can share
// instead of each keeping a copy: parsed CA bundles and client key pairs
// (by file), and values protocol packages prepare once, such as HTTP
// transports. At 10k HTTPS targets with a ca_file each prober parsing its
// own bundle cost 4.4 KB of heap per target, and an http.Transport per
// target 1.5 KB more.
//
// A nil *Shared is valid and shares nothing: every call builds afresh.
// The agent makes one per configuration it applies, so that a reload
// reads changed files again; probers of unchanged targets keep what they
// were built with.
type Shared struct {
	mu      sync.Mutex
	values  map[any]any
	nChains int // entries of chainKey in values
}

// NewShared returns an empty Shared.
func NewShared() *Shared { return &Shared{values: map[any]any{}} }

// Value returns the value stored under key, calling build to make it the
// first time (build may call s). key must be comparable; each user has a
// key type of its own so that keys never collide.
func (s *Shared) Value(key any, build func() any) any { return s.get(key, build, nil) }

// get is Value with keep, when not nil, asked (under the lock) whether a
// newly built value may be stored; refused, it is returned unstored.
func (s *Shared) get(key any, build func() any, keep func() bool) any {
	if s == nil {
		return build()
	}
	s.mu.Lock()
	v, ok := s.values[key]
	s.mu.Unlock()
	if ok {
		return v
	}
	// Built without the lock: build may use s itself (a TLS config takes
	// its CA pool from s). Two builders racing keep the first value stored.
	v = build()
	s.mu.Lock()
	defer s.mu.Unlock()
	if first, ok := s.values[key]; ok {
		return first
	}
	if keep == nil || keep() {
		s.values[key] = v
	}
	return v
}

// maxChains bounds the certificate chains a Shared remembers: certificates
// rotate, and a configuration may run for months. Past it, chains are
// described per probe as without a Shared.
const maxChains = 20000

// chainKey names a chain description: a hash of its certificates' hashes.
type chainKey [32]byte

// chain returns the description of the chain whose certificates hash to
// sums, building it the first time, and the chain's key (zero, and not
// computed, without a Shared: nothing is looked up by it then).
func (s *Shared) chain(sums [][32]byte, build func() []Cert) ([]Cert, chainKey) {
	var key chainKey
	if s == nil {
		return build(), key
	}
	h := sha256.New()
	for _, sum := range sums {
		h.Write(sum[:])
	}
	h.Sum(key[:0])
	return s.get(key, func() any { return build() }, s.bounded).([]Cert), key
}

// bounded is get's keep for chains and facts: true while fewer than
// maxChains are remembered.
func (s *Shared) bounded() bool {
	if s.nChains >= maxChains {
		return false
	}
	s.nChains++
	return true
}

// factsKey names shared TLS facts: everything in them, the chain by its key.
type factsKey struct {
	version, cipher, serverName string
	verified                    bool
	earliest, lastChain         int64 // Unix nanoseconds; 0 for the zero time
	chain                       chainKey
}

// facts returns the shared TLS facts equal to f, f itself the first time.
func (s *Shared) facts(f *TLSFacts, chain chainKey) *TLSFacts {
	if s == nil {
		return f
	}
	unix := func(t time.Time) int64 {
		if t.IsZero() {
			return 0
		}
		return t.UnixNano()
	}
	key := factsKey{f.Version, f.CipherSuite, f.ServerName, f.Verified, unix(f.EarliestExpiry), unix(f.LastChainExpiry), chain}
	return s.get(key, func() any { return f }, s.bounded).(*TLSFacts)
}

// dialerKey names a shared dialer: its source address, protocol and
// whether TCP keep-alives are off.
type dialerKey struct {
	n      Net
	proto  string
	stream bool
}

// DialerShared is Dialer, one per (source address, protocol) across the
// probers sharing s: a *net.Dialer is read-only once built.
func (n Net) DialerShared(s *Shared, proto string) *net.Dialer {
	return s.Value(dialerKey{n, proto, false}, func() any { return n.Dialer(proto) }).(*net.Dialer)
}

// StreamDialerShared is StreamDialer, shared through s like DialerShared.
func (n Net) StreamDialerShared(s *Shared) *net.Dialer {
	return s.Value(dialerKey{n, "tcp", true}, func() any { return n.StreamDialer() }).(*net.Dialer)
}

// caKey and pairKey name parsed files; a failure is kept like a success,
// so that every target naming a broken file reports the same error.
type (
	caKey   struct{ file string }
	pairKey struct{ cert, key string }
)

type poolEntry struct {
	pool *x509.CertPool
	err  error
}

type pairEntry struct {
	cert tls.Certificate
	err  error
}

// caPool parses a PEM bundle once per file. A *x509.CertPool is safe for
// concurrent use, and crypto/tls only reads it.
func (s *Shared) caPool(file string) (*x509.CertPool, error) {
	e := s.Value(caKey{file}, func() any {
		pem, err := os.ReadFile(file)
		if err != nil {
			return poolEntry{err: fmt.Errorf("ca_file: %w", err)}
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return poolEntry{err: fmt.Errorf("ca_file %q: no PEM certificates found", file)}
		}
		return poolEntry{pool: pool}
	}).(poolEntry)
	return e.pool, e.err
}

// keyPair loads a client certificate and key once per pair of files.
func (s *Shared) keyPair(certFile, keyFile string) (tls.Certificate, error) {
	e := s.Value(pairKey{certFile, keyFile}, func() any {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return pairEntry{err: fmt.Errorf("cert_file/key_file: %w", err)}
		}
		return pairEntry{cert: cert}
	}).(pairEntry)
	return e.cert, e.err
}
