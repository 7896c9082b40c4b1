package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moorhq/moor/api"
	"github.com/moorhq/moor/internal/client"
)

// stackJSON is a stack as moor answers it: each service "name:hash:status"
// with a container STACK-NAME of that status (one replica, running ones
// ready).
func stackJSON(project, name string, services ...string) string {
	var svcs, cs []string
	for _, s := range services {
		parts := strings.Split(s, ":")
		svc, hash, status := parts[0], parts[1], parts[2]
		desired := "running"
		if status == "removing" {
			desired = "removed"
		}
		svcs = append(svcs, fmt.Sprintf(`{"name":%q,"container":"%s-%s","status":%q,"desired_state":%q,"replicas":1,"hash":%q,"depends_on":[]}`,
			svc, name, svc, status, desired, hash))
		instances := `[]`
		if status == "running" {
			instances = `[{"index":0,"status":"running"}]`
		}
		cs = append(cs, fmt.Sprintf(`{"name":"%s-%s","project":%q,"status":%q,"desired_state":%q,"replicas":1,"generation":2,"observed_generation":2,"instances":%s,
 "ports":[{"name":"tcp-8080","port":8080,"protocol":"tcp"}],"published":[],"dns":{"host":"%s-%s-%s.moor.localhost","container":"%s-%s.%s.moor.internal"},
 "updated_at":"2025-01-02T03:04:05Z","stack":%q,"stack_service":%q}`,
			name, svc, project, status, desired, instances, name, svc, project, name, svc, project, name, svc))
	}
	return fmt.Sprintf(`{"project":%q,"name":%q,"removing":false,"created_by":"apikey:ci","created_at":"2025-01-02T03:04:05Z","updated_at":"2025-01-02T03:04:05Z",
 "services":[%s],"containers":[%s]}`, project, name, strings.Join(svcs, ","), strings.Join(cs, ","))
}

// writeCompose puts a compose file in a temporary directory.
func writeCompose(t *testing.T, text string) string {
	path := filepath.Join(t.TempDir(), "compose.yml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

const composeText = "services:\n  web:\n    image: nginx\n  db:\n    image: postgres\n"

// TestStackLs: the project's stacks (-P), a table counting running
// services, names with -q, the API's array with -o json.
func TestStackLs(t *testing.T) {
	f := newFakeAPI(t)
	env := clientEnv(t, f)
	f.answer("GET /api/v1/projects/shop/stacks", 200, `{"stacks":[`+stackJSON("shop", "app", "db:h1:running", "web:h2:creating")+`]}`)
	code, stdout, stderr := runCLI(env, "", "stack", "ls", "-P", "shop")
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if code != 0 || len(lines) != 2 || strings.Join(strings.Fields(lines[0]), " ") != "NAME SERVICES RUNNING/TOTAL UPDATED" {
		t.Fatalf("stack ls: exit %d %q %q", code, stdout, stderr)
	}
	if f := strings.Fields(lines[1]); len(f) < 3 || f[0] != "app" || f[1] != "db,web" || f[2] != "1/2" {
		t.Fatalf("stack ls row %q", lines[1])
	}
	if code, stdout, _ := runCLI(env, "", "stack", "ls", "-q", "-P", "shop"); code != 0 || stdout != "app\n" {
		t.Errorf("stack ls -q: exit %d %q", code, stdout)
	}
	env["MOOR_PROJECT"] = "shop"
	code, stdout, _ = runCLI(env, "", "stacks", "list", "-o", "json")
	var sts []struct{ Name string }
	if err := json.Unmarshal([]byte(stdout), &sts); code != 0 || err != nil || len(sts) != 1 || sts[0].Name != "app" {
		t.Errorf("stack ls -o json: exit %d %q (%v)", code, stdout, err)
	}
	delete(env, "MOOR_PROJECT")
	f.answer("GET /api/v1/stacks", 200, `{"stacks":[]}`)
	if code, stdout, _ := runCLI(env, "", "stack", "ls", "-o", "json"); code != 0 || strings.TrimSpace(stdout) != "[]" {
		t.Errorf("stack ls -o json of none: exit %d %q", code, stdout)
	}
}

// TestStackDeploy: a stack that does not exist is created (POST), one
// that does is updated (PUT), and each service's fate is printed from the
// answer: created, updated (its hash changed), unchanged, removed.
func TestStackDeploy(t *testing.T) {
	f := newFakeAPI(t)
	env := clientEnv(t, f)
	path := writeCompose(t, composeText)
	f.answer("POST /api/v1/stacks", 202, stackJSON("default", "app", "db:h1:pending", "web:h2:pending"))
	code, stdout, stderr := runCLI(env, "", "stack", "deploy", "app", "-f", path)
	if code != 0 || stdout != "stack app: service db: created\nstack app: service web: created\n" {
		t.Fatalf("stack deploy (new): exit %d %q %q", code, stdout, stderr)
	}
	if r := f.last(); r.method != "POST" || r.body["name"] != "app" || r.body["compose"] != composeText {
		t.Fatalf("stack deploy sent %+v", r)
	}

	// Again, edited: PUT; web's hash changed, db's did not, cache is new,
	// old is gone (its container being removed).
	f.answer("GET /api/v1/projects/shop/stacks/app", 200, stackJSON("shop", "app", "db:h1:running", "old:h9:running", "web:h2:running"))
	f.answer("PUT /api/v1/projects/shop/stacks/app", 202, stackJSON("shop", "app", "cache:h5:pending", "db:h1:running", "old:h9:removing", "web:h3:running"))
	code, stdout, stderr = runCLI(env, composeText, "stack", "deploy", "app", "-f", "-", "-P", "shop", "--remove-volumes")
	want := "stack shop/app: service cache: created\nstack shop/app: service db: unchanged\nstack shop/app: service old: removed\nstack shop/app: service web: updated\n"
	if code != 0 || stdout != want {
		t.Fatalf("stack deploy (update): exit %d %q %q, want %q", code, stdout, stderr, want)
	}
	if r := f.last(); r.method != "PUT" || r.query != "remove_volumes=true" || r.body["compose"] != composeText || r.body["name"] != nil {
		t.Fatalf("stack deploy -f - sent %+v", r)
	}
	code, stdout, _ = runCLI(env, composeText, "stack", "deploy", "app", "-f", "-", "-P", "shop", "-o", "json")
	var st struct{ Services []struct{ Name string } }
	if err := json.Unmarshal([]byte(stdout), &st); code != 0 || err != nil || len(st.Services) != 4 {
		t.Fatalf("stack deploy -o json: exit %d %q (%v)", code, stdout, err)
	}
}

// TestStackDeployRefused: a file that cannot be read, an empty one, no -f
// or a bad name are usage errors sending nothing; a file over moor's body
// limit is refused locally (exit 2); moor's 422 naming the key is shown as
// moor says it (exit 2).
func TestStackDeployRefused(t *testing.T) {
	if client.MaxBodyBytes != api.MaxBodyBytes {
		t.Fatalf("client.MaxBodyBytes %d, api.MaxBodyBytes %d", client.MaxBodyBytes, api.MaxBodyBytes)
	}
	f := newFakeAPI(t)
	env := clientEnv(t, f)
	missing := filepath.Join(t.TempDir(), "nosuch.yml")
	for _, c := range []struct {
		args  []string
		stdin string
		want  string
	}{
		{[]string{"stack", "deploy", "app", "-f", missing}, "", "-f " + missing + ": cannot read the compose file: no such file or directory"},
		{[]string{"stack", "deploy", "app", "-f", t.TempDir()}, "", "cannot read the compose file"},
		{[]string{"stack", "deploy", "app", "-f", "-"}, " \n", "-f (stdin): the compose file is empty"},
		{[]string{"stack", "deploy", "app"}, "", "-f FILE"},
		{[]string{"stack", "deploy", "Bad_Name", "-f", "-"}, composeText, "DNS label"},
		{[]string{"stack", "deploy"}, "", "needs NAME"},
		{[]string{"stack", "show", "a", "b"}, "", "needs NAME"},
		{[]string{"stack", "rm"}, "", "at least one NAME"},
		{[]string{"stack", "nosuch"}, "", "unknown command"},
	} {
		if code, _, stderr := runCLI(env, c.stdin, c.args...); code != 1 || !strings.Contains(stderr, c.want) {
			t.Errorf("moor %v: exit %d %q; want 1 saying %q", c.args, code, stderr, c.want)
		}
	}
	if f.count() != 0 {
		t.Fatalf("%d requests sent for bad command lines", f.count())
	}

	big := writeCompose(t, composeText+"# "+strings.Repeat("x", api.MaxBodyBytes)+"\n")
	code, _, stderr := runCLI(env, "", "stack", "deploy", "app", "-f", big)
	if code != 2 || !strings.Contains(stderr, "-f "+big+": the compose file is too large for moor") || !strings.Contains(stderr, "64 KiB") {
		t.Fatalf("a compose file over the body limit: exit %d %q", code, stderr)
	}
	if r := f.last(); r.method != "GET" {
		t.Fatalf("a compose file over the limit was sent: %+v", r)
	}

	msg := "services.web.cap_add: adding capabilities needs an admin"
	f.answers["POST /api/v1/stacks"] = func(w http.ResponseWriter, r *http.Request) {
		apiError(w, 422, "invalid", msg, "services.web.cap_add")
	}
	code, stdout, stderr := runCLI(env, composeText, "stack", "deploy", "app", "-f", "-")
	if code != 2 || stdout != "" || !strings.Contains(stderr, "moor: "+msg+" (422 invalid)") {
		t.Fatalf("a 422: exit %d %q %q", code, stdout, stderr)
	}
}

// TestStackDeployWait: --wait follows every service's container: exit 0
// once all run, 6 with moor's reason when one fails, 7 when --timeout
// runs out, naming what is not there.
func TestStackDeployWait(t *testing.T) {
	f := newFakeAPI(t)
	env := clientEnv(t, f)
	f.answer("POST /api/v1/stacks", 202, stackJSON("default", "app", "db:h1:pending", "web:h2:pending"))
	f.answer("GET /api/v1/containers/app-db", 200, `{"name":"app-db","project":"default","status":"running","desired_state":"running","replicas":1,"instances":[{"index":0,"status":"running"}]}`)
	f.answer("GET /api/v1/containers/app-web", 200, `{"name":"app-web","project":"default","status":"running","desired_state":"running","replicas":1,"instances":[{"index":0,"status":"running"}]}`)
	code, stdout, stderr := runCLI(env, composeText, "stack", "deploy", "app", "-f", "-", "--wait")
	if code != 0 || !strings.HasSuffix(stdout, "stack app: running\n") || !strings.Contains(stdout, "service web: created") ||
		!strings.Contains(stderr, "app-db: running") || !strings.Contains(stderr, "app-web: running") {
		t.Fatalf("stack deploy --wait: exit %d %q %q", code, stdout, stderr)
	}

	f.answer("GET /api/v1/containers/app-web", 200, `{"name":"app-web","project":"default","status":"failed","status_reason":"pull nginx:nope: not found","desired_state":"running","replicas":1}`)
	code, _, stderr = runCLI(env, composeText, "stack", "deploy", "app", "-f", "-", "--wait")
	if code != 6 || !strings.Contains(stderr, "app-web failed: pull nginx:nope: not found") {
		t.Fatalf("stack deploy --wait, web failing: exit %d %q", code, stderr)
	}

	f.answer("GET /api/v1/containers/app-web", 200, `{"name":"app-web","project":"default","status":"pending","status_reason":"waiting for db to be healthy","desired_state":"running","replicas":1}`)
	code, _, stderr = runCLI(env, composeText, "stack", "deploy", "app", "-f", "-", "--wait", "--timeout", "1500ms")
	if code != 7 || !strings.Contains(stderr, "app-web: not running after 1.5s; it is pending (waiting for db to be healthy)") || strings.Contains(stderr, "app-db: not") {
		t.Fatalf("stack deploy --wait, web pending: exit %d %q", code, stderr)
	}
}

// TestStackShowRm: show lists the services with their containers' status,
// ports and host names; rm sends remove_volumes with --volumes and, with
// --wait, waits until every container is gone.
func TestStackShowRm(t *testing.T) {
	f := newFakeAPI(t)
	env := clientEnv(t, f)
	f.answer("GET /api/v1/projects/shop/stacks/app", 200, stackJSON("shop", "app", "db:h1:running", "web:h2:creating"))
	code, stdout, stderr := runCLI(env, "", "stack", "show", "app", "-P", "shop")
	for _, want := range []string{"name:", "project:", "shop", "by apikey:ci", "SERVICE", "HOST", "8080/tcp", "app-web-shop.moor.localhost", "1/1", "creating"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stack show: no %q in %q (exit %d %q)", want, stdout, code, stderr)
		}
	}
	if code, _, stderr := runCLI(env, "", "stack", "show", "nosuch"); code != 3 || !strings.Contains(stderr, "no such thing") {
		t.Errorf("stack show nosuch: exit %d %q", code, stderr)
	}

	f.answer("DELETE /api/v1/stacks/app", 202, stackJSON("default", "app", "db:h1:removing", "web:h2:removing"))
	code, stdout, _ = runCLI(env, "", "stack", "rm", "app", "--volumes")
	if r := f.last(); code != 0 || stdout != "stack app: removing 2 container(s)\n" || r.method != "DELETE" || r.query != "remove_volumes=true" {
		t.Fatalf("stack rm --volumes: exit %d %q, sent %+v", code, stdout, f.last())
	}
	runCLI(env, "", "stack", "rm", "app")
	if r := f.last(); r.query != "" {
		t.Fatalf("stack rm without --volumes sent %q", r.query)
	}
	// The containers answer 404 (gone): --wait is over.
	code, stdout, stderr = runCLI(env, "", "stack", "rm", "app", "--wait")
	if code != 0 || stdout != "stack app: removed\n" {
		t.Fatalf("stack rm --wait: exit %d %q %q", code, stdout, stderr)
	}
}
