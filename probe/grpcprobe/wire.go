package grpcprobe

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/vantage-probe/vantage/internal/grpcwire"
)

// The client's side of the gRPC wire protocol: a status read from the
// trailers (or an HTTP status), the grpc-timeout header. The messages,
// codes and names are internal/grpcwire's, shared with the farms' server.

// maxMessage bounds the response message a probe reads: a health answer is
// a few bytes, and a probe must not be turned into a download.
const maxMessage = 64 << 10

// status is an RPC's gRPC status.
type status struct {
	code int
	msg  string
}

// describe renders a status as "code Unavailable: message".
func (s status) describe() string {
	return fmt.Sprintf("code %s: %s", grpcwire.CodeName(s.code), s.msg)
}

// encodeTimeout renders d as a grpc-timeout value: at most 8 digits and a
// unit, rounded up so that the server never gives up before the client.
func encodeTimeout(d time.Duration) string {
	const maxDigits = 99999999
	for _, u := range []struct {
		d    time.Duration
		unit string
	}{{time.Millisecond, "m"}, {time.Second, "S"}, {time.Minute, "M"}, {time.Hour, "H"}} {
		if n := (d + u.d - 1) / u.d; n <= maxDigits {
			return strconv.FormatInt(max(int64(n), 1), 10) + u.unit
		}
	}
	return strconv.Itoa(maxDigits) + "H"
}

// statusFrom reads grpc-status and grpc-message from h (the trailers, or
// the headers of a Trailers-Only response); ok is false without a
// grpc-status.
func statusFrom(h http.Header) (status, bool) {
	v := h.Get("Grpc-Status")
	if v == "" {
		return status{}, false
	}
	c, err := strconv.ParseUint(v, 10, 32)
	if err != nil {
		return status{grpcwire.Unknown, fmt.Sprintf("malformed grpc-status %q", v)}, true
	}
	return status{int(c), grpcwire.DecodeMessage(h.Get("Grpc-Message"))}, true
}

// httpCode maps the HTTP status of a response without a grpc-status to a
// gRPC code, as gRPC's http-grpc-status-mapping.md says.
func httpCode(httpStatus int) int {
	switch httpStatus {
	case http.StatusBadRequest:
		return grpcwire.Internal
	case http.StatusUnauthorized:
		return grpcwire.Unauthenticated
	case http.StatusForbidden:
		return grpcwire.PermissionDenied
	case http.StatusNotFound:
		return grpcwire.Unimplemented
	case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return grpcwire.Unavailable
	}
	return grpcwire.Unknown
}
