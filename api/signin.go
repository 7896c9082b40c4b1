package api

import (
	"context"
	"net"
	"net/http"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"time"
)

// Defaults of SignInLimits.
const (
	// DefaultSignInBurst and DefaultSignInRefill: every client address has a
	// bucket of 10 sign-in attempts, whatever the user name, refilled by one
	// every 6 seconds (10 a minute sustained).
	DefaultSignInBurst  = 10
	DefaultSignInRefill = 6 * time.Second
	// DefaultSignInFreeFailures failed sign-ins in a row for one user name
	// cost nothing; each further one doubles the wait before the next
	// attempt for that name, from DefaultSignInBackoff up to
	// DefaultSignInBackoffMax. A success resets it.
	DefaultSignInFreeFailures = 5
	DefaultSignInBackoff      = time.Second
	DefaultSignInBackoffMax   = 5 * time.Minute
	// DefaultSignInHashWait is how long an attempt waits for a free
	// password-hashing slot before it is answered 429.
	DefaultSignInHashWait = time.Second
	// DefaultSignInMaxEntries bounds each of the two tables (addresses,
	// user names).
	DefaultSignInMaxEntries = 10000
	// signInForget: a user name's failures are forgotten this long after
	// the last one (and never before its backoff has run out).
	signInForget = time.Hour
	// signInSweep: stale entries are also looked for this often.
	signInSweep = 10 * time.Minute
)

// DefaultSignInHashSlots is the number of password hashes (bcrypt, cost
// 12: a core for about a quarter second each) checked at once: half the
// cores, at least one, so sign-in floods leave the rest to the API.
func DefaultSignInHashSlots() int { return max(1, runtime.GOMAXPROCS(0)/2) }

// SignInLimits throttle POST /api/v1/session. Zero fields take the
// defaults above.
type SignInLimits struct {
	Burst  int           // attempts per client address at once
	Refill time.Duration // one more attempt per address after this

	FreeFailures int           // failures in a row per user name before backoff
	Backoff      time.Duration // first wait, doubled by each further failure
	BackoffMax   time.Duration // cap of the wait

	HashSlots int           // password hashes checked at once
	HashWait  time.Duration // how long an attempt waits for a slot

	MaxEntries int // per table; stale entries go first, then random ones

	// TrustedProxies: X-Forwarded-For is read only when the direct peer is
	// in one of them; the client is the right-most address of the chain
	// that is not. Empty: the direct peer is the client.
	TrustedProxies []netip.Prefix
}

func (l SignInLimits) withDefaults() SignInLimits {
	if l.Burst <= 0 {
		l.Burst = DefaultSignInBurst
	}
	if l.Refill <= 0 {
		l.Refill = DefaultSignInRefill
	}
	if l.FreeFailures <= 0 {
		l.FreeFailures = DefaultSignInFreeFailures
	}
	if l.Backoff <= 0 {
		l.Backoff = DefaultSignInBackoff
	}
	if l.BackoffMax <= 0 {
		l.BackoffMax = DefaultSignInBackoffMax
	}
	if l.HashSlots <= 0 {
		l.HashSlots = DefaultSignInHashSlots()
	}
	if l.HashWait <= 0 {
		l.HashWait = DefaultSignInHashWait
	}
	if l.MaxEntries <= 0 {
		l.MaxEntries = DefaultSignInMaxEntries
	}
	return l
}

// signInGuard holds the sign-in throttles' state.
type signInGuard struct {
	lim   SignInLimits
	slots chan struct{} // password-hashing semaphore

	mu    sync.Mutex
	addrs map[string]*tokenBucket
	users map[string]*userBackoff
	swept time.Time // last sweep of stale entries
}

type tokenBucket struct {
	tokens float64
	at     time.Time
}

type userBackoff struct {
	failures int
	last     time.Time // of the last failure
	until    time.Time // no attempt before
	busy     bool      // an attempt under backoff is being checked
}

func newSignInGuard(l SignInLimits) *signInGuard {
	l = l.withDefaults()
	return &signInGuard{lim: l, slots: make(chan struct{}, l.HashSlots),
		addrs: map[string]*tokenBucket{}, users: map[string]*userBackoff{}}
}

// take spends one attempt of addr's bucket; when it is empty it returns how
// long until there is one.
func (g *signInGuard) take(addr string, now time.Time) time.Duration {
	g.mu.Lock()
	defer g.mu.Unlock()
	b := g.addrs[addr]
	if b == nil {
		g.makeRoom(now)
		b = &tokenBucket{tokens: float64(g.lim.Burst), at: now}
		g.addrs[addr] = b
	}
	b.refill(now, g.lim)
	if b.tokens >= 1 {
		b.tokens--
		return 0
	}
	return time.Duration((1 - b.tokens) * float64(g.lim.Refill))
}

func (b *tokenBucket) refill(now time.Time, l SignInLimits) {
	if el := now.Sub(b.at); el > 0 {
		b.tokens = min(float64(l.Burst), b.tokens+float64(el)/float64(l.Refill))
		b.at = now
	}
}

// full: the bucket is as good as a new one, so it may be forgotten.
func (b *tokenBucket) full(now time.Time, l SignInLimits) bool {
	return b.tokens+float64(now.Sub(b.at))/float64(l.Refill) >= float64(l.Burst)
}

// admit lets an attempt for user through unless the name is backed off;
// then it returns the wait. Under backoff one attempt at a time is
// checked. The caller reports the outcome with done.
func (g *signInGuard) admit(user string, now time.Time) time.Duration {
	g.mu.Lock()
	defer g.mu.Unlock()
	e := g.users[user]
	if e == nil {
		return 0
	}
	if now.Before(e.until) {
		return e.until.Sub(now)
	}
	if e.failures >= g.lim.FreeFailures {
		if e.busy {
			return time.Second
		}
		e.busy = true
	}
	return 0
}

// done records an attempt's outcome for user: a success forgets the name's
// failures; a failure sets the next backoff.
func (g *signInGuard) done(user string, ok bool, now time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	e := g.users[user]
	if ok {
		delete(g.users, user)
		return
	}
	if e == nil {
		g.makeRoom(now)
		e = &userBackoff{}
		g.users[user] = e
	}
	e.busy = false
	e.failures++
	e.last = now
	if n := e.failures - g.lim.FreeFailures; n >= 0 {
		d := g.lim.BackoffMax
		if n < 30 && g.lim.Backoff<<n < d {
			d = g.lim.Backoff << n
		}
		e.until = now.Add(d)
	}
}

// release undoes admit's hold when the attempt ended before its password
// was checked.
func (g *signInGuard) release(user string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if e := g.users[user]; e != nil {
		e.busy = false
	}
}

// makeRoom, before a new entry: when a table is full, or every
// signInSweep, forget stale entries (full buckets, failures older than
// signInForget); if a table is still full, forget random ones (map order)
// down to nine tenths. Called with mu held.
func (g *signInGuard) makeRoom(now time.Time) {
	limit := g.lim.MaxEntries
	sweep := now.Sub(g.swept) >= signInSweep
	if sweep {
		g.swept = now
	}
	if sweep || len(g.addrs) >= limit {
		for k, b := range g.addrs {
			if b.full(now, g.lim) {
				delete(g.addrs, k)
			}
		}
		if len(g.addrs) >= limit {
			for k := range g.addrs {
				if len(g.addrs) < limit*9/10 {
					break
				}
				delete(g.addrs, k)
			}
		}
	}
	if sweep || len(g.users) >= limit {
		forget := max(signInForget, g.lim.BackoffMax)
		for k, e := range g.users {
			if !e.busy && now.After(e.until) && now.Sub(e.last) > forget {
				delete(g.users, k)
			}
		}
		if len(g.users) >= limit {
			for k := range g.users {
				if len(g.users) < limit*9/10 {
					break
				}
				delete(g.users, k)
			}
		}
	}
}

// hashSlot waits up to HashWait for a password-hashing slot; ok is false
// when none came free (or the client left).
func (g *signInGuard) hashSlot(ctx context.Context) (release func(), ok bool) {
	select {
	case g.slots <- struct{}{}:
		return func() { <-g.slots }, true
	default:
	}
	t := time.NewTimer(g.lim.HashWait)
	defer t.Stop()
	select {
	case g.slots <- struct{}{}:
		return func() { <-g.slots }, true
	case <-t.C:
	case <-ctx.Done():
	}
	return nil, false
}

// clientAddr is the request's client address: the direct peer, or, when
// the peer is a trusted proxy, the right-most address of X-Forwarded-For
// that is not a trusted proxy (all trusted: the left-most; one that does
// not parse: the hop that reported it).
func clientAddr(r *http.Request, trusted []netip.Prefix) netip.Addr {
	peer := parseHop(r.RemoteAddr)
	if !peer.IsValid() || !inPrefixes(peer, trusted) {
		return peer
	}
	var hops []string
	for _, v := range r.Header.Values("X-Forwarded-For") {
		hops = append(hops, strings.Split(v, ",")...)
	}
	cur := peer
	for i := len(hops) - 1; i >= 0; i-- {
		a := parseHop(strings.TrimSpace(hops[i]))
		if !a.IsValid() {
			return cur
		}
		cur = a
		if !inPrefixes(a, trusted) {
			return a
		}
	}
	return cur
}

// parseHop reads an address, with or without a port ("[::1]:80").
func parseHop(s string) netip.Addr {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap()
	}
	if a, err := netip.ParseAddr(strings.Trim(s, "[]")); err == nil {
		return a.Unmap()
	}
	if host, _, err := net.SplitHostPort(s); err == nil {
		if a, err := netip.ParseAddr(host); err == nil {
			return a.Unmap()
		}
	}
	return netip.Addr{}
}

func inPrefixes(a netip.Addr, ps []netip.Prefix) bool {
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// addrKey is the throttle's key for a client address: IPv6 clients by
// their /64, since one host usually holds the whole of it.
func addrKey(a netip.Addr, raw string) string {
	switch {
	case !a.IsValid():
		if len(raw) > 64 {
			raw = raw[:64]
		}
		return "?" + raw
	case a.Is6():
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.String()
}
