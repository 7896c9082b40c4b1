package dnsserver

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// tcpQuery sends one query on c and reads the answer.
func tcpQuery(c net.Conn, name string) (*dns.Msg, error) {
	m := new(dns.Msg)
	m.SetQuestion(name, dns.TypeSOA)
	p, _ := m.Pack()
	c.SetDeadline(time.Now().Add(time.Second))
	defer c.SetDeadline(time.Time{})
	msg := binary.BigEndian.AppendUint16(nil, uint16(len(p)))
	if _, err := c.Write(append(msg, p...)); err != nil {
		return nil, err
	}
	var lb [2]byte
	if _, err := io.ReadFull(c, lb[:]); err != nil {
		return nil, err
	}
	b := make([]byte, binary.BigEndian.Uint16(lb[:]))
	if _, err := io.ReadFull(c, b); err != nil {
		return nil, err
	}
	r := new(dns.Msg)
	return r, r.Unpack(b)
}

// closedWithin says whether the server closes c (a read sees EOF or a
// reset) within d.
func closedWithin(c net.Conn, d time.Duration) bool {
	c.SetReadDeadline(time.Now().Add(d))
	_, err := c.Read(make([]byte, 1))
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		return false
	}
	return err != nil
}

func dialFrom(t *testing.T, ts *testServer, src string) net.Conn {
	t.Helper()
	c, err := dialerFrom(netip.MustParseAddr(src), "tcp").Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func heapAndStack() (heap, stack uint64) {
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC() // the second empties sync.Pool's victim cache
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc, ms.StackInuse
}

// TestTCPConnectionLimits plays the attack of issue 8 on loopback: one
// client holds every TCP connection it may, from several addresses. Over
// the per-source cap a connection is closed at once; at the global cap a
// new client is served in the place of the connection idle the longest;
// UDP still answers within a second; held connections cost little memory
// and are closed once idle.
func TestTCPConnectionLimits(t *testing.T) {
	const perSource, sources, idle = 50, 4, 2 * time.Second
	ts := startServer(t, func(c *Config) {
		c.TCPMaxConns, c.TCPMaxPerSource, c.TCPIdleTimeout = perSource*sources, perSource, idle
	})
	// Warm up (the pool, the first snapshot's paths) before measuring.
	warm := dialFrom(t, ts, "127.0.0.9")
	if _, err := tcpQuery(warm, "moor.localhost."); err != nil {
		t.Fatal(err)
	}
	warm.Close()
	time.Sleep(50 * time.Millisecond) // its slot is released
	heap0, stack0 := heapAndStack()
	var held []net.Conn
	start := time.Now()
	for i := range sources {
		src := netip.AddrFrom4([4]byte{127, 0, 0, byte(2 + i)}).String()
		for range perSource {
			c := dialFrom(t, ts, src)
			if _, err := tcpQuery(c, "moor.localhost."); err != nil {
				t.Fatalf("held connection %d: %v", len(held), err)
			}
			held = append(held, c)
		}
	}
	heap1, stack1 := heapAndStack()
	n := int64(len(held))
	perHeap := (int64(heap1) - int64(heap0)) / n
	perStack := (int64(stack1) - int64(stack0)) / n
	t.Logf("%d connections held (both ends in this process): heap %+d B, stacks %+d B per connection", n, perHeap, perStack)
	// The bound covers client and server side together: the server's
	// share was ~139 KiB before issue 8.
	if perHeap > 8<<10 {
		t.Errorf("heap per held connection %d B, want < 8 KiB", perHeap)
	}
	if perStack > 16<<10 {
		t.Errorf("stack per held connection %d B, want < 16 KiB", perStack)
	}

	// Over the per-source cap: closed at once.
	c := dialFrom(t, ts, "127.0.0.2")
	t0 := time.Now()
	if !closedWithin(c, time.Second) {
		t.Error("connection over the per-source cap stayed open")
	}
	t.Logf("connection over the per-source cap closed after %v", time.Since(t0).Round(time.Microsecond))
	if got := ts.srv.Stats().TCPRefused; got != 1 {
		t.Errorf("TCPRefused = %d, want 1", got)
	}
	// At the global cap, from a new address: served, in the place of the
	// connection idle the longest.
	t0 = time.Now()
	if _, err := tcpQuery(dialFrom(t, ts, "127.0.0.20"), "moor.localhost."); err != nil {
		t.Fatalf("new client at the global cap: %v", err)
	}
	t.Logf("new client at the global cap answered in %v", time.Since(t0).Round(time.Microsecond))
	if !closedWithin(held[0], time.Second) {
		t.Error("the connection idle the longest was not evicted")
	}
	if got := ts.srv.Stats().TCPEvicted; got != 1 {
		t.Errorf("TCPEvicted = %d, want 1", got)
	}

	// UDP answers while the attacker holds every TCP connection.
	t0 = time.Now()
	if r := ts.ask("", "moor.localhost.", dns.TypeSOA); len(r.Answer) != 1 {
		t.Fatalf("UDP while held: %v", r)
	}
	if d := time.Since(t0); d > time.Second {
		t.Errorf("UDP answered after %v", d)
	}
	t.Logf("UDP answered in %v while %d TCP connections were held", time.Since(t0).Round(time.Microsecond), n)

	// Idle connections are closed after the idle timeout, not before.
	if closedWithin(held[1], idle/4) {
		t.Error("held connection closed well before the idle timeout")
	}
	for i, c := range held[1:] {
		if !closedWithin(c, 2*idle) {
			t.Fatalf("held connection %d still open after the idle timeout", i+1)
		}
	}
	if d := time.Since(start); d > 3*idle+time.Second {
		t.Errorf("idle connections closed after %v", d)
	}
}

// TestTCPEvictsIdleLongest: at the global cap a new connection takes the
// place of the one idle the longest; a query moves a connection to the
// back, so an attacker's connections go before a client that just asked.
func TestTCPEvictsIdleLongest(t *testing.T) {
	ts := startServer(t, func(c *Config) { c.TCPMaxConns, c.TCPMaxPerSource = 3, 3 })
	ask := func(c net.Conn, what string) {
		t.Helper()
		if _, err := tcpQuery(c, "moor.localhost."); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	cs := make([]net.Conn, 3)
	for i := range cs {
		cs[i] = dialFrom(t, ts, "127.0.0.2")
		ask(cs[i], fmt.Sprintf("connection %d", i))
	}
	ask(cs[0], "connection 0 again") // idle since: 1, 2, 0
	for i, want := range []int{1, 2} {
		ask(dialFrom(t, ts, fmt.Sprintf("127.0.0.%d", 3+i)), fmt.Sprintf("newcomer %d", i))
		if !closedWithin(cs[want], time.Second) {
			t.Fatalf("connection %d, idle the longest, still open", want)
		}
	}
	ask(cs[0], "connection 0, asked last before the newcomers")
	if st := ts.srv.Stats(); st.TCPEvicted != 2 || st.TCPRefused != 0 {
		t.Errorf("TCPEvicted %d, TCPRefused %d; want 2, 0", st.TCPEvicted, st.TCPRefused)
	}
}
