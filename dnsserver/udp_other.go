//go:build !(linux && (amd64 || arm64))

package dnsserver

import (
	"context"
	"errors"
	"net"
)

// serveUDP answers one packet at a time where recvmmsg is not available:
// one read buffer, one write buffer, no allocation for answers from the
// snapshot.
func (s *Server) serveUDP(ctx context.Context, c *net.UDPConn) error {
	buf := make([]byte, 65536)
	out := make([]byte, 0, 65536)
	var r request
	for {
		n, from, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			continue
		}
		t := tally{queries: 1}
		snap := s.store.Load()
		if snap == nil {
			if b := servfail(out, buf[:n]); b != nil {
				t.reply(b)
				c.WriteToUDPAddrPort(b, from)
			}
			s.stats.flush(&t)
			continue
		}
		a := from.Addr()
		resp, req, act := snap.handle(out, buf[:n], &r, s.viewOf(a), false, s.xferAllowed(a), len(s.upstreams) > 0)
		switch act {
		case actReply:
			if resp != nil {
				t.reply(resp)
				c.WriteToUDPAddrPort(resp, from)
			}
		case actForward:
			t.forwarded++
			go s.forwardUDP(ctx, c, from, req)
		}
		s.stats.flush(&t)
	}
}
