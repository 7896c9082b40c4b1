package main

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/moorhq/moor/provider"
)

// connLimiter is a listener that bounds moor's HTTP connections, for
// traffic nobody has authenticated yet (issue 8).
//
// Ordinary connections count against max. At the cap a new connection
// takes the slot of the one quiet the longest: a connection is quiet while
// it is idle between requests, sends a request's header or body, or has
// not sent anything yet; one whose request a handler is working on is not
// (its time is bounded by the handler, the header and body deadlines).
// Only when none is quiet is the new connection closed at once. So an
// attacker holding the cap with idle or slow connections does not keep
// /healthz or the API from answering a new client: each new connection
// evicts one of the attacker's.
//
// Websockets and the provider's long poll wait by design: they leave the
// ordinary count for a separate one, bounded by maxLong (a request over it
// is answered 503), and are never evicted.
type connLimiter struct {
	net.Listener
	max, maxLong int
	bodyTimeout  time.Duration // to read a request's body, ordinary requests only
	writeTimeout time.Duration // to write an ordinary answer: a client that never reads frees its connection

	mu    sync.Mutex
	quiet quietList // the quiet ordinary connections, the one quiet the longest first
	count int       // ordinary connections
	long  int       // connections in a websocket or long poll

	evicted, refused atomic.Int64
}

func newConnLimiter(l net.Listener, max, maxLong int, bodyTimeout time.Duration) *connLimiter {
	lim := &connLimiter{Listener: l, max: max, maxLong: maxLong, bodyTimeout: bodyTimeout, writeTimeout: writeTimeout}
	lim.quiet.init()
	return lim
}

// limConn is one accepted connection; its fields but Conn are guarded by
// the limiter's mutex.
type limConn struct {
	net.Conn
	l          *connLimiter
	busy       bool // a handler works on its request (body read)
	long       bool // in a websocket or long poll
	closed     bool
	prev, next *limConn // in the quiet list, while neither busy, long nor closed
}

// quietList holds the quiet connections in the order they became quiet,
// so that the one to evict is found at once: at the cap, under an attack
// that re-dials, every accept evicts, and a scan of all the connections
// (under the mutex each request takes twice) cost 25 µs each at 2,048.
type quietList struct{ root limConn } // root.next is the front

func (q *quietList) init() { q.root.prev, q.root.next = &q.root, &q.root }

func (q *quietList) pushBack(c *limConn) {
	c.prev, c.next = q.root.prev, &q.root
	c.prev.next, q.root.prev = c, c
}

// remove takes c out of the list if it is in it.
func (q *quietList) remove(c *limConn) {
	if c.next == nil {
		return
	}
	c.prev.next, c.next.prev = c.next, c.prev
	c.prev, c.next = nil, nil
}

func (q *quietList) front() *limConn {
	if q.root.next == &q.root {
		return nil
	}
	return q.root.next
}

func (l *connLimiter) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err // http.Server backs off on temporary errors
		}
		lc := &limConn{Conn: c, l: l}
		l.mu.Lock()
		var victim *limConn
		if l.count >= l.max {
			victim = l.quiet.front()
			if victim == nil {
				l.mu.Unlock()
				l.refused.Add(1)
				c.Close()
				continue
			}
			l.quiet.remove(victim) // not chosen twice before its Close
		}
		l.quiet.pushBack(lc)
		l.count++
		l.mu.Unlock()
		if victim != nil {
			l.evicted.Add(1)
			victim.Close()
		}
		return lc, nil
	}
}

func (c *limConn) Close() error {
	l := c.l
	l.mu.Lock()
	if !c.closed {
		c.closed = true
		l.quiet.remove(c)
		if c.long {
			l.long--
		} else {
			l.count--
		}
	}
	l.mu.Unlock()
	return c.Conn.Close()
}

// ReadFrom keeps sendfile(2) for responses written from files.
func (c *limConn) ReadFrom(r io.Reader) (int64, error) {
	if rf, ok := c.Conn.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(struct{ io.Writer }{c.Conn}, r)
}

func (l *connLimiter) setBusy(c *limConn, busy bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if c.closed || c.long {
		return
	}
	c.busy = busy
	l.quiet.remove(c)
	if !busy {
		l.quiet.pushBack(c) // quiet from now: the back of the list
	}
}

// beginLong moves c to the long-lived count, false when that is full.
func (l *connLimiter) beginLong(c *limConn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if c.closed || l.long >= l.maxLong {
		return false
	}
	c.long = true
	l.quiet.remove(c)
	l.count--
	l.long++
	return true
}

// endLong moves c back once a long poll ended (a websocket's connection
// is closed by then).
func (l *connLimiter) endLong(c *limConn) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if c.closed || !c.long {
		return
	}
	c.long = false
	l.quiet.pushBack(c)
	l.long--
	l.count++
}

type limConnKey struct{}

// connContext is http.Server.ConnContext: the provider gets the TCP
// connection itself (it corks it), the limiter its own.
func connContext(ctx context.Context, c net.Conn) context.Context {
	if lc, ok := c.(*limConn); ok {
		ctx = context.WithValue(ctx, limConnKey{}, lc)
		c = lc.Conn
	}
	return provider.ConnContext(ctx, c)
}

// isLong tells websocket upgrades, followed logs and the provider's long
// poll.
func isLong(r *http.Request) bool {
	if strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
		return true
	}
	if strings.HasSuffix(r.URL.Path, "/logs") && strings.HasPrefix(r.URL.Path, "/api/v1/containers/") {
		follow, _ := strconv.ParseBool(r.URL.Query().Get("follow"))
		return follow
	}
	return r.URL.Path == "/api/v1/traefik/config" && r.URL.Query().Get("wait") != ""
}

// writeTimeout bounds the writing of an ordinary answer (not a websocket
// or a long poll): the largest, a log tail or the Traefik configuration of
// thousands of containers, takes well under a second to a reading client.
const writeTimeout = 2 * time.Minute

// wrap applies the limits to each request: long-lived ones move to their
// own count; an ordinary one gets bodyTimeout to send its body.
func (l *connLimiter) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := r.Context().Value(limConnKey{}).(*limConn)
		if c == nil {
			h.ServeHTTP(w, r)
			return
		}
		if isLong(r) {
			if !l.beginLong(c) {
				w.Header().Set("Retry-After", "5")
				http.Error(w, "too many websockets and long polls", http.StatusServiceUnavailable)
				return
			}
			defer l.endLong(c)
			h.ServeHTTP(w, r)
			return
		}
		defer l.setBusy(c, false)
		http.NewResponseController(w).SetWriteDeadline(time.Now().Add(l.writeTimeout))
		if r.Body == nil || r.Body == http.NoBody {
			l.setBusy(c, true)
			h.ServeHTTP(w, r)
			return
		}
		// The deadline is lifted once the body is read: net/http's
		// background read, started then, would take it for the client
		// going away and cancel the request's context.
		rc := http.NewResponseController(w)
		rc.SetReadDeadline(time.Now().Add(l.bodyTimeout))
		// A body cut by the deadline leaves the connection mid-request: the
		// answer closes it (set before the handler, still reading, answers).
		r2 := *r // net/http keeps r: its Body stays its own
		r2.Body = &bodyWatch{ReadCloser: r.Body, done: func() {
			rc.SetReadDeadline(time.Time{})
			l.setBusy(c, true)
		}, failed: func() { w.Header().Set("Connection", "close") }}
		h.ServeHTTP(w, &r2)
	})
}

// bodyWatch calls done once, when the body was read to its end, or failed
// once, when reading it failed otherwise (the deadline, most likely).
type bodyWatch struct {
	io.ReadCloser
	done, failed func()
	once         sync.Once
}

func (b *bodyWatch) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	switch {
	case err == nil:
	case errors.Is(err, io.EOF):
		b.once.Do(b.done)
	default:
		b.once.Do(b.failed)
	}
	return n, err
}
