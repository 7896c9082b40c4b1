package e2e

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// receiver is a webhook endpoint such as n8n's: it checks each delivery's
// signature as a receiver must, and can be told to fail.
type receiver struct {
	t       *testing.T
	srv     *httptest.Server
	mu      sync.Mutex
	secret  string
	failing bool
	got     []streamEvent
	bad     []string
	tries   int
}

func newReceiver(t *testing.T) *receiver {
	rc := &receiver{t: t}
	rc.srv = httptest.NewServer(http.HandlerFunc(rc.serve))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.tries++
	if rc.failing {
		http.Error(w, "down for maintenance", http.StatusInternalServerError)
		return
	}
	// X-Moor-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>
	var ts, sig string
	for _, part := range strings.Split(r.Header.Get("X-Moor-Signature"), ",") {
		k, v, _ := strings.Cut(part, "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			sig = v
		}
	}
	mac := hmac.New(sha256.New, []byte(rc.secret))
	mac.Write([]byte(ts + "."))
	mac.Write(body)
	var ev streamEvent
	if err := json.Unmarshal(body, &ev); err != nil || !hmac.Equal([]byte(sig), []byte(hex.EncodeToString(mac.Sum(nil)))) ||
		r.Header.Get("X-Moor-Event") != ev.Kind || !strings.HasSuffix(r.Header.Get("X-Moor-Delivery"), ":"+itoa64(ev.Seq)) {
		rc.bad = append(rc.bad, string(body))
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	rc.got = append(rc.got, ev)
}

func (rc *receiver) set(failing bool) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.failing = failing
}

func (rc *receiver) events() []streamEvent {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if len(rc.bad) > 0 {
		rc.t.Fatalf("deliveries with a bad signature or headers: %v", rc.bad)
	}
	return append([]streamEvent(nil), rc.got...)
}

func (rc *receiver) waitFor(what string, timeout time.Duration, done func([]streamEvent) bool) []streamEvent {
	rc.t.Helper()
	for deadline := time.Now().Add(timeout); ; time.Sleep(50 * time.Millisecond) {
		got := rc.events()
		if done(got) {
			return got
		}
		if time.Now().After(deadline) {
			rc.t.Fatalf("webhook receiver: gave up waiting for %s; got %+v", what, got)
		}
	}
}

func itoa64(n int64) string { return strconv.FormatInt(n, 10) }

func jsonString(v any) string { b, _ := json.Marshal(v); return string(b) }

func hasKind(evs []streamEvent, name, kind string) bool {
	for _, ev := range evs {
		if ev.Container == name && ev.Kind == kind {
			return true
		}
	}
	return false
}

// containerEvents is every container.* event in the database, as the
// receiver of "container.*" must have got them.
func containerEvents(t *testing.T, m *Moor, after int64) []int64 {
	t.Helper()
	var out []int64
	for {
		status, body := m.Do("GET", "/api/v1/events?limit=1000&after="+itoa64(after), nil)
		if status != 200 {
			t.Fatalf("events: %d %s", status, body)
		}
		var page struct{ Events []streamEvent }
		json.Unmarshal(body, &page)
		if len(page.Events) == 0 {
			return out
		}
		for _, ev := range page.Events {
			if strings.HasPrefix(ev.Kind, "container.") {
				out = append(out, ev.Seq)
			}
			after = ev.Seq
		}
	}
}

// TestWebhooks: events reach a receiver signed, in order, filtered by
// kind; a receiver that fails gets them later; moor killed meanwhile loses
// none; a deleted webhook sends nothing more.
func TestWebhooks(t *testing.T) {
	e := NewEnv(t)
	// The receivers listen on loopback, which an admin must allow.
	allowLoopback := "MOOR_WEBHOOK_ALLOWED_HOSTS=127.0.0.1"
	m := e.Start(allowLoopback)
	all, running := newReceiver(t), newReceiver(t)

	create := func(name, url string, events []string) string {
		status, body := m.Do("POST", "/api/v1/webhooks", map[string]any{"name": name, "url": url, "events": events})
		var out struct{ Secret string }
		json.Unmarshal(body, &out)
		if status != 201 || !strings.HasPrefix(out.Secret, "whsec_") {
			t.Fatalf("create webhook %s: %d %s", name, status, body)
		}
		return out.Secret
	}
	all.secret = create("all", all.srv.URL+"/hook?token=abc", []string{"container.*"})
	running.secret = create("running", running.srv.URL, []string{"container.running"})
	start := e.Count(`SELECT coalesce(max(seq), 0) FROM events`)

	// Bad input names the field; a duplicate is 409; secrets are shown once.
	for _, c := range []struct {
		body  map[string]any
		field string
	}{
		{map[string]any{"name": "x", "url": "ftp://example.com/", "events": []string{"*"}}, "url"},
		{map[string]any{"name": "x", "url": "http://example.com/", "events": []string{"no such!"}}, "events"},
		{map[string]any{"name": "X`", "url": "http://example.com/", "events": []string{"*"}}, "name"},
	} {
		if status, body := m.Do("POST", "/api/v1/webhooks", c.body); status != 422 || !strings.Contains(string(body), `"field": "`+c.field+`"`) {
			t.Errorf("%v: %d %s, want 422 naming %s", c.body, status, body, c.field)
		}
	}
	if status, body := m.Do("POST", "/api/v1/webhooks", map[string]any{"name": "all", "url": all.srv.URL, "events": []string{"*"}}); status != 409 {
		t.Errorf("duplicate webhook: %d %s", status, body)
	}
	if status, body := m.Do("GET", "/api/v1/webhooks", nil); status != 200 || strings.Contains(string(body), "whsec_") {
		t.Errorf("list: %d %s: secrets must not be listed", status, body)
	}
	if n := e.Count(`SELECT count(*) FROM webhooks WHERE position('whsec_' in encode(secret, 'escape')) > 0`); n != 0 {
		t.Error("a webhook secret is stored in clear")
	}

	// A deploy reaches both, each what it asked for, in order.
	name := "wh-" + randSuffix()
	m.Create(map[string]any{"name": name, "type": "testapp"})
	m.WaitStatus(name, "running", 90*time.Second)
	got := all.waitFor(name+" running", 20*time.Second, func(evs []streamEvent) bool { return hasKind(evs, name, "container.running") })
	if got[0].Kind != "container.created" || got[0].Container != name {
		t.Errorf("first delivery: %+v, want %s's container.created", got[0], name)
	}
	run := running.waitFor(name+" running", 20*time.Second, func(evs []streamEvent) bool { return len(evs) > 0 })
	for _, ev := range run {
		if ev.Kind != "container.running" {
			t.Errorf("the container.running webhook got %s", ev.Kind)
		}
	}

	// The receiver fails; moor retries, and is killed while it does.
	all.set(true)
	if status, body := m.Do("POST", "/api/v1/containers/"+name+"/stop", nil); status != 202 {
		t.Fatalf("stop: %d %s", status, body)
	}
	m.WaitStatus(name, "stopped", 60*time.Second)
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		_, body := m.Do("GET", "/api/v1/webhooks/all", nil)
		var hook struct {
			Failures  int
			LastError string `json:"last_error"`
		}
		json.Unmarshal(body, &hook)
		if hook.Failures > 0 && strings.Contains(hook.LastError, "500") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the failing receiver is not reported: %s", body)
		}
	}
	m.Kill()
	all.set(false)
	m = e.Start(allowLoopback)
	all.waitFor(name+" stopped, after the restart", 30*time.Second, func(evs []streamEvent) bool { return hasKind(evs, name, "container.stopped") })

	// Nothing lost, nothing twice, in order (once deliveries have caught up
	// with the table).
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		want := containerEvents(t, m, int64(start))
		var seqs []int64
		for _, ev := range all.events() {
			seqs = append(seqs, ev.Seq)
		}
		if jsonString(seqs) == jsonString(want) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("delivered %v, want every container event in order %v", seqs, want)
		}
	}

	// Deleted: nothing more.
	if status, body := m.Do("DELETE", "/api/v1/webhooks/all", nil); status != 204 {
		t.Fatalf("delete: %d %s", status, body)
	}
	before := len(all.events())
	m.Do("POST", "/api/v1/containers/"+name+"/start", nil)
	m.WaitStatus(name, "running", 60*time.Second)
	running.waitFor("the second running", 20*time.Second, func(evs []streamEvent) bool { return len(evs) > len(run) })
	if n := len(all.events()); n != before {
		t.Errorf("a deleted webhook delivered %d more events", n-before)
	}
}

// TestWebhookDestinations: by default a webhook cannot point at loopback,
// link-local (cloud metadata) or private addresses, whether named at once
// or reached through a name; what a failed delivery stores says no more
// than that it failed.
func TestWebhookDestinations(t *testing.T) {
	e := NewEnv(t)
	recv := newReceiver(t)
	m := e.Start()
	for _, url := range []string{recv.srv.URL, "http://localhost:8080/x", "http://169.254.169.254/latest/meta-data",
		"http://10.1.2.3/x", "http://[::1]:9/x", "http://192.168.0.1/x"} {
		status, body := m.Do("POST", "/api/v1/webhooks", map[string]any{"name": "w", "url": url, "events": []string{"*"}})
		if status != 422 || !strings.Contains(string(body), `"field": "url"`) || !strings.Contains(string(body), "not allowed") {
			t.Errorf("webhook to %s: %d %s, want 422 on url", url, status, body)
		}
	}
	if n := e.Count(`SELECT count(*) FROM webhooks`); n != 0 {
		t.Fatalf("%d refused webhooks stored", n)
	}
	// A name is judged by what it resolves to when moor connects: here
	// one that resolves to nothing moor may reach, or to nothing at all.
	status, body := m.Do("POST", "/api/v1/webhooks", map[string]any{"name": "named", "url": "http://receiver.invalid:1234/x", "events": []string{"*"}})
	if status != 201 {
		t.Fatalf("webhook to a name: %d %s", status, body)
	}
	if status, body := m.Do("POST", "/api/v1/containers", map[string]any{"name": "ping", "type": "testapp"}); status != 202 {
		t.Fatalf("deploy: %d %s", status, body)
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		_, body := m.Do("GET", "/api/v1/webhooks/named", nil)
		var hook struct {
			Failures  int
			LastError string `json:"last_error"`
		}
		json.Unmarshal(body, &hook)
		if hook.Failures > 0 {
			if hook.LastError != "connection failed" {
				t.Errorf("stored error %q: want the generic text", hook.LastError)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no failed delivery recorded: %s", body)
		}
	}
	if got := len(recv.events()); got != 0 {
		t.Errorf("the loopback receiver got %d deliveries", got)
	}
}
