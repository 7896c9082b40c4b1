package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// startHTTP runs moor's HTTP server setup (newHTTPServer) with small
// limits on loopback, in front of stand-ins for /healthz, the sign-in
// route and the provider's long poll.
func startHTTP(t *testing.T, maxConns, maxLong int, idle, body time.Duration) (addr string, lim *connLimiter) {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") })
	mux.HandleFunc("POST /api/v1/session", func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.ReadAll(r.Body); err != nil {
			http.Error(w, "body: "+err.Error(), http.StatusBadRequest)
			return
		}
		io.WriteString(w, "{}\n")
	})
	mux.HandleFunc("GET /api/v1/traefik/config", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(3 * time.Second):
		}
		io.WriteString(w, "{}\n")
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &config{HTTPAddr: ln.Addr().String(), HTTPMaxConns: maxConns, HTTPMaxLong: maxLong, HTTPIdleTimeout: idle, HTTPBodyTimeout: body}
	srv, lim := newHTTPServer(c, mux, ln)
	go srv.Serve(lim)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String(), lim
}

type rawConn struct {
	net.Conn
	r *bufio.Reader
}

func dialHTTP(t *testing.T, addr string) *rawConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawConn{c, bufio.NewReader(c)}
}

// get sends one keep-alive request and reads the answer's status.
func (c *rawConn) get(path string) (int, error) {
	c.SetDeadline(time.Now().Add(2 * time.Second))
	defer c.SetDeadline(time.Time{})
	if _, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: moor\r\n\r\n", path); err != nil {
		return 0, err
	}
	resp, err := http.ReadResponse(c.r, nil)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

// closedWithin says whether the server closes c within d.
func (c *rawConn) closedWithin(d time.Duration) bool {
	c.SetReadDeadline(time.Now().Add(d))
	_, err := c.r.ReadByte()
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		return false
	}
	return err != nil
}

// TestHTTPLimits plays the HTTP attack of issue 8 on loopback against
// newHTTPServer: an attacker holds every connection the cap allows as idle
// keep-alives after /healthz, holds the long polls' quota, and sends a
// sign-in body slowly. /healthz from a new connection still answers within
// a second; the slow body is cut at the body deadline; idle connections
// are closed at the idle timeout.
func TestHTTPLimits(t *testing.T) {
	const maxConns, maxLong = 16, 4
	const idle, body = 1500 * time.Millisecond, time.Second
	addr, lim := startHTTP(t, maxConns, maxLong, idle, body)

	// Long polls (and websockets) have their own quota, beyond which they
	// are refused; they do not count against the cap.
	for i := range maxLong + 1 {
		c := dialHTTP(t, addr)
		c.SetDeadline(time.Now().Add(5 * time.Second))
		fmt.Fprintf(c, "GET /api/v1/traefik/config?wait=60s HTTP/1.1\r\nHost: moor\r\nIf-None-Match: x\r\n\r\n")
		if i < maxLong {
			waitLong(t, lim, i+1)
			continue
		}
		resp, err := http.ReadResponse(c.r, nil)
		if err != nil || resp.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("long poll over the quota: %v %v", resp, err)
		}
		c.Close()
	}
	// The refused one's slot is free once the server has seen it close;
	// until then it would count against the cap below.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		lim.mu.Lock()
		n := lim.count
		lim.mu.Unlock()
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d ordinary connections still counted after the refused long poll closed", n)
		}
	}

	var held []*rawConn
	for range maxConns {
		c := dialHTTP(t, addr)
		if code, err := c.get("/healthz"); err != nil || code != 200 {
			t.Fatalf("held connection %d: %d %v", len(held), code, err)
		}
		held = append(held, c)
	}
	heldAt := time.Now()

	// The cap is full of idle keep-alives and the long polls wait: a new
	// client's /healthz answers, in the slot of the longest idle.
	t0 := time.Now()
	c := dialHTTP(t, addr)
	if code, err := c.get("/healthz"); err != nil || code != 200 {
		t.Fatalf("/healthz while the cap is held: %d %v", code, err)
	}
	took := time.Since(t0)
	t.Logf("/healthz answered in %v with %d idle connections and %d long polls held", took.Round(time.Microsecond), maxConns, maxLong)
	if took > time.Second {
		t.Errorf("/healthz took %v", took)
	}
	if !held[0].closedWithin(time.Second) {
		t.Error("the longest idle connection was not evicted")
	}
	if n := lim.evicted.Load(); n != 1 {
		t.Errorf("evicted %d connections, want 1", n)
	}

	// A sign-in body sent slowly is cut at the body deadline.
	slow := dialHTTP(t, addr)
	fmt.Fprintf(slow, "POST /api/v1/session HTTP/1.1\r\nHost: moor\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"user")
	t0 = time.Now()
	slow.SetReadDeadline(time.Now().Add(body + 2*time.Second))
	resp, err := http.ReadResponse(slow.r, nil)
	cut := time.Since(t0)
	if err == nil {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("slow body: status %d", resp.StatusCode)
		}
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("slow body still held after the body deadline")
	}
	t.Logf("slow body cut after %v (deadline %v)", cut.Round(time.Millisecond), body)
	if cut < body-100*time.Millisecond || cut > body+time.Second {
		t.Errorf("slow body cut after %v, want about %v", cut, body)
	}
	if !slow.closedWithin(time.Second) {
		t.Error("connection of the slow body stayed open")
	}

	// Idle keep-alives are closed at the idle timeout.
	for i, c := range held[1:] {
		if !c.closedWithin(idle + time.Second - time.Since(heldAt)) {
			t.Fatalf("idle connection %d open %v after its request", i+1, time.Since(heldAt))
		}
	}
	t.Logf("idle connections closed %v after their request (idle timeout %v)", time.Since(heldAt).Round(time.Millisecond), idle)
}

// waitLong waits until n connections are in the long-lived count.
func waitLong(t *testing.T, lim *connLimiter, n int) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		lim.mu.Lock()
		got := lim.long
		lim.mu.Unlock()
		if got == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d long polls held, want %d", got, n)
		}
	}
}

// TestWriteDeadline: a client that asks for a large answer and never reads
// it does not hold its connection (and the handler) forever.
func TestWriteDeadline(t *testing.T) {
	failed := make(chan time.Duration, 1)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /big", func(w http.ResponseWriter, r *http.Request) {
		start, chunk := time.Now(), make([]byte, 64<<10)
		for range 1024 { // 64 MiB, far more than the socket buffers hold
			if _, err := w.Write(chunk); err != nil {
				failed <- time.Since(start)
				return
			}
		}
		failed <- -1
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	lim := newConnLimiter(ln, 16, 4, time.Second)
	lim.writeTimeout = 300 * time.Millisecond
	srv := &http.Server{Handler: lim.wrap(mux), ConnContext: connContext}
	go srv.Serve(lim)
	t.Cleanup(func() { srv.Close() })
	c := dialHTTP(t, ln.Addr().String())
	io.WriteString(c, "GET /big HTTP/1.1\r\nHost: x\r\n\r\n") // and never read
	select {
	case d := <-failed:
		if d < 0 {
			t.Fatal("64 MiB written to a client that reads nothing")
		}
		if d > 3*time.Second {
			t.Errorf("the write gave up after %v, deadline 300ms", d)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the handler is still writing to a client that reads nothing")
	}
}

// TestEvictionOrder: at the cap a new connection takes the place of the
// one quiet the longest; a connection that sent a request since goes to
// the back, and one whose request is being worked on is never taken.
func TestEvictionOrder(t *testing.T) {
	started, release := make(chan struct{}), make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") })
	mux.HandleFunc("GET /wait", func(w http.ResponseWriter, r *http.Request) {
		started <- struct{}{}
		<-release
		io.WriteString(w, "ok\n")
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	lim := newConnLimiter(ln, 4, 4, time.Second)
	srv := &http.Server{Handler: lim.wrap(mux), ConnContext: connContext}
	go srv.Serve(lim)
	t.Cleanup(func() { srv.Close() })
	addr := ln.Addr().String()

	cs := make([]*rawConn, 4)
	for i := range cs {
		cs[i] = dialHTTP(t, addr)
		if code, err := cs[i].get("/healthz"); err != nil || code != 200 {
			t.Fatalf("connection %d: %d %v", i, code, err)
		}
	}
	// Quiet since: 0, 1, 2, 3. 0 is now worked on, 1 asks again: 2, 3, 1.
	fmt.Fprintf(cs[0], "GET /wait HTTP/1.1\r\nHost: moor\r\n\r\n")
	<-started
	if code, err := cs[1].get("/healthz"); err != nil || code != 200 {
		t.Fatalf("connection 1 again: %d %v", code, err)
	}
	for _, want := range []int{2, 3, 1} {
		dialHTTP(t, addr)
		if !cs[want].closedWithin(time.Second) {
			t.Fatalf("connection %d, the quietest, was not evicted", want)
		}
	}
	// Only the busy one and the newcomers are left; the busy one answers.
	close(release)
	cs[0].SetReadDeadline(time.Now().Add(2 * time.Second))
	if resp, err := http.ReadResponse(cs[0].r, nil); err != nil || resp.StatusCode != 200 {
		t.Fatalf("busy connection: %v %v", resp, err)
	}
	if n := lim.evicted.Load(); n != 3 {
		t.Errorf("evicted %d connections, want 3", n)
	}
}

// pipeListener accepts in-memory connections, as many as asked.
type pipeListener struct{}

func (pipeListener) Accept() (net.Conn, error) { c, _ := net.Pipe(); return c, nil }
func (pipeListener) Close() error              { return nil }
func (pipeListener) Addr() net.Addr            { return &net.TCPAddr{} }

// BenchmarkAcceptAtCap is the cost of one connection accepted at the
// default cap, where it evicts the quietest (the attack of issue 8 while
// its connections are re-dialed: every accept is one).
func BenchmarkAcceptAtCap(b *testing.B) {
	lim := newConnLimiter(pipeListener{}, 2048, 16, time.Second)
	for range 2048 {
		lim.Accept()
	}
	for b.Loop() {
		lim.Accept()
	}
}
