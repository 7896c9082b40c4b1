package dnsserver

import (
	"fmt"
	"net"
	"net/netip"
	"testing"

	"github.com/miekg/dns"

	"github.com/moorhq/moor/internal/testenv"
)

// bigUpstream serves 100 A records for any name: truncated to 512 bytes
// over UDP for a query without EDNS (as a well-behaved server does), whole
// over TCP. It returns its address.
func bigUpstream(t *testing.T) string {
	t.Helper()
	addr := "127.0.0.1:" + testenv.FreeUDPPort(t)
	handler := dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(req)
		for i := range 100 {
			m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: req.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60},
				A: net.IPv4(198, 51, 100, byte(i)).To4()})
		}
		if _, udp := w.RemoteAddr().(*net.UDPAddr); udp {
			size := 512
			if o := req.IsEdns0(); o != nil {
				size = int(o.UDPSize())
			}
			m.Truncate(size)
		}
		w.WriteMsg(m)
	})
	for _, network := range []string{"udp", "tcp"} {
		srv := &dns.Server{Addr: addr, Net: network, Handler: handler}
		started := make(chan error, 1)
		srv.NotifyStartedFunc = func() { started <- nil }
		go func() { started <- srv.ListenAndServe() }()
		if err := <-started; err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { srv.Shutdown() })
	}
	return addr
}

// TestForwardedAnswerFitsTheClient: a forwarded answer too big for the
// client's UDP size (512 bytes without EDNS, else what its OPT says) comes
// back truncated (TC set, within the size), and whole over TCP.
func TestForwardedAnswerFitsTheClient(t *testing.T) {
	up := bigUpstream(t)
	ts := startServer(t, func(c *Config) {
		c.ContainerCIDRs = []netip.Prefix{netip.MustParsePrefix("127.0.0.2/32")}
		c.Upstreams = []string{up}
	})
	for _, size := range []uint16{0, 1232} {
		t.Run(fmt.Sprintf("udp size %d", size), func(t *testing.T) {
			m := new(dns.Msg)
			m.SetQuestion("many.example.org.", dns.TypeA)
			limit := 512
			if size > 0 {
				m.SetEdns0(size, false)
				limit = int(size)
			}
			c := &dns.Client{Net: "udp", UDPSize: 65535, Dialer: dialerFrom(netip.MustParseAddr("127.0.0.2"), "udp")}
			r, _, err := c.Exchange(m, ts.addr)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := r.Pack()
			if !r.Truncated || len(b) > limit {
				t.Fatalf("reply of %d bytes, TC=%v, to a client taking %d", len(b), r.Truncated, limit)
			}
		})
	}
	m := new(dns.Msg)
	m.SetQuestion("many.example.org.", dns.TypeA)
	r, err := ts.exchangeFrom("127.0.0.2", "tcp", m)
	if err != nil || r.Truncated || len(r.Answer) != 100 {
		t.Fatalf("over TCP: %d answers, TC=%v, %v; want all 100", len(r.Answer), r != nil && r.Truncated, err)
	}
}
