package e2e

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/moorhq/moor/internal/testenv"
)

type readiness struct {
	Ready        bool              `json:"ready"`
	Checks       map[string]string `json:"checks"`
	LastEventSeq int64             `json:"last_event_seq"`
}

func (m *Moor) readyz(t *testing.T) (int, readiness) {
	t.Helper()
	status, body := m.Do("GET", "/readyz", nil, "")
	var r readiness
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatalf("readyz body %q", body)
	}
	return status, r
}

// TestDockerUnreachable cuts moor off the engine through a proxy socket the
// test controls: moor says so in /readyz, keeps serving reads, accepts
// changes, and catches up when the engine returns.
func TestDockerUnreachable(t *testing.T) {
	e := NewEnv(t)
	proxy := testenv.StartDockerProxy(t)
	m := e.Start("DOCKER_HOST=" + proxy.Host())
	m.Create(map[string]any{"name": "before", "type": "testapp"})
	m.WaitStatus("before", "running", 60*time.Second)
	if status, r := m.readyz(t); status != 200 || !r.Ready {
		t.Fatalf("readyz before cut: %d %+v", status, r)
	}

	proxy.Cut()
	deadline := time.Now().Add(15 * time.Second)
	for {
		status, r := m.readyz(t)
		if status == 503 && r.Checks["docker"] == "unavailable" && r.Checks["database"] == "ok" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("readyz never reported docker down: %d %+v", status, r)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Reads still work; changes are accepted and wait.
	if c, ok := m.Get("before"); !ok || c.Status != "running" {
		t.Fatalf("read while docker is away: %+v", c)
	}
	m.Create(map[string]any{"name": "during", "type": "testapp"})
	m.Do("POST", "/api/v1/containers/before/stop", nil)
	time.Sleep(3 * time.Second) // longer than a resync
	if c, _ := m.Get("during"); c.Status == "failed" || c.Status == "running" {
		t.Fatalf("container deployed or failed while docker was away: %+v", c)
	}
	if c, _ := m.Get("before"); c.Status != "running" {
		t.Fatalf("status changed while docker was away: %+v", c)
	}

	proxy.Restore()
	m.WaitStatus("during", "running", 60*time.Second)
	m.WaitStatus("before", "stopped", 60*time.Second)
	if status, r := m.readyz(t); status != 200 || !r.Ready {
		t.Fatalf("readyz after restore: %d %+v", status, r)
	}
}

// TestTwoProcesses runs two moor processes on one database: both hear every
// event, and each container is acted on once.
func TestTwoProcesses(t *testing.T) {
	e := NewEnv(t)
	a, b := e.Start(), e.Start()
	const n = 8
	for i := 0; i < n; i++ {
		m := a
		if i%2 == 1 {
			m = b
		}
		m.Create(map[string]any{"name": fmt.Sprintf("p%d", i), "type": "testapp"})
	}
	for i := 0; i < n; i++ {
		a.WaitStatus(fmt.Sprintf("p%d", i), "running", 90*time.Second)
	}
	last := e.Query(`SELECT max(seq) FROM events`)[0][0].(int64)
	for _, m := range []*Moor{a, b} {
		deadline := time.Now().Add(10 * time.Second)
		for {
			_, r := m.readyz(t)
			if r.LastEventSeq >= last {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s heard up to event %d of %d", m.URL, r.LastEventSeq, last)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	if ids := e.DockerIDs(""); len(ids) != n {
		t.Fatalf("%d docker containers for %d deploys", len(ids), n)
	}
	// Acted on once: one "creating" and one "running" per container.
	rows := e.Query(`SELECT container_name, action, count(*) FROM deployment_history
		WHERE action IN ('creating', 'running') GROUP BY 1, 2 HAVING count(*) <> 1`)
	if len(rows) != 0 {
		t.Fatalf("containers acted on more than once: %v", rows)
	}
	// Stop through one process, watch the other carry it out if it holds the work.
	a.Do("POST", "/api/v1/containers/p1/stop", nil)
	b.WaitStatus("p1", "stopped", 30*time.Second)
}
