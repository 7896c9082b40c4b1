package dnsserver

import (
	"strconv"
	"sync/atomic"

	"github.com/miekg/dns"
)

// Stats are the server's counters since it started, for metrics.
type Stats struct {
	Queries   uint64     // packets handled, UDP and TCP
	Responses [16]uint64 // answers moor made, by rcode (4 bits of the header)
	Forwarded uint64     // queries passed to an upstream
	Transfers uint64     // AXFR/IXFR served
	Updates   uint64     // new snapshots published
	Failures  uint64     // rebuilds that kept the last good snapshot
	Serial    uint32     // of the snapshot served; 0 before the first
	// TCPRefused counts TCP connections closed at once for being over
	// TCPMaxPerSource (or TCPMaxConns while every connection was answering
	// a query); TCPEvicted the idle connections closed at TCPMaxConns to
	// make room for a new one.
	TCPRefused uint64
	TCPEvicted uint64
}

type counters struct {
	queries, forwarded, transfers, updates, failures atomic.Uint64
	tcpRefused, tcpEvicted                           atomic.Uint64
	responses                                        [16]atomic.Uint64
}

// tally counts one batch of queries without atomics; flush adds it to the
// server's counters, so the UDP hot path pays a few atomic adds per batch
// of up to 32 packets, not per packet.
type tally struct {
	queries, forwarded, transfers uint64
	responses                     [16]uint64
}

func (t *tally) reply(resp []byte) {
	if len(resp) >= 4 {
		t.responses[resp[3]&0x0f]++
	}
}

func (c *counters) flush(t *tally) {
	c.queries.Add(t.queries)
	if t.forwarded > 0 {
		c.forwarded.Add(t.forwarded)
	}
	if t.transfers > 0 {
		c.transfers.Add(t.transfers)
	}
	for i, n := range t.responses {
		if n > 0 {
			c.responses[i].Add(n)
		}
	}
	*t = tally{}
}

// Stats returns the counters.
func (s *Server) Stats() Stats {
	st := Stats{
		Queries: s.stats.queries.Load(), Forwarded: s.stats.forwarded.Load(), Transfers: s.stats.transfers.Load(),
		Updates: s.stats.updates.Load(), Failures: s.stats.failures.Load(), TCPRefused: s.stats.tcpRefused.Load(),
		TCPEvicted: s.stats.tcpEvicted.Load(),
	}
	for i := range st.Responses {
		st.Responses[i] = s.stats.responses[i].Load()
	}
	if snap := s.store.Load(); snap != nil {
		st.Serial = snap.Serial
	}
	return st
}

// ResponsesByRcode are Responses by rcode name (NOERROR, NXDOMAIN, ...):
// NOERROR to REFUSED always, so their series exist from the start, any
// other code once it was sent.
func (st Stats) ResponsesByRcode() map[string]uint64 {
	out := map[string]uint64{}
	for code, n := range st.Responses {
		if n > 0 || code <= dns.RcodeRefused {
			name, ok := dns.RcodeToString[code]
			if !ok {
				name = strconv.Itoa(code)
			}
			out[name] = n
		}
	}
	return out
}
