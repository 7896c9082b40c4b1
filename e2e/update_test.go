package e2e

import (
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestUpdateRolling: PATCH changes a container's environment and image
// tag; moor replaces its replicas one at a time, and the container keeps
// answering meanwhile (through moor's embedded router, as a user's
// browser would reach it); bad changes are refused naming the field.
func TestUpdateRolling(t *testing.T) {
	e := NewEnv(t)
	m := e.Start()
	m.Create(map[string]any{"name": "web", "type": "testapp", "replicas": 2, "env": map[string]string{"MODE": "web"}})
	m.WaitStatus("web", "running", 60*time.Second)
	before := e.DockerIDs("web") // short ids
	isBefore := func(id string) bool {
		for _, b := range before {
			if strings.HasPrefix(id, b) {
				return true
			}
		}
		return false
	}
	// Routed once healthy, as a user would first see it; then a user keeps
	// loading the page during the rollout.
	stop := routedOK(t, m, "web")

	status, body := m.Do("PATCH", "/api/v1/containers/web", map[string]any{"env": map[string]any{"MODE": "worker", "GREETING": nil}})
	if status != 202 {
		t.Fatalf("patch env: %d %s", status, body)
	}
	c := m.WaitFor("web", 90*time.Second, "both replicas replaced", func(c Container, ok bool) bool {
		if !ok || c.Status != "running" || len(c.Instances) != 2 {
			return false
		}
		for _, in := range c.Instances {
			if in.Status != "running" || in.DockerID == "" || isBefore(in.DockerID) {
				return false
			}
		}
		return true
	})
	time.Sleep(300 * time.Millisecond)
	ok, failed, lastFail := stop()
	if c.Env["MODE"] != "worker" {
		t.Errorf("env after patch: %v", c.Env)
	}
	if _, has := c.Env["GREETING"]; has {
		t.Errorf("GREETING left empty is still set: %v", c.Env)
	}
	for _, id := range e.DockerIDs("web") {
		if env := docker(t, "inspect", "-f", "{{json .Config.Env}}", id); !strings.Contains(env, "MODE=worker") || strings.Contains(env, "GREETING=") {
			t.Errorf("replica %s runs with %s", id, env)
		}
	}
	t.Logf("during the rollout: %d answers, %d failed", ok, failed)
	if failed > 0 || ok < 10 {
		t.Errorf("the container did not keep serving: %d answers, %d failed (last: %v)", ok, failed, lastFail)
	}

	// A new tag of the same image.
	tag := "moor-testapp:e2e-" + randSuffix()
	docker(t, "tag", "moor-testapp:latest", tag)
	t.Cleanup(func() { dockerQuiet("rmi", tag) })
	if status, body := m.Do("PATCH", "/api/v1/containers/web", map[string]any{"image": tag}); status != 202 {
		t.Fatalf("patch image: %d %s", status, body)
	}
	m.WaitFor("web", 90*time.Second, "the new image", func(c Container, ok bool) bool {
		if !ok || c.Image != tag || c.Status != "running" {
			return false
		}
		for _, id := range e.DockerIDs("web") {
			// A replica may go between the listing and this (the rollout).
			img, err := exec.Command("docker", "inspect", "-f", "{{.Config.Image}}", id).Output()
			if err != nil || strings.TrimSpace(string(img)) != tag {
				return false
			}
		}
		return len(e.DockerIDs("web")) == 2
	})

	// Refused, naming the field; nothing changes.
	for _, bad := range []struct {
		body  map[string]any
		field string
	}{
		{map[string]any{"image": "nginx:1.27"}, "image"},
		{map[string]any{"image": "moor-testapp:bad tag"}, "image"},
		{map[string]any{"env": map[string]any{"LD_PRELOAD": "/x.so"}}, "env.LD_PRELOAD"},
		{map[string]any{"env": map[string]any{"MODE": "evil"}}, "env.MODE"},
		{map[string]any{"replicas": 99}, "replicas"},
	} {
		if status, body := m.Do("PATCH", "/api/v1/containers/web", bad.body); status != 422 || !strings.Contains(string(body), `"field": "`+bad.field+`"`) {
			t.Errorf("%v: %d %s", bad.body, status, body)
		}
	}
	if n := e.Count(`SELECT count(*) FROM deployment_history WHERE container_name = 'web' AND action = 'update_requested'`); n != 2 {
		t.Errorf("%d updates recorded", n)
	}

	// The CLI: update --wait returns once every replica is the new one.
	prev := e.DockerIDs("web")
	cli := exec.Command(moorBinary(t), "update", "web", "-e", "MODE=web", "--wait", "-o", "json")
	cli.Env = append(os.Environ(), "MOOR_URL="+m.URL, "MOOR_API_KEY="+e.Admin, "MOOR_CONFIG="+t.TempDir()+"/none.json")
	out, err := cli.CombinedOutput()
	if err != nil {
		t.Fatalf("moor update --wait: %v\n%s", err, out)
	}
	now := e.DockerIDs("web")
	if len(now) != 2 || slices.ContainsFunc(now, func(id string) bool { return slices.Contains(prev, id) }) {
		t.Errorf("after update --wait the replicas are %v (before %v)", now, prev)
	}
	if !strings.Contains(string(out), `"MODE": "web"`) {
		t.Errorf("update --wait printed %s", out)
	}
}
