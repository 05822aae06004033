package healthsrv

import (
	"errors"
	"testing"
)

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
			got, err := parseRequest(tt.in)
			if tt.err != (err != nil) || (err != nil && !errors.Is(err, errMalformed)) || got != tt.want {
				t.Errorf("parseRequest(% x) = %q, %v", tt.in, got, err)
			}
		})
	}
}

func TestEncodeMessage(t *testing.T) {
	if got, want := encodeMessage("café 100%\nok"), "caf%C3%A9 100%25%0Aok"; got != want {
		t.Errorf("encodeMessage = %q, want %q", got, want)
	}
}
