package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/moorhq/moor/internal/domain"
)

const projectsAnswer = `{"projects":[
 {"name":"default","internal":false,"containers":1,"network":"moor"},
 {"name":"shop","internal":true,"max_containers":5,"max_memory_mb":2048,"max_cpus":1.5,"containers":1,"network":"moor-p-shop"}]}`

// TestProjectLs: a table with a dash for each quota not set, names with
// -q, the API's array with -o json.
func TestProjectLs(t *testing.T) {
	f := newFakeAPI(t)
	env := clientEnv(t, f)
	f.answer("GET /api/v1/projects", 200, projectsAnswer)
	code, stdout, stderr := runCLI(env, "", "project", "ls")
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if code != 0 || len(lines) != 3 {
		t.Fatalf("project ls: exit %d %q %q", code, stdout, stderr)
	}
	for i, want := range [][]string{
		{"NAME", "INTERNAL", "CONTAINERS", "MAX", "CONTAINERS", "MEMORY", "CPUS", "NETWORK"},
		{"default", "no", "1", "-", "-", "-", "moor"},
		{"shop", "yes", "1", "5", "2048", "MB", "1.5", "moor-p-shop"},
	} {
		if got := strings.Fields(lines[i]); strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("line %d: %q, want %q", i, lines[i], want)
		}
	}
	if code, stdout, _ := runCLI(env, "", "projects", "list", "-q"); code != 0 || stdout != "default\nshop\n" {
		t.Errorf("project ls -q: exit %d %q", code, stdout)
	}
	code, stdout, _ = runCLI(env, "", "project", "ls", "-o", "json")
	var ps []struct {
		Name          string
		MaxContainers *int `json:"max_containers"`
	}
	if err := json.Unmarshal([]byte(stdout), &ps); code != 0 || err != nil || len(ps) != 2 || ps[0].MaxContainers != nil || *ps[1].MaxContainers != 5 {
		t.Errorf("project ls -o json: exit %d %q (%v)", code, stdout, err)
	}
	f.answer("GET /api/v1/projects", 403, `{"error":{"code":"forbidden","message":"needs the viewer role"}}`)
	if code, _, _ := runCLI(env, "", "project", "ls"); code != 4 {
		t.Errorf("project ls refused: exit %d, want 4", code)
	}
}

// TestProjectCreate: flags become the body, quotas only when given; a bad
// name or quota is a usage error sent nowhere; moor's refusal exits 2.
func TestProjectCreate(t *testing.T) {
	f := newFakeAPI(t)
	env := clientEnv(t, f)
	f.answer("POST /api/v1/projects", 201, `{"name":"lab","internal":true,"max_containers":0,"network":"moor-p-lab"}`)
	code, stdout, stderr := runCLI(env, "", "project", "create", "lab", "--internal", "--max-containers", "0", "--max-memory-mb", "512", "--max-cpus", "0.5")
	if code != 0 || stdout != "project lab: created, network moor-p-lab (internal)\n" {
		t.Fatalf("project create: exit %d %q %q", code, stdout, stderr)
	}
	if body, _ := json.Marshal(f.last().body); string(body) != `{"internal":true,"max_containers":0,"max_cpus":0.5,"max_memory_mb":512,"name":"lab"}` {
		t.Fatalf("project create sent %s", body)
	}
	runCLI(env, "", "project", "create", "lab")
	if body, _ := json.Marshal(f.last().body); string(body) != `{"name":"lab"}` {
		t.Fatalf("project create without flags sent %s", body)
	}
	if code, stdout, _ := runCLI(env, "", "project", "create", "lab", "-o", "json"); code != 0 || !strings.Contains(stdout, `"network": "moor-p-lab"`) {
		t.Fatalf("project create -o json: exit %d %q", code, stdout)
	}
	n := f.count()
	for _, args := range [][]string{
		{"project", "create"},
		{"project", "create", "Bad_Name"},
		{"project", "create", strings.Repeat("a", 31)},
		{"project", "create", "lab", "--max-containers", "-1"},
		{"project", "create", "lab", "--max-cpus", "lots"},
		{"project", "show", "UPPER"},
		{"project", "rm", "ok", "-bad-"},
		{"project"},
		{"project", "nosuch"},
	} {
		if code, _, stderr := runCLI(env, "", args...); code != 1 || stderr == "" {
			t.Errorf("moor %v: exit %d %q; want 1 with a message", args, code, stderr)
		}
	}
	if f.count() != n {
		t.Errorf("%d requests sent for bad command lines", f.count()-n)
	}
	f.answer("POST /api/v1/projects", 409, `{"error":{"code":"conflict","message":"project \"lab\" already exists"}}`)
	if code, _, stderr := runCLI(env, "", "project", "create", "lab"); code != 2 || !strings.Contains(stderr, `project "lab" already exists`) {
		t.Fatalf("project create of a taken name: exit %d %q", code, stderr)
	}
}

// TestProjectShowRm: show prints the project, 404 exits 3; rm of a project
// with containers shows moor's message naming them and exits 2.
func TestProjectShowRm(t *testing.T) {
	f := newFakeAPI(t)
	env := clientEnv(t, f)
	f.answer("GET /api/v1/projects/shop", 200, `{"name":"shop","internal":true,"max_cpus":2,"containers":3,"network":"moor-p-shop","created_by":"apikey:me","created_at":"2025-01-02T03:04:05Z"}`)
	code, stdout, stderr := runCLI(env, "", "project", "show", "shop")
	for _, want := range []string{"name:", "shop", "internal:", "yes", "containers:", "3", "max cpus:", "2", "network:", "moor-p-shop", "by apikey:me"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("project show: no %q in %q (exit %d %q)", want, stdout, code, stderr)
		}
	}
	if !strings.Contains(stdout, "max containers:") || !strings.Contains(stdout, "max memory:") {
		t.Errorf("project show lacks the quotas not set: %q", stdout)
	}
	if code, _, stderr := runCLI(env, "", "project", "show", "nosuch"); code != 3 || !strings.Contains(stderr, "no such thing") {
		t.Errorf("project show nosuch: exit %d %q", code, stderr)
	}
	msg := `project \"shop\" still has 2 container(s): db, web; remove them first`
	f.answer("DELETE /api/v1/projects/shop", 409, `{"error":{"code":"conflict","message":"`+msg+`"}}`)
	code, stdout, stderr = runCLI(env, "", "project", "rm", "shop")
	if code != 2 || stdout != "" || !strings.Contains(stderr, `project "shop" still has 2 container(s): db, web; remove them first`) {
		t.Fatalf("project rm of a non-empty project: exit %d %q %q", code, stdout, stderr)
	}
	f.answer("DELETE /api/v1/projects/lab", 204, "")
	if code, stdout, _ := runCLI(env, "", "project", "rm", "lab"); code != 0 || stdout != "project lab: deleted\n" || f.last().method != "DELETE" {
		t.Fatalf("project rm: exit %d %q", code, stdout)
	}
	// Several: each tried, the first failure's code.
	code, stdout, stderr = runCLI(env, "", "project", "rm", "shop", "lab")
	if code != 2 || stdout != "project lab: deleted\n" || !strings.Contains(stderr, "shop: project") {
		t.Fatalf("project rm shop lab: exit %d %q %q", code, stdout, stderr)
	}
}

// TestProjectRouting: --project, -P and MOOR_PROJECT send the container
// commands under /api/v1/projects/P; the flag wins over the variable;
// the default project keeps the short paths; a bad name is a usage error;
// messages name containers as PROJECT/NAME.
func TestProjectRouting(t *testing.T) {
	f := newFakeAPI(t)
	env := clientEnv(t, f)
	f.answer("POST /api/v1/projects/shop/containers", 202, `{"name":"web","project":"shop","type":"testapp","status":"pending","desired_state":"running","replicas":1}`)
	f.answer("POST /api/v1/projects/shop/containers/web/stop", 202, `{"name":"web","project":"shop","status":"running","desired_state":"stopped"}`)
	f.answer("DELETE /api/v1/projects/shop/containers/web", 202, `{"name":"web","project":"shop","status":"removing"}`)
	f.answer("GET /api/v1/projects/shop/containers", 200, `{"containers":[{"name":"web","project":"shop","type":"testapp","status":"running"}]}`)
	f.answer("GET /api/v1/projects/shop/containers/web/logs", 200, `line`)
	f.answer("GET /api/v1/containers", 200, `{"containers":[{"name":"blog","project":"default","type":"testapp","status":"running"}]}`)
	for _, c := range []struct {
		env        map[string]string
		args       []string
		path, want string
	}{
		{nil, []string{"deploy", "testapp", "web", "--project", "shop"}, "/api/v1/projects/shop/containers", "shop/web: pending (desired: running)\n"},
		{nil, []string{"stop", "-P", "shop", "web"}, "/api/v1/projects/shop/containers/web/stop", "shop/web: running\n"},
		{map[string]string{"MOOR_PROJECT": "shop"}, []string{"rm", "web"}, "/api/v1/projects/shop/containers/web", "shop/web: removing\n"},
		{map[string]string{"MOOR_PROJECT": "shop"}, []string{"ls", "-q"}, "/api/v1/projects/shop/containers", "web\n"},
		{map[string]string{"MOOR_PROJECT": "other"}, []string{"logs", "web", "-P", "shop"}, "/api/v1/projects/shop/containers/web/logs", "line"},
		{map[string]string{"MOOR_PROJECT": "shop"}, []string{"ls", "-q", "-P", "default"}, "/api/v1/containers", "blog\n"},
		{nil, []string{"ls", "-q"}, "/api/v1/containers", "blog\n"},
	} {
		e := clientEnv(t, f)
		for k, v := range c.env {
			e[k] = v
		}
		code, stdout, stderr := runCLI(e, "", c.args...)
		if code != 0 || stdout != c.want || f.last().path != c.path {
			t.Errorf("moor %v (%v): exit %d %q %q, sent %s; want %q to %s", c.args, c.env, code, stdout, stderr, f.last().path, c.want, c.path)
		}
	}
	// A failure among several names names the container with its project.
	code, stdout, stderr := runCLI(env, "", "stop", "-P", "shop", "gone", "web")
	if code != 3 || !strings.Contains(stderr, "moor: shop/gone: no such thing") || !strings.Contains(stdout, "shop/web: running") {
		t.Errorf("stop -P shop gone web: exit %d %q %q", code, stdout, stderr)
	}
	n := f.count()
	if code, _, stderr := runCLI(env, "", "ls", "-P", "Bad_Project"); code != 1 || !strings.Contains(stderr, "--project") {
		t.Errorf("ls -P Bad_Project: exit %d %q", code, stderr)
	}
	env["MOOR_PROJECT"] = "bad.project"
	if code, _, stderr := runCLI(env, "", "ls"); code != 1 || !strings.Contains(stderr, "MOOR_PROJECT") {
		t.Errorf("MOOR_PROJECT=bad.project: exit %d %q", code, stderr)
	}
	if code, _, _ := runCLI(env, "", "ls", "-A", "-P", "shop"); code != 1 {
		t.Errorf("ls -A -P shop: exit %d, want 1", code)
	}
	if f.count() != n {
		t.Errorf("%d requests sent for bad command lines", f.count()-n)
	}
}

// TestLsAllProjects: -A lists each project's containers with a PROJECT
// column; -q names them PROJECT/NAME outside the default project.
func TestLsAllProjects(t *testing.T) {
	f := newFakeAPI(t)
	env := clientEnv(t, f)
	env["MOOR_PROJECT"] = "shop" // -A ignores it
	f.answer("GET /api/v1/projects", 200, projectsAnswer)
	f.answer("GET /api/v1/containers", 200, `{"containers":[{"name":"blog","project":"default","type":"testapp","status":"running","replicas":1}]}`)
	f.answer("GET /api/v1/projects/shop/containers", 200, `{"containers":[{"name":"web","project":"shop","type":"testapp","status":"stopped","replicas":1}]}`)
	code, stdout, stderr := runCLI(env, "", "ls", "-A")
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if code != 0 || len(lines) != 3 || !strings.HasPrefix(lines[0], "PROJECT") ||
		strings.Join(strings.Fields(lines[1])[:4], " ") != "default blog testapp running" ||
		strings.Join(strings.Fields(lines[2])[:4], " ") != "shop web testapp stopped" {
		t.Fatalf("ls -A: exit %d %q %q", code, stdout, stderr)
	}
	if code, stdout, _ := runCLI(env, "", "ls", "--all-projects", "-q"); code != 0 || stdout != "blog\nshop/web\n" {
		t.Fatalf("ls -A -q: exit %d %q", code, stdout)
	}
	code, stdout, _ = runCLI(env, "", "ls", "-A", "-o", "json")
	var cs []struct{ Name, Project string }
	if err := json.Unmarshal([]byte(stdout), &cs); code != 0 || err != nil || len(cs) != 2 || cs[1].Project != "shop" {
		t.Fatalf("ls -A -o json: exit %d %q %v", code, stdout, err)
	}
	// Without -A: the current project's, without the column.
	if code, stdout, _ := runCLI(env, "", "ls"); code != 0 || strings.Contains(stdout, "PROJECT") || !strings.Contains(stdout, "web") || strings.Contains(stdout, "blog") {
		t.Fatalf("ls in shop: exit %d %q", code, stdout)
	}
	// A project's list refused: the error names the project.
	f.answer("GET /api/v1/projects/shop/containers", 500, `{"error":{"code":"internal","message":"boom"}}`)
	if code, _, stderr := runCLI(env, "", "ls", "-A"); code != 5 || !strings.Contains(stderr, "project shop: boom") {
		t.Fatalf("ls -A with a failing project: exit %d %q", code, stderr)
	}
}

// TestEventNames: events name their container PROJECT/NAME outside the
// default project; a wait follows only its own project's events (and those
// of a moor from before projects, which carry none).
func TestEventNames(t *testing.T) {
	for _, c := range []struct {
		ev   domain.Event
		want string
	}{
		{domain.Event{Kind: "x", Container: "web", Project: "shop", Actor: "a"}, "shop/web"},
		{domain.Event{Kind: "x", Container: "web", Project: "default", Actor: "a"}, "web"},
		{domain.Event{Kind: "x", Container: "web", Actor: "a"}, "web"},
		{domain.Event{Kind: "project.deleted", Project: "shop", Actor: "a"}, "-"},
	} {
		if got := strings.Fields(eventLine(c.ev))[3]; got != c.want {
			t.Errorf("event %+v shows container %q, want %q", c.ev, got, c.want)
		}
	}
	if !sameProject("shop", "shop") || !sameProject("", "shop") || sameProject("default", "shop") || sameProject("shop", "default") {
		t.Error("sameProject")
	}
}

// TestProjectMembers: grant and revoke send the member named by --user or
// --key; members lists them; a key can be limited to a project.
func TestProjectMembers(t *testing.T) {
	f := newFakeAPI(t)
	env := clientEnv(t, f)
	f.answer("POST /api/v1/projects/shop/members", 200, `{"kind":"user","name":"ann","role":"operator","created_by":"apikey:me"}`)
	code, stdout, stderr := runCLI(env, "", "project", "grant", "shop", "--user", "ann", "--role", "operator")
	if body, _ := json.Marshal(f.last().body); code != 0 || stdout != "user ann: operator in project shop\n" || string(body) != `{"kind":"user","name":"ann","role":"operator"}` {
		t.Fatalf("grant: exit %d %q %q body %s", code, stdout, stderr, body)
	}
	if code, _, _ := runCLI(env, "", "project", "grant", "shop", "--role", "operator"); code != 1 {
		t.Errorf("grant without a member: exit %d, want 1", code)
	}
	if code, _, _ := runCLI(env, "", "project", "grant", "shop", "--user", "a", "--key", "b"); code != 1 {
		t.Errorf("grant with two members: exit %d, want 1", code)
	}
	f.answer("DELETE /api/v1/projects/shop/members/apikey/ci", 204, ``)
	if code, stdout, _ := runCLI(env, "", "project", "revoke", "shop", "--key", "ci"); code != 0 || stdout != "apikey ci: no longer a member of project shop\n" {
		t.Errorf("revoke: exit %d %q", code, stdout)
	}
	f.answer("GET /api/v1/projects/shop/members", 200, `{"members":[{"kind":"user","name":"ann","role":"operator","created_by":"apikey:me","created_at":"2025-01-02T03:04:05Z"}]}`)
	if code, stdout, _ := runCLI(env, "", "project", "members", "shop"); code != 0 || !strings.Contains(stdout, "user") || !strings.Contains(stdout, "ann") || !strings.Contains(stdout, "operator") {
		t.Errorf("members: exit %d %q", code, stdout)
	}
	f.answer("POST /api/v1/apikeys", 201, `{"id":"x","name":"ci","role":"operator","project":"shop","key":"moor_k"}`)
	code, stdout, stderr = runCLI(env, "", "keys", "create", "ci", "--role", "operator", "--project", "shop")
	if body, _ := json.Marshal(f.last().body); code != 0 || stdout != "moor_k\n" || !strings.Contains(stderr, "in project shop only") ||
		string(body) != `{"name":"ci","project":"shop","role":"operator"}` {
		t.Errorf("keys create --project: exit %d %q %q body %s", code, stdout, stderr, body)
	}
}
