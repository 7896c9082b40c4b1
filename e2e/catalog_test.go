package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestCatalogAPI lists built-in, user and Portainer-imported types.
func TestCatalogAPI(t *testing.T) {
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Dir(filepath.Dir(file))
	dir := t.TempDir()
	for _, src := range []string{
		filepath.Join(filepath.Dir(file), "testdata", "catalog", "testapp-norestart.yaml"),
		filepath.Join(root, "internal", "catalog", "testdata", "portainer", "templates-v3.json"),
	} {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, filepath.Base(src)), b, 0o644)
	}
	e := NewEnvWith(t, func(e *Env) { e.CatalogDir = dir })
	m := e.Start()
	status, body := m.Do("GET", "/api/v1/types", nil)
	var list struct {
		Types []map[string]any
	}
	if err := json.Unmarshal(body, &list); status != 200 || err != nil {
		t.Fatalf("types: %d %v", status, err)
	}
	ids := map[string]bool{}
	portainer := 0
	for _, ty := range list.Types {
		id := ty["id"].(string)
		ids[id] = true
		if strings.HasPrefix(id, "portainer-") {
			portainer++
		}
	}
	for _, want := range []string{"nginx", "postgres", "redis", "code-server", "n8n", "testapp", "testapp-norestart"} {
		if !ids[want] {
			t.Errorf("type %s missing", want)
		}
	}
	if portainer < 30 {
		t.Errorf("only %d Portainer types imported", portainer)
	}
	status, body = m.Do("GET", "/api/v1/types/postgres", nil)
	var pg map[string]any
	json.Unmarshal(body, &pg)
	for _, f := range []string{"id", "title", "image", "categories", "ports", "env"} {
		if _, ok := pg[f]; !ok || status != 200 {
			t.Errorf("postgres type lacks %s: %d %s", f, status, body)
		}
	}
	if status, _ := m.Do("GET", "/api/v1/types/nosuch", nil); status != 404 {
		t.Errorf("unknown type: %d", status)
	}
}

// TestHTTPPortChoice: the type says why its HTTP port is the one routed,
// and a create request may route another of its TCP ports.
func TestHTTPPortChoice(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "two.yaml"), []byte(`id: two
title: Two ports
image: moor-testapp:latest
ports: [{name: web, port: 8080}, {name: admin, port: 9000}, {name: dns, port: 53, protocol: udp}]
`), 0o644)
	e := NewEnvWith(t, func(e *Env) { e.CatalogDir = dir })
	m := e.Start()
	status, body := m.Do("GET", "/api/v1/types/two", nil)
	if status != 200 || !strings.Contains(string(body), `"http_port_reason": "a port named \"web\""`) {
		t.Errorf("type: %d %s", status, body)
	}
	httpPort := func(body []byte) int {
		var c struct {
			Ports []struct {
				Port int
				HTTP bool
			}
		}
		json.Unmarshal(body, &c)
		for _, p := range c.Ports {
			if p.HTTP {
				return p.Port
			}
		}
		return 0
	}
	status, body = m.Do("POST", "/api/v1/containers", map[string]any{"name": "pick", "type": "two", "http_port": 9000})
	if status != 202 || httpPort(body) != 9000 {
		t.Errorf("create with http_port 9000: %d %s", status, body)
	}
	if _, body := m.Do("GET", "/api/v1/containers/pick", nil); httpPort(body) != 9000 {
		t.Errorf("stored: %s", body)
	}
	status, body = m.Do("POST", "/api/v1/containers", map[string]any{"name": "dflt", "type": "two"})
	if status != 202 || httpPort(body) != 8080 {
		t.Errorf("create: %d %s", status, body)
	}
	for _, port := range []int{53, 1234} {
		status, body := m.Do("POST", "/api/v1/containers", map[string]any{"name": "bad", "type": "two", "http_port": port})
		if status != 422 || !strings.Contains(string(body), `"field": "http_port"`) || !strings.Contains(string(body), "8080, 9000") {
			t.Errorf("http_port %d: %d %s", port, status, body)
		}
	}
}
