package grpcprobe

import (
	"bytes"
	"errors"
	"testing"
	"time"
)

func TestRequestBody(t *testing.T) {
	for _, tt := range []struct {
		service string
		want    []byte
	}{
		{"", []byte{0, 0, 0, 0, 0}},
		{"svc", []byte{0, 0, 0, 0, 5, 0x0a, 3, 's', 'v', 'c'}},
		// A length of 300 takes a two-byte varint: 0xac 0x02.
		{string(bytes.Repeat([]byte("a"), 300)), append([]byte{0, 0, 0, 0x01, 0x2f, 0x0a, 0xac, 0x02}, bytes.Repeat([]byte("a"), 300)...)},
	} {
		if got := requestBody(tt.service); !bytes.Equal(got, tt.want) {
			t.Errorf("requestBody(%.10q) = % x, want % x", tt.service, got, tt.want)
		}
	}
}

func TestParseResponse(t *testing.T) {
	for _, tt := range []struct {
		name string
		in   []byte
		want int32
		err  bool
	}{
		{name: "empty: UNKNOWN", in: nil, want: 0},
		{name: "SERVING", in: []byte{0x08, 0x01}, want: 1},
		{name: "NOT_SERVING", in: []byte{0x08, 0x02}, want: 2},
		{name: "last wins", in: []byte{0x08, 0x02, 0x08, 0x01}, want: 1},
		{name: "unnamed value", in: []byte{0x08, 0x07}, want: 7},
		{
			name: "unknown fields of every wire type",
			in: []byte{
				0x10, 0xff, 0x01, // field 2 varint
				0x19, 1, 2, 3, 4, 5, 6, 7, 8, // field 3 fixed64
				0x22, 2, 'h', 'i', // field 4 bytes
				0x2d, 1, 2, 3, 4, // field 5 fixed32
				0x08, 0x01,
				0xf8, 0x07, 0x05, // field 127 varint: a two-byte tag
			},
			want: 1,
		},
		{name: "truncated varint", in: []byte{0x08, 0x80}, err: true},
		{name: "truncated fixed64", in: []byte{0x19, 1, 2}, err: true},
		{name: "length past the end", in: []byte{0x22, 5, 'h'}, err: true},
		{name: "group wire type", in: []byte{0x23, 0x24}, err: true},
		{name: "status not a varint", in: []byte{0x0a, 1, 1}, err: true},
		{name: "field 0", in: []byte{0x00, 0x01}, err: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseResponse(tt.in)
			if tt.err {
				if !errors.Is(err, errMalformed) {
					t.Fatalf("parseResponse(% x) = %d, %v; want a malformed error", tt.in, got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("parseResponse(% x) = %d, %v; want %d", tt.in, got, err, tt.want)
			}
		})
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

func TestDecodeMessage(t *testing.T) {
	for in, want := range map[string]string{
		"plain":                "plain",
		"caf%C3%A9":            "café",
		"100%25 sure%0Aok":     "100% sure\nok",
		"bad %zz and end %4":   "bad %zz and end %4",
		"trailing %":           "trailing %",
		"%e2%9c%93 lower-case": "✓ lower-case",
	} {
		if got := decodeMessage(in); got != want {
			t.Errorf("decodeMessage(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestNames(t *testing.T) {
	for c, want := range map[int]string{0: "OK", 4: "DeadlineExceeded", 12: "Unimplemented", 14: "Unavailable", 16: "Unauthenticated", 17: "Code(17)", -1: "Code(-1)"} {
		if got := CodeName(c); got != want {
			t.Errorf("CodeName(%d) = %q, want %q", c, got, want)
		}
	}
	for s, want := range map[int32]string{0: "UNKNOWN", 1: "SERVING", 2: "NOT_SERVING", 3: "SERVICE_UNKNOWN", 9: "9"} {
		if got := servingName(s); got != want {
			t.Errorf("servingName(%d) = %q, want %q", s, got, want)
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

func TestIsGRPCContentType(t *testing.T) {
	for ct, want := range map[string]bool{
		"application/grpc": true, "application/grpc+proto": true, "application/grpc; charset=utf-8": true,
		"application/grpc-web": false, "text/plain": false, "": false, "application/json": false,
	} {
		if got := isGRPCContentType(ct); got != want {
			t.Errorf("isGRPCContentType(%q) = %v", ct, got)
		}
	}
}
