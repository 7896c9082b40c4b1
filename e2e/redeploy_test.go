package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moorhq/moor/internal/testenv"
)

// allNew waits until the container runs with n replicas, none of them one
// of before (short Docker ids).
func allNew(t *testing.T, m *Moor, name string, n int, before []string) Container {
	t.Helper()
	return m.WaitFor(name, 90*time.Second, "every replica replaced", func(c Container, ok bool) bool {
		if !ok || c.Status != "running" || len(c.Instances) != n {
			return false
		}
		for _, in := range c.Instances {
			if in.Status != "running" || in.DockerID == "" || slices.ContainsFunc(before, func(b string) bool { return strings.HasPrefix(in.DockerID, b) }) {
				return false
			}
		}
		return true
	})
}

// events returns the events after seq, of one container.
func (m *Moor) eventsOf(name string, after int64) []struct {
	Seq  int64
	Kind string
	Data map[string]any
} {
	m.env.t.Helper()
	status, body := m.Do("GET", fmt.Sprintf("/api/v1/events?after=%d&limit=1000", after), nil)
	var evs struct {
		Events []struct {
			Seq       int64
			Kind      string
			Container string
			Data      map[string]any
		}
	}
	if status != 200 || json.Unmarshal(body, &evs) != nil {
		m.env.t.Fatalf("events: %d %s", status, body)
	}
	var out []struct {
		Seq  int64
		Kind string
		Data map[string]any
	}
	for _, e := range evs.Events {
		if e.Container == name {
			out = append(out, struct {
				Seq  int64
				Kind string
				Data map[string]any
			}{e.Seq, e.Kind, e.Data})
		}
	}
	return out
}

// TestRedeploy: a redeploy replaces every replica, one at a time, while
// the container keeps answering through the router; with pull an image
// from no registry is said not pulled, and the replicas are replaced with
// it; history and events record the request and its end.
func TestRedeploy(t *testing.T) {
	e := NewEnv(t)
	m := e.Start()
	m.Create(map[string]any{"name": "web", "type": "testapp", "replicas": 2})
	c := m.WaitStatus("web", "running", 60*time.Second)
	before := e.DockerIDs("web")
	stop := routedOK(t, m, "web")
	var last int64
	if evs := m.eventsOf("web", 0); len(evs) > 0 {
		last = evs[len(evs)-1].Seq
	}
	status, body := m.Do("POST", "/api/v1/containers/web/redeploy", nil)
	var answer struct{ Generation int64 }
	if status != 202 || json.Unmarshal(body, &answer) != nil || answer.Generation <= 1 {
		t.Fatalf("redeploy: %d %s", status, body)
	}
	allNew(t, m, "web", 2, before)
	time.Sleep(300 * time.Millisecond)
	ok, failed, lastFail := stop()
	t.Logf("during the redeploy: %d answers, %d failed", ok, failed)
	if failed > 0 || ok < 10 {
		t.Errorf("the container did not keep serving: %d answers, %d failed (last: %v)", ok, failed, lastFail)
	}
	m.WaitFor("web", 30*time.Second, "redeployed recorded", func(Container, bool) bool {
		return e.Count(`SELECT count(*) FROM deployment_history WHERE container_name = 'web' AND action = 'redeployed'`) == 1
	})
	var kinds []string
	for _, ev := range m.eventsOf("web", last) {
		kinds = append(kinds, ev.Kind)
	}
	if !slices.Contains(kinds, "container.redeploy_requested") || !slices.Contains(kinds, "container.redeployed") {
		t.Errorf("events of the redeploy: %v", kinds)
	}
	if n := e.Count(`SELECT count(*) FROM containers WHERE name = 'web' AND config_version = $1 AND redeploy_at IS NULL`, 2); n != 1 {
		t.Errorf("config_version not raised, or the redeploy still pending")
	}
	_ = c

	// With pull: the test image was built on the engine, from no
	// registry: not pulled, said so, and replaced all the same. Through
	// the CLI, which waits for it.
	before = e.DockerIDs("web")
	cli := exec.Command(moorBinary(t), "redeploy", "web", "--pull", "--wait")
	cli.Env = append(os.Environ(), "MOOR_URL="+m.URL, "MOOR_API_KEY="+e.Admin, "MOOR_CONFIG="+t.TempDir()+"/none.json")
	out, err := cli.CombinedOutput()
	if err != nil {
		t.Fatalf("moor redeploy --pull --wait: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "Not pulled: moor-testapp:latest was built or loaded on this engine") {
		t.Errorf("redeploy --pull of a local image printed:\n%s", out)
	}
	now := e.DockerIDs("web")
	if len(now) != 2 || slices.ContainsFunc(now, func(id string) bool { return slices.Contains(before, id) }) {
		t.Errorf("after redeploy --wait the replicas are %v (before %v)", now, before)
	}
	if n := e.Count(`SELECT count(*) FROM events WHERE container_name = 'web' AND kind = 'image.pull' AND data->>'local' = 'true'`); n != 1 {
		t.Errorf("%d image.pull events saying the image is local", n)
	}

	// Refused: no such container, an unknown field; viewers may not.
	if status, body := m.Do("POST", "/api/v1/containers/nosuch/redeploy", map[string]any{"pull": true}); status != 404 {
		t.Errorf("redeploy of nosuch: %d %s", status, body)
	}
	if status, body := m.Do("POST", "/api/v1/containers/web/redeploy", map[string]any{"pul": true}); status != 400 {
		t.Errorf("redeploy with an unknown field: %d %s", status, body)
	}
}

// TestRedeployPull: a tag that moved in its registry (pushed again) is
// pulled again by a redeploy with pull, with the usual image.pull
// progress events, and the new replicas run the new image.
func TestRedeployPull(t *testing.T) {
	reg := testenv.StartRegistry(t)
	repoTag := fmt.Sprintf("moor-redeploy-%s:latest", randSuffix())
	ref := reg.PushImage(t, testenv.TestImage(t), repoTag)
	t.Cleanup(func() { dockerQuiet("rmi", "-f", ref) })
	dir := imageTypes(t, map[string]string{"pulled": ref})
	e := NewEnvWith(t, func(e *Env) { e.CatalogDir = dir })
	m := e.Start()
	m.Create(map[string]any{"name": "p", "type": "pulled"})
	m.WaitStatus("p", "running", 90*time.Second)
	imageOf := func() string {
		ids := e.DockerIDs("p")
		if len(ids) != 1 {
			t.Fatalf("replicas of p: %v", ids)
		}
		return docker(t, "inspect", "-f", "{{.Image}}", ids[0])
	}
	old := imageOf()
	evs := m.eventsOf("p", 0)
	last := evs[len(evs)-1].Seq

	reg.PushImage(t, testenv.TestImage(t), repoTag) // the tag moves: a new random layer
	if status, body := m.Do("POST", "/api/v1/containers/p/redeploy", map[string]any{"pull": true}); status != 202 {
		t.Fatalf("redeploy: %d %s", status, body)
	}
	m.WaitFor("p", 90*time.Second, "running the new image", func(c Container, ok bool) bool {
		if !ok || c.Status != "running" || len(e.DockerIDs("p")) != 1 {
			return false
		}
		img, err := exec.Command("docker", "inspect", "-f", "{{.Image}}", e.DockerIDs("p")[0]).Output()
		return err == nil && strings.TrimSpace(string(img)) != old
	})
	var pulls int
	var done bool
	for _, ev := range m.eventsOf("p", last) {
		if ev.Kind == "image.pull" {
			pulls++
			if s, _ := ev.Data["status"].(string); strings.Contains(s, "Downloaded newer image") {
				done = true
			}
		}
	}
	if pulls == 0 || !done {
		t.Fatalf("%d image.pull events after the redeploy, newer image downloaded: %v", pulls, done)
	}
}

// TestCrashDuringRedeploy: moor killed with kill -9 half-way through a
// redeploy (a replica removed, its successor not created yet): the next
// moor finishes it from what PostgreSQL recorded.
func TestCrashDuringRedeploy(t *testing.T) {
	e := NewEnv(t)
	m := e.Start("MOOR_DEBUG_HALT_AT=replaced")
	m.Create(map[string]any{"name": "web", "type": "testapp", "replicas": 2})
	m.WaitStatus("web", "running", 60*time.Second)
	before := e.DockerIDs("web")
	if status, body := m.Do("POST", "/api/v1/containers/web/redeploy", map[string]any{}); status != 202 {
		t.Fatalf("redeploy: %d %s", status, body)
	}
	waitHalted(t, m, "replaced")
	m.Kill()
	m = e.Start()
	allNew(t, m, "web", 2, before)
	m.WaitFor("web", 30*time.Second, "redeployed recorded", func(Container, bool) bool {
		return e.Count(`SELECT count(*) FROM deployment_history WHERE container_name = 'web' AND action = 'redeployed'`) == 1
	})
}
