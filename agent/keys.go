package agent

import (
	"encoding/base64"
	"fmt"
	"os"
	"strings"
)

// loadKeys reads a gossip key file: one base64 key per line, the first is
// used to encrypt, all are accepted to decrypt (key rotation).
func loadKeys(path string) ([][]byte, error) {
	if path == "" {
		return nil, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("secret_key_file: %w", err)
	}
	var keys [][]byte
	for i, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, err := base64.StdEncoding.DecodeString(line)
		if err != nil {
			return nil, fmt.Errorf("secret_key_file %s:%d: not base64: %w", path, i+1, err)
		}
		if l := len(k); l != 16 && l != 24 && l != 32 {
			return nil, fmt.Errorf("secret_key_file %s:%d: key is %d bytes, want 16, 24 or 32 (make one with `vantage keygen`)", path, i+1, l)
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("secret_key_file %s: no key in file (make one with `vantage keygen`)", path)
	}
	return keys, nil
}
