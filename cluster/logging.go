package cluster

import "log/slog"

// slogWriter adapts memberlist's log.Logger output to slog at debug level,
// promoting its [WARN]/[ERR] lines.
type slogWriter struct{ log *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	s := string(p)
	for len(s) > 0 && (s[len(s)-1] == '\n') {
		s = s[:len(s)-1]
	}
	switch {
	case contains(s, "[ERR]"):
		w.log.Warn("memberlist", "msg", s)
	case contains(s, "[WARN]"):
		w.log.Debug("memberlist", "msg", s)
	default:
		w.log.Debug("memberlist", "msg", s)
	}
	return len(p), nil
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}
