package dnsserver

import (
	"net/netip"

	"github.com/miekg/dns"
)

// query is one packet as a transport received it, with what the server
// grants its client.
type query struct {
	msg        []byte
	addr       netip.Addr // the client: its project's view (Snapshot.clientView)
	view       view       // the zones the client sees by ContainerCIDRs
	pfx        string     // set by handle: the key prefix of the client's project
	tcp        bool
	xfrAllowed bool // the client may transfer zones
	forwarding bool // names out of moor's zones can be forwarded (there are upstreams)
	cut        bool // the packet was longer than what was read of it
}

// queryFrom describes packet msg from client a.
func (s *Server) queryFrom(msg []byte, a netip.Addr, tcp bool) query {
	return query{msg: msg, addr: a, view: s.viewOf(a), tcp: tcp, xfrAllowed: s.xferAllowed(a), forwarding: len(s.upstreams) > 0}
}

// viewOf says which zones a client sees by ContainerCIDRs (a client in a
// project's subnet is a container too: Snapshot.clientView).
func (s *Server) viewOf(a netip.Addr) view {
	a = a.Unmap()
	for _, p := range s.cfg.ContainerCIDRs {
		if p.Contains(a) {
			return viewHost | viewContainer
		}
	}
	return viewHost
}

func (s *Server) xferAllowed(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range s.xferPeers {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// responder is what every transport hands its queries to: it answers from
// the snapshot (SERVFAIL before the first one, FORMERR for a cut packet),
// counts what it did, and leaves the transport only the sending, the
// forwarding and the transfers. One per transport goroutine: the parse
// state and the tally are its own.
type responder struct {
	r     request
	tally tally // flushed by the transport, as often as it likes
}

// respond answers q into out. With actReply, resp holds the bytes to send
// (never empty); with actForward and actTransfer, req is the query parsed.
func (rs *responder) respond(out []byte, snap *Snapshot, q query) (resp []byte, req *dns.Msg, act action) {
	rs.tally.queries++
	switch {
	case snap == nil:
		resp, act = servfail(out, q.msg), actReply
	case q.cut:
		resp, act = formerr(out, q.msg), actReply
	default:
		resp, req, act = snap.handle(out, q, &rs.r)
	}
	switch act {
	case actReply:
		if resp == nil {
			return nil, nil, actDrop
		}
		rs.tally.reply(resp)
	case actForward:
		rs.tally.forwarded++
	case actTransfer:
		rs.tally.transfers++
	}
	return resp, req, act
}

// formerr answers a query too long to read whole.
func formerr(out, p []byte) []byte {
	if len(p) < 12 || p[2]&0x80 != 0 {
		return nil
	}
	m := new(dns.Msg)
	m.Id, m.Response, m.Opcode, m.Rcode = u16(p, 0), true, int(p[2]>>3)&0xF, dns.RcodeFormatError
	return packReply(out, m, 512)
}

// servfail answers a query while no zones have been loaded yet.
func servfail(out, p []byte) []byte {
	if len(p) < 12 || p[2]&0x80 != 0 {
		return nil
	}
	m := new(dns.Msg)
	if err := m.Unpack(p); err != nil || len(m.Question) != 1 {
		m = &dns.Msg{}
		m.Id = u16(p, 0)
	}
	m.Response, m.Rcode, m.Answer, m.Ns, m.Extra = true, dns.RcodeServerFailure, nil, nil, nil
	return packReply(out, m, 512)
}
