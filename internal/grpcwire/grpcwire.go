// Package grpcwire is the gRPC wire protocol as far as one unary health
// Check needs it (https://github.com/grpc/grpc/blob/master/doc/PROTOCOL-HTTP2.md):
// the length-prefixed HealthCheckRequest and HealthCheckResponse, the
// status codes and serving statuses by name, the content-type and
// grpc-message's percent-encoding. Written by hand so that the binary
// does not link grpc-go and protobuf for two messages of one field each;
// the prober (probe/grpcprobe) and the farms' server
// (probe/probetest/healthsrv) share it, and their tests hold each to
// grpc-go.
package grpcwire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// CheckPath is the Check method of the standard health service.
const CheckPath = "/grpc.health.v1.Health/Check"

// gRPC status codes (https://github.com/grpc/grpc/blob/master/doc/statuscodes.md),
// those the prober and the server use.
const (
	OK                = 0
	Canceled          = 1
	Unknown           = 2
	DeadlineExceeded  = 4
	NotFound          = 5
	PermissionDenied  = 7
	ResourceExhausted = 8
	Unimplemented     = 12
	Internal          = 13
	Unavailable       = 14
	Unauthenticated   = 16
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
	ServingUnknown int32 = 0
	Serving        int32 = 1
	NotServing     int32 = 2
	ServiceUnknown int32 = 3
)

// ServingName is the enum value's name, its number for one the proto file
// does not name (what protobuf's String prints).
func ServingName(s int32) string {
	switch s {
	case ServingUnknown:
		return "UNKNOWN"
	case Serving:
		return "SERVING"
	case NotServing:
		return "NOT_SERVING"
	case ServiceUnknown:
		return "SERVICE_UNKNOWN"
	}
	return strconv.Itoa(int(s))
}

// frame length-prefixes msg: the compressed-flag byte 0 and the message's
// length (4 bytes, big endian), then msg.
func frame(msg []byte) []byte {
	b := make([]byte, 5, 5+len(msg))
	binary.BigEndian.PutUint32(b[1:], uint32(len(msg)))
	return append(b, msg...)
}

// Request is the length-prefixed HealthCheckRequest for service: its only
// field is 1 (string service), omitted when empty as proto3 does.
func Request(service string) []byte {
	msg := make([]byte, 0, 1+binary.MaxVarintLen64+len(service))
	if service != "" {
		msg = append(msg, 0x0a) // field 1, wire type 2 (length-delimited)
		msg = binary.AppendUvarint(msg, uint64(len(service)))
		msg = append(msg, service...)
	}
	return frame(msg)
}

// Response is the length-prefixed HealthCheckResponse with status: field 1
// (enum status) as a varint, omitted when 0 as proto3 does.
func Response(status int32) []byte {
	msg := make([]byte, 0, 1+binary.MaxVarintLen64)
	if status != ServingUnknown {
		msg = append(msg, 0x08)
		msg = binary.AppendUvarint(msg, uint64(int64(status))) // negative enums take 10 bytes, as in protobuf
	}
	return frame(msg)
}

// ErrMalformed is wrapped by every error of ParseRequest and ParseResponse.
var ErrMalformed = errors.New("malformed")

// ParseRequest decodes a HealthCheckRequest (without its prefix): field 1
// (string service), the last occurrence winning.
func ParseRequest(b []byte) (string, error) {
	var service string
	err := walk(b, "HealthCheckRequest", 2, func(v uint64, data []byte) { service = string(data) })
	return service, err
}

// ParseResponse decodes a HealthCheckResponse (without its prefix): field
// 1 (enum status) as a varint, the last occurrence winning.
func ParseResponse(b []byte) (int32, error) {
	var st int32
	err := walk(b, "HealthCheckResponse", 0, func(v uint64, _ []byte) {
		st = int32(v) // protobuf truncates an enum's varint to 32 bits
	})
	return st, err
}

// walk reads the protobuf message b, names what is wrong with it as a
// malformed msgName, hands field 1 to field (a varint in v, or a
// length-delimited value in data) when it has wire type want, and skips
// every other field by its wire type, as protobuf does.
func walk(b []byte, msgName string, want uint64, field func(v uint64, data []byte)) error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w %s: %s", ErrMalformed, msgName, fmt.Sprintf(format, a...)) // "malformed HealthCheckResponse: bad tag"
	}
	for len(b) > 0 {
		tag, n := binary.Uvarint(b)
		if n <= 0 {
			return bad("bad tag")
		}
		b = b[n:]
		num, wire := tag>>3, tag&7
		if num == 0 {
			return bad("field number 0")
		}
		if num == 1 && wire != want {
			return bad("field 1 with wire type %d", wire)
		}
		var v uint64
		var data []byte
		switch wire {
		case 0: // varint
			if v, n = binary.Uvarint(b); n <= 0 {
				return bad("bad varint in field %d", num)
			}
		case 1: // 64-bit
			n = 8
		case 2: // length-delimited
			l, m := binary.Uvarint(b)
			if m <= 0 || l > uint64(len(b)-m) {
				return bad("bad length in field %d", num)
			}
			n = m + int(l)
			data = b[m:n]
		case 5: // 32-bit
			n = 4
		default:
			return bad("field %d has wire type %d", num, wire)
		}
		if n > len(b) {
			return bad("field %d truncated", num)
		}
		if num == 1 {
			field(v, data)
		}
		b = b[n:]
	}
	return nil
}

// IsContentType says whether a content-type is gRPC's: application/grpc,
// alone or followed by "+codec" or parameters.
func IsContentType(ct string) bool {
	rest, ok := strings.CutPrefix(ct, "application/grpc")
	return ok && (rest == "" || rest[0] == '+' || rest[0] == ';')
}

// EncodeMessage percent-encodes what grpc-message may not carry: bytes
// outside printable ASCII, and '%' itself.
func EncodeMessage(msg string) string {
	var b strings.Builder
	for i := 0; i < len(msg); i++ {
		if c := msg[i]; c < 0x20 || c > 0x7e || c == '%' {
			fmt.Fprintf(&b, "%%%02X", c)
		} else {
			b.WriteByte(c)
		}
	}
	return b.String()
}

// DecodeMessage undoes grpc-message's percent-encoding. A malformed escape
// is kept as it came, as grpc-go does.
func DecodeMessage(s string) string {
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
