package tcpprobe

import (
	"context"
	"net"
	"time"
)

// guard makes I/O on conn honour ctx: it gets ctx's deadline, and is cut
// (deadline moved to the past) if ctx is cancelled earlier, without a
// goroutine per probe. Call stop before closing conn.
func guard(ctx context.Context, conn net.Conn) (stop func() bool) {
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	if ctx.Done() == nil {
		return noop
	}
	return context.AfterFunc(ctx, func() { _ = conn.SetDeadline(longAgo) })
}

// longAgo is a deadline in the past: setting it fails pending I/O at once.
var longAgo = time.Unix(1, 0)

func noop() bool { return false }
