//go:build !unix

package scale

import "time"

// processCPU is not measured here; CPU figures read 0.
func processCPU() time.Duration { return 0 }

// udpRcvbufErrors is not measured here.
func udpRcvbufErrors() int64 { return 0 }
