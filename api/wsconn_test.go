package api

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// tapHijacker records what is written to the hijacked connection, write by
// write: the system calls a batch is meant to save, and the bytes.
type tapHijacker struct {
	http.ResponseWriter
	tap *tap
}

type tap struct {
	mu     sync.Mutex
	writes [][]byte
}

func (t *tap) take() [][]byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	w := t.writes
	t.writes = nil
	return w
}

type tapConn struct {
	net.Conn
	tap *tap
}

func (c *tapConn) Write(p []byte) (int, error) {
	c.tap.mu.Lock()
	c.tap.writes = append(c.tap.writes, bytes.Clone(p))
	c.tap.mu.Unlock()
	return c.Conn.Write(p)
}

func (w *tapHijacker) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	return &tapConn{Conn: c, tap: w.tap}, brw, nil
}

// wsPair is a websocket through wsHijacker, the server's end run by steps
// sent to it, and a gorilla client.
type wsPair struct {
	tap    *tap
	client *websocket.Conn
	steps  chan func(*websocket.Conn, *wsConn) error
	done   chan error
}

func newWSPair(t *testing.T) *wsPair {
	p := &wsPair{tap: &tap{}, steps: make(chan func(*websocket.Conn, *wsConn) error), done: make(chan error)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hj := &wsHijacker{ResponseWriter: &tapHijacker{ResponseWriter: w, tap: p.tap}, timeout: time.Second}
		conn, err := (&websocket.Upgrader{}).Upgrade(hj, r, nil)
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close()
		go func() { // gorilla answers pings and close from its reader
			for {
				if _, _, err := conn.NextReader(); err != nil {
					return
				}
			}
		}()
		for step := range p.steps {
			p.done <- step(conn, hj.conn)
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(p.steps) })
	var err error
	p.client, _, err = websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.client.Close() })
	p.tap.take() // the handshake
	return p
}

// run has the server do step and waits for it.
func (p *wsPair) run(t *testing.T, step func(*websocket.Conn, *wsConn) error) {
	t.Helper()
	p.steps <- step
	if err := <-p.done; err != nil {
		t.Fatal(err)
	}
}

// receive reads msgs at the client, with nothing more written meanwhile:
// what a batch held must all be on the wire already.
func (p *wsPair) receive(t *testing.T, msgs [][]byte) {
	t.Helper()
	p.client.SetReadDeadline(time.Now().Add(5 * time.Second))
	for i, want := range msgs {
		typ, got, err := p.client.ReadMessage()
		if err != nil {
			t.Fatalf("message %d of %d: %v", i, len(msgs), err)
		}
		if typ != websocket.TextMessage || !bytes.Equal(got, want) {
			t.Fatalf("message %d: %q..., want %q... (type %d)", i, got[:min(len(got), 10)], want[:min(len(want), 10)], typ)
		}
	}
}

func testMessage(i, size int) []byte {
	b := bytes.Repeat([]byte{byte('a' + i%26)}, size)
	copy(b, fmt.Sprintf("%d:", i))
	return b
}

// TestAppendFrame: moor frames an event as gorilla frames the same message
// (WriteMessage and a PreparedMessage), byte for byte, at every length
// encoding.
func TestAppendFrame(t *testing.T) {
	p := newWSPair(t)
	for _, n := range []int{0, 1, 125, 126, 127, 1000, 0xffff, 0x10000, 70000} {
		msg := testMessage(n, n)
		want := appendFrame(nil, msg)
		if len(want) != frameLen(n) {
			t.Errorf("%d bytes: frame of %d, frameLen says %d", n, len(want), frameLen(n))
		}
		p.run(t, func(conn *websocket.Conn, _ *wsConn) error {
			return conn.WriteMessage(websocket.TextMessage, msg)
		})
		if got := bytes.Join(p.tap.take(), nil); !bytes.Equal(got, want) {
			t.Errorf("%d bytes: gorilla's WriteMessage frames %x..., appendFrame %x...", n, got[:min(12, len(got))], want[:min(12, len(want))])
		}
		pm, err := websocket.NewPreparedMessage(websocket.TextMessage, msg)
		if err != nil {
			t.Fatal(err)
		}
		p.run(t, func(conn *websocket.Conn, _ *wsConn) error { return conn.WritePreparedMessage(pm) })
		if got := bytes.Join(p.tap.take(), nil); !bytes.Equal(got, want) {
			t.Errorf("%d bytes: gorilla's PreparedMessage frames %x..., appendFrame %x...", n, got[:min(12, len(got))], want[:min(12, len(want))])
		}
		p.receive(t, [][]byte{msg, msg})
	}
}

// TestWSConn: frames written as one batch reach a gorilla client intact,
// in order and as the same messages, with one write; pings written from
// another goroutine meanwhile never land inside a batch; nothing is held
// back (the client gets every frame while the server writes nothing
// more); a close goes out; after a failed write every write fails.
func TestWSConn(t *testing.T) {
	p := newWSPair(t)
	pings := make(chan string, 1000)
	p.client.SetPingHandler(func(s string) error { pings <- s; return nil })

	var msgs [][]byte
	var batch []byte
	for i := range 50 {
		msgs = append(msgs, testMessage(i, 10+i*7))
		batch = appendFrame(batch, msgs[i])
	}
	p.run(t, func(_ *websocket.Conn, wc *wsConn) error { return wc.writeFrames(batch) })
	if w := p.tap.take(); len(w) != 1 {
		t.Errorf("a batch of 50 frames took %d writes, want 1", len(w))
	}
	p.receive(t, msgs)

	// 200 batches of 50 frames, with 200 pings from another goroutine
	// meanwhile: every message and every ping arrives whole.
	p.run(t, func(conn *websocket.Conn, wc *wsConn) error {
		errs := make(chan error, 1)
		go func() {
			for i := range 200 {
				if err := conn.WriteControl(websocket.PingMessage, []byte(fmt.Sprint(i)), time.Now().Add(time.Second)); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
		for range 200 {
			if err := wc.writeFrames(batch); err != nil {
				return err
			}
		}
		if err := <-errs; err != nil {
			return err
		}
		// The client handles a ping as it reads: this last message comes
		// after every ping.
		return wc.writeFrames(appendFrame(nil, []byte("end")))
	})
	p.tap.take()
	for range 200 {
		p.receive(t, msgs)
	}
	p.receive(t, [][]byte{[]byte("end")})
	for i := range 200 {
		select {
		case s := <-pings:
			if s != fmt.Sprint(i) {
				t.Fatalf("ping %d came as %q", i, s)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("ping %d never came", i)
		}
	}

	// A close, from gorilla, goes out.
	p.run(t, func(conn *websocket.Conn, _ *wsConn) error {
		return conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseGoingAway, "bye"), time.Now().Add(time.Second))
	})
	p.client.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, _, err := p.client.ReadMessage()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.CloseGoingAway || ce.Text != "bye" {
		t.Fatalf("after close: %v, want close 1001 bye", err)
	}

	// The client gone, writing fails, and then fails at once.
	p.client.Close()
	p.run(t, func(_ *websocket.Conn, wc *wsConn) error {
		deadline := time.Now().Add(5 * time.Second)
		for wc.writeFrames(batch) == nil {
			if time.Now().After(deadline) {
				return errors.New("writes to a closed client never failed")
			}
			time.Sleep(time.Millisecond)
		}
		if _, err := wc.Write([]byte{0x89, 0}); err == nil {
			return errors.New("a write after a failed one went through")
		}
		return nil
	})
}
