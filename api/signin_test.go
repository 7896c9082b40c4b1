package api

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moorhq/moor/internal/auth"
	"github.com/moorhq/moor/internal/domain"
)

// fakeSessions knows users by name; their stored "hash" is "pw:" + the
// password, for fakeCheck.
type fakeSessions struct {
	mu    sync.Mutex
	users map[string]string
}

func (f *fakeSessions) UserByName(ctx context.Context, name string) (domain.Actor, string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	h, ok := f.users[name]
	if !ok {
		return domain.Actor{}, "", domain.ErrNotFound
	}
	return domain.Actor{ID: "u-" + name, Name: name, Role: domain.RoleOperator}, h, nil
}
func (f *fakeSessions) CreateSession(context.Context, []byte, string, time.Time) error { return nil }
func (f *fakeSessions) ActorBySessionHash(context.Context, []byte) (domain.Actor, error) {
	return domain.Actor{}, domain.ErrUnauthorized
}
func (f *fakeSessions) DeleteSession(context.Context, []byte) error { return nil }

// signInRig is a Server with fake sessions, a fast counting password check
// and a clock the test moves.
type signInRig struct {
	t      *testing.T
	s      *Server
	h      http.Handler
	now    time.Time
	checks atomic.Int64
}

func newSignInRig(t *testing.T, lim SignInLimits) *signInRig {
	rig := &signInRig{t: t, now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	rig.s = &Server{
		Sessions: &fakeSessions{users: map[string]string{"olga": "pw:right"}},
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
		SignIn:   lim,
		CheckPassword: func(hash, pw string) bool {
			rig.checks.Add(1)
			return hash != "" && hash == "pw:"+pw
		},
	}
	rig.s.clock = func() time.Time { return rig.now }
	rig.h = rig.s.Handler()
	return rig
}

// signIn posts a sign-in from addr (RemoteAddr) with extra headers
// (name, value pairs) and returns the status and Retry-After.
func (rig *signInRig) signIn(addr, user, pw string, hdr ...string) (int, string) {
	rig.t.Helper()
	return signInTo(rig.h, addr, user, pw, hdr...)
}

func signInTo(h http.Handler, addr, user, pw string, hdr ...string) (int, string) {
	body, _ := json.Marshal(map[string]string{"username": user, "password": pw})
	req := httptest.NewRequest("POST", "/api/v1/session", strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/json")
	req.RemoteAddr = addr
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w.Code, w.Header().Get("Retry-After")
}

// TestSignInAddressLimit: every attempt from an address counts, whatever
// the user name; an empty bucket answers 429 with Retry-After and checks no
// password; other addresses are unaffected; the bucket refills; an IPv6
// client is counted by its /64.
func TestSignInAddressLimit(t *testing.T) {
	rig := newSignInRig(t, SignInLimits{Burst: 3, Refill: time.Minute})
	for i := 0; i < 3; i++ {
		if code, _ := rig.signIn("10.0.0.1:4000", fmt.Sprintf("name%d", i), "guess"); code != 401 {
			t.Fatalf("attempt %d: %d, want 401", i, code)
		}
	}
	code, retry := rig.signIn("10.0.0.1:4001", "olga", "right")
	if code != 429 || retry != "60" {
		t.Fatalf("4th attempt from the address: %d Retry-After %q, want 429 and 60", code, retry)
	}
	if n := rig.checks.Load(); n != 3 {
		t.Errorf("%d passwords checked, want 3 (none for the refused attempt)", n)
	}
	if code, _ := rig.signIn("10.0.0.2:4000", "olga", "right"); code != 200 {
		t.Errorf("another address: %d, want 200", code)
	}
	rig.now = rig.now.Add(30 * time.Second)
	if code, retry := rig.signIn("10.0.0.1:4000", "olga", "right"); code != 429 || retry != "30" {
		t.Errorf("half a refill later: %d Retry-After %q, want 429 and 30", code, retry)
	}
	rig.now = rig.now.Add(30 * time.Second)
	if code, _ := rig.signIn("10.0.0.1:4000", "olga", "right"); code != 200 {
		t.Errorf("after a refill: %d, want 200", code)
	}
	if code, _ := rig.signIn("10.0.0.1:4000", "olga", "right"); code != 429 {
		t.Errorf("one refill is one attempt: %d, want 429", code)
	}

	for i := 0; i < 3; i++ {
		rig.signIn(fmt.Sprintf("[2001:db8:1:2::%x]:4000", i+1), "nobody", "guess")
	}
	if code, _ := rig.signIn("[2001:db8:1:2:ffff::1]:4000", "nobody", "guess"); code != 429 {
		t.Errorf("4th attempt from the same IPv6 /64: %d, want 429", code)
	}
	if code, _ := rig.signIn("[2001:db8:1:3::1]:4000", "nobody", "guess"); code != 401 {
		t.Errorf("another /64: %d, want 401", code)
	}
}

// TestSignInBackoff: failures for a user name past the free ones make it
// wait, doubling up to the cap, whatever the address; attempts during the
// wait check no password; a right password gets in once the wait has run
// out (no lock-out), and a success resets the count.
func TestSignInBackoff(t *testing.T) {
	rig := newSignInRig(t, SignInLimits{Burst: 1000, FreeFailures: 2, Backoff: time.Second, BackoffMax: 4 * time.Second})
	n := 0
	try := func(pw string, wantCode int, wantRetry string) {
		t.Helper()
		n++ // a new address each time: the backoff is per user name
		before := rig.checks.Load()
		code, retry := rig.signIn(fmt.Sprintf("10.1.0.%d:5000", n), "olga", pw)
		if code != wantCode || retry != wantRetry {
			t.Fatalf("attempt %d (%s): %d Retry-After %q, want %d %q", n, pw, code, retry, wantCode, wantRetry)
		}
		if checked := rig.checks.Load() != before; checked != (code != 429) {
			t.Fatalf("attempt %d: password checked %v with status %d", n, checked, code)
		}
	}
	try("wrong", 401, "")
	try("wrong", 401, "") // the free failures are spent: 1s
	try("right", 429, "1")
	for _, wait := range []int{1, 2, 4} {
		rig.now = rig.now.Add(time.Duration(wait) * time.Second)
		try("wrong", 401, "")
		next := min(2*wait, 4) // doubled, up to the cap
		try("right", 429, fmt.Sprint(next))
		try("right", 429, fmt.Sprint(next))
	}
	rig.now = rig.now.Add(3 * time.Second)
	try("right", 429, "1")
	rig.now = rig.now.Add(time.Second)
	try("right", 200, "") // the wait ran out: no lock-out
	try("wrong", 401, "") // and the count starts again
	try("wrong", 401, "")
	try("right", 429, "1")

	// Other names are not affected.
	if code, _ := rig.signIn("10.2.0.1:1", "vic", "x"); code != 401 {
		t.Errorf("another name: %d, want 401", code)
	}
}

// TestSignInBackoffOneAtATime: once a name is under backoff, one attempt at
// a time is checked, so a burst sent the moment the wait runs out gets one
// guess, not many.
func TestSignInBackoffOneAtATime(t *testing.T) {
	g := newSignInGuard(SignInLimits{FreeFailures: 1, Backoff: time.Second})
	now := time.Now()
	g.done("olga", false, now)
	now = now.Add(time.Second)
	if w := g.admit("olga", now); w != 0 {
		t.Fatalf("first attempt after the wait: wait %v", w)
	}
	if w := g.admit("olga", now); w == 0 {
		t.Fatal("a second attempt was let through while the first is checked")
	}
	g.release("olga")
	if w := g.admit("olga", now); w != 0 {
		t.Fatalf("after release: wait %v", w)
	}
	g.done("olga", true, now)
	if len(g.users) != 0 {
		t.Error("a success did not forget the name")
	}
}

// TestSignInHashBound: no more password checks at once than HashSlots;
// beyond them an attempt waits HashWait, then gets 429 with Retry-After.
func TestSignInHashBound(t *testing.T) {
	rig := newSignInRig(t, SignInLimits{Burst: 100, HashSlots: 2, HashWait: 50 * time.Millisecond})
	unblock := make(chan struct{})
	var in, most atomic.Int64
	rig.s.CheckPassword = func(hash, pw string) bool {
		c := in.Add(1)
		defer in.Add(-1)
		for m := most.Load(); c > m && !most.CompareAndSwap(m, c); m = most.Load() {
		}
		<-unblock
		return false
	}
	var wg sync.WaitGroup
	for i := 0; i < 2; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rig.signIn(fmt.Sprintf("10.3.0.%d:1", i+1), "olga", "x")
		}()
	}
	for in.Load() < 2 {
		time.Sleep(time.Millisecond)
	}
	start := time.Now()
	code, retry := rig.signIn("10.3.0.9:1", "vic", "x")
	if code != 429 || retry != "1" {
		t.Errorf("with every slot taken: %d Retry-After %q, want 429 and 1", code, retry)
	}
	if el := time.Since(start); el < 50*time.Millisecond || el > 2*time.Second {
		t.Errorf("answered after %v, want after HashWait (50ms)", el)
	}
	close(unblock)
	wg.Wait()
	if most.Load() != 2 {
		t.Errorf("at most %d checks at once, want 2", most.Load())
	}
	// A refused attempt left no hold on the name.
	if code, _ := rig.signIn("10.3.0.9:1", "vic", "x"); code != 401 {
		t.Errorf("afterwards: %d, want 401", code)
	}
}

// TestSignInBcryptBounded: with the real bcrypt (cost 12) and the default
// slots, a flood of attempts from many addresses never has more hashes
// running at once than DefaultSignInHashSlots; each is answered 401 or 429.
func TestSignInBcryptBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("bcrypt at cost 12")
	}
	hash, err := auth.HashPassword("right password")
	if err != nil {
		t.Fatal(err)
	}
	rig := newSignInRig(t, SignInLimits{})
	rig.s.Sessions.(*fakeSessions).users["olga"] = hash
	var in, most, calls atomic.Int64
	rig.s.CheckPassword = func(hash, pw string) bool {
		calls.Add(1)
		c := in.Add(1)
		defer in.Add(-1)
		for m := most.Load(); c > m && !most.CompareAndSwap(m, c); m = most.Load() {
		}
		return auth.CheckPassword(hash, pw)
	}
	const flood = 6
	codes := make([]int, flood)
	var wg sync.WaitGroup
	for i := range flood {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes[i], _ = rig.signIn(fmt.Sprintf("10.4.0.%d:1", i+1), fmt.Sprintf("name%d", i), "guess")
		}()
	}
	wg.Wait()
	slots := int64(DefaultSignInHashSlots())
	if most.Load() > slots || most.Load() < 1 {
		t.Errorf("%d bcrypt checks at once, want 1 to %d", most.Load(), slots)
	}
	for i, c := range codes {
		if c != 401 && c != 429 {
			t.Errorf("attempt %d: %d, want 401 or 429", i, c)
		}
	}
	t.Logf("%d of %d attempts hashed, at most %d at once", calls.Load(), flood, most.Load())
	if code, _ := rig.signIn("10.4.1.1:1", "olga", "right password"); code != 200 {
		t.Errorf("the right password after the flood: %d, want 200", code)
	}
}

// TestClientAddr: X-Forwarded-For counts only from a trusted peer, and then
// the client is the right-most untrusted hop.
func TestClientAddr(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8")}
	for _, c := range []struct {
		peer    string
		xff     []string
		trusted []netip.Prefix
		want    string
	}{
		{"192.0.2.1:1234", nil, nil, "192.0.2.1"},
		{"192.0.2.1:1234", []string{"198.51.100.7"}, nil, "192.0.2.1"},     // no proxies trusted
		{"192.0.2.1:1234", []string{"198.51.100.7"}, trusted, "192.0.2.1"}, // peer not trusted
		{"10.0.0.5:1234", nil, trusted, "10.0.0.5"},
		{"10.0.0.5:1234", []string{"198.51.100.7"}, trusted, "198.51.100.7"},
		{"10.0.0.5:1234", []string{"203.0.113.9, 198.51.100.7, 10.0.0.6"}, trusted, "198.51.100.7"}, // spoofed left part ignored
		{"10.0.0.5:1234", []string{"203.0.113.9", "198.51.100.7"}, trusted, "198.51.100.7"},         // several headers
		{"10.0.0.5:1234", []string{"10.0.0.7, 10.0.0.6"}, trusted, "10.0.0.7"},                      // all trusted: left-most
		{"10.0.0.5:1234", []string{"198.51.100.7, garbage"}, trusted, "10.0.0.5"},                   // unparsable: the hop that sent it
		{"10.0.0.5:1234", []string{"[2001:db8::1]:443"}, trusted, "2001:db8::1"},
		{"[fd00::1]:1234", []string{"::ffff:198.51.100.7"}, trusted, "198.51.100.7"},
		{"[::ffff:10.0.0.5]:1234", []string{"198.51.100.7"}, trusted, "198.51.100.7"},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = c.peer
		for _, v := range c.xff {
			r.Header.Add("X-Forwarded-For", v)
		}
		if got := clientAddr(r, c.trusted).String(); got != c.want {
			t.Errorf("peer %s, X-Forwarded-For %q: %s, want %s", c.peer, c.xff, got, c.want)
		}
	}

	// Through the handler: behind a trusted proxy, clients are throttled
	// apart; a client's own X-Forwarded-For does not get it a new bucket.
	rig := newSignInRig(t, SignInLimits{Burst: 1, Refill: time.Hour, TrustedProxies: trusted})
	rig.signIn("10.0.0.5:1", "a", "x", "X-Forwarded-For", "198.51.100.1")
	if code, _ := rig.signIn("10.0.0.5:1", "a", "x", "X-Forwarded-For", "198.51.100.2"); code != 401 {
		t.Errorf("a second client behind the proxy: %d, want 401", code)
	}
	if code, _ := rig.signIn("10.0.0.5:1", "a", "x", "X-Forwarded-For", "203.0.113.1, 198.51.100.1"); code != 429 {
		t.Errorf("the first client again, with a forged hop: %d, want 429", code)
	}
	if code, _ := rig.signIn("192.0.2.1:1", "a", "x"); code != 401 {
		t.Errorf("a direct client: %d, want 401", code)
	}
	if code, _ := rig.signIn("192.0.2.1:1", "a", "x", "X-Forwarded-For", "198.51.100.3"); code != 429 {
		t.Errorf("a direct client forging X-Forwarded-For: %d, want 429", code)
	}
}

// TestSignInMemoryBounded: rotating addresses and names keeps each table
// within MaxEntries.
func TestSignInMemoryBounded(t *testing.T) {
	rig := newSignInRig(t, SignInLimits{MaxEntries: 100, FreeFailures: 1})
	for i := 0; i < 2000; i++ {
		rig.signIn(fmt.Sprintf("10.%d.%d.1:1", i/250, i%250), fmt.Sprintf("name%d", i), "x")
		rig.signIn(fmt.Sprintf("[2001:db8:%x::1]:1", i), "x", strings.Repeat("y", 100))
	}
	g := rig.s.signInGuard()
	if len(g.addrs) > 100 || len(g.users) > 100 {
		t.Errorf("%d addresses and %d names kept, want at most 100 each", len(g.addrs), len(g.users))
	}
	// Junk names share one entry.
	for i := 0; i < 50; i++ {
		rig.signIn("192.0.2.9:1", strings.Repeat("Z", 1000+i), "x")
	}
	if _, ok := g.users["\x00"]; !ok {
		t.Error("names that cannot exist are not kept under one entry")
	}
	// Stale entries go first: an hour on, every bucket is full again.
	rig.now = rig.now.Add(2 * time.Hour)
	rig.signIn("192.0.2.10:1", "olga", "right")
	if len(g.addrs) > 10 {
		t.Errorf("%d addresses kept after they went stale, want them dropped", len(g.addrs))
	}
}

// TestSecureCookieBehindTrustedProxyOnly: X-Forwarded-Proto marks the
// session cookie Secure only when a trusted proxy sent it.
func TestSecureCookieBehindTrustedProxyOnly(t *testing.T) {
	s := &Server{SignIn: SignInLimits{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.1/32")}}}
	for _, c := range []struct {
		peer string
		want bool
	}{{"10.0.0.1:5555", true}, {"192.0.2.7:5555", false}} {
		r := httptest.NewRequest("POST", "/api/v1/session", nil)
		r.RemoteAddr = c.peer
		r.Header.Set("X-Forwarded-Proto", "https")
		if got := s.isHTTPS(r); got != c.want {
			t.Errorf("X-Forwarded-Proto from %s: https=%v, want %v", c.peer, got, c.want)
		}
	}
}
