package e2e

import (
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestDNSProjectViews: through moor's DNS server, a container of project a
// resolves web.a.<container zone> and gets NXDOMAIN for web.b.<container
// zone>, which exists; a container of the default project resolves its
// web.<container zone> and gets NXDOMAIN for web.a.<container zone>. The
// projects' networks are not in MOOR_DNS_CONTAINER_CIDRS: moor knows their
// subnets from the engine.
func TestDNSProjectViews(t *testing.T) {
	e, m, gw, _ := startWithContainerDNS(t)
	for _, p := range []string{"a", "b"} {
		if status, body := m.Do("POST", "/api/v1/projects", map[string]any{"name": p}); status != 201 {
			t.Fatalf("create project %s: %d %s", p, status, body)
		}
	}
	for _, path := range []string{"/api/v1/containers", "/api/v1/projects/a/containers", "/api/v1/projects/b/containers"} {
		if status, body := m.Do("POST", path, map[string]any{"name": "web", "type": "testapp"}); status != 202 {
			t.Fatalf("create web at %s: %d %s", path, status, body)
		}
	}
	ip := map[string]string{}
	for _, ref := range []string{"web", "a/web", "b/web"} {
		ip[ref] = m.WaitStatus(ref, "running", 90*time.Second).InternalIP
	}
	replica := func(project string) string {
		t.Helper()
		id := docker(t, "ps", "-q", "--filter", "label=moor.owner="+e.Installation(), "--filter", "label=moor.name=web", "--filter", "label=moor.project="+project)
		if id == "" || strings.Contains(id, "\n") {
			t.Fatalf("web of project %s: docker ids %q", project, id)
		}
		return id
	}
	// resolve asks moor's address from inside container in: the answers,
	// or the error (the Go resolver says "no such host" for NXDOMAIN).
	resolve := func(in, name string) (string, bool) {
		b, err := exec.Command("docker", "exec", in, "/testapp", "-resolve", name, "-server", gw+":53").CombinedOutput()
		return strings.TrimSpace(string(b)), err == nil
	}
	// until waits for a name to resolve to want: the projects' subnets
	// reach the DNS server once the reconciler has made their networks.
	until := func(in, name, want string) {
		t.Helper()
		var out string
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
			if out, _ = resolve(in, name); out == want {
				return
			}
		}
		t.Fatalf("%s from %s: %q, want %s", name, in, out, want)
	}
	nxdomain := func(in, name string) {
		t.Helper()
		if out, ok := resolve(in, name); ok || !strings.Contains(out, "no such host") {
			t.Errorf("%s from %s: %q, want no such host (NXDOMAIN)", name, in, out)
		}
	}
	inA, inB, inDefault := replica("a"), replica("b"), replica("default")
	until(inA, "web.a.moor.internal", ip["a/web"])
	until(inB, "web.b.moor.internal", ip["b/web"])
	nxdomain(inA, "web.b.moor.internal")
	nxdomain(inA, "web.moor.internal")
	until(inDefault, "web.moor.internal", ip["web"])
	nxdomain(inDefault, "web.a.moor.internal")
	// The host zone is one public namespace.
	until(inA, "web-b.moor.localhost", "127.0.0.1")
}
