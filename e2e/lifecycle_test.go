package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestLifecycle walks one container through every lifecycle call against
// real Docker and PostgreSQL.
func TestLifecycle(t *testing.T) {
	e := NewEnv(t)
	m := e.Start()

	status, body := m.Do("POST", "/api/v1/containers", map[string]any{"name": "web", "type": "testapp", "env": map[string]string{"MODE": "worker"}})
	if status != 202 {
		t.Fatalf("create: %d %s", status, body)
	}
	c := m.WaitStatus("web", "running", 60*time.Second)
	if c.InternalIP == "" || len(c.Instances) != 1 || c.Instances[0].DockerID == "" {
		t.Fatalf("running container lacks ip or instance: %+v", c)
	}
	if c.DNS.Host != "web.moor.localhost" || c.DNS.Container != "web.moor.internal" || !strings.HasPrefix(c.URL, "http://web.moor.localhost:") {
		t.Fatalf("dns/url: %+v %s", c.DNS, c.URL)
	}

	// Docker has it: on the network, labelled, with the type's limits and health check.
	var inspect []struct {
		Config struct {
			Labels      map[string]string
			Env         []string
			Healthcheck *struct{ Test []string }
		}
		HostConfig      struct{ Memory int64 }
		NetworkSettings struct {
			Networks map[string]struct{ IPAddress string }
		}
		Mounts []struct{ Type, Name, Destination string }
	}
	if err := json.Unmarshal([]byte(docker(t, "inspect", c.Instances[0].DockerID)), &inspect); err != nil {
		t.Fatal(err)
	}
	in := inspect[0]
	if in.Config.Labels["moor.id"] != c.ID || in.Config.Labels["moor.name"] != "web" || in.Config.Labels["moor.type"] != "testapp" {
		t.Fatalf("labels: %v", in.Config.Labels)
	}
	if ip := in.NetworkSettings.Networks[e.Network].IPAddress; ip != c.InternalIP {
		t.Fatalf("docker says ip %q on %s, moor says %q", ip, e.Network, c.InternalIP)
	}
	if in.HostConfig.Memory != 64<<20 {
		t.Fatalf("memory limit %d, want 64 MiB", in.HostConfig.Memory)
	}
	if in.Config.Healthcheck == nil || len(in.Config.Healthcheck.Test) == 0 {
		t.Fatal("no health check")
	}
	if len(in.Mounts) != 1 || in.Mounts[0].Type != "volume" || in.Mounts[0].Name != "moor-web_data_0" {
		t.Fatalf("mounts: %+v", in.Mounts)
	}
	envs := strings.Join(in.Config.Env, "\n")
	if !strings.Contains(envs, "MODE=worker") || !strings.Contains(envs, "SECRET_TOKEN=") {
		t.Fatalf("env: %s", envs)
	}

	// The app answers on its internal IP.
	waitHTTP(t, "http://"+c.InternalIP+":8080/", "worker")

	// Credentials: generated secret, stored encrypted, shown to operators, not viewers.
	status, body = m.Do("GET", "/api/v1/containers/web/credentials", nil)
	var creds struct{ Credentials map[string]string }
	json.Unmarshal(body, &creds)
	if status != 200 || len(creds.Credentials["SECRET_TOKEN"]) < 16 {
		t.Fatalf("credentials: %d %s", status, body)
	}
	if !strings.Contains(envs, "SECRET_TOKEN="+creds.Credentials["SECRET_TOKEN"]) {
		t.Fatal("container env does not carry the stored secret")
	}
	raw := e.Query(`SELECT secrets FROM containers WHERE name = 'web'`)[0][0].([]byte)
	if strings.Contains(string(raw), creds.Credentials["SECRET_TOKEN"]) {
		t.Fatal("secret stored in clear")
	}
	if _, ok := c.Env["SECRET_TOKEN"]; ok {
		t.Fatal("secret shown in container env")
	}
	viewer := strings.TrimSpace(e.run("apikey", "create", "--name", "v", "--role", "viewer"))
	if status, _ := m.Do("GET", "/api/v1/containers/web/credentials", nil, viewer); status != 403 {
		t.Fatalf("viewer read credentials: %d", status)
	}

	// Logs.
	if status, _ := m.Do("GET", "/api/v1/containers/web/logs?tail=0", nil); status != 422 {
		t.Fatalf("tail=0 (everything) should be refused: %d", status)
	}
	status, body = m.Do("GET", "/api/v1/containers/web/logs?tail=50", nil)
	if status != 200 || !strings.Contains(string(body), "listening") {
		t.Fatalf("logs: %d %q", status, body)
	}

	// Duplicate name.
	if status, body := m.Do("POST", "/api/v1/containers", map[string]any{"name": "web", "type": "testapp"}); status != 409 {
		t.Fatalf("duplicate: %d %s", status, body)
	}

	// Stop, start, restart.
	m.Do("POST", "/api/v1/containers/web/stop", nil)
	m.WaitStatus("web", "stopped", 30*time.Second)
	if s := docker(t, "inspect", "-f", "{{.State.Running}}", c.Instances[0].DockerID); s != "false" {
		t.Fatalf("docker says running=%s after stop", s)
	}
	if n := e.Count(`SELECT count(*) FROM dns_entries d JOIN containers c ON c.id = d.container_id WHERE c.name = 'web' AND zone = 'container'`); n != 0 {
		t.Fatalf("stopped container still has %d container-zone DNS rows", n)
	}
	m.Do("POST", "/api/v1/containers/web/start", nil)
	c = m.WaitStatus("web", "running", 30*time.Second)
	started := docker(t, "inspect", "-f", "{{.State.StartedAt}}", c.Instances[0].DockerID)
	if status, body := m.Do("POST", "/api/v1/containers/web/restart", nil); status != 202 {
		t.Fatalf("restart: %d %s", status, body)
	}
	m.WaitFor("web", 30*time.Second, "restarted", func(c Container, ok bool) bool {
		return ok && c.Status == "running" && docker(t, "inspect", "-f", "{{.State.StartedAt}}", c.Instances[0].DockerID) != started
	})

	// Scale up and down: each replica its own Docker container and IP.
	if status, body := m.Do("POST", "/api/v1/containers/web/scale", map[string]any{"replicas": 3}); status != 202 {
		t.Fatalf("scale: %d %s", status, body)
	}
	c = m.WaitFor("web", 60*time.Second, "3 running replicas", func(c Container, ok bool) bool {
		if !ok || c.Status != "running" || len(c.Instances) != 3 {
			return false
		}
		for _, in := range c.Instances {
			if in.Status != "running" || in.InternalIP == "" {
				return false
			}
		}
		return true
	})
	ips := map[string]bool{}
	for _, in := range c.Instances {
		ips[in.InternalIP] = true
	}
	if len(ips) != 3 || len(e.DockerIDs("web")) != 3 {
		t.Fatalf("3 replicas should have 3 IPs and 3 Docker containers: %+v, docker %v", c.Instances, e.DockerIDs("web"))
	}
	if n := e.Count(`SELECT count(*) FROM dns_entries WHERE name = 'web.moor.internal'`); n != 3 {
		t.Fatalf("want 3 A records for web.moor.internal, have %d", n)
	}
	m.Do("POST", "/api/v1/containers/web/scale", map[string]any{"replicas": 1})
	m.WaitFor("web", 60*time.Second, "1 replica", func(c Container, ok bool) bool {
		return ok && c.Status == "running" && len(c.Instances) == 1 && len(e.DockerIDs("web")) == 1
	})

	// Remove: container, volume and DNS rows go; history stays.
	if status, body := m.Do("DELETE", "/api/v1/containers/web", nil); status != 202 || !strings.Contains(string(body), `"removing"`) {
		t.Fatalf("remove: %d %s", status, body)
	}
	m.WaitFor("web", 30*time.Second, "gone", func(c Container, ok bool) bool { return !ok })
	if ids := e.DockerIDs("web"); len(ids) != 0 {
		t.Fatalf("docker containers left: %v", ids)
	}
	if vols := e.Volumes(); len(vols) != 0 {
		t.Fatalf("volumes left: %v", vols)
	}
	if n := e.Count(`SELECT count(*) FROM dns_entries`); n != 0 {
		t.Fatalf("%d DNS rows left", n)
	}
	status, body = m.Do("GET", "/api/v1/containers/web/history", nil)
	var hist struct {
		History []struct{ Action, Actor string }
	}
	json.Unmarshal(body, &hist)
	var actions []string
	for _, h := range hist.History {
		actions = append(actions, h.Action)
	}
	want := []string{"created", "creating", "running", "stop_requested", "stopped", "start_requested", "running", "restart_requested", "scale_requested", "scale_requested", "remove_requested", "removed"}
	if status != 200 || !subsequence(want, actions) {
		t.Fatalf("history %v lacks %v", actions, want)
	}
	if hist.History[0].Actor != "apikey:test-admin" {
		t.Fatalf("actor of create: %q", hist.History[0].Actor)
	}
	// Every history row has its event (container.replicas, a replica's
	// health or address, is an event only).
	if h, ev := e.Count(`SELECT count(*) FROM deployment_history`), e.Count(`SELECT count(*) FROM events WHERE kind LIKE 'container.%' AND kind <> 'container.replicas'`); h != ev {
		t.Fatalf("%d history rows but %d container events", h, ev)
	}
	if list := e.Count(`SELECT count(*) FROM containers`); list != 0 {
		t.Fatalf("%d container rows left", list)
	}
}

// TestRemoveKeepVolumes keeps the data volume when asked.
func TestRemoveKeepVolumes(t *testing.T) {
	e := NewEnv(t)
	m := e.Start()
	m.Create(map[string]any{"name": "keeper", "type": "testapp"})
	m.WaitStatus("keeper", "running", 60*time.Second)
	m.Do("DELETE", "/api/v1/containers/keeper?keep_volumes=true", nil)
	m.WaitFor("keeper", 30*time.Second, "gone", func(c Container, ok bool) bool { return !ok })
	if vols := e.Volumes(); len(vols) != 1 || vols[0] != "moor-keeper_data_0" {
		t.Fatalf("volumes: %v", vols)
	}
	if status, _ := m.Do("DELETE", "/api/v1/containers/keeper?keep_volumes=maybe", nil); status != 422 && status != 404 {
		t.Fatalf("bad keep_volumes: %d", status)
	}
}

func subsequence(want, have []string) bool {
	i := 0
	for _, h := range have {
		if i < len(want) && h == want[i] {
			i++
		}
	}
	return i == len(want)
}

func waitHTTP(t *testing.T, url, want string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if strings.Contains(string(b), want) {
				return
			}
			err = fmt.Errorf("body %q", b)
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s: %v", url, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
