package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// kindsType has a variable of each kind the secret rule tells apart
// (docs/catalog.md, "Secrets").
const kindsType = `id: kinds
title: Kinds of variables
image: moor-testapp:latest
ports: [{name: http, port: 8080, http: true}]
health: {test: ["CMD", "/testapp", "-check"], interval: 1s, retries: 30}
env:
  - {name: MODE}                              # plain
  - {name: DECLARED, secret: true}            # declared secret
  - {name: GENERATED, generate: password}     # generated
  - {name: API_TOKEN}                         # a credential's name
  - {name: DB_PASS}                           # another
  - {name: TOKEN_TTL, secret: false}          # a credential's name, declared not secret
  - {name: ADMIN_PASSWORD_HASH, hash: bcrypt} # hashed by moor
`

// kindsTemplate is a Portainer template with a preset (hidden) variable.
const kindsTemplate = `{"version": "2", "templates": [{"type": 1, "title": "Preset kinds", "image": "moor-testapp:latest",
  "ports": ["8080/tcp"], "env": [{"name": "MODE", "label": "Mode"}, {"name": "SERVICE_ID", "label": "Service ID", "preset": true}]}]}`

// TestNoSecretReachesAViewer deploys a variable of each kind, then sweeps
// every GET route of the OpenAPI document (and the websocket, and the
// webhooks) as a viewer, and finds no value; an operator sees the values
// of variables that are not secret; only the credentials endpoint shows
// secret ones; moor's log shows none.
func TestNoSecretReachesAViewer(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "kinds.yaml"), []byte(kindsType), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "kinds.json"), []byte(kindsTemplate), 0o644); err != nil {
		t.Fatal(err)
	}
	e := NewEnvWith(t, func(e *Env) { e.CatalogDir = dir })
	m := e.Start("MOOR_WEBHOOK_ALLOWED_HOSTS=127.0.0.1")
	viewer := strings.TrimSpace(e.run("apikey", "create", "--name", "v", "--role", "viewer"))
	operator := strings.TrimSpace(e.run("apikey", "create", "--name", "o", "--role", "operator"))

	var (
		hookMu    sync.Mutex
		hookBody  strings.Builder
		hookCount int
	)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		hookMu.Lock()
		hookBody.Write(b)
		hookCount++
		hookMu.Unlock()
	}))
	t.Cleanup(hook.Close)
	if status, body := m.Do("POST", "/api/v1/webhooks", map[string]any{"name": "all", "url": hook.URL, "events": []string{"*"}}); status != 201 {
		t.Fatalf("webhook: %d %s", status, body)
	}

	plain := map[string]string{"MODE": "plain-mode-value-7731", "TOKEN_TTL": "3600-ttl-value-7731"}
	secret := map[string]string{"DECLARED": "declared-value-7731", "API_TOKEN": "api-token-value-7731", "DB_PASS": "db-pass-value-7731",
		"ADMIN_PASSWORD_HASH": "admin-password-7731"}
	env := map[string]string{}
	for k, v := range plain {
		env[k] = v
	}
	for k, v := range secret {
		env[k] = v
	}
	if status, body := m.Do("POST", "/api/v1/containers", map[string]any{"name": "kinds", "type": "kinds", "env": env}, operator); status != 202 {
		t.Fatalf("create kinds: %d %s", status, body)
	}
	if status, body := m.Do("POST", "/api/v1/containers", map[string]any{"name": "preset", "type": "portainer-preset-kinds",
		"env": map[string]string{"MODE": "preset-mode-7731", "SERVICE_ID": "preset-service-id-7731"}}, operator); status != 202 {
		t.Fatalf("create preset: %d %s", status, body)
	}
	m.WaitStatus("kinds", "running", 60*time.Second)
	m.WaitStatus("preset", "running", 60*time.Second)
	secret["SERVICE_ID"] = "preset-service-id-7731"
	plain["PRESET_MODE"] = "preset-mode-7731"

	// The credentials endpoint: every secret, the generated one, and the
	// hash rather than the password given for a hashed variable.
	status, body := m.Do("GET", "/api/v1/containers/kinds/credentials", nil, operator)
	var creds struct{ Credentials map[string]string }
	json.Unmarshal(body, &creds)
	if status != 200 || creds.Credentials["DECLARED"] != secret["DECLARED"] || creds.Credentials["API_TOKEN"] != secret["API_TOKEN"] ||
		creds.Credentials["DB_PASS"] != secret["DB_PASS"] || len(creds.Credentials["GENERATED"]) != 24 ||
		!strings.HasPrefix(creds.Credentials["ADMIN_PASSWORD_HASH"], "$2a$") {
		t.Fatalf("credentials: %d %s", status, body)
	}
	secret["GENERATED"] = creds.Credentials["GENERATED"]
	secret["ADMIN_PASSWORD_HASH (stored)"] = creds.Credentials["ADMIN_PASSWORD_HASH"]
	// The container itself gets every value.
	ids := e.DockerIDs("kinds")
	inspect := docker(t, "inspect", "-f", "{{json .Config.Env}}", ids[0])
	for _, k := range []string{"DECLARED", "API_TOKEN", "DB_PASS", "GENERATED"} {
		if !strings.Contains(inspect, k+"="+secret[k]) {
			t.Errorf("the container lacks %s", k)
		}
	}

	// An operator reads the values that are not secret, and no secret.
	status, body = m.Do("GET", "/api/v1/containers/kinds", nil, operator)
	var c struct {
		Env      map[string]string `json:"env"`
		EnvNames []string          `json:"env_names"`
	}
	json.Unmarshal(body, &c)
	if status != 200 || c.Env["MODE"] != plain["MODE"] || c.Env["TOKEN_TTL"] != plain["TOKEN_TTL"] {
		t.Errorf("operator's view: %d %s", status, body)
	}
	for k, v := range secret {
		if strings.Contains(string(body), v) {
			t.Errorf("an operator reads secret %s in the container's JSON", k)
		}
	}

	// The viewer's sweep.
	var seen strings.Builder
	status, body = m.Do("GET", "/api/v1/openapi.json", nil, viewer)
	if status != 200 {
		t.Fatalf("openapi: %d", status)
	}
	var doc struct {
		Paths map[string]map[string]any `json:"paths"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatal(err)
	}
	param := regexp.MustCompile(`\{[a-z_]+\}`)
	swept := 0
	for path, methods := range doc.Paths {
		if _, ok := methods["get"]; !ok || path == "/api/v1/ws" {
			continue
		}
		names := []string{"kinds", "preset"}
		if strings.Contains(path, "/types/") {
			names = []string{"kinds", "portainer-preset-kinds"}
		}
		if strings.Contains(path, "/webhooks/") {
			names = []string{"all"}
		}
		for _, n := range names {
			p := param.ReplaceAllString(path, n)
			for _, q := range []string{"", "?after=0&limit=1000"} {
				status, body := m.Do("GET", p+q, nil, viewer)
				seen.WriteString(p + q + " " + http.StatusText(status) + "\n" + string(body) + "\n")
				swept++
			}
		}
	}
	if status, body := m.Do("GET", "/api/v1/containers/kinds", nil, viewer); status != 200 ||
		strings.Contains(string(body), `"env":`) || !strings.Contains(string(body), `"MODE"`) {
		t.Errorf("viewer's container: %d %s: want env_names and no env", status, body)
	}
	// The websocket, from the first event.
	ws, _, err := dialEvents(t, m, "?after=0", viewer, false)
	if err != nil {
		t.Fatal(err)
	}
	ws.SetReadDeadline(time.Now().Add(2 * time.Second))
	for {
		_, msg, err := ws.ReadMessage()
		if err != nil {
			if !websocket.IsUnexpectedCloseError(err) && !strings.Contains(err.Error(), "timeout") {
				t.Logf("websocket: %v", err)
			}
			break
		}
		seen.Write(msg)
	}
	ws.Close()
	// Webhooks: whatever was delivered by now.
	deadline := time.Now().Add(10 * time.Second)
	for {
		hookMu.Lock()
		n := hookCount
		hookMu.Unlock()
		if n >= 4 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	hookMu.Lock()
	delivered := hookBody.String()
	hookMu.Unlock()
	if delivered == "" {
		t.Error("no webhook was delivered")
	}
	all := seen.String() + delivered
	for k, v := range secret {
		if strings.Contains(all, v) {
			t.Errorf("a viewer or a webhook sees secret %s", k)
		}
		if strings.Contains(m.Logs(), v) {
			t.Errorf("moor logged secret %s", k)
		}
	}
	for k, v := range plain {
		if strings.Contains(all, v) {
			t.Errorf("a viewer or a webhook sees the value of %s", k)
		}
	}
	if swept < 10 || !strings.Contains(all, "DB_PASS") {
		t.Errorf("the sweep read %d routes and never saw the variables' names:\n%s", swept, all)
	}
}
