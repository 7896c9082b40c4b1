package dnsserver

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// withoutSelf drops upstreams that are one of moor's own listeners, so a
// forwarded query can never come back to moor.
func withoutSelf(ups, listen []string, logger *slog.Logger) []string {
	self := map[netip.AddrPort]bool{}
	var wildPorts []uint16
	for _, l := range listen {
		host, port, _ := net.SplitHostPort(l)
		ap, err := netip.ParseAddrPort(net.JoinHostPort(host, port))
		if err != nil {
			continue
		}
		if ap.Addr().IsUnspecified() {
			wildPorts = append(wildPorts, ap.Port())
		}
		self[netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())] = true
	}
	local := map[netip.Addr]bool{}
	if len(wildPorts) > 0 {
		addrs, _ := net.InterfaceAddrs()
		for _, a := range addrs {
			if p, err := netip.ParsePrefix(a.String()); err == nil {
				local[p.Addr().Unmap()] = true
			}
		}
	}
	var out []string
	for _, u := range ups {
		ap := netip.MustParseAddrPort(u)
		a := netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
		loop := self[a]
		for _, p := range wildPorts {
			loop = loop || (p == a.Port() && (local[a.Addr()] || a.Addr().IsLoopback()))
		}
		if loop {
			logger.Warn("dns upstream is moor itself, dropped (no loops)", "upstream", u)
			continue
		}
		out = append(out, u)
	}
	return out
}

// forwardUDP answers a container's query for another name from the
// upstreams.
func (s *Server) forwardUDP(ctx context.Context, c *net.UDPConn, from netip.AddrPort, req *dns.Msg) {
	m := s.forward(ctx, req)
	limit := 512
	if o := req.IsEdns0(); o != nil && o.UDPSize() > 512 {
		limit = int(min(o.UDPSize(), maxUDPSize))
	}
	if b := packReply(make([]byte, 0, 4096), m, limit); b != nil {
		c.WriteToUDPAddrPort(b, from)
	}
}

// forward asks the upstreams in turn; SERVFAIL when none answers.
func (s *Server) forward(ctx context.Context, req *dns.Msg) *dns.Msg {
	for _, up := range s.upstreams {
		c := &dns.Client{Net: "udp", Timeout: 2 * time.Second, UDPSize: 4096}
		r, _, err := c.ExchangeContext(ctx, req, up)
		if err == nil && r.Truncated {
			c.Net = "tcp"
			r, _, err = c.ExchangeContext(ctx, req, up)
		}
		if err == nil {
			r.Id = req.Id
			return r
		}
		s.log.Debug("dns: upstream failed", "upstream", up, "err", err)
	}
	m := new(dns.Msg)
	m.SetRcode(req, dns.RcodeServerFailure)
	m.RecursionAvailable = true
	return m
}

// ResolvConfServers reads nameserver lines of a resolv.conf as ip:53.
func ResolvConfServers(path string) ([]string, error) {
	cc, err := dns.ClientConfigFromFile(path)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, s := range cc.Servers {
		if a, err := netip.ParseAddr(strings.TrimSpace(s)); err == nil {
			out = append(out, netip.AddrPortFrom(a, 53).String())
		}
	}
	return out, nil
}
