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
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// countHijacker counts the writes to the hijacked connection: the system
// calls a batch is meant to save.
type countHijacker struct {
	http.ResponseWriter
	writes *atomic.Int64
}

type countConn struct {
	net.Conn
	writes *atomic.Int64
}

func (c *countConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

func (w *countHijacker) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	return &countConn{Conn: c, writes: w.writes}, brw, nil
}

// TestBatchConn: frames written in a batch reach a gorilla client intact,
// in order and as the same messages, in one write while they fit in
// wsBatchBytes; a ping written from another goroutine during the batch
// goes out with it; nothing stays gathered after a batch (the client gets
// every frame while the server writes nothing more); outside a batch each
// frame is its own write; a close goes out.
func TestBatchConn(t *testing.T) {
	var writes atomic.Int64
	var bufs sync.Pool
	bufs.New = func() any { b := make([]byte, 0, wsBatchBytes); return &b }
	type step struct {
		name string
		do   func(conn *websocket.Conn, bc *batchConn) error
	}
	steps := make(chan step)
	stepDone := make(chan error)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		bw := &batchHijacker{ResponseWriter: &countHijacker{ResponseWriter: w, writes: &writes}, bufs: &bufs, timeout: time.Second}
		conn, err := (&websocket.Upgrader{}).Upgrade(bw, r, nil)
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
		for s := range steps {
			stepDone <- s.do(conn, bw.conn)
		}
	}))
	defer srv.Close()
	defer close(steps)
	client, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	pings := make(chan string, 10)
	client.SetPingHandler(func(s string) error { pings <- s; return nil })

	msg := func(i, size int) []byte {
		b := bytes.Repeat([]byte{byte('a' + i%26)}, size)
		copy(b, fmt.Sprintf("%d:", i))
		return b
	}
	send := func(msgs [][]byte, batch bool, during func(*websocket.Conn)) step {
		return step{do: func(conn *websocket.Conn, bc *batchConn) error {
			if batch {
				bc.begin()
			}
			for i, m := range msgs {
				pm, err := websocket.NewPreparedMessage(websocket.TextMessage, m)
				if err != nil {
					return err
				}
				if err := conn.WritePreparedMessage(pm); err != nil {
					return err
				}
				if i == len(msgs)/2 && during != nil {
					during(conn)
				}
			}
			if !batch {
				return nil
			}
			if err := bc.end(); err != nil {
				return err
			}
			bc.mu.Lock()
			defer bc.mu.Unlock()
			if bc.buf != nil || bc.batch {
				return errors.New("bytes left gathered after the batch")
			}
			return nil
		}}
	}
	run := func(s step) {
		t.Helper()
		steps <- s
		if err := <-stepDone; err != nil {
			t.Fatal(err)
		}
	}
	// receive reads msgs, with nothing more written meanwhile: what a batch
	// gathered must all be on the wire already.
	receive := func(msgs [][]byte) {
		t.Helper()
		client.SetReadDeadline(time.Now().Add(5 * time.Second))
		for i, want := range msgs {
			typ, got, err := client.ReadMessage()
			if err != nil {
				t.Fatalf("message %d of %d: %v", i, len(msgs), err)
			}
			if typ != websocket.TextMessage || !bytes.Equal(got, want) {
				t.Fatalf("message %d: %q..., want %q... (type %d)", i, got[:min(len(got), 10)], want[:min(len(want), 10)], typ)
			}
		}
	}

	// A batch that fits: one write.
	var small [][]byte
	for i := range 50 {
		small = append(small, msg(i, 10+i*7))
	}
	w0 := writes.Load()
	run(send(small, true, nil))
	if n := writes.Load() - w0; n != 1 {
		t.Errorf("a batch of 50 small frames took %d writes, want 1", n)
	}
	receive(small)

	// A batch larger than wsBatchBytes, one frame larger by itself, and a
	// ping from another goroutine halfway: all arrive, in order; the
	// writes are a few, not one per frame.
	var large [][]byte
	for i := range 200 {
		size := 300
		if i == 120 {
			size = wsBatchBytes + 1000
		}
		large = append(large, msg(i, size))
	}
	w0 = writes.Load()
	run(send(large, true, func(conn *websocket.Conn) {
		done := make(chan error)
		go func() {
			done <- conn.WriteControl(websocket.PingMessage, []byte("mid-batch"), time.Now().Add(time.Second))
		}()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}))
	if n := writes.Load() - w0; n < 2 || n > 10 {
		t.Errorf("a batch of 200 frames (%d KiB) took %d writes, want a few", 200*300/1024, n)
	}
	// The ping handler runs while the client reads.
	receive(large)
	select {
	case p := <-pings:
		if p != "mid-batch" {
			t.Errorf("ping %q", p)
		}
	default:
		t.Error("the ping written during the batch did not arrive with it")
	}

	// Outside a batch every frame is its own write, at once.
	w0 = writes.Load()
	run(send(small[:3], false, nil))
	if n := writes.Load() - w0; n != 3 {
		t.Errorf("3 frames outside a batch took %d writes, want 3", n)
	}
	receive(small[:3])

	// A ping outside a batch, then close.
	run(step{do: func(conn *websocket.Conn, _ *batchConn) error {
		return conn.WriteControl(websocket.PingMessage, []byte("alone"), time.Now().Add(time.Second))
	}})
	run(step{do: func(conn *websocket.Conn, _ *batchConn) error {
		return conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseGoingAway, "bye"), time.Now().Add(time.Second))
	}})
	client.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, _, err = client.ReadMessage()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.CloseGoingAway || ce.Text != "bye" {
		t.Fatalf("after close: %v, want close 1001 bye", err)
	}
	if p := <-pings; p != "alone" {
		t.Errorf("ping %q, want alone", p)
	}
}
