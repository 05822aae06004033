package grpcprobe

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/vantage-probe/vantage/internal/grpcwire"
)

// lateContext is a context whose deadline has passed while its timer has
// not fired yet (Err still nil), as a loaded machine leaves one.
type lateContext struct {
	context.Context
	deadline time.Time
}

func (c lateContext) Deadline() (time.Time, bool) { return c.deadline, true }

// A stream the server reset at the deadline it was given, read before the
// probe's own timer fired, is a timeout, not a gRPC error (CI saw
// grpc_error for a hanging RPC); before the deadline it stays Unavailable.
func TestResetAtTheDeadlineIsATimeout(t *testing.T) {
	reset := errors.New("stream error: stream ID 1; CANCEL; received from peer")
	late := lateContext{context.Background(), time.Now().Add(-time.Millisecond)}
	if st := transportStatus(late, reset); st.code != grpcwire.DeadlineExceeded {
		t.Errorf("reset after the deadline: %s, want DeadlineExceeded", st.describe())
	}
	early := lateContext{context.Background(), time.Now().Add(time.Hour)}
	if st := transportStatus(early, reset); st.code != grpcwire.Unavailable {
		t.Errorf("reset before the deadline: %s, want Unavailable", st.describe())
	}
	p := &Prober{}
	if reason, _ := p.verdict(late, outcome{status: status{grpcwire.Canceled, "reset"}}, &attempt{}); reason != "timeout" {
		t.Errorf("verdict after the deadline: %s, want timeout", reason)
	}
}

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
