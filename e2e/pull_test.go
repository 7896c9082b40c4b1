package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/moorhq/moor/internal/testenv"
)

// TestImagePull deploys a type whose image is not on the engine: moor pulls
// it from a registry (one the test runs on loopback), records the pull
// progress as events, and reports a missing tag as a failure with its reason.
func TestImagePull(t *testing.T) {
	reg := testenv.StartRegistry(t)
	ref := reg.PushImage(t, testenv.TestImage(t), fmt.Sprintf("moor-pull-%s:v1", randSuffix()))
	missing := strings.TrimSuffix(ref, ":v1") + ":nope"
	t.Cleanup(func() { dockerQuiet("rmi", "-f", ref) })

	dir := imageTypes(t, map[string]string{"pulled": ref, "missing": missing})
	e := NewEnvWith(t, func(e *Env) { e.CatalogDir = dir })
	m := e.Start()

	m.Create(map[string]any{"name": "p", "type": "pulled"})
	c := m.WaitStatus("p", "running", 90*time.Second)
	status, body := m.Do("GET", "/api/v1/events?limit=1000", nil)
	var evs struct {
		Events []struct {
			Kind      string
			Container string
			Data      map[string]any
		}
	}
	json.Unmarshal(body, &evs)
	var pulls, completes int
	for _, ev := range evs.Events {
		if ev.Kind == "image.pull" && ev.Container == "p" {
			pulls++
			if s, _ := ev.Data["status"].(string); strings.Contains(s, "Pull complete") || strings.Contains(s, "Downloaded newer image") {
				completes++
			}
		}
	}
	if status != 200 || pulls == 0 || completes == 0 {
		t.Fatalf("pull progress events: %d (%d complete) in %s", pulls, completes, body)
	}
	if c.Image != ref {
		t.Fatalf("image %q", c.Image)
	}

	m.Create(map[string]any{"name": "q", "type": "missing"})
	c = m.WaitStatus("q", "failed", 60*time.Second)
	if !strings.Contains(c.StatusReason, missing) {
		t.Fatalf("reason %q does not name the image", c.StatusReason)
	}
	if ids := e.DockerIDs("q"); len(ids) != 0 {
		t.Fatalf("a failed pull left containers: %v", ids)
	}
}

// TestFailedDeployRetries: a deploy that fails says why in words and when
// moor tries again, and does try again by itself (with backoff, not only
// on the periodic resync, set to 10 minutes here): once the image exists,
// the container runs without anybody asking.
func TestFailedDeployRetries(t *testing.T) {
	reg := testenv.StartRegistry(t)
	ref := fmt.Sprintf("%s/moor-late-%s:v1", reg.Addr(), randSuffix())
	dir := imageTypes(t, map[string]string{"late": ref})
	e := NewEnvWith(t, func(e *Env) { e.CatalogDir = dir })
	m := e.Start("MOOR_RESYNC=10m")
	m.Create(map[string]any{"name": "late", "type": "late"})
	c := m.WaitStatus("late", "failed", 60*time.Second)
	if !strings.Contains(c.StatusReason, "does not exist in its registry") || !strings.Contains(c.StatusReason, "moor tries again in") {
		t.Fatalf("reason %q: want what happened and when the next try is", c.StatusReason)
	}
	m.WaitFor("late", 30*time.Second, "a second try", func(c Container, ok bool) bool {
		return ok && strings.Contains(c.StatusReason, "(attempt 3)")
	})
	if n := e.Count(`SELECT count(*) FROM events WHERE kind = 'container.retrying' AND container_name = 'late'`); n == 0 {
		t.Error("no container.retrying event")
	}
	if n := e.Count(`SELECT count(*) FROM events WHERE kind = 'container.failed' AND container_name = 'late'`); n != 1 {
		t.Errorf("the same failure recorded as failed %d times", n)
	}
	got := reg.PushImage(t, testenv.TestImage(t), strings.TrimPrefix(ref, reg.Addr()+"/"))
	t.Cleanup(func() { dockerQuiet("rmi", "-f", got) })
	m.WaitStatus("late", "running", 90*time.Second)
}
