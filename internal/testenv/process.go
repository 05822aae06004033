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

// Output is what something prints (an agent's logger, a neighbour process's
// stdout and stderr), written from several goroutines while the test reads
// it. Limit, when set, cuts a chatty writer off at that many bytes.
type Output struct {
	Limit int
	mu    sync.Mutex
	b     bytes.Buffer
}

func (o *Output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.Limit == 0 || o.b.Len() < o.Limit {
		o.b.Write(p)
	}
	return len(p), nil
}

// String is what was written so far.
func (o *Output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.String()
}
