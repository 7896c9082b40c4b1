package provider

import (
	"context"
	"net"
	"os"
	"sync/atomic"
	"syscall"
)

type connKey struct{}

// ConnContext is for http.Server.ConnContext: it lets the endpoint reach
// the connection to cork it while a configuration is sent.
func ConnContext(ctx context.Context, c net.Conn) context.Context {
	return context.WithValue(ctx, connKey{}, c)
}

func connOf(ctx context.Context) net.Conn {
	c, _ := ctx.Value(connKey{}).(net.Conn)
	return c
}

// bodyFile holds a snapshot's body in an unnamed file so that the
// endpoint sends it with sendfile(2), as nginx sends a static file, instead
// of copying 2 MB from the heap into the socket per request. Each request
// opens its own description of the file (its own offset) through
// /proc/self/fd; the references keep the descriptor open, and its number
// unused by anything else, until the last opener is done.
type bodyFile struct {
	f    *os.File
	path string
	refs atomic.Int64 // the snapshot's reference plus openers in flight
}

// open returns a new read-only description of the body, positioned at 0,
// or nil once the snapshot was replaced (the caller then writes the body
// from memory).
func (b *bodyFile) open() *os.File {
	if b == nil {
		return nil
	}
	for {
		n := b.refs.Load()
		if n <= 0 {
			return nil
		}
		if b.refs.CompareAndSwap(n, n+1) {
			break
		}
	}
	defer b.release()
	// Opened blocking (not as os.Open does), so the runtime does not try
	// to add a regular file to its poller on every request.
	fd, err := syscall.Open(b.path, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil
	}
	return os.NewFile(uintptr(fd), b.path)
}

// release drops one reference; the last one closes the file.
func (b *bodyFile) release() {
	if b != nil && b.refs.Add(-1) == 0 {
		b.f.Close()
	}
}
