package e2e

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestEmbeddedRouter: without Traefik, moor's own listener serves a
// container's URL (the one moor shows, port included) from its ready
// replicas, and the status page while none is ready; turned off, the host
// is moor's own again.
func TestEmbeddedRouter(t *testing.T) {
	e := NewEnv(t)
	m := e.Start()
	c := m.Create(map[string]any{"name": "web", "type": "testapp", "replicas": 2})
	port := m.URL[strings.LastIndex(m.URL, ":")+1:]
	if c.URL != "http://web.moor.localhost:"+port {
		t.Errorf("url %q: want the host zone name on moor's port", c.URL)
	}
	m.WaitStatus("web", "running", 60*time.Second)
	get := func(m *Moor, host string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", m.URL+"/", nil)
		req.Host = host
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	hostnames := map[string]bool{}
	deadline := time.Now().Add(20 * time.Second)
	for len(hostnames) < 2 && time.Now().Before(deadline) {
		code, body := get(m, "web.moor.localhost:"+port)
		if code == 200 && strings.Contains(body, "hello from testapp") {
			for _, l := range strings.Split(body, "\n") {
				if h, ok := strings.CutPrefix(l, "hostname: "); ok {
					hostnames[h] = true
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	if len(hostnames) != 2 {
		t.Errorf("answered by %v, want both replicas", hostnames)
	}
	if _, body := get(m, "localhost:"+port); strings.Contains(body, "hello from testapp") {
		t.Error("moor's own host was routed to the container")
	}
	if status, body := m.Do("POST", "/api/v1/containers/web/stop", nil); status != 202 {
		t.Fatalf("stop: %d %s", status, body)
	}
	m.WaitStatus("web", "stopped", 60*time.Second)
	if code, body := get(m, "web.moor.localhost"); code != 503 || !strings.Contains(body, "web is stopped") {
		t.Errorf("stopped: %d %q, want moor's status page", code, body)
	}

	off := e.Start("MOOR_EMBEDDED_ROUTER=false")
	if code, body := get(off, "web.moor.localhost"); code == 503 || strings.Contains(body, "hello from testapp") {
		t.Errorf("router off: %d %q", code, body)
	}
	if _, body := off.Do("GET", "/api/v1/containers/web", nil); !strings.Contains(string(body), `"url": "http://web.moor.localhost"`) {
		t.Errorf("router off: the URL keeps a port: %s", body)
	}
}
