package dnsserver

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/miekg/dns"
)

func (s *Server) serveTCP(ctx context.Context, l net.Listener) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		conn, err := l.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer conn.Close()
			stop := context.AfterFunc(ctx, func() { conn.Close() })
			defer stop()
			s.serveConn(ctx, conn)
		}()
	}
}

// serveConn answers queries on one TCP connection until it idles out.
func (s *Server) serveConn(ctx context.Context, conn net.Conn) {
	ap, _ := netip.ParseAddrPort(conn.RemoteAddr().String())
	a := ap.Addr()
	q := s.queryFrom(nil, a, true) // one client: its view and rights hold for every query
	buf := make([]byte, 65535)
	out := make([]byte, 0, 65535+2)
	var rs responder
	for {
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		var lb [2]byte
		if _, err := io.ReadFull(conn, lb[:]); err != nil {
			return
		}
		n := int(binary.BigEndian.Uint16(lb[:]))
		if _, err := io.ReadFull(conn, buf[:n]); err != nil {
			return
		}
		conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
		q.msg = buf[:n]
		snap := s.store.Load()
		resp, req, act := rs.respond(out, snap, q)
		s.stats.flush(&rs.tally)
		switch act {
		case actDrop:
			return
		case actReply:
			if writeTCP(conn, resp) != nil {
				return
			}
		case actForward:
			if b := packReply(out, s.forward(ctx, req), 65535); b == nil || writeTCP(conn, b) != nil {
				return
			}
		case actTransfer:
			if err := s.transfer(conn, req, snap); err != nil {
				s.log.Warn("dns: zone transfer failed", "peer", a, "err", err)
				return
			}
			s.log.Info("dns: zone transferred", "peer", a, "zone", req.Question[0].Name, "type", dns.TypeToString[req.Question[0].Qtype], "serial", snap.Serial)
		}
	}
}

func writeTCP(w io.Writer, b []byte) error {
	msg := make([]byte, 2+len(b))
	binary.BigEndian.PutUint16(msg, uint16(len(b)))
	copy(msg[2:], b)
	_, err := w.Write(msg)
	return err
}
