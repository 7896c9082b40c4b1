package e2e

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/moorhq/moor/internal/testenv"
)

// TestHeldConnectionsDoNotStarveMoor is the attack of issue 8 against the
// real binary, bounded: without credentials, an attacker holds more HTTP
// connections than the cap (idle keep-alives, and connections that never
// send a request) and more DNS-over-TCP connections than that cap; meanwhile
// /healthz, an authenticated API call and a UDP DNS query still answer
// within a second.
func TestHeldConnectionsDoNotStarveMoor(t *testing.T) {
	e := NewEnv(t)
	dnsAddr := fmt.Sprintf("127.0.0.1:%d", testenv.FreeTCPPort(t))
	m := e.Start("MOOR_DNS_ADDR="+dnsAddr, "MOOR_HTTP_MAX_CONNS=16", "MOOR_HTTP_MAX_LONG=4",
		"MOOR_DNS_TCP_MAX_CONNS=20", "MOOR_DNS_TCP_MAX_PER_SOURCE=20",
		"MOOR_HTTP_IDLE_TIMEOUT=60s", "MOOR_DNS_TCP_IDLE_TIMEOUT=60s")
	host := m.URL[len("http://"):]
	// moor binds its DNS listeners beside the HTTP one: wait for them.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if c, err := net.DialTimeout("tcp", dnsAddr, time.Second); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("moor's DNS server does not listen on %s", dnsAddr)
		}
	}
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	dial := func(addr string) net.Conn {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			t.Fatalf("attacker dial %s: %v", addr, err)
		}
		held = append(held, c)
		return c
	}
	// 40 keep-alives after one public request each, 40 that say nothing.
	for range 40 {
		c := dial(host)
		fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: %s\r\n\r\n", host)
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		if resp, err := http.ReadResponse(bufio.NewReader(c), nil); err == nil {
			resp.Body.Close()
		}
	}
	for range 40 {
		dial(host)
	}
	for range 40 {
		dial(dnsAddr)
	}
	time.Sleep(200 * time.Millisecond)
	// moor keeps no more than its caps open: the rest it closed.
	open := func(cs []net.Conn) int {
		n := 0
		for _, c := range cs {
			c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
			if _, err := c.Read(make([]byte, 1)); err != nil {
				if ne, ok := err.(net.Error); ok && ne.Timeout() {
					n++ // still open, waiting
				}
			}
		}
		return n
	}
	if n := open(held[:80]); n > 16 {
		t.Errorf("%d attacker HTTP connections held open, cap 16", n)
	}
	if n := open(held[80:]); n > 20 {
		t.Errorf("%d attacker DNS connections held open, cap 20", n)
	}

	within := func(what string, fn func() error) {
		t.Helper()
		start := time.Now()
		if err := fn(); err != nil {
			t.Errorf("%s while held: %v", what, err)
			return
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("%s while held took %v", what, d)
		}
	}
	fresh := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	// ok200 GETs path on a new connection, with key if given.
	ok200 := func(path, key string) func() error {
		return func() error {
			req, _ := http.NewRequest("GET", m.URL+path, nil)
			if key != "" {
				req.Header.Set("Authorization", "Bearer "+key)
			}
			resp, err := fresh.Do(req)
			if err != nil {
				return err
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				return fmt.Errorf("status %d", resp.StatusCode)
			}
			return nil
		}
	}
	within("GET /healthz", ok200("/healthz", ""))
	within("an authenticated API call", ok200("/api/v1/containers", e.Admin))
	within("a UDP DNS query", func() error {
		q := new(dns.Msg)
		q.SetQuestion("moor.localhost.", dns.TypeSOA)
		r, _, err := (&dns.Client{Net: "udp", Timeout: 2 * time.Second}).Exchange(q, dnsAddr)
		if err != nil {
			return err
		}
		if r.Rcode != dns.RcodeSuccess || !r.Authoritative || len(r.Answer) != 1 {
			return fmt.Errorf("answer %v", r)
		}
		return nil
	})
}
