package api

import (
	"bufio"
	"encoding/binary"
	"net"
	"net/http"
	"sync"
	"time"
)

// wsBatchBytes bounds one write of events to a websocket: a client behind
// by a burst of a few hundred events takes it in a few writes, each with
// its own deadline.
const wsBatchBytes = 64 << 10

// frameLen is the length of a websocket frame of n bytes of payload sent
// by a server (unmasked).
func frameLen(n int) int {
	switch {
	case n < 126:
		return 2 + n
	case n <= 0xffff:
		return 4 + n
	}
	return 10 + n
}

// appendFrame appends payload to dst as one websocket text message, framed
// as gorilla frames a server's message without compression (moor does not
// offer it): final bit and opcode, the shortest length encoding, no mask.
// The same bytes on the wire as conn.WriteMessage(TextMessage, payload).
func appendFrame(dst, payload []byte) []byte {
	const finalText = 0x80 | 0x1
	switch n := len(payload); {
	case n < 126:
		dst = append(dst, finalText, byte(n))
	case n <= 0xffff:
		dst = append(dst, finalText, 126)
		dst = binary.BigEndian.AppendUint16(dst, uint16(n))
	default:
		dst = append(dst, finalText, 127)
		dst = binary.BigEndian.AppendUint64(dst, uint64(n))
	}
	return append(dst, payload...)
}

// wsConn is a hijacked websocket connection that events are written to
// directly, as frames the hub framed once for all clients: one write
// system call for all the events a client is behind by, without a copy or
// a buffer per client. gorilla still writes the control frames (ping,
// pong, close), from any goroutine, each with one Write: the lock keeps
// them from landing inside a batch of events.
type wsConn struct {
	net.Conn
	timeout time.Duration // for each batch of events, as for a frame alone

	mu  sync.Mutex
	err error // the write that failed: every later one fails too
}

// writeFrames writes p, whole websocket frames, within the timeout.
func (c *wsConn) writeFrames(p []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return c.err
	}
	if err := c.Conn.SetWriteDeadline(time.Now().Add(c.timeout)); err != nil {
		c.err = err
		return err
	}
	_, err := c.writeLocked(p)
	return err
}

// Write is gorilla's: one frame.
func (c *wsConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return 0, c.err
	}
	return c.writeLocked(p)
}

// SetWriteDeadline waits for a batch being written, so that gorilla's
// deadline for a control frame does not cut it short.
func (c *wsConn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.Conn.SetWriteDeadline(t)
}

func (c *wsConn) writeLocked(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	if err != nil {
		c.err = err
	}
	return n, err
}

// wsHijacker hands gorilla's Upgrader the hijacked connection as a wsConn,
// kept in conn.
type wsHijacker struct {
	http.ResponseWriter
	timeout time.Duration
	conn    *wsConn
}

func (w *wsHijacker) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	w.conn = &wsConn{Conn: c, timeout: w.timeout}
	return w.conn, brw, nil
}

func (w *wsHijacker) Unwrap() http.ResponseWriter { return w.ResponseWriter }
