package e2e

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// TestChangedBehindMoorsBack stops and removes managed containers with the
// docker CLI and checks moor follows each type's restart policy.
func TestChangedBehindMoorsBack(t *testing.T) {
	e := NewEnv(t)
	m := e.Start()
	m.Create(map[string]any{"name": "always", "type": "testapp"})
	m.Create(map[string]any{"name": "never", "type": "testapp-norestart"})
	m.Create(map[string]any{"name": "never2", "type": "testapp-norestart"})
	m.Create(map[string]any{"name": "onfail", "type": "testapp-onfailure"})
	for _, n := range []string{"always", "never", "never2", "onfail"} {
		m.WaitStatus(n, "running", 60*time.Second)
	}

	// restart: always. Stopped: started again. Removed: recreated.
	c, _ := m.Get("always")
	docker(t, "stop", "-t", "1", c.Instances[0].DockerID)
	m.WaitFor("always", 30*time.Second, "restarted after docker stop", func(c Container, ok bool) bool {
		return ok && c.Status == "running" && docker(t, "inspect", "-f", "{{.State.Running}}", c.Instances[0].DockerID) == "true"
	})
	old := c.Instances[0].DockerID
	docker(t, "rm", "-f", old)
	c = m.WaitFor("always", 30*time.Second, "recreated after docker rm", func(c Container, ok bool) bool {
		return ok && c.Status == "running" && c.Instances[0].DockerID != old && c.Instances[0].DockerID != ""
	})
	if ids := e.DockerIDs("always"); len(ids) != 1 {
		t.Fatalf("after recreate: %v", ids)
	}

	// restart: no. Stopped: recorded as stopped, desired state follows, not restarted.
	c, _ = m.Get("never")
	docker(t, "stop", "-t", "1", c.Instances[0].DockerID)
	c = m.WaitFor("never", 30*time.Second, "stopped", func(c Container, ok bool) bool {
		return ok && c.DesiredState == "stopped" && (c.Status == "stopped" || c.Status == "failed")
	})
	if !strings.Contains(c.StatusReason, "outside moor") {
		t.Fatalf("reason %q", c.StatusReason)
	}
	time.Sleep(3 * time.Second) // a resync passes
	if s := docker(t, "inspect", "-f", "{{.State.Running}}", c.Instances[0].DockerID); s != "false" {
		t.Fatal("restart: no container was restarted")
	}
	// Removed: failed with the reason.
	c, _ = m.Get("never2")
	docker(t, "rm", "-f", c.Instances[0].DockerID)
	c = m.WaitFor("never2", 30*time.Second, "failed", func(c Container, ok bool) bool { return ok && c.Status == "failed" })
	// Depending on which Docker event moor sees first, the reason is the kill
	// (exit 137) or the removal; either way it is failed, stopped and not recreated.
	if !strings.Contains(c.StatusReason, "outside moor") || c.DesiredState != "stopped" {
		t.Fatalf("never2: %+v", c)
	}
	if ids := e.DockerIDs("never2"); len(ids) != 0 {
		t.Fatalf("restart: no container was recreated: %v", ids)
	}

	// restart: on-failure. A clean stop (exit 0) is left alone.
	c, _ = m.Get("onfail")
	docker(t, "stop", "-t", "5", c.Instances[0].DockerID)
	c = m.WaitFor("onfail", 30*time.Second, "stopped", func(c Container, ok bool) bool {
		return ok && c.DesiredState == "stopped" && c.Status == "stopped"
	})

	// Each handling is in the history with moor as the actor.
	_, body := m.Do("GET", "/api/v1/containers/never/history", nil)
	var hist struct {
		History []struct{ Action, Actor string }
	}
	json.Unmarshal(body, &hist)
	found := false
	for _, h := range hist.History {
		if h.Action == "stopped_outside" && h.Actor == "system:moor" {
			found = true
		}
	}
	if !found {
		t.Fatalf("history: %s", body)
	}
}
