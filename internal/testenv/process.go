package testenv

import (
	"bytes"
	"net"
	"sync"
)

// FreePort returns a 127.0.0.1 address whose port nobody listens on right
// now, for a neighbour that must be told its port before it starts. The
// kernel hands out ephemeral ports in turn, so the port is unlikely to be
// given to someone else first; callers retry when it was.
func FreePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := ln.Addr().String()
	return addr, ln.Close()
}

// ProcessLog keeps what a neighbour process prints, for failure messages:
// its stdout and stderr may write at once, and a chatty one is cut at 1 MB.
type ProcessLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *ProcessLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.b.Len() < 1<<20 {
		l.b.Write(p)
	}
	return len(p), nil
}

// String is what the process printed so far.
func (l *ProcessLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
