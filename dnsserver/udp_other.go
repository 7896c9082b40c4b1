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
	var rs responder
	for {
		n, from, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			continue
		}
		resp, req, act := rs.respond(out, s.store.Load(), s.queryFrom(buf[:n], from.Addr(), false))
		switch act {
		case actReply:
			c.WriteToUDPAddrPort(resp, from)
		case actForward:
			go s.forwardUDP(ctx, c, from, req)
		}
		s.stats.flush(&rs.tally)
	}
}
