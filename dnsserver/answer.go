package dnsserver

import (
	"fmt"
	"strings"

	"github.com/miekg/dns"
)

// answerMsg is the authoritative response to (qname, qtype) at node n:
// positive, CNAME chain, or NODATA with the zone's SOA. Both the pre-packing
// and the slow path use it, so they cannot disagree.
func (s *Snapshot) answerMsg(n *node, qname string, qtype uint16) *dns.Msg {
	m := new(dns.Msg)
	m.Response, m.Authoritative, m.Compress = true, true, true
	m.Question = []dns.Question{{Name: qname, Qtype: qtype, Qclass: dns.ClassINET}}
	if cname := n.rrsets.get(dns.TypeCNAME); len(cname) > 0 && qtype != dns.TypeCNAME {
		m.Answer = append(m.Answer, cname...)
		if qtype == dns.TypeANY {
			return m
		}
		target := s.lookup(n.pfx, cname[0].(*dns.CNAME).Target)
		if target != nil && len(target.rrsets.get(qtype)) > 0 {
			m.Answer = append(m.Answer, target.rrsets.get(qtype)...)
		} else if target != nil || s.zoneOfName(cname[0].(*dns.CNAME).Target) == s.zoneOf(n) {
			m.Ns = []dns.RR{s.zoneOf(n).soa}
		}
		return m
	}
	switch {
	case qtype == dns.TypeANY && len(n.rrsets) > 0:
		for _, t := range n.rrsets.types() {
			m.Answer = append(m.Answer, n.rrsets.get(t)...)
		}
	case len(n.rrsets.get(qtype)) > 0:
		m.Answer = n.rrsets.get(qtype)
		m.Extra = s.additional(n, m.Answer)
	default:
		m.Ns = []dns.RR{s.zoneOf(n).soa}
	}
	return m
}

// additional is the glue of NS answers and the addresses of SRV targets,
// as the clients who see n see them.
func (s *Snapshot) additional(n *node, rrs []dns.RR) []dns.RR {
	var out []dns.RR
	for _, rr := range rrs {
		var target string
		switch v := rr.(type) {
		case *dns.NS:
			target = v.Ns
		case *dns.SRV:
			target = v.Target
		default:
			continue
		}
		if t := s.lookup(n.pfx, target); t != nil {
			out = append(out, t.rrsets.get(dns.TypeA)...)
			out = append(out, t.rrsets.get(dns.TypeAAAA)...)
		}
	}
	return out
}

// zoneOfName is the served zone holding name, or nil.
func (s *Snapshot) zoneOfName(name string) *zone {
	name = strings.ToLower(dns.Fqdn(name))
	var best *zone
	for _, z := range s.zones {
		if dns.IsSubDomain(z.name, name) && (best == nil || len(z.name) > len(best.name)) {
			best = z
		}
	}
	return best
}

// responses returns n's pre-packed responses, packing them on first use.
// Racing callers may both pack; either result is the same.
func (s *Snapshot) responses(n *node) *packed {
	if p := n.packed.Load(); p != nil {
		return p
	}
	p, err := s.prepack(n)
	if err != nil {
		return nil
	}
	n.packed.Store(p)
	return p
}

// prepack packs the responses of every type at n, and the one for all other
// types.
func (s *Snapshot) prepack(n *node) (*packed, error) {
	out := &packed{}
	pack := func(qtype uint16) (answer, error) {
		m := s.answerMsg(n, n.name, qtype)
		b, err := m.Pack()
		if err != nil {
			return answer{}, fmt.Errorf("name %s type %s: pack: %w", n.name, dns.TypeToString[qtype], err)
		}
		a := answer{qtype: qtype, msg: b, soaOff: -1}
		// An SOA closing the message (authority of a negative answer, no
		// additional records): its serial sits 20 bytes from the end.
		if len(m.Ns) == 1 && m.Ns[0].Header().Rrtype == dns.TypeSOA && len(m.Extra) == 0 {
			a.soaOff = len(b) - 20
		}
		return a, nil
	}
	types := n.rrsets.types()
	if cname := n.rrsets.get(dns.TypeCNAME); len(cname) > 0 {
		if t := s.lookup(n.pfx, cname[0].(*dns.CNAME).Target); t != nil {
			types = append(types, t.rrsets.types()...)
		}
	}
	if len(n.rrsets) > 0 {
		types = append(types, dns.TypeANY)
	}
	seen := map[uint16]bool{}
	for _, t := range types {
		if seen[t] {
			continue
		}
		seen[t] = true
		a, err := pack(t)
		if err != nil {
			return nil, err
		}
		out.answers = append(out.answers, a)
	}
	var err error
	out.other, err = pack(dns.TypeNone)
	return out, err
}
