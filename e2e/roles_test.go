package e2e

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moorhq/moor/api"
	"github.com/moorhq/moor/internal/domain"
)

// principal is a caller of the roles test: its key and the roles it holds,
// instance-wide and per project, as the test expects them to apply.
type principal struct {
	key      string
	instance domain.Role
	projects map[string]domain.Role
}

func (p principal) in(project string) domain.Role {
	if r := p.projects[project]; r.Allows(p.instance) || p.instance == "" {
		if r != "" {
			return r
		}
	}
	return p.instance
}

func (p principal) best() domain.Role {
	best := p.instance
	for _, r := range p.projects {
		if r.Allows(best) || best == "" {
			best = r
		}
	}
	return best
}

// TestProjectRoles calls every route as every kind of caller (instance-wide
// roles, keys limited to project a, an instance viewer who is an admin of
// a) on its own project a and on another project b, and checks who gets
// through; then what each sees: lists, events and the websocket hold only
// its projects.
func TestProjectRoles(t *testing.T) {
	e := NewEnv(t)
	m := e.Start("MOOR_API_RATE=100000", "MOOR_API_BURST=100000")
	for _, p := range []string{"a", "b"} {
		if status, body := m.Do("POST", "/api/v1/projects", map[string]any{"name": p}); status != 201 {
			t.Fatalf("project %s: %d %s", p, status, body)
		}
	}
	key := func(name string, role domain.Role, project string) string {
		t.Helper()
		body := map[string]any{"name": name, "role": role}
		if project != "" {
			body["project"] = project
		}
		status, out := m.Do("POST", "/api/v1/apikeys", body)
		var k struct{ Key, Project string }
		json.Unmarshal(out, &k)
		if status != 201 || k.Project != project {
			t.Fatalf("key %s: %d %s", name, status, out)
		}
		return k.Key
	}
	callers := map[string]principal{}
	for _, r := range []domain.Role{domain.RoleViewer, domain.RoleOperator, domain.RoleAdmin} {
		callers["instance-"+string(r)] = principal{key: key("i-"+string(r), r, ""), instance: r}
		callers["a-"+string(r)] = principal{key: key("a-"+string(r), r, "a"), projects: map[string]domain.Role{"a": r}}
	}
	callers["viewer+a-admin"] = principal{key: key("mem", domain.RoleViewer, ""), instance: domain.RoleViewer, projects: map[string]domain.Role{"a": domain.RoleAdmin}}
	if status, body := m.Do("POST", "/api/v1/projects/a/members", map[string]any{"kind": "apikey", "name": "mem", "role": "admin"}); status != 200 {
		t.Fatalf("member: %d %s", status, body)
	}
	// A key limited to a cannot be given a role in b.
	if status, body := m.Do("POST", "/api/v1/projects/b/members", map[string]any{"kind": "apikey", "name": "a-viewer", "role": "admin"}); status != 422 {
		t.Errorf("a key of a made a member of b: %d %s", status, body)
	}

	// A container in each: a project holding one is not deleted by the
	// DELETE below (as an instance admin may), nor are its keys.
	for _, p := range []string{"a", "b"} {
		if status, body := m.Do("POST", "/api/v1/projects/"+p+"/containers", map[string]any{"name": "w", "type": "testapp", "env": map[string]any{"GREETING": "secret-ish"}}); status != 202 {
			t.Fatalf("create %s/w: %d %s", p, status, body)
		}
	}
	// Where each route's role must be held, as the API documents it.
	anywhere := []string{"GET /api/v1/types", "GET /api/v1/types/{id}", "GET /api/v1/projects", "GET /api/v1/events", "GET /api/v1/ws",
		"GET /api/v1/openapi.json", "GET /api/v1/session", "DELETE /api/v1/session", "PUT /api/v1/users/{username}/password"}
	checked := 0
	for _, rt := range api.Routes() {
		if rt.Role == "" {
			continue
		}
		projects := []string{""}
		if strings.Contains(rt.Path, "{project}") {
			projects = []string{"a", "b"}
		}
		for _, project := range projects {
			path := strings.NewReplacer("{project}", project, "{name}", "nosuch", "{id}", "nosuch", "{username}", "nosuch",
				"{kind}", "user", "{member}", "nosuch").Replace(rt.Path)
			for who, p := range callers {
				var have domain.Role
				switch {
				case slices.Contains(anywhere, rt.Method+" "+rt.Path):
					have = p.best()
				case rt.Path == "/api/v1/projects/{project}" && rt.Method != "GET":
					have = p.instance // quotas and deletion are instance-wide
				case project != "":
					have = p.in(project)
				case strings.HasPrefix(rt.Path, "/api/v1/containers"), strings.HasPrefix(rt.Path, "/api/v1/stacks"):
					have = p.in("default")
				default:
					have = p.instance
				}
				status, body := m.Do(rt.Method, path, nil, p.key)
				checked++
				switch allowed := have.Allows(rt.Role); {
				case allowed && (status == 401 || status == 403 || status == 429):
					t.Errorf("%s %s as %s: %d %s, want allowed", rt.Method, path, who, status, body)
				case !allowed && status != 403:
					t.Errorf("%s %s as %s: %d %s, want 403", rt.Method, path, who, status, body)
				}
			}
		}
	}
	t.Logf("%d calls checked", checked)

	// What each sees.
	aViewer, aOperator := callers["a-viewer"].key, callers["a-operator"].key
	ws, _, err := dialEvents(t, m, "?after=0", aViewer, false)
	if err != nil {
		t.Fatal(err)
	}
	status, body := m.Do("GET", "/api/v1/projects", nil, aViewer)
	var ps struct{ Projects []struct{ Name string } }
	json.Unmarshal(body, &ps)
	if status != 200 || len(ps.Projects) != 1 || ps.Projects[0].Name != "a" {
		t.Errorf("a-viewer's projects: %d %s", status, body)
	}
	status, body = m.Do("GET", "/api/v1/events?after=0&limit=1000", nil, aViewer)
	var evs struct{ Events []streamEvent }
	json.Unmarshal(body, &evs)
	if status != 200 || len(evs.Events) == 0 {
		t.Fatalf("a-viewer's events: %d %s", status, body)
	}
	for _, ev := range evs.Events {
		if ev.Project != "a" {
			t.Errorf("a-viewer sees an event of %q: %+v", ev.Project, ev)
		}
	}
	if status, _ := m.Do("GET", "/api/v1/events?project=b", nil, aViewer); status != 403 {
		t.Errorf("a-viewer asking b's events: %d", status)
	}
	// The websocket: a's events reach it, none of b's or of the instance
	// (the keys created above) before a's container's.
	got := readUntil(t, ws, 30*time.Second, "a/w created", func(ev streamEvent) bool { return ev.Kind == "container.created" })
	for _, ev := range got {
		if ev.Project != "a" {
			t.Errorf("a-viewer's websocket carried an event of %q: %+v", ev.Project, ev)
		}
	}
	// Values of the environment are for operators of the project.
	for k, want := range map[string]bool{aViewer: false, aOperator: true} {
		_, body := m.Do("GET", "/api/v1/projects/a/containers/w", nil, k)
		if got := strings.Contains(string(body), "secret-ish"); got != want {
			t.Errorf("env values shown: %v, want %v: %s", got, want, body)
		}
	}
	// A stack's compose file (it holds the environment) is for operators of
	// its project, members included.
	compose := "services:\n  app:\n    image: moor-testapp:latest\n    environment:\n      GREETING: compose-secret\n"
	if status, body := m.Do("POST", "/api/v1/projects/a/stacks", map[string]any{"name": "s", "compose": compose}, aOperator); status != 202 {
		t.Fatalf("a stack in a as a-operator: %d %s", status, body)
	}
	for k, want := range map[string]bool{aViewer: false, aOperator: true} {
		_, body := m.Do("GET", "/api/v1/projects/a/stacks/s", nil, k)
		var st struct{ Compose string }
		json.Unmarshal(body, &st)
		if got := strings.Contains(st.Compose, "compose-secret"); got != want {
			t.Errorf("compose file shown: %v, want %v: %s", got, want, body)
		}
	}
	if status, body := m.Do("GET", "/metrics", nil, callers["viewer+a-admin"].key); status != 200 {
		t.Errorf("an instance viewer's metrics: %d %s", status, body)
	}
	// A user with no instance-wide role, operator of a, signs in and sees a only.
	if status, body := m.Do("POST", "/api/v1/users", map[string]any{"username": "ann", "password": testPassword, "role": "none"}); status != 201 {
		t.Fatalf("user ann: %d %s", status, body)
	}
	if status, body := m.Do("POST", "/api/v1/projects/a/members", map[string]any{"kind": "user", "name": "ann", "role": "operator"}); status != 200 {
		t.Fatalf("member ann: %d %s", status, body)
	}
	status, body = m.Do("GET", "/api/v1/projects/a/members", nil)
	if status != 200 || !strings.Contains(string(body), `"name": "ann"`) || !strings.Contains(string(body), `"name": "mem"`) {
		t.Errorf("a's members: %d %s", status, body)
	}
	ann := newBrowserish(t, m)
	if status, body, _ := ann.do("POST", "/api/v1/session", map[string]any{"username": "ann", "password": testPassword}); status != 200 ||
		!strings.Contains(body, `"a": "operator"`) {
		t.Fatalf("ann signs in: %d %s", status, body)
	}
	for path, want := range map[string]int{"/api/v1/projects/a/containers": 200, "/api/v1/projects/b/containers": 403, "/api/v1/containers": 403, "/metrics": 403} {
		if status, body, _ := ann.do("GET", path, nil); status != want {
			t.Errorf("ann GET %s: %d %s, want %d", path, status, body, want)
		}
	}
	if status, _ := m.Do("DELETE", "/api/v1/projects/a/members/user/ann", nil); status != 204 {
		t.Errorf("remove ann: %d", status)
	}
	if status, body, _ := ann.do("GET", "/api/v1/projects/a/containers", nil); status != 403 {
		t.Errorf("ann after her membership went: %d %s", status, body)
	}
}
