package grpcprobe

import (
	"testing"
	"time"
)

func TestEncodeTimeout(t *testing.T) {
	for _, tt := range []struct {
		d    time.Duration
		want string
	}{
		{1234 * time.Millisecond, "1234m"},
		{1234*time.Millisecond + 1, "1235m"}, // rounded up
		{time.Microsecond, "1m"},
		{-time.Second, "1m"},
		{99999999 * time.Millisecond, "99999999m"},
		{100000000 * time.Millisecond, "100000S"},
		{200000 * time.Hour, "12000000M"},
	} {
		if got := encodeTimeout(tt.d); got != tt.want {
			t.Errorf("encodeTimeout(%v) = %q, want %q", tt.d, got, tt.want)
		}
	}
}

func TestHTTPCode(t *testing.T) {
	for s, want := range map[int]int{400: 13, 401: 16, 403: 7, 404: 12, 429: 14, 502: 14, 503: 14, 504: 14, 200: 2, 500: 2, 418: 2} {
		if got := httpCode(s); got != want {
			t.Errorf("httpCode(%d) = %d, want %d", s, got, want)
		}
	}
}
