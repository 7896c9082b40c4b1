//go:build linux

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"log"
	"os/exec"
	"strings"
	"sync"
	"time"
)

// docker runs the docker CLI, as a user would, and returns its trimmed output.
func docker(ctx context.Context, args ...string) (string, error) {
	out, err := exec.CommandContext(ctx, "docker", args...).CombinedOutput()
	s := strings.TrimSpace(string(out))
	if err != nil {
		return s, fmt.Errorf("docker %s: %w: %s", strings.Join(args, " "), err, s)
	}
	return s, nil
}

func dockerLines(ctx context.Context, args ...string) ([]string, error) {
	out, err := docker(ctx, args...)
	if err != nil {
		return nil, err
	}
	return strings.Fields(out), nil
}

// removeDockerObjects removes every container and volume of the run (moor's,
// by its owner label; the bench's own, by the run label) and the network.
func removeDockerObjects(ctx context.Context, installation, runID, network string) {
	var filters []string
	if installation != "" {
		filters = append(filters, "label=moor.owner="+installation)
	}
	if runID != "" {
		filters = append(filters, "label=moor.bench.run="+runID)
	}
	for _, f := range filters {
		if ids, _ := dockerLines(ctx, "ps", "-aq", "--filter", f); len(ids) > 0 {
			docker(ctx, append([]string{"rm", "-f", "-v"}, ids...)...)
		}
		if vols, _ := dockerLines(ctx, "volume", "ls", "-q", "--filter", f); len(vols) > 0 {
			docker(ctx, append([]string{"volume", "rm", "-f"}, vols...)...)
		}
	}
	if runID != "" {
		if imgs, _ := dockerLines(ctx, "image", "ls", "-q", "--filter", "label=moor.bench.run="+runID); len(imgs) > 0 {
			docker(ctx, append([]string{"image", "rm", "-f"}, imgs...)...)
		}
	}
	if network != "" {
		if _, err := docker(ctx, "network", "inspect", network); err == nil {
			if _, err := docker(ctx, "network", "rm", network); err != nil {
				// Seen with Engine 20.10 after many concurrent removals: an
				// empty network with a stale endpoint count (moby/moby#42119).
				log.Printf("warning: %v", err)
			}
		}
	}
}

// dockerEvents follows `docker events` for containers, volumes and networks,
// keeping the engine's own timestamps.
type dockerEvents struct {
	cmd *exec.Cmd

	mu        sync.Mutex
	first     map[string]map[string]time.Time // container or volume name -> action -> first time
	idName    map[string]string               // container id -> name
	log       []dockerEvent                   // container events
	changed   chan struct{}
	done      chan struct{}
	streamErr error
}

type dockerEvent struct {
	at     time.Time
	name   string
	action string // up to the first ':' ("exec_start: /testapp -check" -> exec_start)
}

type eventMessage struct {
	Type   string `json:"Type"`
	Action string `json:"Action"`
	Actor  struct {
		ID         string            `json:"ID"`
		Attributes map[string]string `json:"Attributes"`
	} `json:"Actor"`
	TimeNano int64 `json:"timeNano"`
}

func watchDockerEvents(ctx context.Context, runID string) (*dockerEvents, error) {
	d := &dockerEvents{
		first: map[string]map[string]time.Time{}, idName: map[string]string{},
		changed: make(chan struct{}), done: make(chan struct{}),
	}
	// --since: events from now on even if the stream connects late.
	since := fmt.Sprintf("%.3f", float64(time.Now().Add(-time.Second).UnixNano())/1e9)
	d.cmd = exec.Command("docker", "events", "--format", "{{json .}}", "--since", since,
		"--filter", "type=container", "--filter", "type=volume", "--filter", "type=network")
	out, err := d.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := d.cmd.Start(); err != nil {
		return nil, fmt.Errorf("docker events: %w", err)
	}
	go func() {
		defer close(d.done)
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var m eventMessage
			if json.Unmarshal(sc.Bytes(), &m) != nil {
				continue
			}
			d.add(m)
		}
		d.mu.Lock()
		d.streamErr = fmt.Errorf("docker events ended")
		d.mu.Unlock()
		d.cmd.Wait()
	}()
	// The stream is live once an object made now shows up in it.
	probe := "bench-" + runID + "-sync"
	if _, err := docker(ctx, "volume", "create", "--label", "moor.bench=1", "--label", "moor.bench.run="+runID, probe); err != nil {
		d.stop()
		return nil, err
	}
	defer docker(ctx, "volume", "rm", "-f", probe)
	if _, err := d.wait(ctx, probe, "create", 20*time.Second); err != nil {
		d.stop()
		return nil, fmt.Errorf("docker events stream: %w", err)
	}
	return d, nil
}

func (d *dockerEvents) add(m eventMessage) {
	at := time.Unix(0, m.TimeNano)
	action, _, _ := strings.Cut(m.Action, ":")
	var name string
	d.mu.Lock()
	defer d.mu.Unlock()
	switch m.Type {
	case "container":
		name = m.Actor.Attributes["name"]
		if name != "" {
			d.idName[m.Actor.ID] = name
		}
		d.log = append(d.log, dockerEvent{at, name, action})
	case "volume":
		name = m.Actor.ID
	case "network":
		// connect/disconnect: the container is an attribute.
		name = d.idName[m.Actor.Attributes["container"]]
		action = "network_" + action
	}
	if name == "" {
		return
	}
	fm := d.first[name]
	if fm == nil {
		fm = map[string]time.Time{}
		d.first[name] = fm
	}
	if _, ok := fm[action]; !ok {
		fm[action] = at
	}
	close(d.changed)
	d.changed = make(chan struct{})
}

// wait returns when the engine reported action for the named object.
func (d *dockerEvents) wait(ctx context.Context, name, action string, timeout time.Duration) (time.Time, error) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		d.mu.Lock()
		at, ok := d.first[name][action]
		ch := d.changed
		err := d.streamErr
		d.mu.Unlock()
		if ok {
			return at, nil
		}
		if err != nil {
			return time.Time{}, err
		}
		select {
		case <-ch:
		case <-deadline.C:
			return time.Time{}, fmt.Errorf("no %s event for %s: %w", action, name, errTimeout)
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		}
	}
}

// at returns the time of the first action on name (zero if none).
func (d *dockerEvents) at(name, action string) time.Time {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.first[name][action]
}

// actions counts container events by action in [from, to) for names with
// the prefix.
func (d *dockerEvents) actions(prefix string, from, to time.Time) map[string]int {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := map[string]int{}
	for _, e := range d.log {
		if strings.HasPrefix(e.name, prefix) && !e.at.Before(from) && e.at.Before(to) {
			out[e.action]++
		}
	}
	return out
}

func (d *dockerEvents) stop() {
	if d.cmd.Process != nil {
		d.cmd.Process.Kill()
	}
	select {
	case <-d.done:
	case <-time.After(5 * time.Second):
		log.Printf("docker events did not stop")
	}
}

// buildHealthImage tags image anew with the testapp type's health check as
// its HEALTHCHECK (exec form, which `docker run --health-cmd` cannot give:
// it only makes shell-form checks, and the image has no shell). The
// `docker run` side then runs the same probes as moor's containers: at 50
// containers they are a load the engine carries while the rest start.
// Only metadata changes; the layers are the image's own.
func buildHealthImage(ctx context.Context, image, runID string) (string, error) {
	tag := "moor-bench-health:" + runID
	dockerfile := "FROM " + image + "\n" +
		`HEALTHCHECK --interval=1s --timeout=1s --retries=3 CMD ["/testapp", "-check"]` + "\n"
	cmd := exec.CommandContext(ctx, "docker", "build", "-q", "-t", tag,
		"--label", "moor.bench=1", "--label", "moor.bench.run="+runID, "-")
	cmd.Stdin = strings.NewReader(dockerfile)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("docker build %s: %w: %s", tag, err, strings.TrimSpace(string(out)))
	}
	return tag, nil
}
