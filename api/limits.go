package api

import (
	"context"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/moorhq/moor/internal/domain"
)

// Limits bound what one caller (an API key, a signed-in user) may ask, so
// that no key can slow moor for everyone: requests per second with a burst,
// websockets open at once, and how fast a websocket replays old events.
// Over a limit the answer is 429 with Retry-After.
type Limits struct {
	Rate       float64 // requests per second, refilled continuously
	Burst      int     // requests at once after a quiet spell
	Websockets int     // websockets open at once
	ReplayRate int     // events per second a websocket sends while catching up
}

// DefaultLimits leave room for dashboards and workflow engines polling
// several times a second, and stop a runaway script.
var DefaultLimits = Limits{Rate: 50, Burst: 200, Websockets: 32, ReplayRate: 5000}

// maxCallers bounds the limiter's memory: past it, callers whose bucket is
// full again (idle long enough) are forgotten.
const maxCallers = 10_000

// callerLimits is the limiter's state, per caller.
type callerLimits struct {
	mu      sync.Mutex
	buckets map[string]*bucket
	sockets map[string]int
}

type bucket struct {
	tokens float64
	at     time.Time
}

func (s *Server) limitsOrDefault() Limits {
	l := s.Limits
	if l.Rate <= 0 {
		l.Rate = DefaultLimits.Rate
	}
	if l.Burst <= 0 {
		l.Burst = DefaultLimits.Burst
	}
	if l.Websockets <= 0 {
		l.Websockets = DefaultLimits.Websockets
	}
	if l.ReplayRate <= 0 {
		l.ReplayRate = DefaultLimits.ReplayRate
	}
	return l
}

func callerKey(a domain.Actor) string { return a.Kind + ":" + a.ID + ":" + a.Name }

// allowRequest takes one request from the caller's bucket; when empty it
// says how long until there is one.
func (s *Server) allowRequest(a domain.Actor, now time.Time) (time.Duration, bool) {
	lim := s.limitsOrDefault()
	l := &s.limits
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.buckets == nil {
		l.buckets = map[string]*bucket{}
	}
	key := callerKey(a)
	b := l.buckets[key]
	if b == nil {
		if len(l.buckets) >= maxCallers {
			l.evict(lim, now)
		}
		b = &bucket{tokens: float64(lim.Burst), at: now}
		l.buckets[key] = b
	}
	b.tokens = math.Min(float64(lim.Burst), b.tokens+now.Sub(b.at).Seconds()*lim.Rate)
	b.at = now
	if b.tokens >= 1 {
		b.tokens--
		return 0, true
	}
	return time.Duration((1 - b.tokens) / lim.Rate * float64(time.Second)), false
}

// evict forgets the callers whose bucket would be full by now.
func (l *callerLimits) evict(lim Limits, now time.Time) {
	for k, b := range l.buckets {
		if b.tokens+now.Sub(b.at).Seconds()*lim.Rate >= float64(lim.Burst) {
			delete(l.buckets, k)
		}
	}
}

// openSocket counts a websocket of the caller, unless it has its limit
// open; the returned func closes it.
func (s *Server) openSocket(a domain.Actor) (func(), bool) {
	lim := s.limitsOrDefault()
	l := &s.limits
	key := callerKey(a)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.sockets == nil {
		l.sockets = map[string]int{}
	}
	if l.sockets[key] >= lim.Websockets {
		return nil, false
	}
	l.sockets[key]++
	return func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		if l.sockets[key]--; l.sockets[key] <= 0 {
			delete(l.sockets, key)
		}
	}, true
}

// tooMany answers 429 with Retry-After (whole seconds, at least one).
func tooMany(w http.ResponseWriter, wait time.Duration, msg string) error {
	w.Header().Set("Retry-After", strconv.Itoa(max(1, int(math.Ceil(wait.Seconds())))))
	return &requestError{http.StatusTooManyRequests, "too_many_requests", msg}
}

// pace waits as long as sending n replayed events takes at the replay rate.
func (s *Server) pace(ctx context.Context, n int) {
	if n == 0 {
		return
	}
	d := time.Duration(n) * time.Second / time.Duration(s.limitsOrDefault().ReplayRate)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
