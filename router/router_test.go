package router

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/moorhq/moor/provider"
)

type table map[string]struct {
	name string
	b    provider.Backend
}

func (t table) Backend(host string) (string, provider.Backend, bool) {
	e, ok := t[host]
	return e.name, e.b, ok
}

func TestRouter(t *testing.T) {
	replica := func(id string) *httptest.Server {
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "%s host=%s path=%s xff=%s", id, r.Host, r.URL.Path, r.Header.Get("X-Forwarded-Host"))
		}))
		t.Cleanup(s.Close)
		return s
	}
	a, b := replica("a"), replica("b")
	routes := table{
		"web.moor.localhost":  {"web", provider.Backend{URLs: []string{a.URL, b.URL}}},
		"blog.example.com":    {"web", provider.Backend{URLs: []string{a.URL, b.URL}}}, // an alias
		"down.moor.localhost": {"down", provider.Backend{}},
		"auth.moor.localhost": {"auth", provider.Backend{URLs: []string{a.URL}, NeedsTraefik: true}},
	}
	unavailable := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "status page for "+r.Host, http.StatusServiceUnavailable)
	})
	rt := New(routes, unavailable, slog.New(slog.DiscardHandler))

	do := func(host, path string) (int, string) {
		req := httptest.NewRequest("GET", "http://"+host+path, nil)
		w := httptest.NewRecorder()
		if !rt.Handles(req) {
			return 0, ""
		}
		rt.ServeHTTP(w, req)
		body, _ := io.ReadAll(w.Result().Body)
		return w.Code, string(body)
	}
	seen := map[string]int{}
	for range 4 {
		code, body := do("web.moor.localhost:8080", "/x")
		if code != 200 || !strings.Contains(body, "host=web.moor.localhost:8080 path=/x xff=web.moor.localhost:8080") {
			t.Fatalf("web: %d %q", code, body)
		}
		seen[body[:1]]++
	}
	if seen["a"] != 2 || seen["b"] != 2 {
		t.Errorf("round robin: %v", seen)
	}
	if code, body := do("BLOG.example.com.", "/"); code != 200 {
		t.Errorf("alias: %d %q", code, body)
	}
	if code, body := do("down.moor.localhost", "/"); code != 503 || !strings.Contains(body, "status page") {
		t.Errorf("no ready replica: %d %q", code, body)
	}
	if code, body := do("auth.moor.localhost", "/"); code != http.StatusMisdirectedRequest || !strings.Contains(body, "Traefik") {
		t.Errorf("basic auth type: %d %q", code, body)
	}
	if code, _ := do("localhost:8080", "/"); code != 0 {
		t.Errorf("moor's own host was routed")
	}
	if code, _ := do("web.moor.localhost", provider.UnavailablePrefix+"/"); code != 0 {
		t.Errorf("moor's status page path was routed")
	}
	// A replica that does not answer is a 502, not a hang.
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()
	routes["dead.moor.localhost"] = struct {
		name string
		b    provider.Backend
	}{"dead", provider.Backend{URLs: []string{dead.URL}}}
	if code, _ := do("dead.moor.localhost", "/"); code != http.StatusBadGateway {
		t.Errorf("dead replica: %d", code)
	}
}
