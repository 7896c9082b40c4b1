package dnsserver

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/miekg/dns"
)

// transfer streams a zone (AXFR, or IXFR answered with the whole zone, or
// with the current SOA alone when the secondary is up to date).
func (s *Server) transfer(w io.Writer, req *dns.Msg, snap *Snapshot) error {
	q := req.Question[0]
	z := snap.zoneOfName(q.Name)
	if z == nil {
		return fmt.Errorf("zone %s vanished", q.Name)
	}
	reply := func(rrs []dns.RR) error {
		m := new(dns.Msg)
		m.Id, m.Response, m.Authoritative, m.Compress = req.Id, true, true, true
		m.Question = req.Question
		m.Answer = rrs
		b, err := m.Pack()
		if err != nil {
			return err
		}
		return writeTCP(w, nil, b)
	}
	if q.Qtype == dns.TypeIXFR {
		for _, rr := range req.Ns {
			if soa, ok := rr.(*dns.SOA); ok && !serialLess(soa.Serial, z.soa.Serial) {
				return reply([]dns.RR{z.soa})
			}
		}
	}
	rrs := snap.records(z)
	all := make([]dns.RR, 0, len(rrs)+1)
	all = append(all, rrs...) // SOA first
	all = append(all, z.soa)
	const per = 256
	for i := 0; i < len(all); i += per {
		if err := reply(all[i:min(i+per, len(all))]); err != nil {
			return err
		}
	}
	return nil
}

// serialLess is RFC 1982 serial arithmetic: a < b.
func serialLess(a, b uint32) bool { return a != b && int32(b-a) > 0 }

// sendNotify tells a secondary the zone changed (RFC 1996), retrying a few
// times until it acknowledges.
func (s *Server) sendNotify(ctx context.Context, addr, zoneName string, soa *dns.SOA) {
	m := new(dns.Msg)
	m.SetNotify(zoneName)
	m.Authoritative = true
	m.Answer = []dns.RR{soa}
	c := &dns.Client{Net: "udp", Timeout: time.Second}
	for try := 0; try < 3 && ctx.Err() == nil; try++ {
		r, _, err := c.ExchangeContext(ctx, m, addr)
		if err == nil && r.Opcode == dns.OpcodeNotify {
			s.log.Debug("dns: notify acknowledged", "secondary", addr, "zone", zoneName, "serial", soa.Serial)
			return
		}
	}
	s.log.Warn("dns: notify not acknowledged", "secondary", addr, "zone", zoneName, "serial", soa.Serial)
}
