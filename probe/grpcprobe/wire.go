package grpcprobe

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The gRPC wire protocol, as much of it as one unary health Check needs
// (https://github.com/grpc/grpc/blob/master/doc/PROTOCOL-HTTP2.md): a
// length-prefixed protobuf message each way, the status in the trailers.
// Written by hand so that the agent does not link grpc-go and protobuf for
// two messages of one field each.

// checkPath is the Check method of the standard health service.
const checkPath = "/grpc.health.v1.Health/Check"

// maxMessage bounds the response message a probe reads: a health answer is
// a few bytes, and a probe must not be turned into a download.
const maxMessage = 64 << 10

// gRPC status codes the prober sets itself
// (https://github.com/grpc/grpc/blob/master/doc/statuscodes.md).
const (
	codeOK                = 0
	codeCanceled          = 1
	codeUnknown           = 2
	codeDeadlineExceeded  = 4
	codeNotFound          = 5
	codePermissionDenied  = 7
	codeResourceExhausted = 8
	codeUnimplemented     = 12
	codeInternal          = 13
	codeUnavailable       = 14
	codeUnauthenticated   = 16
)

var codeNames = [...]string{
	"OK", "Canceled", "Unknown", "InvalidArgument", "DeadlineExceeded", "NotFound",
	"AlreadyExists", "PermissionDenied", "ResourceExhausted", "FailedPrecondition",
	"Aborted", "OutOfRange", "Unimplemented", "Internal", "Unavailable", "DataLoss",
	"Unauthenticated",
}

// CodeName is the name of gRPC status code c as grpc-go spells it
// ("Unavailable"), "Code(17)" for a code it does not know.
func CodeName(c int) string {
	if c >= 0 && c < len(codeNames) {
		return codeNames[c]
	}
	return "Code(" + strconv.Itoa(c) + ")"
}

// Serving statuses of grpc.health.v1.HealthCheckResponse.
const (
	servingUnknown        = 0
	serving               = 1
	servingNotServing     = 2
	servingServiceUnknown = 3
)

// servingName is the enum value's name, its number for one the proto file
// does not name (what protobuf's String prints).
func servingName(s int32) string {
	switch s {
	case servingUnknown:
		return "UNKNOWN"
	case serving:
		return "SERVING"
	case servingNotServing:
		return "NOT_SERVING"
	case servingServiceUnknown:
		return "SERVICE_UNKNOWN"
	}
	return strconv.Itoa(int(s))
}

// status is an RPC's gRPC status.
type status struct {
	code int
	msg  string
}

// describe renders a status as "code Unavailable: message".
func (s status) describe() string {
	return fmt.Sprintf("code %s: %s", CodeName(s.code), s.msg)
}

// requestBody is the length-prefixed HealthCheckRequest for service: the
// compressed-flag byte 0, the message length (4 bytes, big endian), and the
// message, whose only field is 1 (string service), omitted when empty as
// proto3 does.
func requestBody(service string) []byte {
	msg := make([]byte, 0, 1+binary.MaxVarintLen64+len(service))
	if service != "" {
		msg = append(msg, 0x0a) // field 1, wire type 2 (length-delimited)
		msg = binary.AppendUvarint(msg, uint64(len(service)))
		msg = append(msg, service...)
	}
	b := make([]byte, 5, 5+len(msg))
	binary.BigEndian.PutUint32(b[1:], uint32(len(msg)))
	return append(b, msg...)
}

// errMalformed is wrapped by every error of parseResponse.
var errMalformed = errors.New("malformed HealthCheckResponse")

// parseResponse decodes a HealthCheckResponse: field 1 (enum status) as a
// varint, the last occurrence winning; unknown fields skipped by their
// wire type, as protobuf does.
func parseResponse(b []byte) (int32, error) {
	var st int32
	for len(b) > 0 {
		tag, n := binary.Uvarint(b)
		if n <= 0 {
			return 0, fmt.Errorf("%w: bad tag", errMalformed)
		}
		b = b[n:]
		field, wire := tag>>3, tag&7
		if field == 0 {
			return 0, fmt.Errorf("%w: field number 0", errMalformed)
		}
		switch wire {
		case 0: // varint
			v, n := binary.Uvarint(b)
			if n <= 0 {
				return 0, fmt.Errorf("%w: bad varint in field %d", errMalformed, field)
			}
			b = b[n:]
			if field == 1 {
				st = int32(v) // protobuf truncates an enum's varint to 32 bits
			}
			continue
		case 1: // 64-bit
			n = 8
		case 2: // length-delimited
			l, m := binary.Uvarint(b)
			if m <= 0 || l > uint64(len(b)-m) {
				return 0, fmt.Errorf("%w: bad length in field %d", errMalformed, field)
			}
			n = m + int(l)
		case 5: // 32-bit
			n = 4
		default:
			return 0, fmt.Errorf("%w: field %d has wire type %d", errMalformed, field, wire)
		}
		if field == 1 {
			return 0, fmt.Errorf("%w: status with wire type %d", errMalformed, wire)
		}
		if n > len(b) {
			return 0, fmt.Errorf("%w: field %d truncated", errMalformed, field)
		}
		b = b[n:]
	}
	return st, nil
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

// isGRPCContentType says whether a content-type is gRPC's:
// application/grpc, alone or followed by "+codec" or parameters.
func isGRPCContentType(ct string) bool {
	rest, ok := strings.CutPrefix(ct, "application/grpc")
	return ok && (rest == "" || rest[0] == '+' || rest[0] == ';')
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
		return status{codeUnknown, fmt.Sprintf("malformed grpc-status %q", v)}, true
	}
	return status{int(c), decodeMessage(h.Get("Grpc-Message"))}, true
}

// decodeMessage undoes grpc-message's percent-encoding. A malformed escape
// is kept as it came, as grpc-go does.
func decodeMessage(s string) string {
	if !strings.Contains(s, "%") {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+3], 16, 8); err == nil {
				b.WriteByte(byte(v))
				i += 2
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// httpCode maps the HTTP status of a response without a grpc-status to a
// gRPC code, as gRPC's http-grpc-status-mapping.md says.
func httpCode(httpStatus int) int {
	switch httpStatus {
	case http.StatusBadRequest:
		return codeInternal
	case http.StatusUnauthorized:
		return codeUnauthenticated
	case http.StatusForbidden:
		return codePermissionDenied
	case http.StatusNotFound:
		return codeUnimplemented
	case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return codeUnavailable
	}
	return codeUnknown
}
