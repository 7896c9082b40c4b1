package dnsserver

import (
	"bytes"
	"encoding/binary"
	"strings"

	"github.com/miekg/dns"
)

// maxUDPSize is the largest UDP response sent (and the EDNS size
// advertised): 1232 bytes avoids IP fragmentation (DNS flag day 2020).
const maxUDPSize = 1232

// action says what the transport does with a query.
type action int

const (
	actDrop     action = iota // no reply (a response, or less than a header)
	actReply                  // send the returned bytes
	actForward                // container view, out of zone: ask the upstreams
	actTransfer               // AXFR/IXFR over TCP to an allowed peer
)

// keyRoom is the room before the name in request.key for a project's key
// prefix (projectKey: a byte and a label).
const keyRoom = 64

// request is a query as the fast path parses it.
type request struct {
	// key holds the lower-case wire-format name at keyRoom, with room
	// before it for the client's project's key prefix: both lookups read
	// it in place.
	key      [keyRoom + 256]byte
	qlen     int
	qend     int // offset after the question
	qtype    uint16
	edns     bool
	ednsSize uint16
	do       bool
}

// parseFast accepts exactly the common query shape: one IN question with an
// uncompressed name, no answer or authority records, at most an EDNS0
// version 0 OPT record, nothing after it. Everything else takes the slow
// path, which knows the rules.
func parseFast(p []byte, r *request) bool {
	if len(p) < 17 {
		return false
	}
	if p[2]&0xF8 != 0 { // QR or an opcode other than QUERY
		return false
	}
	if u16(p, 4) != 1 || u16(p, 6) != 0 || u16(p, 8) != 0 {
		return false
	}
	ar := u16(p, 10)
	if ar > 1 {
		return false
	}
	off, n := 12, 0
	for {
		if off >= len(p) {
			return false
		}
		l := int(p[off])
		if l == 0 {
			r.key[keyRoom+n] = 0
			n++
			off++
			break
		}
		if l > 63 || off+1+l > len(p) || n+1+l > 254 {
			return false
		}
		r.key[keyRoom+n] = byte(l)
		n++
		for _, c := range p[off+1 : off+1+l] {
			if c >= 'A' && c <= 'Z' {
				c += 'a' - 'A'
			}
			r.key[keyRoom+n] = c
			n++
		}
		off += 1 + l
	}
	if off+4 > len(p) {
		return false
	}
	r.qlen = n
	r.qtype = u16(p, off)
	if u16(p, off+2) != dns.ClassINET {
		return false
	}
	switch r.qtype {
	case dns.TypeAXFR, dns.TypeIXFR, dns.TypeOPT, dns.TypeMAILA, dns.TypeMAILB, dns.TypeNone:
		return false
	}
	off += 4
	r.qend = off
	r.edns = false
	if ar == 1 {
		if off+11 > len(p) || p[off] != 0 || u16(p, off+1) != dns.TypeOPT || p[off+6] != 0 {
			return false
		}
		r.ednsSize = u16(p, off+3)
		r.do = p[off+7]&0x80 != 0
		off += 11 + int(u16(p, off+9))
		r.edns = true
	}
	return off == len(p)
}

// qname is the lower-case wire-format name asked.
func (r *request) qname() []byte { return r.key[keyRoom : keyRoom+r.qlen] }

// limit is the largest response the client takes over UDP.
func (r *request) limit() int {
	if !r.edns || r.ednsSize < 512 {
		return 512
	}
	return int(min(r.ednsSize, maxUDPSize))
}

// serveFast answers from the pre-packed responses into out, as a client
// of the project with key prefix pfx sees them ("" : shared names only).
// ok is false when the query needs the slow path.
func (s *Snapshot) serveFast(out, p []byte, r *request, v view, pfx string, limit int) ([]byte, bool) {
	var nd *node
	if pfx != "" {
		start := keyRoom - len(pfx)
		copy(r.key[start:keyRoom], pfx)
		nd = s.nodes.getBytes(r.key[start : keyRoom+r.qlen])
	}
	if nd == nil {
		nd = s.nodes.getBytes(r.qname())
	}
	if nd != nil {
		if s.zones[nd.zi].vis&v == 0 {
			return nil, false
		}
		pk := s.responses(nd)
		if pk == nil {
			return nil, false
		}
		a := &pk.other
		for i := range pk.answers {
			if pk.answers[i].qtype == r.qtype {
				a = &pk.answers[i]
				break
			}
		}
		out = append(out[:0], a.msg...)
		if a.soaOff >= 0 {
			binary.BigEndian.PutUint32(out[a.soaOff:], s.Serial)
		}
		out[0], out[1] = p[0], p[1]
		out[2] = out[2]&^0x01 | p[2]&0x01  // RD
		out[3] = out[3]&^0x10 | p[3]&0x10  // CD
		copy(out[12:r.qend], p[12:r.qend]) // the question as asked: case, type, class
		return finish(out, r, limit), true
	}
	// NXDOMAIN, also for a name only other projects have: the same bytes.
	z := s.zoneOfWire(r.qname())
	if z == nil || z.vis&v == 0 || z.wildcards > 0 {
		return nil, false
	}
	// NXDOMAIN: the question as asked and the zone's SOA.
	out = append(out[:0], p[:r.qend]...)
	out[2] = 0x84 | p[2]&0x01 // QR, AA, RD
	out[3] = 0x03 | p[3]&0x10 // NXDOMAIN, CD
	out[6], out[7], out[8], out[9], out[10], out[11] = 0, 0, 0, 1, 0, 0
	out = append(out, z.soaWire...)
	return finish(out, r, limit), true
}

// finish truncates a response that does not fit and adds the OPT record
// when the query had one.
func finish(out []byte, r *request, limit int) []byte {
	need := len(out)
	if r.edns {
		need += 11
	}
	if need > limit {
		out = out[:r.qend]
		out[2] |= 0x02 // TC
		out[6], out[7], out[8], out[9], out[10], out[11] = 0, 0, 0, 0, 0, 0
	}
	if r.edns {
		var do byte
		if r.do {
			do = 0x80
		}
		out = append(out, 0, 0, 41, maxUDPSize>>8, maxUDPSize&0xff, 0, 0, do, 0, 0, 0)
		ar := u16(out, 10) + 1
		out[10], out[11] = byte(ar>>8), byte(ar)
	}
	return out
}

// zoneOfWire finds the zone of a lower-case wire-format name by its
// suffixes, longest first.
func (s *Snapshot) zoneOfWire(name []byte) *zone {
	for off := 0; off < len(name) && name[off] != 0; off += 1 + int(name[off]) {
		suffix := name[off:]
		for _, z := range s.zones {
			if bytes.Equal(z.wire, suffix) {
				return z
			}
		}
	}
	return nil
}

// findZone is the served zone holding name that view v sees, or nil.
func (s *Snapshot) findZone(name string, v view) *zone {
	z := s.zoneOfName(name)
	if z == nil || z.vis&v == 0 {
		return nil
	}
	return z
}

// slow answers any query with miekg/dns: the rules for every shape the fast
// path declines, as the client's project sees them (in.view and in.pfx as
// handle sets them). It returns the response (nil to drop) and the request
// as parsed.
func (s *Snapshot) slow(in query) (resp, req *dns.Msg, act action) {
	p, v := in.msg, in.view
	if len(p) < 12 || p[2]&0x80 != 0 {
		return nil, nil, actDrop // nothing to answer, or a response (never answer those: loops)
	}
	req = new(dns.Msg)
	if err := req.Unpack(p); err != nil || !exactLength(p) {
		m := new(dns.Msg)
		m.Id, m.Response, m.Opcode, m.Rcode = u16(p, 0), true, int(p[2]>>3)&0xF, dns.RcodeFormatError
		return m, nil, actReply
	}
	m := new(dns.Msg)
	m.Id, m.Response, m.Opcode = req.Id, true, req.Opcode
	m.RecursionDesired, m.CheckingDisabled = req.RecursionDesired, req.CheckingDisabled
	m.Question = req.Question
	var opt *dns.OPT
	nopt := 0
	for _, rr := range req.Extra {
		if o, ok := rr.(*dns.OPT); ok {
			opt = o
			nopt++
		}
	}
	if nopt > 1 {
		m.Rcode = dns.RcodeFormatError
		return m, req, actReply
	}
	if opt != nil {
		ro := &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT}}
		ro.SetUDPSize(maxUDPSize)
		ro.SetDo(opt.Do())
		m.Extra = []dns.RR{ro}
		if opt.Version() != 0 {
			m.Rcode = dns.RcodeBadVers
			return m, req, actReply
		}
	}
	if req.Opcode != dns.OpcodeQuery {
		m.Rcode = dns.RcodeNotImplemented
		return m, req, actReply
	}
	if len(req.Question) != 1 {
		m.Rcode = dns.RcodeFormatError
		return m, req, actReply
	}
	q := req.Question[0]
	if q.Qclass != dns.ClassINET && q.Qclass != dns.ClassANY {
		m.Rcode = dns.RcodeRefused
		return m, req, actReply
	}
	name := strings.ToLower(q.Name)
	z := s.findZone(name, v)
	if q.Qtype == dns.TypeAXFR || q.Qtype == dns.TypeIXFR {
		if in.xfrAllowed {
			z = s.findZone(name, viewHost|viewContainer) // secondaries get every zone
		}
		switch {
		case z == nil || !in.xfrAllowed || name != z.name:
			m.Rcode = dns.RcodeRefused
		case in.tcp:
			return nil, req, actTransfer
		case q.Qtype == dns.TypeIXFR:
			// RFC 1995 section 2: over UDP, the current SOA tells the
			// secondary whether to come back over TCP.
			m.Authoritative = true
			m.Answer = []dns.RR{z.soa}
		default:
			m.Rcode = dns.RcodeRefused // AXFR only over TCP
		}
		return m, req, actReply
	}
	if z == nil {
		if in.forwarding && v&viewContainer != 0 && q.Qclass == dns.ClassINET {
			return nil, req, actForward
		}
		m.Rcode = dns.RcodeRefused
		return m, req, actReply
	}
	var a *dns.Msg
	if n := s.lookup(in.pfx, name); n != nil {
		a = s.answerMsg(n, q.Name, q.Qtype)
	} else if w := s.wildcardFor(name, z, in.pfx); w != nil {
		// RFC 4592: synthesise from *.<closest encloser>, owner = qname.
		a = s.answerMsg(w, q.Name, q.Qtype)
		a.Answer = append([]dns.RR(nil), a.Answer...) // the snapshot's slices are shared
		for i, rr := range a.Answer {
			if rr.Header().Name == w.name {
				cp := dns.Copy(rr)
				cp.Header().Name = q.Name
				a.Answer[i] = cp
			}
		}
	} else {
		a = new(dns.Msg)
		a.Rcode = dns.RcodeNameError
		a.Ns = []dns.RR{z.soa}
	}
	m.Authoritative = true
	m.Rcode = a.Rcode
	m.Answer, m.Ns = a.Answer, a.Ns
	m.Extra = append(a.Extra, m.Extra...)
	return m, req, actReply
}

// wildcardFor returns the wildcard node that synthesises name: *.<closest
// encloser> when it exists. The closest encloser is the longest existing
// ancestor (empty non-terminals exist too).
func (s *Snapshot) wildcardFor(name string, z *zone, pfx string) *node {
	if z.wildcards == 0 {
		return nil
	}
	for p := parent(name); p != "" && dns.IsSubDomain(z.name, p); p = parent(p) {
		if s.lookup(pfx, p) != nil || p == z.name {
			if w := s.lookup(pfx, "*."+p); w != nil && len(w.rrsets) > 0 {
				return w
			}
			return nil
		}
	}
	return nil
}

// packReply packs m into out, truncated (TC, question only) past limit.
func packReply(out []byte, m *dns.Msg, limit int) []byte {
	b, err := m.PackBuffer(out[:cap(out)])
	if err != nil {
		// Only an impossible message fails to pack: say so plainly.
		f := new(dns.Msg)
		f.Id, f.Response, f.Opcode, f.Rcode = m.Id, true, m.Opcode, dns.RcodeServerFailure
		f.Question = m.Question
		b, err = f.PackBuffer(out[:cap(out)])
		if err != nil {
			return nil
		}
	}
	if len(b) <= limit {
		return b
	}
	t := new(dns.Msg)
	t.MsgHdr = m.MsgHdr
	t.Truncated = true
	t.Question = m.Question
	for _, rr := range m.Extra {
		if rr.Header().Rrtype == dns.TypeOPT {
			t.Extra = append(t.Extra, rr)
		}
	}
	b, _ = t.PackBuffer(out[:cap(out)])
	return b
}

// handle answers one query. out is a reusable buffer (its capacity is
// used); the reply aliases it. r is the caller's parse state, reused so the
// fast path allocates nothing.
func (s *Snapshot) handle(out []byte, q query, r *request) ([]byte, *dns.Msg, action) {
	q.view, q.pfx = s.clientView(&q)
	limit := 65535
	if parseFast(q.msg, r) {
		if !q.tcp {
			limit = r.limit()
		}
		if b, ok := s.serveFast(out, q.msg, r, q.view, q.pfx, limit); ok {
			return b, nil, actReply
		}
	}
	resp, req, act := s.slow(q)
	if act != actReply {
		return nil, req, act
	}
	if !q.tcp {
		limit = 512
		if req != nil {
			if o := req.IsEdns0(); o != nil && o.UDPSize() > 512 {
				limit = int(min(o.UDPSize(), maxUDPSize))
			}
		}
	}
	return packReply(out, resp, limit), req, actReply
}

// exactLength reports whether the records the header counts end exactly at
// the end of p: trailing bytes make a malformed query (FORMERR), as they do
// for BIND.
func exactLength(p []byte) bool {
	off := 12
	for i := 0; i < int(u16(p, 4)); i++ {
		_, end, err := dns.UnpackDomainName(p, off)
		if err != nil || end+4 > len(p) {
			return false
		}
		off = end + 4
	}
	for i := 0; i < int(u16(p, 6))+int(u16(p, 8))+int(u16(p, 10)); i++ {
		_, end, err := dns.UnpackRR(p, off)
		if err != nil {
			return false
		}
		off = end
	}
	return off == len(p)
}
