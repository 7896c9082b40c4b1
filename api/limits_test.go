package api

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/moorhq/moor/internal/auth"
	"github.com/moorhq/moor/internal/domain"
)

// keyTable is API keys in memory.
type keyTable map[string]domain.Actor // hash -> actor

func (k keyTable) ActorByKeyHash(_ context.Context, hash []byte) (domain.Actor, error) {
	if a, ok := k[string(hash)]; ok {
		return a, nil
	}
	return domain.Actor{}, fmt.Errorf("key: %w", domain.ErrUnauthorized)
}

func (k keyTable) CreateProjectKey(context.Context, string, domain.Role, string, []byte) (string, error) {
	return "", nil
}

func (k keyTable) add(t *testing.T, name string) string {
	key, hash, err := auth.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	k[string(hash)] = domain.Actor{Kind: "apikey", ID: "id-" + name, Name: name, Role: domain.RoleAdmin}
	return key
}

func limitedServer(t *testing.T, lim Limits, table *eventTable) (*Server, string, keyTable) {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	keys := keyTable{}
	h := NewHub(table, logger)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { h.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	s := &Server{Keys: keys, Events: table, Hub: h, Logger: logger, Limits: lim}
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	return s, srv.URL, keys
}

func get(t *testing.T, url, key string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

// TestRequestLimit: a key that exceeds its rate gets 429 with Retry-After,
// other keys do not notice, and the bucket refills.
func TestRequestLimit(t *testing.T) {
	_, url, keys := limitedServer(t, Limits{Rate: 20, Burst: 3}, &eventTable{})
	busy, quiet := keys.add(t, "busy"), keys.add(t, "quiet")
	for i := range 3 {
		if r := get(t, url+"/api/v1/events", busy); r.StatusCode != 200 {
			t.Fatalf("request %d within the burst: %d", i, r.StatusCode)
		}
	}
	r := get(t, url+"/api/v1/events", busy)
	if r.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("request over the burst: %d, want 429", r.StatusCode)
	}
	if s, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || s < 1 {
		t.Errorf("Retry-After %q", r.Header.Get("Retry-After"))
	}
	if r := get(t, url+"/api/v1/events", quiet); r.StatusCode != 200 {
		t.Errorf("another key: %d, want 200", r.StatusCode)
	}
	time.Sleep(100 * time.Millisecond) // 2 tokens at 20/s
	if r := get(t, url+"/api/v1/events", busy); r.StatusCode != 200 {
		t.Errorf("after a refill: %d, want 200", r.StatusCode)
	}
	// Unauthenticated requests are refused before they cost a token.
	if r := get(t, url+"/api/v1/events", "moor_"+strings.Repeat("A", 43)); r.StatusCode != 401 {
		t.Errorf("forged key: %d", r.StatusCode)
	}
}

// TestLimiterForgetsIdleCallers: the limiter's memory stays bounded.
func TestLimiterForgetsIdleCallers(t *testing.T) {
	s := &Server{Limits: Limits{Rate: 1000, Burst: 1}}
	now := time.Now()
	for i := range maxCallers + 500 {
		s.allowRequest(domain.Actor{Kind: "apikey", ID: strconv.Itoa(i)}, now.Add(time.Duration(i)*time.Millisecond))
	}
	if n := len(s.limits.buckets); n > maxCallers {
		t.Fatalf("%d callers remembered, bound %d", n, maxCallers)
	}
}

func dialWS(t *testing.T, url, key, query string) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	h := http.Header{"Authorization": {"Bearer " + key}}
	return websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(url, "http")+"/api/v1/ws"+query, h)
}

// TestWebsocketLimit: a key holds at most Websockets streams; the next is
// refused with 429 until one closes.
func TestWebsocketLimit(t *testing.T) {
	_, url, keys := limitedServer(t, Limits{Websockets: 2}, &eventTable{})
	key := keys.add(t, "dash")
	var open []*websocket.Conn
	for i := range 2 {
		c, _, err := dialWS(t, url, key, "")
		if err != nil {
			t.Fatalf("websocket %d: %v", i, err)
		}
		open = append(open, c)
	}
	_, resp, err := dialWS(t, url, key, "")
	if err == nil || resp == nil || resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("third websocket: %v %v, want 429 with Retry-After", err, resp)
	}
	if c, _, err := dialWS(t, url, keys.add(t, "other"), ""); err != nil {
		t.Errorf("another key: %v", err)
	} else {
		c.Close()
	}
	open[0].Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, _, err := dialWS(t, url, key, "")
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a slot never came back after a close: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	open[1].Close()
}

// TestReplayIsPaced: a client replaying old events (from before the hub
// started: read from the table, not its ring) gets them at the replay rate,
// not as fast as the table gives them.
func TestReplayIsPaced(t *testing.T) {
	table := &eventTable{}
	table.add(3000)
	_, url, keys := limitedServer(t, Limits{ReplayRate: 5000}, table)
	c, _, err := dialWS(t, url, keys.add(t, "replayer"), "?after=0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	for i := range 3000 {
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, _, err := c.ReadMessage(); err != nil {
			t.Fatalf("event %d: %v", i+1, err)
		}
	}
	// 3,000 events at 5,000/s: about 0.6 s, less the last page, which
	// is not waited for.
	if d := time.Since(start); d < 400*time.Millisecond {
		t.Errorf("3,000 events replayed in %v: not paced at 5,000/s", d)
	}
}

// TestLiveEventsAreNotPaced: events the hub holds in its ring (live ones)
// go out at once, whatever the replay rate, and are encoded once for all
// clients.
func TestLiveEventsAreNotPaced(t *testing.T) {
	table := &eventTable{}
	s, url, keys := limitedServer(t, Limits{ReplayRate: 1}, table)
	key := keys.add(t, "live")
	var cs []*websocket.Conn
	for range 3 {
		c, _, err := dialWS(t, url, key, "")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		cs = append(cs, c)
	}
	table.add(50)
	s.Hub.Notify(0)
	start := time.Now()
	for _, c := range cs {
		for i := range 50 {
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, _, err := c.ReadMessage(); err != nil {
				t.Fatalf("live event %d: %v", i+1, err)
			}
		}
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("50 live events took %v at a replay rate of 1/s: paced", d)
	}
	// Framed once, by the hub, in one arena: the clients wrote the same
	// bytes.
	s.Hub.mu.Lock()
	wire := s.Hub.wire
	s.Hub.mu.Unlock()
	if len(wire) != 50 {
		t.Fatalf("the hub framed %d events, want 50", len(wire))
	}
	for i := 1; i < len(wire); i++ {
		if !wire[i-1].follows(wire[i]) {
			t.Errorf("frame %d does not follow frame %d in the arena", i+1, i)
		}
	}
}
