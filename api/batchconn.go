package api

import (
	"bufio"
	"net"
	"net/http"
	"sync"
	"time"
)

// wsBatchBytes bounds what one websocket gathers in a batch before it
// writes: a burst of a few hundred events takes a few writes, and a client
// too slow to take them holds no more than this.
const wsBatchBytes = 16 << 10

// batchConn is a hijacked websocket connection that can gather the frames
// of a batch into one write system call: to a client that fell behind, a
// burst of events costs one write, not one per event, and the frames on the
// wire are the same. Outside a batch every write goes straight through; a
// batch always ends with its bytes written, so a ping, pong or close (which
// gorilla writes whenever it must, from any goroutine) waits at most for
// the end of the batch it fell into.
type batchConn struct {
	net.Conn
	bufs *sync.Pool // of *[]byte of cap wsBatchBytes, shared by all websockets

	// timeout bounds each write of a batch, as wsWriteTimeout bounds each
	// frame written alone: a client that takes a batch slowly is cut off
	// no sooner than one that took the frames one by one.
	timeout time.Duration

	mu    sync.Mutex
	batch bool
	buf   *[]byte // only while a batch has bytes, so an idle client holds none
	err   error   // the write that failed: every later write fails too
}

func newBatchConn(c net.Conn, bufs *sync.Pool, timeout time.Duration) *batchConn {
	return &batchConn{Conn: c, bufs: bufs, timeout: timeout}
}

// begin opens a batch.
func (c *batchConn) begin() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.batch = true
}

// end closes the batch, writing what it gathered.
func (c *batchConn) end() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.batch = false
	return c.flushLocked()
}

// Write gathers p in an open batch and writes it otherwise. gorilla writes
// each frame with one Write, and its own lock keeps two from mixing.
func (c *batchConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return 0, c.err
	}
	if !c.batch {
		return c.writeLocked(p)
	}
	if c.buf != nil && len(*c.buf)+len(p) > cap(*c.buf) {
		if err := c.flushLocked(); err != nil {
			return 0, err
		}
	}
	if len(p) > wsBatchBytes {
		return c.writeLocked(p)
	}
	if c.buf == nil {
		c.buf = c.bufs.Get().(*[]byte)
	}
	*c.buf = append(*c.buf, p...)
	return len(p), nil
}

// SetWriteDeadline applies at once outside a batch; inside one, gorilla's
// deadline for a frame it gathered gives way to the batch's (the frame is
// written with the batch).
func (c *batchConn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.batch {
		return nil
	}
	return c.Conn.SetWriteDeadline(t)
}

func (c *batchConn) flushLocked() error {
	if c.buf == nil {
		return c.err
	}
	if c.err == nil {
		if err := c.Conn.SetWriteDeadline(time.Now().Add(c.timeout)); err != nil {
			c.err = err
		} else {
			c.writeLocked(*c.buf)
		}
	}
	*c.buf = (*c.buf)[:0]
	c.bufs.Put(c.buf)
	c.buf = nil
	return c.err
}

func (c *batchConn) writeLocked(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	if err != nil {
		c.err = err
	}
	return n, err
}

// batchHijacker hands gorilla's Upgrader the hijacked connection as a
// batchConn, kept in conn.
type batchHijacker struct {
	http.ResponseWriter
	bufs    *sync.Pool
	timeout time.Duration
	conn    *batchConn
}

func (w *batchHijacker) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	w.conn = newBatchConn(c, w.bufs, w.timeout)
	return w.conn, brw, nil
}

func (w *batchHijacker) Unwrap() http.ResponseWriter { return w.ResponseWriter }
