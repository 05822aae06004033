package grpcwire

import (
	"bytes"
	"errors"
	"testing"
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
		if got := Request(tt.service); !bytes.Equal(got, tt.want) {
			t.Errorf("Request(%.10q) = % x, want % x", tt.service, got, tt.want)
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
			got, err := ParseResponse(tt.in)
			if tt.err {
				if !errors.Is(err, ErrMalformed) {
					t.Fatalf("ParseResponse(% x) = %d, %v; want a malformed error", tt.in, got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseResponse(% x) = %d, %v; want %d", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestParseRequest(t *testing.T) {
	for _, tt := range []struct {
		name string
		in   []byte
		want string
		err  bool
	}{
		{name: "empty", in: nil, want: ""},
		{name: "service", in: []byte{0x0a, 3, 's', 'v', 'c'}, want: "svc"},
		{name: "unknown fields", in: []byte{0x10, 0x96, 0x01, 0x19, 1, 2, 3, 4, 5, 6, 7, 8, 0x0a, 1, 'a', 0x22, 1, 'x', 0x2d, 1, 2, 3, 4}, want: "a"},
		{name: "length past the end", in: []byte{0x0a, 9, 's'}, err: true},
		{name: "service not a string", in: []byte{0x08, 1}, err: true},
		{name: "group", in: []byte{0x0b}, err: true},
		{name: "truncated fixed32", in: []byte{0x15, 1}, err: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseRequest(tt.in)
			if tt.err != (err != nil) || (err != nil && !errors.Is(err, ErrMalformed)) || got != tt.want {
				t.Errorf("ParseRequest(% x) = %q, %v", tt.in, got, err)
			}
		})
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
		if got := DecodeMessage(in); got != want {
			t.Errorf("DecodeMessage(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestEncodeMessage(t *testing.T) {
	if got, want := EncodeMessage("café 100%\nok"), "caf%C3%A9 100%25%0Aok"; got != want {
		t.Errorf("EncodeMessage = %q, want %q", got, want)
	}
}

func TestNames(t *testing.T) {
	for c, want := range map[int]string{0: "OK", 4: "DeadlineExceeded", 12: "Unimplemented", 14: "Unavailable", 16: "Unauthenticated", 17: "Code(17)", -1: "Code(-1)"} {
		if got := CodeName(c); got != want {
			t.Errorf("CodeName(%d) = %q, want %q", c, got, want)
		}
	}
	for s, want := range map[int32]string{0: "UNKNOWN", 1: "SERVING", 2: "NOT_SERVING", 3: "SERVICE_UNKNOWN", 9: "9"} {
		if got := ServingName(s); got != want {
			t.Errorf("ServingName(%d) = %q, want %q", s, got, want)
		}
	}
}

func TestIsContentType(t *testing.T) {
	for ct, want := range map[string]bool{
		"application/grpc": true, "application/grpc+proto": true, "application/grpc; charset=utf-8": true,
		"application/grpc-web": false, "text/plain": false, "": false, "application/json": false,
	} {
		if got := IsContentType(ct); got != want {
			t.Errorf("IsContentType(%q) = %v", ct, got)
		}
	}
}

// What Response encodes, ParseResponse reads back, and Request and
// ParseRequest likewise: the server's side and the prober's agree.
func TestRoundTrip(t *testing.T) {
	for _, st := range []int32{ServingUnknown, Serving, NotServing, ServiceUnknown, 300, -1} {
		b := Response(st)
		if n := int(b[1])<<24 | int(b[2])<<16 | int(b[3])<<8 | int(b[4]); b[0] != 0 || n != len(b)-5 {
			t.Fatalf("Response(%d) = % x: bad prefix", st, b)
		}
		if got, err := ParseResponse(b[5:]); err != nil || got != st {
			t.Errorf("ParseResponse(Response(%d)) = %d, %v", st, got, err)
		}
	}
	for _, svc := range []string{"", "orders.v1.Orders", string(bytes.Repeat([]byte("x"), 200))} {
		if got, err := ParseRequest(Request(svc)[5:]); err != nil || got != svc {
			t.Errorf("ParseRequest(Request(%.20q)) = %.20q, %v", svc, got, err)
		}
	}
	if _, err := ParseResponse([]byte{0x80}); err == nil || err.Error() != "malformed HealthCheckResponse: bad tag" {
		t.Errorf("error text: %v", err)
	}
}
