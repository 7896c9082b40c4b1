package e2e

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moorhq/moor/internal/testenv"
	"github.com/moorhq/moor/migrations"
)

// probe runs the test image's client in a Docker container: its exit code
// (2: no connection) and output.
func probe(t *testing.T, in string, args ...string) (int, string) {
	t.Helper()
	out, err := exec.Command("docker", append([]string{"exec", in, "/testapp"}, args...)...).CombinedOutput()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), string(out)
	}
	if err != nil {
		t.Fatalf("docker exec: %v\n%s", err, out)
	}
	return 0, string(out)
}

// TestProjectsIsolated: each project has its own Docker network. Containers
// of one project reach each other (by address and by name) and nothing of
// another project; the router still reaches every project; an internal
// project has no way out; the same name lives in two projects; a project
// goes only when empty, and its network with it, the router detached.
func TestProjectsIsolated(t *testing.T) {
	e := NewEnv(t)
	// A stand-in for Traefik's container, which moor attaches to every
	// project network.
	router := "moor-t-router-" + randSuffix()
	docker(t, "run", "-d", "--name", router, "--label", "moor.test=1", testenv.TestImage(t))
	t.Cleanup(func() { dockerQuiet("rm", "-f", router) })
	m := e.Start("MOOR_ROUTER_CONTAINER=" + router)

	for _, p := range []map[string]any{{"name": "a"}, {"name": "b"}, {"name": "sealed", "internal": true}} {
		if status, body := m.Do("POST", "/api/v1/projects", p); status != 201 {
			t.Fatalf("create project %v: %d %s", p, status, body)
		}
	}
	if status, body := m.Do("POST", "/api/v1/projects", map[string]any{"name": "a"}); status != 409 {
		t.Errorf("project a twice: %d %s", status, body)
	}
	if status, body := m.Do("POST", "/api/v1/projects", map[string]any{"name": "Bad_Name"}); status != 422 || !strings.Contains(string(body), `"field": "name"`) {
		t.Errorf("a bad project name: %d %s", status, body)
	}
	create := func(ref string) {
		t.Helper()
		project, name, _ := strings.Cut(ref, "/")
		path := "/api/v1/projects/" + project + "/containers"
		if name == "" {
			path, name = "/api/v1/containers", project
		}
		if status, body := m.Do("POST", path, map[string]any{"name": name, "type": "testapp"}); status != 202 {
			t.Fatalf("create %s: %d %s", ref, status, body)
		}
	}
	// "web" three times: the default project's, a's and b's.
	refs := []string{"web", "a/web", "a/probe", "b/web", "sealed/probe"}
	for _, ref := range refs {
		create(ref)
	}
	if status, body := m.Do("POST", "/api/v1/projects/a/containers", map[string]any{"name": "web", "type": "testapp"}); status != 409 {
		t.Errorf("a/web twice: %d %s", status, body)
	}
	if status, body := m.Do("POST", "/api/v1/projects/nosuch/containers", map[string]any{"name": "web", "type": "testapp"}); status != 404 {
		t.Errorf("a container in no project: %d %s", status, body)
	}
	ip := map[string]string{}
	for _, ref := range refs {
		c := m.WaitStatus(ref, "running", 90*time.Second)
		ip[ref] = c.InternalIP
	}
	a := m.WaitStatus("a/web", "running", time.Second)
	if a.Project != "a" || a.DNS.Container != "web.a.moor.internal" || a.DNS.Host != "web-a.moor.localhost" {
		t.Errorf("a/web: project %q names %+v", a.Project, a.DNS)
	}
	if d := m.WaitStatus("web", "running", time.Second); d.Project != "default" || d.DNS.Container != "web.moor.internal" || d.DNS.Host != "web.moor.localhost" {
		t.Errorf("web: project %q names %+v", d.Project, d.DNS)
	}
	// Lists are per project.
	for path, want := range map[string][]string{
		"/api/v1/containers":                  {"web"},
		"/api/v1/projects/a/containers":       {"probe", "web"},
		"/api/v1/projects/default/containers": {"web"},
		"/api/v1/projects/sealed/containers":  {"probe"},
	} {
		status, body := m.Do("GET", path, nil)
		var list struct{ Containers []Container }
		json.Unmarshal(body, &list)
		var got []string
		for _, c := range list.Containers {
			got = append(got, c.Name)
		}
		if status != 200 || !slices.Equal(got, want) {
			t.Errorf("GET %s: %d %v, want %v", path, status, got, want)
		}
	}
	// Docker's names: unchanged in the default project, NAME.PROJECT else.
	netsOf := func(ref string) string { // the networks of the ref's replica 0
		project, name, ok := strings.Cut(ref, "/")
		dn := "moor-" + ref + "-0"
		if ok {
			dn = "moor-" + name + "." + project + "-0"
		}
		return docker(t, "inspect", "-f", "{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}", dn)
	}
	for ref, want := range map[string]string{"web": e.Network, "a/web": e.Network + "-p-a", "b/web": e.Network + "-p-b", "sealed/probe": e.Network + "-p-sealed"} {
		if got := strings.TrimSpace(netsOf(ref)); got != want {
			t.Errorf("%s is on %q, want %q", ref, got, want)
		}
	}
	probeA := "moor-probe.a-0"
	// Within a: by address and by name.
	for _, target := range []string{ip["a/web"] + ":8080", "web.a.moor.internal:8080"} {
		if code, out := probe(t, probeA, "-dial", target); code != 0 {
			t.Errorf("a/probe cannot reach %s in its own project: %s", target, out)
		}
	}
	// Nothing of b, nor of the default project, by address or by name.
	for _, target := range []string{ip["b/web"] + ":8080", ip["web"] + ":8080", "web.b.moor.internal:8080", "web.moor.internal:8080"} {
		if code, out := probe(t, probeA, "-dial", target); code == 0 {
			t.Errorf("a/probe reaches %s of another project: %s", target, out)
		}
	}
	// The router reaches every project: attached to each project network.
	attached := docker(t, "inspect", "-f", "{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}", router)
	for _, n := range []string{e.Network + "-p-a", e.Network + "-p-b", e.Network + "-p-sealed"} {
		if !strings.Contains(attached, n) {
			t.Errorf("router on %q, not on %s", attached, n)
		}
	}
	if code, out := probe(t, router, "-get", "http://"+ip["b/web"]+":8080/"); code != 0 || !strings.Contains(out, "hello from testapp") {
		t.Errorf("the router cannot reach b/web: %s", out)
	}
	// And moor's embedded router serves each project's host name.
	port := m.URL[strings.LastIndex(m.URL, ":")+1:]
	for host, want := range map[string]string{"web-a.moor.localhost": "web-0", "web-b.moor.localhost": "web-0", "web.moor.localhost": "web-0"} {
		req, _ := http.NewRequest("GET", m.URL+"/", nil)
		req.Host = host + ":" + port
		var code int
		var body string
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			code, body = resp.StatusCode, string(b)
			if code == 200 {
				break
			}
		}
		if code != 200 || !strings.Contains(body, "hostname: "+want) {
			t.Errorf("GET %s: %d %s", host, code, body)
		}
	}
	// An internal project has no way out of the host: a machine beyond it,
	// which a container of a normal project reaches, is out of reach.
	outside := testenv.OutsideListener(t)
	if code, out := probe(t, probeA, "-dial", outside); code != 0 {
		t.Errorf("a/probe cannot reach %s beyond the host (so the check below proves nothing): %s", outside, out)
	}
	if code, out := probe(t, "moor-probe.sealed-0", "-dial", outside); code == 0 {
		t.Errorf("a container of an internal project reaches %s beyond the host: %s", outside, out)
	}
	if internal := docker(t, "network", "inspect", "-f", "{{.Internal}}", e.Network+"-p-sealed"); internal != "true" {
		t.Errorf("sealed's network internal: %s", internal)
	}

	// A project goes only when empty; its network with it.
	status, body := m.Do("DELETE", "/api/v1/projects/a", nil)
	if status != 409 || !strings.Contains(string(body), "probe") || !strings.Contains(string(body), "web") {
		t.Fatalf("delete a with containers: %d %s", status, body)
	}
	for _, ref := range []string{"a/web", "a/probe"} {
		if status, body := m.Do("DELETE", containerPath(ref), nil); status != 202 {
			t.Fatalf("remove %s: %d %s", ref, status, body)
		}
		m.WaitFor(ref, 60*time.Second, "gone", func(_ Container, ok bool) bool { return !ok })
	}
	if status, body := m.Do("DELETE", "/api/v1/projects/a", nil); status != 204 {
		t.Fatalf("delete empty a: %d %s", status, body)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		out, _ := exec.Command("docker", "network", "ls", "-q", "--filter", "name=^"+e.Network+"-p-a$").Output()
		if len(strings.TrimSpace(string(out))) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("network of deleted project a still there")
		}
		time.Sleep(200 * time.Millisecond)
	}
	if attached := docker(t, "inspect", "-f", "{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}", router); strings.Contains(attached, "-p-a ") {
		t.Errorf("router still on a's network: %s", attached)
	}
	if status, _ := m.Do("GET", "/api/v1/projects/a", nil); status != 404 {
		t.Errorf("deleted project answers %d", status)
	}
	// b's container did not notice.
	if c := m.WaitStatus("b/web", "running", time.Second); c.InternalIP != ip["b/web"] {
		t.Errorf("b/web changed: %+v", c)
	}
}

// TestUpgradeToProjects: an installation from before projects (schema 0010,
// containers running) upgrades in place: the same Docker containers keep
// running, in the default project, under the same names and addresses.
func TestUpgradeToProjects(t *testing.T) {
	e := NewEnv(t)
	m := e.Start()
	m.Create(map[string]any{"name": "old", "type": "testapp", "replicas": 2})
	before := m.WaitStatus("old", "running", 90*time.Second)
	ids := e.DockerIDs("old")
	slices.Sort(ids)
	m.Kill()
	// Back to the schema before projects (0011), with the containers' rows.
	e.run("migrate", "-down", fmt.Sprint(migrationsSince(t, 11)))
	if n := e.Count(`SELECT count(*) FROM information_schema.tables WHERE table_name = 'projects'`); n != 0 {
		t.Fatal("projects table still there after down")
	}
	m = e.Start() // migrates up again
	after := m.WaitStatus("old", "running", 30*time.Second)
	time.Sleep(3 * time.Second) // a full resync (MOOR_RESYNC=2s) has run
	now := e.DockerIDs("old")
	slices.Sort(now)
	if !slices.Equal(ids, now) {
		t.Errorf("Docker containers before %v, after the upgrade %v: recreated", ids, now)
	}
	if after.Project != "default" || after.ID != before.ID || after.InternalIP != before.InternalIP || after.DNS.Container != "old.moor.internal" {
		t.Errorf("after the upgrade: %+v, before %+v", after, before)
	}
	if n := e.Count(`SELECT count(*) FROM host_names WHERE host = 'old.moor.localhost'`); n != 1 {
		t.Errorf("old's host name not claimed after the upgrade")
	}
	if status, body := m.Do("POST", "/api/v1/containers", map[string]any{"name": "x", "type": "testapp", "aliases": []string{"old.moor.localhost"}}); status != 409 {
		t.Errorf("claiming old's host name: %d %s", status, body)
	}
}

// TestProjectQuota: 20 creates at once against a project's quota of 5
// containers give exactly 5; the others are refused naming the quota and
// the use; a scale beyond the memory quota is refused too.
func TestProjectQuota(t *testing.T) {
	e := NewEnv(t)
	m := e.Start()
	if status, body := m.Do("POST", "/api/v1/projects", map[string]any{"name": "q", "max_containers": 5, "max_memory_mb": 512}); status != 201 {
		t.Fatalf("create q: %d %s", status, body)
	}
	type answer struct {
		status int
		body   string
	}
	answers := make([]answer, 20)
	var wg sync.WaitGroup
	for i := range answers {
		wg.Go(func() {
			status, body := m.Do("POST", "/api/v1/projects/q/containers", map[string]any{"name": fmt.Sprintf("c%d", i), "type": "testapp-small"})
			answers[i] = answer{status, string(body)}
		})
	}
	wg.Wait()
	accepted := 0
	for _, a := range answers {
		switch {
		case a.status == 202:
			accepted++
		case a.status != 422 || !strings.Contains(a.body, "max_containers") || !strings.Contains(a.body, "5 containers in use"):
			t.Errorf("refusal: %d %s", a.status, a.body)
		}
	}
	if n := e.Count(`SELECT count(*) FROM containers WHERE project = 'q'`); accepted != 5 || n != 5 {
		t.Fatalf("20 creates against a quota of 5: %d accepted, %d recorded", accepted, n)
	}
	var name string
	for i, a := range answers {
		if a.status == 202 {
			name = fmt.Sprintf("c%d", i)
			break
		}
	}
	// 5 x 64 MB in use: 4 more replicas of 64 MB do not fit in 512.
	status, body := m.Do("POST", "/api/v1/projects/q/containers/"+name+"/scale", map[string]any{"replicas": 5})
	if status != 422 || !strings.Contains(string(body), "max_memory_mb") || !strings.Contains(string(body), "256 MB in use") {
		t.Errorf("scale over the memory quota: %d %s", status, body)
	}
	if status, body := m.Do("PATCH", "/api/v1/projects/q", map[string]any{"max_memory_mb": nil}); status != 200 || strings.Contains(string(body), "max_memory_mb") {
		t.Errorf("remove the memory quota: %d %s", status, body)
	}
	if status, body := m.Do("POST", "/api/v1/projects/q/containers/"+name+"/scale", map[string]any{"replicas": 2}); status != 202 {
		t.Errorf("scale without a memory quota: %d %s", status, body)
	}
}

// migrationsSince counts the migrations numbered version or later: how
// many `moor migrate -down` reverts to the schema before version.
func migrationsSince(t *testing.T, version int) int {
	t.Helper()
	ups, err := fs.Glob(migrations.FS, "*.up.sql")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, name := range ups {
		v, err := strconv.Atoi(name[:4])
		if err != nil {
			t.Fatalf("migration %s: %v", name, err)
		}
		if v >= version {
			n++
		}
	}
	return n
}
