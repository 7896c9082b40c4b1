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

// tcpConn is one open TCP connection; its fields but conn and addr are
// guarded by tcpLimits.mu.
type tcpConn struct {
	conn       net.Conn
	addr       netip.Addr
	gone       bool     // closed or evicted: its slot is free
	prev, next *tcpConn // in the idle list while not answering a query
}

// tcpLimits counts open TCP connections, in all and by source address,
// and keeps the idle ones in the order they became idle.
type tcpLimits struct {
	max, perSource int
	mu             sync.Mutex
	total          int
	bySource       map[netip.Addr]int
	idle           tcpConn // root of the idle list: idle.next is the one idle the longest
}

func newTCPLimits(max, perSource int) *tcpLimits {
	l := &tcpLimits{max: max, perSource: perSource, bySource: map[netip.Addr]int{}}
	l.idle.prev, l.idle.next = &l.idle, &l.idle
	return l
}

// take reserves a slot for c. Over the per-source cap it fails. At the
// global cap the connection idle the longest gives its slot (returned, for
// the caller to close): else whoever holds the cap from enough addresses,
// a query every few seconds each, would lock every other client out of
// DNS over TCP (RFC 7766 6.2.3 lets a server under pressure close idle
// connections). It fails only when every connection is answering a query.
func (l *tcpLimits) take(c *tcpConn) (evicted *tcpConn, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.bySource[c.addr] >= l.perSource {
		return nil, false
	}
	if l.total >= l.max {
		if evicted = l.idle.next; evicted == &l.idle {
			return nil, false
		}
		l.dropLocked(evicted)
	}
	l.total++
	l.bySource[c.addr]++
	l.pushLocked(c)
	return evicted, true
}

// release frees c's slot, unless it was evicted (freed then).
func (l *tcpLimits) release(c *tcpConn) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.dropLocked(c)
}

func (l *tcpLimits) dropLocked(c *tcpConn) {
	if c.gone {
		return
	}
	c.gone = true
	l.unlinkLocked(c)
	l.total--
	if n := l.bySource[c.addr] - 1; n > 0 {
		l.bySource[c.addr] = n
	} else {
		delete(l.bySource, c.addr)
	}
}

// busy takes c out of the idle list while it answers a query; idle puts
// it back, at the end.
func (l *tcpLimits) busy(c *tcpConn) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.unlinkLocked(c)
}

func (l *tcpLimits) idleAgain(c *tcpConn) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !c.gone {
		l.unlinkLocked(c)
		l.pushLocked(c)
	}
}

func (l *tcpLimits) pushLocked(c *tcpConn) {
	c.prev, c.next = l.idle.prev, &l.idle
	c.prev.next, l.idle.prev = c, c
}

func (l *tcpLimits) unlinkLocked(c *tcpConn) {
	if c.next == nil {
		return
	}
	c.prev.next, c.next.prev = c.next, c.prev
	c.prev, c.next = nil, nil
}

func (s *Server) serveTCP(ctx context.Context, l net.Listener) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	lim := newTCPLimits(s.cfg.TCPMaxConns, s.cfg.TCPMaxPerSource)
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
		c := &tcpConn{conn: conn, addr: ap.Addr().Unmap()}
		evicted, ok := lim.take(c)
		if !ok {
			// Over a cap: closed at once, never queued.
			s.stats.tcpRefused.Add(1)
			conn.Close()
			continue
		}
		if evicted != nil {
			s.stats.tcpEvicted.Add(1)
			evicted.conn.Close() // its goroutine ends on the failed read
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer lim.release(c)
			defer conn.Close()
			stop := context.AfterFunc(ctx, func() { conn.Close() })
			defer stop()
			s.serveConn(ctx, c, lim)
		}()
	}
}

// serveConn answers queries on one TCP connection until it idles out
// (TCPIdleTimeout between queries, as RFC 7766 suggests).
func (s *Server) serveConn(ctx context.Context, c *tcpConn, lim *tcpLimits) {
	conn, a := c.conn, c.addr
	q := s.queryFrom(nil, a, true) // one client: its view and rights hold for every query
	var rs responder
	for {
		conn.SetReadDeadline(time.Now().Add(s.cfg.TCPIdleTimeout))
		var lb [2]byte
		if _, err := io.ReadFull(conn, lb[:]); err != nil {
			return
		}
		n := int(binary.BigEndian.Uint16(lb[:]))
		if !s.serveMsg(ctx, c, lim, n, q, &rs) {
			return
		}
	}
}

// serveMsg reads a message of n bytes and answers it, with buffers from
// the pool held only meanwhile; false ends the connection. The connection
// may be evicted until the message is in (a slow sender is idle), not
// while it is answered (a zone transfer may take a while).
func (s *Server) serveMsg(ctx context.Context, c *tcpConn, lim *tcpLimits, n int, q query, rs *responder) bool {
	conn, a := c.conn, c.addr
	in, out := tcpBufs.Get().(*[]byte), tcpBufs.Get().(*[]byte)
	defer tcpBufs.Put(in)
	defer tcpBufs.Put(out)
	buf := (*in)[:n]
	if _, err := io.ReadFull(conn, buf); err != nil {
		return false
	}
	lim.busy(c)
	conn.SetWriteDeadline(time.Now().Add(tcpWriteTimeout))
	q.msg = buf
	snap := s.store.Load()
	// The answer is built after two bytes left for its length.
	ob := (*out)[2:2]
	resp, req, act := rs.respond(ob, snap, q)
	s.stats.flush(&rs.tally)
	if act == actForward {
		resp = packReply(ob, s.forward(ctx, req), 65535)
	}
	if act != actTransfer {
		// Idle again once the answer is made, before it is written (the
		// write has its deadline): the client, once answered, finds its
		// connection at the back of the idle list.
		lim.idleAgain(c)
	}
	switch act {
	case actDrop:
		return false
	case actReply:
		return writeTCP(conn, *out, resp) == nil
	case actForward:
		return resp != nil && writeTCP(conn, *out, resp) == nil
	case actTransfer:
		defer lim.idleAgain(c)
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
