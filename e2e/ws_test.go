package e2e

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

type streamEvent struct {
	Seq       int64           `json:"seq"`
	Kind      string          `json:"kind"`
	Project   string          `json:"project"`
	Container string          `json:"container"`
	Actor     string          `json:"actor"`
	Data      json.RawMessage `json:"data"`
}

// dialEvents opens GET /api/v1/ws with query q, the key in the
// Authorization header or, as a browser sends it, as a subprotocol.
func dialEvents(t *testing.T, m *Moor, q, key string, asBrowser bool) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	url := "ws" + strings.TrimPrefix(m.URL, "http") + "/api/v1/ws" + q
	h := http.Header{}
	d := *websocket.DefaultDialer
	if asBrowser {
		d.Subprotocols = []string{"moor.v1", "bearer." + key}
		h.Set("Origin", m.URL)
	} else if key != "" {
		h.Set("Authorization", "Bearer "+key)
	}
	c, resp, err := d.Dial(url, h)
	if err == nil {
		t.Cleanup(func() { c.Close() })
	}
	return c, resp, err
}

// readUntil reads events until one matches, failing after timeout.
func readUntil(t *testing.T, c *websocket.Conn, timeout time.Duration, what string, match func(streamEvent) bool) []streamEvent {
	t.Helper()
	var got []streamEvent
	c.SetReadDeadline(time.Now().Add(timeout))
	for {
		var ev streamEvent
		if err := c.ReadJSON(&ev); err != nil {
			t.Fatalf("waiting for %s: %v (after %d events: %+v)", what, err, len(got), got)
		}
		got = append(got, ev)
		if match(ev) {
			return got
		}
	}
}

func contiguous(t *testing.T, from int64, evs []streamEvent) {
	t.Helper()
	for i, ev := range evs {
		if ev.Seq != from+int64(i) {
			t.Fatalf("event %d has seq %d, want %d: the stream skipped or repeated (%+v)", i, ev.Seq, from+int64(i), evs)
		}
	}
}

// TestEventStream: a dashboard's websocket sees every change as it is
// committed, in order, and resumes after a break without a gap or a repeat.
func TestEventStream(t *testing.T) {
	e := NewEnv(t)
	m := e.Start()
	viewer := strings.TrimSpace(e.run("apikey", "create", "--name", "dash", "--role", "viewer"))

	live, _, err := dialEvents(t, m, "", viewer, false)
	if err != nil {
		t.Fatal(err)
	}
	name := "ws-" + randSuffix()
	m.Create(map[string]any{"name": name, "type": "testapp"})
	evs := readUntil(t, live, 90*time.Second, name+" running", func(ev streamEvent) bool {
		return ev.Container == name && ev.Kind == "container.running"
	})
	// The stream starts with the next event moor's hub hears of: the key
	// made just before may come first (the hub hears of it a moment after
	// it was committed); nothing of the container may be missing.
	for len(evs) > 1 && evs[0].Kind == "apikey.created" {
		evs = evs[1:]
	}
	if evs[0].Kind != "container.created" || evs[0].Container != name || evs[0].Actor == "" {
		t.Errorf("first event of the live stream: %+v, want %s's container.created with its actor", evs[0], name)
	}
	contiguous(t, evs[0].Seq, evs)

	// A browser (key as subprotocol) replays from the start: the same
	// events, then the ones before them, in one contiguous run.
	browser, resp, err := dialEvents(t, m, "?after=0", viewer, true)
	if err != nil {
		t.Fatal(err)
	}
	if p := resp.Header.Get("Sec-WebSocket-Protocol"); p != "moor.v1" {
		t.Errorf("negotiated subprotocol %q, want moor.v1 (browsers drop the connection otherwise)", p)
	}
	last := evs[len(evs)-1].Seq
	all := readUntil(t, browser, 10*time.Second, "replay", func(ev streamEvent) bool { return ev.Seq == last })
	contiguous(t, 1, all)
	if all[len(all)-1].Kind != "container.running" {
		t.Errorf("replay ends with %+v", all[len(all)-1])
	}

	// Break and resume: what happened meanwhile comes first, nothing twice.
	browser.Close()
	if status, body := m.Do("POST", "/api/v1/containers/"+name+"/stop", nil); status != 202 {
		t.Fatalf("stop: %d %s", status, body)
	}
	m.WaitStatus(name, "stopped", 60*time.Second)
	resumed, _, err := dialEvents(t, m, fmt.Sprintf("?after=%d", last), viewer, false)
	if err != nil {
		t.Fatal(err)
	}
	missed := readUntil(t, resumed, 10*time.Second, "the stop while away", func(ev streamEvent) bool {
		return ev.Kind == "container.stopped"
	})
	contiguous(t, last+1, missed)
	// The live client saw the same, with no gap.
	more := readUntil(t, live, 10*time.Second, "the stop, live", func(ev streamEvent) bool {
		return ev.Kind == "container.stopped"
	})
	contiguous(t, last+1, more)

	// Shutdown tells clients to go away and where to resume.
	m.cmd.Process.Signal(syscall.SIGTERM)
	live.SetReadDeadline(time.Now().Add(15 * time.Second))
	_, _, err = live.ReadMessage()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.CloseGoingAway || !strings.Contains(ce.Text, fmt.Sprintf("after=%d", more[len(more)-1].Seq)) {
		t.Errorf("on shutdown: %v, want close 1001 naming after=%d", err, more[len(more)-1].Seq)
	}
}

// TestEventStreamRefusals: the stream needs a key, a websocket and a page of
// moor's own origin; bad parameters are named.
func TestEventStreamRefusals(t *testing.T) {
	e := NewEnv(t)
	m := e.Start()
	forged := "moor_" + strings.Repeat("A", 43)
	for _, c := range []struct {
		what, q, key string
		browser      bool
		status       int
	}{
		{"no key", "", "", false, 401},
		{"forged key", "", forged, false, 401},
		{"forged key as subprotocol", "", forged, true, 401},
		{"bad after", "?after=-1", e.Admin, false, 422},
		{"after not a number", "?after=x", e.Admin, false, 422},
	} {
		_, resp, err := dialEvents(t, m, c.q, c.key, c.browser)
		if err == nil || resp == nil || resp.StatusCode != c.status {
			t.Errorf("%s: %v %v, want %d", c.what, err, resp, c.status)
		}
	}
	// A page of another origin cannot open it, even with a key.
	h := http.Header{"Origin": {"http://evil.example"}, "Authorization": {"Bearer " + e.Admin}}
	if _, resp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(m.URL, "http")+"/api/v1/ws", h); err == nil || resp.StatusCode != 403 {
		t.Errorf("cross-origin: %v %v, want 403", err, resp)
	}
	// Plain HTTP is pointed at the websocket and at the paged endpoint.
	status, body := m.Do("GET", "/api/v1/ws", nil)
	if status != http.StatusUpgradeRequired || !strings.Contains(string(body), "/api/v1/events") {
		t.Errorf("plain GET: %d %s, want 426", status, body)
	}
}

// TestEventStreamPruned: moor prunes events past MOOR_EVENT_RETENTION at
// start but keeps the newest 4,096; a client resuming from a pruned event is
// told so (close 4410) instead of silently skipping, and resumes from the
// oldest kept one as always.
func TestEventStreamPruned(t *testing.T) {
	e := NewEnv(t)
	e.Query(`INSERT INTO events (seq, kind, actor)
		SELECT m + g, 'test.filler', 'system' FROM generate_series(1, 5000) g, (SELECT coalesce(max(seq), 0) AS m FROM events) x`)
	e.Query(`UPDATE events SET created_at = now() - interval '40 days'`)
	total := e.Count(`SELECT max(seq) FROM events`)
	m := e.Start("MOOR_EVENT_RETENTION=720h")
	var oldest int64
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if oldest = e.Count(`SELECT min(seq) FROM events`); oldest > 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no event pruned")
		}
	}
	if want := total - 4096 + 1; oldest != want {
		t.Errorf("oldest event kept: %d, want %d (the newest 4,096 stay)", oldest, want)
	}
	// The log line follows the deletion's commit: wait for it too.
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(m.Logs(), "events pruned"); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Errorf("no log of the pruning")
			break
		}
	}

	key := e.Admin
	c, _, err := dialEvents(t, m, "?after=1", key, false)
	if err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, _, err = c.ReadMessage()
	var ce *websocket.CloseError
	if want := fmt.Sprintf("events 2-%d were pruned", oldest-1); !errors.As(err, &ce) || ce.Code != 4410 || !strings.Contains(ce.Text, want) {
		t.Errorf("resuming after a pruned event: %v, want close 4410 saying %q", err, want)
	}
	// The list says so too.
	if status, body := m.Do("GET", "/api/v1/events?after=1", nil); status != http.StatusGone ||
		!strings.Contains(string(body), fmt.Sprintf("events 2-%d were pruned", oldest-1)) {
		t.Errorf("GET /api/v1/events?after=1: %d %s, want 410 naming the pruned range", status, body)
	}
	status, body := m.Do("GET", fmt.Sprintf("/api/v1/events?after=%d&limit=1", oldest-1), nil)
	var list struct{ Events []struct{ Seq int64 } }
	if err := json.Unmarshal(body, &list); status != http.StatusOK || err != nil || len(list.Events) != 1 || list.Events[0].Seq != oldest {
		t.Errorf("GET /api/v1/events?after=%d: %d %s, want the oldest kept", oldest-1, status, body)
	}
	for _, after := range []int64{0, oldest - 1} {
		c, _, err := dialEvents(t, m, fmt.Sprintf("?after=%d", after), key, false)
		if err != nil {
			t.Fatal(err)
		}
		evs := readUntil(t, c, 10*time.Second, "the oldest kept event", func(streamEvent) bool { return true })
		if evs[0].Seq != oldest {
			t.Errorf("after=%d starts with %d, want the oldest kept, %d", after, evs[0].Seq, oldest)
		}
	}
}
