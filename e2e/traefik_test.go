package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

const providerToken = "e2e-provider-token-0123456789abcdef"

// traefikConfig is the part of the dynamic configuration the router below
// follows (decoded with encoding/json; the strict decoding Traefik does is
// checked in package provider).
type traefikConfig struct {
	HTTP struct {
		Routers map[string]struct {
			EntryPoints []string `json:"entryPoints"`
			Middlewares []string `json:"middlewares"`
			Service     string   `json:"service"`
			Rule        string   `json:"rule"`
			Priority    int      `json:"priority"`
		} `json:"routers"`
		Services map[string]struct {
			LoadBalancer struct {
				Servers []struct{ URL string } `json:"servers"`
			} `json:"loadBalancer"`
		} `json:"services"`
		Middlewares map[string]struct {
			AddPrefix *struct{ Prefix string } `json:"addPrefix"`
		} `json:"middlewares"`
	} `json:"http"`
}

// fetchConfig GETs the provider endpoint; with etag and wait it long-polls.
func (m *Moor) fetchConfig(token, etag, wait string) (int, http.Header, []byte) {
	m.env.t.Helper()
	u := m.URL + "/api/v1/traefik/config"
	if wait != "" {
		u += "?wait=" + wait
	}
	req, _ := http.NewRequest("GET", u, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if etag != "" {
		req.Header.Set("If-None-Match", etag)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		m.env.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

// configWhere long-polls the endpoint until cond holds for the served
// configuration, and returns it with its bytes and ETag.
func (m *Moor) configWhere(what string, cond func(traefikConfig) bool) (traefikConfig, []byte, string) {
	m.env.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	etag := ""
	for {
		status, h, body := m.fetchConfig(providerToken, etag, "10s")
		switch status {
		case 200:
			var cfg traefikConfig
			if err := json.Unmarshal(body, &cfg); err != nil {
				m.env.t.Fatalf("config is not JSON: %v", err)
			}
			if cond(cfg) {
				return cfg, body, h.Get("ETag")
			}
			etag = h.Get("ETag")
		case 304, 503:
			if status == 503 {
				time.Sleep(50 * time.Millisecond)
			}
		default:
			m.env.t.Fatalf("config endpoint: %d %s", status, body)
		}
		if time.Now().After(deadline) {
			m.env.t.Fatalf("configuration never showed %s", what)
		}
	}
}

var hostMatcher = regexp.MustCompile("Host\\(`([^`]*)`\\)")

// route does what Traefik does with the configuration for one request on
// entry point web: the matching router of highest priority (rule length
// when unset), its addPrefix middlewares, then its service's first server,
// with the Host header passed on.
func route(t *testing.T, cfg traefikConfig, host, path string) (int, http.Header, string) {
	t.Helper()
	best, bestPrio := "", -1
	for name, r := range cfg.HTTP.Routers {
		match := false
		for _, h := range hostMatcher.FindAllStringSubmatch(r.Rule, -1) {
			match = match || h[1] == host
		}
		if strings.HasPrefix(r.Rule, "HostRegexp(") {
			re := regexp.MustCompile(strings.TrimSuffix(strings.TrimPrefix(r.Rule, "HostRegexp(`"), "`)"))
			match = re.MatchString(host)
		}
		prio := r.Priority
		if prio == 0 {
			prio = len(r.Rule)
		}
		if match && prio > bestPrio {
			best, bestPrio = name, prio
		}
	}
	if best == "" {
		return 404, nil, "traefik: 404 page not found"
	}
	r := cfg.HTTP.Routers[best]
	for _, mw := range r.Middlewares {
		if p := cfg.HTTP.Middlewares[mw].AddPrefix; p != nil {
			path = p.Prefix + path
		}
	}
	servers := cfg.HTTP.Services[r.Service].LoadBalancer.Servers
	if len(servers) == 0 {
		t.Fatalf("router %s: service %s has no servers", best, r.Service)
	}
	req, _ := http.NewRequest("GET", servers[0].URL+path, nil)
	req.Host = host
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("router %s -> %s: %v", best, servers[0].URL, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// TestTraefikRouting: moor's served configuration routes a running
// container to its replica, and a stopped one, or an unknown name, to
// moor's own pages instead of a bare 404.
func TestTraefikRouting(t *testing.T) {
	e := NewEnv(t)
	m := e.Start("MOOR_PROVIDER_TOKEN="+providerToken, "MOOR_PROVIDER_INTERVAL=1s")
	fallback := m.URL // MOOR_PROVIDER_FALLBACK_URL defaults to moor's own address

	// The provider endpoint takes the provider token, not API keys.
	if status, _, _ := m.fetchConfig("", "", ""); status != 401 {
		t.Errorf("no token: %d", status)
	}
	if status, _, _ := m.fetchConfig(e.Admin, "", ""); status != 401 {
		t.Errorf("admin API key on the provider endpoint: %d", status)
	}
	if status, _ := m.Do("GET", "/api/v1/containers", nil, providerToken); status != 401 {
		t.Errorf("provider token on the API: %d", status)
	}

	m.Create(map[string]any{"name": "site", "type": "testapp", "aliases": []string{"www.site.example"}})
	c := m.WaitStatus("site", "running", 60*time.Second)
	want := fmt.Sprintf("http://%s:8080", c.InternalIP)
	cfg, body, _ := m.configWhere("site running", func(cfg traefikConfig) bool {
		s := cfg.HTTP.Services["site"].LoadBalancer.Servers
		return len(s) == 1 && s[0].URL == want
	})
	if r := cfg.HTTP.Routers["site"]; r.Rule != "Host(`site.moor.localhost`) || Host(`www.site.example`)" || r.Service != "site" {
		t.Errorf("router: %+v\n%s", r, body)
	}
	for _, host := range []string{"site.moor.localhost", "www.site.example"} {
		if status, _, out := route(t, cfg, host, "/"); status != 200 || !strings.Contains(out, "hello from testapp") {
			t.Errorf("%s: %d %s", host, status, out)
		}
	}
	if status, _, out := route(t, cfg, "nothing.moor.localhost", "/"); status != 404 || !strings.Contains(out, "No container answers") {
		t.Errorf("unknown name: %d %s", status, out)
	}
	if srv := cfg.HTTP.Services["moor_unavailable"].LoadBalancer.Servers; len(srv) != 1 || srv[0].URL != fallback {
		t.Errorf("fallback service: %+v, want %s", srv, fallback)
	}

	// Stopped: the router stays and leads to moor's 503 page.
	if status, out := m.Do("POST", "/api/v1/containers/site/stop", nil); status != 202 {
		t.Fatalf("stop: %d %s", status, out)
	}
	m.WaitStatus("site", "stopped", 60*time.Second)
	cfg, _, _ = m.configWhere("site stopped", func(cfg traefikConfig) bool {
		return cfg.HTTP.Routers["site"].Service == "moor_unavailable"
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		status, h, out := route(t, cfg, "site.moor.localhost", "/some/page")
		if status == 503 && h.Get("Retry-After") != "" && strings.Contains(out, "site is stopped") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("stopped site: %d %v %s", status, h, out)
		}
		time.Sleep(100 * time.Millisecond) // the page follows the snapshot, which may lag the API by one rebuild
	}

	// Removed: the router goes (the catch-all answers 404).
	if status, out := m.Do("DELETE", "/api/v1/containers/site", nil); status != 202 {
		t.Fatalf("remove: %d %s", status, out)
	}
	m.WaitFor("site", 60*time.Second, "removed", func(c Container, ok bool) bool { return !ok })
	m.configWhere("site removed", func(cfg traefikConfig) bool {
		_, ok := cfg.HTTP.Routers["site"]
		return !ok && len(cfg.HTTP.Routers) > 0
	})
}

// TestTraefikInjection sends rule syntax through every request field that
// reaches a Traefik rule (name, aliases, path): each is refused with 422
// naming the field, and the served configuration does not change.
func TestTraefikInjection(t *testing.T) {
	e := NewEnv(t)
	m := e.Start("MOOR_PROVIDER_TOKEN=" + providerToken)
	m.Create(map[string]any{"name": "base", "type": "testapp", "replicas": 0})
	_, before, etag := m.configWhere("base", func(cfg traefikConfig) bool { _, ok := cfg.HTTP.Routers["base"]; return ok })
	// Only base exists; a refused request must add no row and no event.
	countOthers := func() int64 {
		return e.Count(`SELECT (SELECT count(*) FROM events WHERE container_name <> 'base') + (SELECT count(*) FROM containers WHERE name <> 'base')`)
	}
	others := countOthers()

	hostile := []string{
		"a`b", `a"b`, "a'b", "a||b", "*", "a b", "ünicode", "ａ", "UPPER", "Upper",
		"x`) || Host(`*", "x`) || PathPrefix(`/", "a&&b", "a(b)", "-a", "a\\b",
	}
	type attempt struct {
		field string
		body  map[string]any
	}
	var attempts []attempt
	for i, h := range hostile {
		n := fmt.Sprintf("ok%d", i)
		attempts = append(attempts,
			attempt{"name", map[string]any{"name": h, "type": "testapp"}},
			attempt{"aliases[0]", map[string]any{"name": n, "type": "testapp", "aliases": []string{h + ".example.com"}}},
			attempt{"aliases[1]", map[string]any{"name": n, "type": "testapp", "aliases": []string{"fine.example.com", "x." + h}}},
			attempt{"path", map[string]any{"name": n, "type": "testapp", "path": "/" + h}},
			attempt{"path", map[string]any{"name": n, "type": "testapp", "path": "/app/" + h}},
		)
	}
	for _, bad := range []string{"*.example.com", "example.com.", ".example.com", "a..b", strings.Repeat("a", 64) + ".com"} {
		attempts = append(attempts, attempt{"aliases[0]", map[string]any{"name": "okx", "type": "testapp", "aliases": []string{bad}}})
	}
	for _, bad := range []string{"app", "/", "//", "/app/", "/a/../b", "/a?b", "/a#b", "/a%60b"} {
		attempts = append(attempts, attempt{"path", map[string]any{"name": "okx", "type": "testapp", "path": bad}})
	}
	for _, a := range attempts {
		status, out := m.Do("POST", "/api/v1/containers", a.body)
		var er struct {
			Error struct{ Code, Message, Field string }
		}
		json.Unmarshal(out, &er)
		if status != 422 || !strings.HasPrefix(er.Error.Message, a.field+":") {
			t.Errorf("%v: %d %s, want 422 naming %s", a.body, status, out, a.field)
		}
	}
	if n := countOthers(); n != others {
		t.Errorf("refused requests wrote %d rows or events", n-others)
	}
	status, h, after := m.fetchConfig(providerToken, "", "")
	if status != 200 || h.Get("ETag") != etag || string(after) != string(before) {
		t.Errorf("configuration changed after refused requests:\n%s\n%s", before, after)
	}

	// The same fields, well-formed, do reach the configuration.
	m.Create(map[string]any{"name": "good", "type": "testapp", "replicas": 0, "aliases": []string{"good.example.com"}, "path": "/app/v2"})
	m.configWhere("good", func(cfg traefikConfig) bool {
		return cfg.HTTP.Routers["good"].Rule == "(Host(`good.moor.localhost`) || Host(`good.example.com`)) && PathPrefix(`/app/v2`)"
	})
}

// dockerRunning reports whether the Docker container with this id runs
// (false when it is gone).
func dockerRunning(id string) bool {
	out, err := exec.Command("docker", "inspect", "-f", "{{.State.Running}}", id).Output()
	return err == nil && strings.TrimSpace(string(out)) == "true"
}

// TestTraefikDrain: a replica that is about to be removed by a scale-down,
// or stopped, leaves the routes and the container zone first and is still
// running when the configuration without it is served, so Traefik never
// sends a request to a replica that is going away (a 502).
func TestTraefikDrain(t *testing.T) {
	e := NewEnv(t)
	m := e.Start("MOOR_PROVIDER_TOKEN="+providerToken, "MOOR_DRAIN=1500ms")
	m.Create(map[string]any{"name": "dr", "type": "testapp", "replicas": 2})
	c := m.WaitFor("dr", 60*time.Second, "2 running replicas", func(c Container, ok bool) bool {
		return ok && c.Status == "running" && len(c.Instances) == 2 && c.Instances[0].InternalIP != "" && c.Instances[1].InternalIP != ""
	})
	url0 := fmt.Sprintf("http://%s:8080", c.Instances[0].InternalIP)
	docker0, docker1 := c.Instances[0].DockerID, c.Instances[1].DockerID
	m.configWhere("both replicas routed", func(cfg traefikConfig) bool {
		return len(cfg.HTTP.Services["dr"].LoadBalancer.Servers) == 2
	})

	// Rolling restart: one replica at a time leaves the service, and the
	// next only once the first is back and healthy, so dr never loses
	// every replica (its router never leads to moor's page).
	started := func(id string) string { return docker(t, "inspect", "-f", "{{.State.StartedAt}}", id) }
	before0, before1 := started(docker0), started(docker1)
	if status, body := m.Do("POST", "/api/v1/containers/dr/restart", nil); status != 202 {
		t.Fatalf("restart: %d %s", status, body)
	}
	fewest, etag := 2, ""
	for deadline := time.Now().Add(60 * time.Second); ; {
		status, h, body := m.fetchConfig(providerToken, etag, "1s")
		if status == 200 {
			var cfg traefikConfig
			if err := json.Unmarshal(body, &cfg); err != nil {
				t.Fatal(err)
			}
			n := len(cfg.HTTP.Services["dr"].LoadBalancer.Servers)
			if cfg.HTTP.Routers["dr"].Service != "dr" {
				n = 0
			}
			fewest, etag = min(fewest, n), h.Get("ETag")
			if n == 2 && started(docker0) != before0 && started(docker1) != before1 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("restart did not end with both replicas restarted and routed")
		}
	}
	if fewest != 1 {
		t.Errorf("during the rolling restart the service had at fewest %d replicas, want 1", fewest)
	}

	// Scale down: replica 1 leaves the service while it still runs.
	if status, body := m.Do("POST", "/api/v1/containers/dr/scale", map[string]any{"replicas": 1}); status != 202 {
		t.Fatalf("scale: %d %s", status, body)
	}
	cfg, _, _ := m.configWhere("replica 1 out of the service", func(cfg traefikConfig) bool {
		s := cfg.HTTP.Services["dr"].LoadBalancer.Servers
		return len(s) == 1
	})
	if !dockerRunning(docker1) {
		t.Fatal("replica 1 had stopped before the configuration without it was served")
	}
	if s := cfg.HTTP.Services["dr"].LoadBalancer.Servers; s[0].URL != url0 {
		t.Errorf("the service kept %s, want replica 0's %s", s[0].URL, url0)
	}
	if rows := e.Query(`SELECT name, value FROM dns_entries WHERE zone = 'container' AND replica = 1`); len(rows) != 0 {
		t.Errorf("replica 1 still in the container zone while it drains: %v", rows)
	}
	if status, _, out := route(t, cfg, "dr.moor.localhost", "/"); status != 200 || !strings.Contains(out, "hello from testapp") {
		t.Errorf("during the drain the remaining replica answers: %d %s", status, out)
	}
	m.WaitFor("dr", 60*time.Second, "1 replica", func(c Container, ok bool) bool {
		return ok && c.Status == "running" && len(c.Instances) == 1
	})
	if ids := e.DockerIDs("dr"); len(ids) != 1 {
		t.Errorf("docker containers after the scale-down: %v", ids)
	}

	// Stop: the last replica leaves the routes while it still runs, and
	// the router leads to moor's page saying so.
	if status, body := m.Do("POST", "/api/v1/containers/dr/stop", nil); status != 202 {
		t.Fatalf("stop: %d %s", status, body)
	}
	cfg, _, _ = m.configWhere("dr routed to moor's page", func(cfg traefikConfig) bool {
		return cfg.HTTP.Routers["dr"].Service == "moor_unavailable"
	})
	if !dockerRunning(docker0) {
		t.Fatal("replica 0 had stopped before the configuration without it was served")
	}
	if status, h, out := route(t, cfg, "dr.moor.localhost", "/"); status != 503 || h.Get("Retry-After") == "" || !strings.Contains(out, "dr is stopping") {
		t.Errorf("during the drain: %d %v %s", status, h, out)
	}
	if c := m.WaitStatus("dr", "stopped", 60*time.Second); len(c.Instances) != 1 || c.Instances[0].Status != "stopped" {
		t.Errorf("after the drain: %+v", c.Instances)
	}
	if dockerRunning(docker0) {
		t.Error("replica 0 still runs after the stop")
	}
}

// TestProviderTokenFile: without MOOR_PROVIDER_TOKEN, moor makes a token up
// once, keeps it in a file only its user can read, logs where (never the
// token), and uses the same one after a restart, so Traefik stays valid.
func TestProviderTokenFile(t *testing.T) {
	e := NewEnv(t)
	m := e.Start("MOOR_PROVIDER_TOKEN=")
	path := filepath.Join(e.DataDir, "provider.token")
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("token file mode %04o, want 0600", perm)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	token := strings.TrimSpace(string(b))
	if len(token) < 16 {
		t.Fatalf("token %q: too short", token)
	}
	for i := 0; i < 2; i++ {
		status, _, body := m.fetchConfig(token, "", "")
		for deadline := time.Now().Add(20 * time.Second); status == 503 && time.Now().Before(deadline); {
			time.Sleep(50 * time.Millisecond) // no snapshot yet
			status, _, body = m.fetchConfig(token, "", "")
		}
		if status != 200 {
			t.Errorf("start %d: the file's token on the provider endpoint: %d %s", i+1, status, body)
		}
		logs := m.Logs()
		if strings.Contains(logs, token) {
			t.Errorf("start %d: the provider token is in the log", i+1)
		}
		if !strings.Contains(logs, path) {
			t.Errorf("start %d: the log does not name the token file %s:\n%s", i+1, path, logs)
		}
		if i == 0 {
			m.Kill()
			m = e.Start("MOOR_PROVIDER_TOKEN=")
		}
	}
}
