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
