package exporter

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"sync"

	"golang.org/x/crypto/bcrypt"
)

// WebConfig secures the HTTP endpoints the way Prometheus exporters do
// (exporter-toolkit's web config): TLS, optional client certificates, and
// basic auth with bcrypt-hashed passwords.
type WebConfig struct {
	CertFile, KeyFile string
	ClientCAFile      string
	Users             map[string]string // user -> bcrypt hash
}

// tlsConfig loads the certificate once per call; the agent calls it again
// on reload, so a renewed certificate is picked up without a restart.
func (w WebConfig) tlsConfig() (*tls.Config, error) {
	if w.CertFile == "" {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(w.CertFile, w.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("exporter tls_cert_file/tls_key_file: %w", err)
	}
	c := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if w.ClientCAFile != "" {
		pem, err := os.ReadFile(w.ClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("exporter tls_client_ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("exporter tls_client_ca_file %q: no PEM certificates", w.ClientCAFile)
		}
		c.ClientCAs = pool
		c.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return c, nil
}

// basicAuth checks credentials against bcrypt hashes. bcrypt is slow on
// purpose (~50 ms at cost 10), and Prometheus scrapes every few seconds, so
// verified credentials are remembered by their SHA-256 (never in clear).
type basicAuth struct {
	users map[string]string

	mu    sync.Mutex
	cache map[[32]byte]bool
}

// maxAuthCache bounds the remembered credentials; a flood of wrong
// passwords cannot grow it (only verified ones are stored).
const maxAuthCache = 64

func newBasicAuth(users map[string]string) *basicAuth {
	if len(users) == 0 {
		return nil
	}
	return &basicAuth{users: users, cache: map[[32]byte]bool{}}
}

func (b *basicAuth) ok(r *http.Request) bool {
	user, pass, ok := r.BasicAuth()
	if !ok {
		return false
	}
	hash, known := b.users[user]
	key := sha256.Sum256([]byte(user + "\x00" + pass + "\x00" + hash))
	b.mu.Lock()
	hit := b.cache[key]
	b.mu.Unlock()
	if hit {
		return true
	}
	if !known {
		// Spend the same time as a real check, so user names can't be probed.
		_ = bcrypt.CompareHashAndPassword([]byte("$2a$10$CwTycUXWue0Thq9StjUM0uJ8Dd1p0q4VQ2bWb9y3Ua0kY7cQGfGmK"), []byte(pass))
		return false
	}
	if bcrypt.CompareHashAndPassword([]byte(hash), []byte(pass)) != nil {
		return false
	}
	b.mu.Lock()
	if len(b.cache) >= maxAuthCache {
		b.cache = map[[32]byte]bool{}
	}
	b.cache[key] = true
	b.mu.Unlock()
	return true
}

// authMiddleware requires basic auth on everything but the health
// endpoints, which a load balancer or container runtime must reach without
// credentials and which reveal nothing.
func (s *Server) authMiddleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth := s.auth.Load()
		if auth == nil || r.URL.Path == "/healthz" || r.URL.Path == "/readyz" {
			next.ServeHTTP(w, r)
			return
		}
		if !auth.ok(r) {
			w.Header().Set("WWW-Authenticate", `Basic realm="vantage", charset="UTF-8"`)
			http.Error(w, "Unauthorized", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}
