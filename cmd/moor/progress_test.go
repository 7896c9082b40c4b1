package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/moorhq/moor/internal/domain"
)

// pullEvents is a pull of two layers as the reconciler records it.
func pullEvents() []domain.Event {
	var evs []domain.Event
	add := func(layer, status string, cur, total int64) {
		data, _ := json.Marshal(pullEvent{Image: "reg/app:v1", Layer: layer, Status: status, Current: cur, Total: total})
		evs = append(evs, domain.Event{Seq: int64(len(evs) + 1), Kind: "image.pull", Container: "blog", Data: data})
	}
	add("v1", "Pulling from app", 0, 0)
	add("aaaaaaaaaaaa", "Pulling fs layer", 0, 0)
	add("bbbbbbbbbbbb", "Pulling fs layer", 0, 0)
	add("aaaaaaaaaaaa", "Downloading", 1_000_000, 4_000_000)
	add("bbbbbbbbbbbb", "Downloading", 500_000, 1_000_000)
	add("aaaaaaaaaaaa", "Downloading", 3_000_000, 4_000_000)
	add("bbbbbbbbbbbb", "Download complete", 0, 0)
	add("bbbbbbbbbbbb", "Pull complete", 0, 0)
	add("aaaaaaaaaaaa", "Download complete", 0, 0)
	add("aaaaaaaaaaaa", "Extracting", 4_000_000, 4_000_000)
	add("aaaaaaaaaaaa", "Pull complete", 0, 0)
	add("", "Digest: sha256:0123", 0, 0)
	add("", "Status: Downloaded newer image for reg/app:v1", 0, 0)
	return evs
}

// TestProgressPlain: without a terminal, one line per finished layer and
// the total, no escape sequences; steps and replicas as lines.
func TestProgressPlain(t *testing.T) {
	var b bytes.Buffer
	p := newProgress(&b, false)
	p.container(domain.Container{Name: "blog", Status: domain.StatusCreating, Replicas: 1})
	for _, ev := range pullEvents() {
		p.pull(ev)
	}
	p.container(domain.Container{Name: "blog", Status: domain.StatusRunning, Replicas: 1})
	p.container(domain.Container{Name: "blog", Status: domain.StatusRunning, Replicas: 1}) // no change: no line
	p.end()
	want := `blog: creating
blog: pulling reg/app:v1
blog: pull reg/app:v1: layer bbbbbbbbbbbb: Pull complete (1/2)
blog: pull reg/app:v1: layer aaaaaaaaaaaa: Pull complete (2/2)
blog: pulled reg/app:v1 (2 layers, 5.0 MB)
blog: running
`
	if b.String() != want {
		t.Fatalf("got\n%s\nwant\n%s", b.String(), want)
	}
}

// TestProgressTerminal: on a terminal the pull is one bar redrawn in
// place, erased when the pull ends; step lines go above it.
func TestProgressTerminal(t *testing.T) {
	var b bytes.Buffer
	p := newProgress(&b, true)
	evs := pullEvents()
	for _, ev := range evs[:6] {
		p.pull(ev)
	}
	// 3 of 5 MB: layer a 3/4, layer b 0.5/1.
	if !strings.HasSuffix(b.String(), "\r\x1b[Kpulling reg/app:v1 [================>       ]  70% 3.5/5.0 MB, 0/2 layers") {
		t.Fatalf("bar: %q", b.String())
	}
	b.Reset()
	p.stepf("blog: a step")
	if b.String() != "\r\x1b[Kblog: a step\n\r\x1b[Kpulling reg/app:v1 [================>       ]  70% 3.5/5.0 MB, 0/2 layers" {
		t.Fatalf("a step under the bar: %q", b.String())
	}
	for _, ev := range evs[6:] {
		p.pull(ev)
	}
	if !strings.Contains(b.String(), "[========================] 100% 5.0/5.0 MB, 2/2 layers") ||
		!strings.HasSuffix(b.String(), "\r\x1b[Kblog: pulled reg/app:v1 (2 layers, 5.0 MB)\n") {
		t.Fatalf("end of the pull: %q", b.String())
	}
	b.Reset()
	p.end()
	if b.Len() != 0 {
		t.Fatalf("end after the pull wrote %q", b.String())
	}
}

// TestWaitCheck: when --wait is done, failed, or still waiting.
func TestWaitCheck(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	running := domain.Instance{Status: domain.StatusRunning, Health: "healthy"}
	starting := domain.Instance{Status: domain.StatusRunning, Health: "starting"}
	for _, c := range []struct {
		name string
		goal waitGoal
		c    domain.Container
		done bool
		code int // of the error, 0: none
	}{
		{"running", waitGoal{status: "running", replicas: 1}, domain.Container{Status: "running", Instances: []domain.Instance{running}}, true, 0},
		{"health starting", waitGoal{status: "running", replicas: 1}, domain.Container{Status: "running", Instances: []domain.Instance{starting}}, false, 0},
		{"one of two", waitGoal{status: "running", replicas: 2}, domain.Container{Status: "running", Instances: []domain.Instance{running}}, false, 0},
		{"creating", waitGoal{status: "running", replicas: 1}, domain.Container{Status: "creating"}, false, 0},
		{"failed", waitGoal{status: "running", replicas: 1}, domain.Container{Status: "failed", StatusReason: "pull: not found"}, false, exitFailed},
		{"failed before the change", waitGoal{status: "running", replicas: 1, since: t0}, domain.Container{Status: "failed", UpdatedAt: t0}, false, 0},
		{"failed after the change", waitGoal{status: "running", replicas: 1, since: t0}, domain.Container{Status: "failed", UpdatedAt: t0.Add(time.Millisecond)}, false, exitFailed},
		{"running before the change", waitGoal{status: "stopped", since: t0}, domain.Container{Status: "running", UpdatedAt: t0}, false, 0},
		{"stopped", waitGoal{status: "stopped", since: t0}, domain.Container{Status: "stopped", DesiredState: "stopped", UpdatedAt: t0.Add(time.Second)}, true, 0},
		{"stopped outside", waitGoal{status: "running", replicas: 1, since: t0}, domain.Container{Status: "stopped", DesiredState: "stopped", UpdatedAt: t0.Add(time.Second)}, false, exitFailed},
		// A stack's service others wait for to complete: done once it exited 0 and moor left it stopped.
		{"completed", waitGoal{status: "running", replicas: 1, completed: true}, domain.Container{Status: "stopped", StatusCause: domain.CauseStoppedOutside, DesiredState: "stopped"}, true, 0},
		{"completed, not waited for so", waitGoal{status: "running", replicas: 1}, domain.Container{Status: "stopped", StatusCause: domain.CauseStoppedOutside, DesiredState: "stopped"}, false, exitFailed},
		// A restart (or redeploy) keeps the status running: its generation decides.
		{"restart under way", waitGoal{status: "running", replicas: 1, since: t0, generation: 5},
			domain.Container{Status: "running", Generation: 5, ObservedGeneration: 4, UpdatedAt: t0.Add(time.Second), Instances: []domain.Instance{running}}, false, 0},
		{"restart done", waitGoal{status: "running", replicas: 1, since: t0, generation: 5},
			domain.Container{Status: "running", Generation: 5, ObservedGeneration: 5, UpdatedAt: t0.Add(time.Second), Instances: []domain.Instance{running}}, true, 0},
		{"restart done, replica not ready yet", waitGoal{status: "running", replicas: 1, since: t0, generation: 5},
			domain.Container{Status: "running", Generation: 5, ObservedGeneration: 5, UpdatedAt: t0.Add(time.Second), Instances: []domain.Instance{starting}}, false, 0},
	} {
		w := &waiter{progress: newProgress(&bytes.Buffer{}, false)}
		c.goal.name = "blog"
		c.c.Name = "blog"
		done, err := w.check(c.goal, c.c, nil)
		if done != c.done || exitCode(err) != c.code {
			t.Errorf("%s: done %v, err %v; want %v, exit %d", c.name, done, err, c.done, c.code)
		}
	}
}

// TestProgressLocalImage: a pull asked of an image no registry has is one
// line saying so, no bar.
func TestProgressLocalImage(t *testing.T) {
	var b bytes.Buffer
	p := newProgress(&b, true)
	data, _ := json.Marshal(map[string]any{"image": "app:dev", "status": "Not pulled: app:dev was built on this engine", "local": true})
	p.pull(domain.Event{Kind: "image.pull", Container: "blog", Data: data})
	p.end()
	if b.String() != "blog: Not pulled: app:dev was built on this engine\n" {
		t.Fatalf("got %q", b.String())
	}
}
