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

// Defaults of the TCP limits (Config fields, 0 = these).
const (
	DefaultTCPMaxConns     = 1000
	DefaultTCPMaxPerSource = 32
	DefaultTCPIdleTimeout  = 5 * time.Second
	tcpWriteTimeout        = 10 * time.Second
	acceptBackoffMin       = 5 * time.Millisecond
	acceptBackoffMax       = time.Second
	tcpBufSize             = 2 + 65535 // length prefix + the largest message
)

// tcpBufs holds message buffers: a connection takes one only while a query
// is in hand, so a held idle connection costs its goroutine and socket.
var tcpBufs = sync.Pool{New: func() any { b := make([]byte, tcpBufSize); return &b }}

// tcpLimits counts open TCP connections, in all and by source address.
type tcpLimits struct {
	max, perSource int
	mu             sync.Mutex
	total          int
	bySource       map[netip.Addr]int
}

// take reserves a slot for a connection from a, false when over a cap.
func (l *tcpLimits) take(a netip.Addr) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.total >= l.max || l.bySource[a] >= l.perSource {
		return false
	}
	l.total++
	l.bySource[a]++
	return true
}

func (l *tcpLimits) release(a netip.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total--
	if n := l.bySource[a] - 1; n > 0 {
		l.bySource[a] = n
	} else {
		delete(l.bySource, a)
	}
}

func (s *Server) serveTCP(ctx context.Context, l net.Listener) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	lim := &tcpLimits{max: s.cfg.TCPMaxConns, perSource: s.cfg.TCPMaxPerSource, bySource: map[netip.Addr]int{}}
	var backoff time.Duration
	for {
		conn, err := l.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			// Out of descriptors or memory, most likely: wait as net/http
			// does (5ms doubling to 1s) instead of spinning.
			if backoff == 0 {
				backoff = acceptBackoffMin
			} else {
				backoff = min(2*backoff, acceptBackoffMax)
			}
			s.log.Warn("dns: tcp accept failed", "err", err, "retry_in", backoff)
			select {
			case <-time.After(backoff):
			case <-ctx.Done():
				return nil
			}
			continue
		}
		backoff = 0
		ap, _ := netip.ParseAddrPort(conn.RemoteAddr().String())
		a := ap.Addr().Unmap()
		if !lim.take(a) {
			// Over a cap: closed at once, never queued.
			s.stats.tcpRefused.Add(1)
			conn.Close()
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer lim.release(a)
			defer conn.Close()
			stop := context.AfterFunc(ctx, func() { conn.Close() })
			defer stop()
			s.serveConn(ctx, conn, a)
		}()
	}
}

// serveConn answers queries on one TCP connection until it idles out
// (TCPIdleTimeout between queries, as RFC 7766 suggests).
func (s *Server) serveConn(ctx context.Context, conn net.Conn, a netip.Addr) {
	q := s.queryFrom(nil, a, true) // one client: its view and rights hold for every query
	var rs responder
	for {
		conn.SetReadDeadline(time.Now().Add(s.cfg.TCPIdleTimeout))
		var lb [2]byte
		if _, err := io.ReadFull(conn, lb[:]); err != nil {
			return
		}
		n := int(binary.BigEndian.Uint16(lb[:]))
		if !s.serveMsg(ctx, conn, a, n, q, &rs) {
			return
		}
	}
}

// serveMsg reads a message of n bytes and answers it, with buffers from
// the pool held only meanwhile; false ends the connection.
func (s *Server) serveMsg(ctx context.Context, conn net.Conn, a netip.Addr, n int, q query, rs *responder) bool {
	in, out := tcpBufs.Get().(*[]byte), tcpBufs.Get().(*[]byte)
	defer tcpBufs.Put(in)
	defer tcpBufs.Put(out)
	buf := (*in)[:n]
	if _, err := io.ReadFull(conn, buf); err != nil {
		return false
	}
	conn.SetWriteDeadline(time.Now().Add(tcpWriteTimeout))
	q.msg = buf
	snap := s.store.Load()
	// The answer is built after two bytes left for its length.
	ob := (*out)[2:2]
	resp, req, act := rs.respond(ob, snap, q)
	s.stats.flush(&rs.tally)
	switch act {
	case actDrop:
		return false
	case actReply:
		return writeTCP(conn, *out, resp) == nil
	case actForward:
		b := packReply(ob, s.forward(ctx, req), 65535)
		return b != nil && writeTCP(conn, *out, b) == nil
	case actTransfer:
		if err := s.transfer(conn, req, snap); err != nil {
			s.log.Warn("dns: zone transfer failed", "peer", a, "err", err)
			return false
		}
		s.log.Info("dns: zone transferred", "peer", a, "zone", req.Question[0].Name, "type", dns.TypeToString[req.Question[0].Qtype], "serial", snap.Serial)
	}
	return true
}

// writeTCP writes b with its length prefix, in one write. When b was built
// in buf after two free bytes (the usual case), nothing is copied.
func writeTCP(w io.Writer, buf, b []byte) error {
	var msg []byte
	if len(b) > 0 && len(buf) >= 2+len(b) && &buf[2] == &b[0] {
		msg = buf[:2+len(b)]
	} else {
		msg = make([]byte, 2+len(b))
		copy(msg[2:], b)
	}
	binary.BigEndian.PutUint16(msg, uint16(len(b)))
	_, err := w.Write(msg)
	return err
}
