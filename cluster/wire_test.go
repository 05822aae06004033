package cluster

import (
	"testing"
	"time"
)

// A result carries the certificate's expiry to every agent; one from an
// agent that predates the field (no trailing bytes) still decodes.
func TestResultCarriesCertExpiry(t *testing.T) {
	exp := time.Date(2027, 1, 2, 3, 4, 5, 0, time.UTC)
	o := Observation{Target: "web", AgentID: "eu-1", Region: "eu", Boot: 1, Seq: 2, OK: true,
		ConfirmedFor: time.Second, CertExpiry: exp}
	got, err := decodeResult(encodeResult(&o))
	if err != nil || !got.CertExpiry.Equal(exp) || got.ConfirmedFor != time.Second {
		t.Fatalf("round trip: %+v, %v; want cert expiry %v", got, err, exp)
	}
	o.CertExpiry = time.Time{}
	b := encodeResult(&o)
	if got, err := decodeResult(b[:len(b)-1]); err != nil || !got.CertExpiry.IsZero() || got.ConfirmedFor != time.Second {
		t.Fatalf("without the trailing field: %+v, %v", got, err)
	}
}
