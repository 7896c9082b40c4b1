package dnsserver

import (
	"testing"

	"github.com/miekg/dns"
)

// FuzzHandle feeds arbitrary packets to the handler in every view and
// transport: no panic, no hang, and every reply unpacks, is a response with
// the query's ID and fits the transport.
func FuzzHandle(f *testing.F) {
	for _, c := range rfcCases() {
		f.Add(c.q)
	}
	f.Add([]byte{})
	f.Add([]byte{0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xC0, 12, 0, 1, 0, 1}) // pointer loop
	snaps := snapshots(&testing.T{})
	out := make([]byte, 0, 65536)
	f.Fuzz(func(t *testing.T, p []byte) {
		for _, s := range []*Snapshot{snaps["basic"], snaps["wildcard"]} {
			for _, x := range []exchange{host, container, {view: viewHost | viewContainer, tcp: true, xfr: true}} {
				var r request
				b, _, act := s.handle(out, x.query(p), &r)
				if act != actReply {
					continue
				}
				if b == nil {
					t.Fatalf("reply action without bytes")
				}
				if !x.tcp && len(b) > maxUDPSize {
					t.Fatalf("UDP reply of %d bytes", len(b))
				}
				m := new(dns.Msg)
				if err := m.Unpack(b); err != nil {
					t.Fatalf("reply does not unpack: %v", err)
				}
				if !m.Response || m.Id != u16(p, 0) {
					t.Fatalf("reply QR=%v id=%x for query id %x", m.Response, m.Id, u16(p, 0))
				}
			}
		}
	})
}
