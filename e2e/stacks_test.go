package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moorhq/moor/internal/testenv"
)

// Stack is the API's view of a stack, as tests read it.
type Stack struct {
	Project    string         `json:"project"`
	Name       string         `json:"name"`
	Compose    string         `json:"compose"`
	Removing   bool           `json:"removing"`
	Services   []stackService `json:"services"`
	Containers []Container    `json:"containers"`
}

type stackService struct {
	Name      string `json:"name"`
	Container string `json:"container"`
	Status    string `json:"status"`
	Hash      string `json:"hash"`
	Replicas  int    `json:"replicas"`
}

func (s Stack) service(name string) (hash, container string) {
	for _, svc := range s.Services {
		if svc.Name == name {
			return svc.Hash, svc.Container
		}
	}
	return "", ""
}

// stackCompose is the test stack: db (a health check, a named volume),
// api (two replicas, started once db is healthy), web (started after api,
// published on the host, its MODE given).
func stackCompose(image string, port int, webMode string, extra string) string {
	return fmt.Sprintf(`services:
  db:
    image: %[1]s
    environment:
      MODE: db
    volumes:
      - db_data:/data
    healthcheck:
      test: ["CMD", "/testapp", "-check"]
      interval: 2s
      timeout: 2s
      retries: 5
  api:
    image: %[1]s
    environment:
      MODE: api
    deploy:
      replicas: 2
    restart: unless-stopped
    depends_on:
      db:
        condition: service_healthy
  web:
    image: %[1]s
    environment:
      MODE: %[3]s
    ports:
      - "127.0.0.1:%[2]d:8080"
    depends_on: [api]
%[4]svolumes:
  db_data:
`, image, port, webMode, extra)
}

// startedAt is when a Docker container last started.
func startedAt(t *testing.T, dockerName string) time.Time {
	t.Helper()
	at, err := time.Parse(time.RFC3339Nano, docker(t, "inspect", "-f", "{{.State.StartedAt}}", dockerName))
	if err != nil {
		t.Fatal(err)
	}
	return at
}

// getPublished GETs a host port until it answers 200 with want in the body.
func getPublished(t *testing.T, port int, want string) {
	t.Helper()
	var last string
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/", port))
		if err != nil {
			last = err.Error()
			continue
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		last = fmt.Sprintf("%d %s", resp.StatusCode, b)
		if resp.StatusCode == 200 && strings.Contains(string(b), want) {
			return
		}
	}
	t.Fatalf("127.0.0.1:%d: %s, want %q", port, last, want)
}

// TestStacks: a compose file deployed as a stack in a project, end to end:
// every service runs, in dependency order (api after db is healthy); the
// services reach each other by service name; an update recreates only the
// changed service, adds and removes services; an unsupported key is a 422
// naming service and key with nothing created; a privileged service needs
// an admin; a delete removes the containers and, asked, their volumes.
func TestStacks(t *testing.T) {
	e := NewEnv(t)
	port := testenv.FreeTCPPort(t)
	m := e.Start(fmt.Sprintf("MOOR_PUBLISH_PORTS=%d", port)) // operators may publish it
	image := testenv.TestImage(t)
	if status, body := m.Do("POST", "/api/v1/projects", map[string]any{"name": "st"}); status != 201 {
		t.Fatalf("create project: %d %s", status, body)
	}
	base := "/api/v1/projects/st/stacks"
	readStack := func(body []byte) Stack {
		t.Helper()
		var st Stack
		if err := json.Unmarshal(body, &st); err != nil {
			t.Fatalf("%v: %s", err, body)
		}
		return st
	}
	getStack := func() Stack {
		t.Helper()
		status, body := m.Do("GET", base+"/app", nil)
		if status != 200 {
			t.Fatalf("GET stack: %d %s", status, body)
		}
		return readStack(body)
	}

	// Refused before anything is created: an unsupported key, named with
	// its service; a privileged service for an operator.
	bad := stackCompose(image, port, "v1", "  worker:\n    image: "+image+"\n    user: \"1000\"\n")
	status, body := m.Do("POST", base, map[string]any{"name": "app", "compose": bad})
	if status != 422 || !strings.Contains(string(body), "services.worker.user") {
		t.Fatalf("an unsupported key: %d %s", status, body)
	}
	status, body = m.Do("POST", base, map[string]any{"name": "app", "compose": "services:\n  moor:\n    image: " + image + "\n"})
	if status != 422 || !strings.Contains(string(body), "services.moor") {
		t.Fatalf("a service named moor, which would capture Traefik's provider traffic: %d %s", status, body)
	}
	operator := strings.TrimSpace(e.run("apikey", "create", "--name", "op", "--role", "operator"))
	priv := stackCompose(image, port, "v1", "  worker:\n    image: "+image+"\n    privileged: true\n")
	status, body = m.Do("POST", base, map[string]any{"name": "app", "compose": priv}, operator)
	if status != 403 || !strings.Contains(string(body), "services.worker.privileged") {
		t.Fatalf("a privileged service by an operator: %d %s", status, body)
	}
	status, body = m.Do("GET", "/api/v1/projects/st/containers", nil)
	if status != 200 || strings.Contains(string(body), `"name"`) {
		t.Fatalf("refused stacks left containers: %d %s", status, body)
	}
	if status, body := m.Do("GET", base+"/app", nil); status != 404 {
		t.Fatalf("a refused stack exists: %d %s", status, body)
	}

	// Deploy.
	status, body = m.Do("POST", base, map[string]any{"name": "app", "compose": stackCompose(image, port, "v1", "")}, operator)
	if status != 202 {
		t.Fatalf("create stack: %d %s", status, body)
	}
	created := readStack(body)
	if len(created.Containers) != 3 || len(created.Services) != 3 {
		t.Fatalf("create answered %+v", created)
	}
	for _, ref := range []string{"st/app-db", "st/app-api", "st/app-web"} {
		m.WaitStatus(ref, "running", 120*time.Second)
	}
	if c, _ := m.Get("st/app-api"); c.Replicas != 2 || len(c.Instances) != 2 {
		t.Errorf("api: %d replicas %+v", c.Replicas, c.Instances)
	}
	// api started once db was healthy: db's first check is an interval
	// (2s) after its start, and api waited for it, saying so.
	dbStart, apiStart := startedAt(t, "moor-app-db.st-0"), startedAt(t, "moor-app-api.st-0")
	if apiStart.Sub(dbStart) < 1500*time.Millisecond {
		t.Errorf("api started %s after db, before db could be healthy", apiStart.Sub(dbStart))
	}
	status, body = m.Do("GET", "/api/v1/projects/st/containers/app-api/history", nil)
	if status != 200 || !strings.Contains(string(body), "waiting for db to be healthy") {
		t.Errorf("api's history does not say it waited for db: %d %s", status, body)
	}
	if startedAt(t, "moor-app-web.st-0").Before(apiStart) {
		t.Error("web started before api")
	}
	// By service name, as compose users write it; db's named volume; the
	// published port; the GET shows the compose file and the services.
	for _, target := range []string{"api:8080", "db:8080"} {
		if code, out := probe(t, "moor-app-web.st-0", "-dial", target); code != 0 {
			t.Errorf("web cannot reach %s by service name: %s", target, out)
		}
	}
	if code, out := probe(t, "moor-app-web.st-0", "-get", "http://api:8080/"); code != 0 || !strings.Contains(out, "mode: api") {
		t.Errorf("GET http://api:8080/ from web: %s", out)
	}
	if vols := e.Volumes(); !slices.ContainsFunc(vols, func(v string) bool { return strings.Contains(v, "app-db.st_db-data_0") }) {
		t.Errorf("db's volume is missing: %v", vols)
	}
	getPublished(t, port, "mode: v1")
	st := getStack()
	if !strings.Contains(st.Compose, "db_data") || len(st.Services) != 3 {
		t.Errorf("GET stack: %+v", st)
	}
	status, body = m.Do("GET", base, nil)
	if status != 200 || !strings.Contains(string(body), `"name": "app"`) && !strings.Contains(string(body), `"name":"app"`) {
		t.Errorf("list stacks: %d %s", status, body)
	}

	// Update one service's environment: only web is recreated.
	before := map[string][]string{}
	for _, n := range []string{"app-db", "app-api", "app-web"} {
		before[n] = e.DockerIDs(n)
	}
	webHash, _ := st.service("web")
	status, body = m.Do("PUT", base+"/app", map[string]any{"compose": stackCompose(image, port, "v2", "")}, operator)
	if status != 202 {
		t.Fatalf("update: %d %s", status, body)
	}
	if h, _ := readStack(body).service("web"); h == webHash {
		t.Error("web's hash did not change with its environment")
	}
	getPublished(t, port, "mode: v2")
	m.WaitFor("st/app-web", 60*time.Second, "replaced and running", func(c Container, ok bool) bool {
		return ok && c.Status == "running" && c.ObservedGeneration == c.Generation
	})
	for n, ids := range before {
		now := e.DockerIDs(n)
		if same := slices.Equal(now, ids); same != (n != "app-web") {
			t.Errorf("%s: Docker containers %v before, %v after", n, ids, now)
		}
	}

	// Add a service, remove one.
	next := strings.Replace(stackCompose(image, port, "v2", "  worker:\n    image: "+image+"\n    environment:\n      MODE: worker\n"),
		fmt.Sprintf("    ports:\n      - \"127.0.0.1:%d:8080\"\n", port), "", 1)
	next = strings.Replace(next, "  web:\n    image: "+image+"\n    environment:\n      MODE: v2\n    depends_on: [api]\n", "", 1)
	status, body = m.Do("PUT", base+"/app", map[string]any{"compose": next}, operator)
	if status != 202 {
		t.Fatalf("update adding worker, removing web: %d %s\n%s", status, body, next)
	}
	m.WaitStatus("st/app-worker", "running", 60*time.Second)
	m.WaitFor("st/app-web", 60*time.Second, "gone", func(_ Container, ok bool) bool { return !ok })
	if code, out := probe(t, "moor-app-worker.st-0", "-dial", "db:8080"); code != 0 {
		t.Errorf("worker cannot reach db: %s", out)
	}
	if st := getStack(); len(st.Services) != 3 || slices.ContainsFunc(st.Services, func(s stackService) bool { return s.Name == "web" }) {
		t.Errorf("after the update: %+v", st.Services)
	}

	// Delete, volumes too.
	status, body = m.Do("DELETE", base+"/app?remove_volumes=true", nil, operator)
	if status != 202 || !readStack(body).Removing {
		t.Fatalf("delete: %d %s", status, body)
	}
	for _, ref := range []string{"st/app-db", "st/app-api", "st/app-worker"} {
		m.WaitFor(ref, 60*time.Second, "gone", func(_ Container, ok bool) bool { return !ok })
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		status, _ := m.Do("GET", base+"/app", nil)
		if status == 404 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the stack is still there: %d", status)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if ids := e.DockerIDs(""); len(ids) != 0 {
		t.Errorf("Docker containers left: %v", ids)
	}
	if vols := e.Volumes(); len(vols) != 0 {
		t.Errorf("volumes left: %v", vols)
	}
}
