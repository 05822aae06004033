//go:build !linux

package bench

import (
	"errors"
	"os/exec"
	"time"
)

var errUnsupported = errors.New("vantage bench needs Linux (getrusage and /proc)")

func supported() error                         { return errUnsupported }
func selfCPU() (time.Duration, error)          { return 0, errUnsupported }
func pidCPU(int) (time.Duration, error)        { return 0, errUnsupported }
func memory() (uint64, uint64, error)          { return 0, 0, errUnsupported }
func pidMemory(string) (uint64, uint64, error) { return 0, 0, errUnsupported }
func loadAvg() float64                         { return -1 }
func setChildAttrs(*exec.Cmd)                  {}
func icmpEchos() int64                         { return 0 }
