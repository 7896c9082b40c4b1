package e2e

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// waitHalted waits until moor has halted at step.
func waitHalted(t *testing.T, m *Moor, step string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(m.Logs(), "halted for testing") || !strings.Contains(m.Logs(), "step="+step) {
		if time.Now().After(deadline) {
			t.Fatalf("moor never reached step %s:\n%s", step, m.Logs())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// checkDeployed asserts the one container c1 runs with one replica, one Docker
// container, its volume and its DNS rows, and nothing else exists.
func checkDeployed(t *testing.T, e *Env, m *Moor) {
	t.Helper()
	c := m.WaitStatus("c1", "running", 60*time.Second)
	if ids := e.DockerIDs(""); len(ids) != 1 || !strings.HasPrefix(c.Instances[0].DockerID, ids[0]) {
		t.Fatalf("docker containers %v, moor says %+v", ids, c.Instances)
	}
	if vols := e.Volumes(); len(vols) != 1 || vols[0] != "moor-c1_data_0" {
		t.Fatalf("volumes %v", vols)
	}
	rows := e.Query(`SELECT zone, name, value FROM dns_entries ORDER BY zone, name`)
	var names []string
	for _, r := range rows {
		names = append(names, r[1].(string))
		if r[0] == "container" && r[2].(string) != c.InternalIP {
			t.Errorf("dns row %v: want the replica's address %s", r, c.InternalIP)
		}
	}
	want := []string{"0.c1.default.moor.internal", "0.c1.moor.internal", "c1.default.moor.internal", "c1.moor.internal", "c1.moor.localhost"}
	if !slices.Equal(names, want) {
		t.Fatalf("dns rows %v, want %v", rows, want)
	}
}

// TestCrashDuringDeploy kills moor with SIGKILL at each step of a deploy,
// restarts it, and checks the deploy completes with nothing left over.
func TestCrashDuringDeploy(t *testing.T) {
	for _, step := range []string{"creating", "network", "image", "volumes", "created", "started", "observed"} {
		t.Run(step, func(t *testing.T) {
			e := NewEnv(t)
			m := e.Start("MOOR_DEBUG_HALT_AT=" + step)
			m.Create(map[string]any{"name": "c1", "type": "testapp"})
			waitHalted(t, m, step)
			m.Kill()
			m = e.Start()
			checkDeployed(t, e, m)
		})
	}
}

// TestCrashDuringRemove kills moor at each step of a removal (drained: the
// replica is out of the routes, not yet removed).
func TestCrashDuringRemove(t *testing.T) {
	for _, step := range []string{"drained", "removed-containers", "removed-volumes"} {
		t.Run(step, func(t *testing.T) {
			e := NewEnv(t)
			m := e.Start()
			m.Create(map[string]any{"name": "c1", "type": "testapp"})
			checkDeployed(t, e, m)
			m.Kill()
			m = e.Start("MOOR_DEBUG_HALT_AT=" + step)
			if status, body := m.Do("DELETE", "/api/v1/containers/c1", nil); status != 202 {
				t.Fatalf("delete: %d %s", status, body)
			}
			waitHalted(t, m, step)
			m.Kill()
			m = e.Start()
			m.WaitFor("c1", 60*time.Second, "removed", func(c Container, ok bool) bool { return !ok })
			if ids := e.DockerIDs(""); len(ids) != 0 {
				t.Fatalf("docker containers left: %v", ids)
			}
			if vols := e.Volumes(); len(vols) != 0 {
				t.Fatalf("volumes left: %v", vols)
			}
			if n := e.Count(`SELECT count(*) FROM dns_entries`); n != 0 {
				t.Fatalf("%d dns rows left", n)
			}
			if n := e.Count(`SELECT count(*) FROM deployment_history WHERE container_name = 'c1' AND action = 'removed'`); n != 1 {
				t.Fatalf("%d 'removed' history rows", n)
			}
		})
	}
}

// TestCrashBeforeReconcile: a kill right after the API accepted a deploy
// leaves a pending row, which the next moor deploys.
func TestCrashBeforeReconcile(t *testing.T) {
	e := NewEnv(t)
	m := e.Start("MOOR_DEBUG_HALT_AT=creating")
	m.Create(map[string]any{"name": "c1", "type": "testapp"})
	m.Kill()
	checkDeployed(t, e, e.Start())
}

// TestOrphanRemoved: a Docker container labelled as this installation's but
// unknown to its database (e.g. after a database restore) is removed.
func TestOrphanRemoved(t *testing.T) {
	e := NewEnv(t)
	m := e.Start()
	_ = m
	name := "moor-orphan-" + randSuffix()
	// No network: it never runs, and Docker's default bridge is not on
	// every host.
	docker(t, "create", "--name", name, "--network", "none", "--label", "moor.test=1", "--label", "moor.owner="+e.Installation(),
		"--label", "moor.id=00000000-0000-0000-0000-000000000001", "moor-testapp:latest")
	t.Cleanup(func() { dockerQuiet("rm", "-f", name) })
	deadline := time.Now().Add(30 * time.Second)
	for len(e.DockerIDs("")) != 0 {
		if time.Now().After(deadline) {
			t.Fatal("orphan not removed")
		}
		time.Sleep(200 * time.Millisecond)
	}
}
