package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moorhq/moor/internal/testenv"
)

// published is a container's published ports, as the API shows them.
type published struct {
	Name     string `json:"name"`
	Port     int    `json:"port"`
	Protocol string `json:"protocol"`
	HostIP   string `json:"host_ip"`
	HostPort int    `json:"host_port"`
}

// getPublished reads a container's published ports and config version.
func (m *Moor) getPublished(name string) ([]published, int) {
	m.env.t.Helper()
	status, body := m.Do("GET", "/api/v1/containers/"+name, nil)
	if status != 200 {
		m.env.t.Fatalf("GET %s: %d %s", name, status, body)
	}
	var c struct {
		Published     []published `json:"published"`
		ConfigVersion int         `json:"config_version"`
	}
	if err := json.Unmarshal(body, &c); err != nil {
		m.env.t.Fatal(err)
	}
	return c.Published, c.ConfigVersion
}

// answersOnHost waits until http://127.0.0.1:port/ answers 200 with the
// test app's greeting, as a program on the host would reach it.
func answersOnHost(t *testing.T, port int) {
	t.Helper()
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	client := &http.Client{Timeout: 2 * time.Second}
	var last string
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		resp, err := client.Get(url)
		if err != nil {
			last = err.Error()
			continue
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == 200 && strings.Contains(string(body), "testapp") {
			return
		}
		last = fmt.Sprintf("%s %q", resp.Status, body)
	}
	t.Fatalf("%s never answered: %s", url, last)
}

// refusedOnHost waits until nothing listens on 127.0.0.1:port any more.
func refusedOnHost(t *testing.T, port int) {
	t.Helper()
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatalf("%s still accepts connections", addr)
		}
	}
}

// wantError checks an error answer's status, field and words.
func wantError(t *testing.T, what string, status int, body []byte, wantStatus int, field string, words ...string) {
	t.Helper()
	var eb struct {
		Error struct{ Code, Message, Field string }
	}
	json.Unmarshal(body, &eb)
	if status != wantStatus || eb.Error.Field != field {
		t.Fatalf("%s: %d %s, want %d naming field %q", what, status, body, wantStatus, field)
	}
	for _, w := range words {
		if !strings.Contains(eb.Error.Message, w) {
			t.Fatalf("%s: message %q does not say %q", what, eb.Error.Message, w)
		}
	}
}

// TestPublishPorts: an admin publishes the test app's port on the host and
// a program on the host reaches it there; the port is one container's (409
// naming the holder) and holds one replica (422 at create, scale and
// PATCH); a PATCH moves it, replacing the replica, and the new port
// answers while the old one is closed; removal frees it. The CLI deploys
// with -p, changes it with update -p and shows it in ls and inspect.
// Without MOOR_PUBLISH_PORTS operators may not publish at all, viewers
// never.
func TestPublishPorts(t *testing.T) {
	e := NewEnv(t)
	m := e.Start()
	p1, p2 := testenv.FreeTCPPort(t), testenv.FreeTCPPort(t)

	m.Create(map[string]any{"name": "web", "type": "testapp", "publish": []map[string]any{{"port": "http", "host_port": p1}}})
	m.WaitStatus("web", "running", 60*time.Second)
	got, version := m.getPublished("web")
	want := []published{{Name: "http", Port: 8080, Protocol: "tcp", HostIP: "127.0.0.1", HostPort: p1}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("published %+v, want %+v", got, want)
	}
	answersOnHost(t, p1)

	// The same host address and port for another container: 409 naming
	// the holder; the wildcard address overlaps it too.
	for _, ip := range []string{"127.0.0.1", "0.0.0.0"} {
		status, body := m.Do("POST", "/api/v1/containers", map[string]any{"name": "web2", "type": "testapp",
			"publish": []map[string]any{{"port": 8080, "host_port": p1, "host_ip": ip}}})
		wantError(t, "a taken host port on "+ip, status, body, 409, "", `is already published by container "web"`, strconv.Itoa(p1))
	}
	// One replica at most while ports are published.
	status, body := m.Do("POST", "/api/v1/containers", map[string]any{"name": "web2", "type": "testapp", "replicas": 2,
		"publish": []map[string]any{{"port": 8080, "host_port": p2}}})
	wantError(t, "2 replicas publishing at create", status, body, 422, "replicas", "must be 0 or 1 for a container that publishes host ports")
	status, body = m.Do("POST", "/api/v1/containers/web/scale", map[string]any{"replicas": 2})
	wantError(t, "scale to 2", status, body, 422, "replicas", "publishes host ports")
	status, body = m.Do("PATCH", "/api/v1/containers/web", map[string]any{"replicas": 3})
	wantError(t, "PATCH replicas 3", status, body, 422, "replicas", "publishes host ports")
	// Rules name the field.
	status, body = m.Do("POST", "/api/v1/containers", map[string]any{"name": "web2", "type": "testapp",
		"publish": []map[string]any{{"port": 5432, "host_port": p2}}})
	wantError(t, "an undeclared port", status, body, 422, "publish[0].port", "5432 is not a port of type \"testapp\"")

	// Operators may not publish without MOOR_PUBLISH_PORTS; viewers never
	// deploy at all.
	op := strings.TrimSpace(e.run("apikey", "create", "--name", "op", "--role", "operator"))
	viewer := strings.TrimSpace(e.run("apikey", "create", "--name", "viewer", "--role", "viewer"))
	status, body = m.Do("POST", "/api/v1/containers", map[string]any{"name": "opweb", "type": "testapp", "replicas": 0,
		"publish": []map[string]any{{"port": "http", "host_port": p2}}}, op)
	wantError(t, "an operator without MOOR_PUBLISH_PORTS", status, body, 403, "", "only admins may publish host ports", "MOOR_PUBLISH_PORTS is empty")
	status, body = m.Do("PATCH", "/api/v1/containers/web", map[string]any{"publish": []map[string]any{{"port": "http", "host_port": p2}}}, viewer)
	wantError(t, "a viewer", status, body, 403, "")
	// An operator's change that keeps the admin's ports is fine.
	if status, body := m.Do("PATCH", "/api/v1/containers/web", map[string]any{"env": map[string]string{"MODE": "web"}}, op); status != 202 {
		t.Fatalf("an operator's PATCH keeping the ports: %d %s", status, body)
	}

	// The CLI moves the port: the replica is replaced, the new port
	// answers, the old one is closed.
	c := newCLI(t)
	cliEnv := []string{"MOOR_URL=" + m.URL, "MOOR_API_KEY=" + e.Admin}
	before := e.DockerIDs("web")
	if r := c.runEnv(cliEnv, "", "update", "web", "-p", fmt.Sprintf("127.0.0.1:%d:http", p2), "--wait"); r.code != 0 || !strings.Contains(r.stdout, "web: running") {
		t.Fatalf("update -p: %s", r)
	}
	got, after := m.getPublished("web")
	if len(got) != 1 || got[0].HostPort != p2 || after != version+1 {
		t.Fatalf("after update -p: %+v, config version %d (was %d)", got, after, version)
	}
	if now := e.DockerIDs("web"); len(now) != 1 || now[0] == before[0] {
		t.Fatalf("replica not replaced: %v, was %v", now, before)
	}
	answersOnHost(t, p2)
	refusedOnHost(t, p1)
	binding := fmt.Sprintf("127.0.0.1:%d->8080/tcp", p2)
	if r := c.runEnv(cliEnv, "", "ls"); r.code != 0 || !strings.Contains(r.stdout, "PUBLISHED") || !strings.Contains(r.stdout, binding) {
		t.Fatalf("ls: %s", r)
	}
	if r := c.runEnv(cliEnv, "", "inspect", "web"); r.code != 0 || !strings.Contains(r.stdout, "published:   "+binding) {
		t.Fatalf("inspect: %s", r)
	}
	var hist struct {
		History []struct {
			Action  string
			Details map[string]any
		}
	}
	_, body = m.Do("GET", "/api/v1/containers/web/history", nil)
	json.Unmarshal(body, &hist)
	if last := hist.History[len(hist.History)-1]; last.Action != "update_requested" || fmt.Sprint(last.Details["publish"]) != fmt.Sprintf("map[from:[127.0.0.1:%d->8080/tcp] to:[%s]]", p1, binding) {
		t.Errorf("history: %+v", hist.History)
	}

	// The CLI deploys with -p; p1, given up by web, is free for it.
	if r := c.runEnv(cliEnv, "", "deploy", "testapp", "web3", "-p", fmt.Sprintf("%d:8080", p1), "--wait"); r.code != 0 {
		t.Fatalf("deploy -p: %s", r)
	}
	answersOnHost(t, p1)

	// Removed: the host port is free again, for moor and the host.
	for _, name := range []string{"web", "web3"} {
		if status, body := m.Do("DELETE", "/api/v1/containers/"+name, nil); status != 202 {
			t.Fatalf("remove %s: %d %s", name, status, body)
		}
	}
	for _, name := range []string{"web", "web3"} {
		m.WaitFor(name, 60*time.Second, "removed", func(_ Container, ok bool) bool { return !ok })
	}
	for _, p := range []int{p1, p2} {
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			t.Fatalf("host port %d after removal: %v", p, err)
		}
		l.Close()
	}
	m.Create(map[string]any{"name": "web4", "type": "testapp", "replicas": 0, "publish": []map[string]any{{"port": "http", "host_port": p2}}})
}

// TestPublishPortsOperatorRange: with MOOR_PUBLISH_PORTS set, operators
// publish inside the range and are refused outside it with the range in
// the message; admins publish anywhere.
func TestPublishPortsOperatorRange(t *testing.T) {
	e := NewEnv(t)
	inside, outside := testenv.FreeTCPPort(t), testenv.FreeTCPPort(t)
	m := e.Start(fmt.Sprintf("MOOR_PUBLISH_PORTS=%d", inside))
	op := strings.TrimSpace(e.run("apikey", "create", "--name", "op", "--role", "operator"))

	status, body := m.Do("POST", "/api/v1/containers", map[string]any{"name": "out", "type": "testapp",
		"publish": []map[string]any{{"port": "http", "host_port": outside}}}, op)
	wantError(t, "an operator outside the range", status, body, 403, "",
		fmt.Sprintf("publish[0].host_port: %d is outside the host ports operators may publish (%d, MOOR_PUBLISH_PORTS)", outside, inside))

	if status, body := m.Do("POST", "/api/v1/containers", map[string]any{"name": "in", "type": "testapp",
		"publish": []map[string]any{{"port": "http", "host_port": inside}}}, op); status != 202 {
		t.Fatalf("an operator inside the range: %d %s", status, body)
	}
	m.WaitStatus("in", "running", 60*time.Second)
	answersOnHost(t, inside)
	status, body = m.Do("PATCH", "/api/v1/containers/in", map[string]any{"publish": []map[string]any{{"port": "http", "host_port": outside}}}, op)
	wantError(t, "an operator's PATCH outside the range", status, body, 403, "", "outside the host ports operators may publish")

	// An admin may publish outside it (on a container deployed without
	// replicas: the claim is what is checked).
	m.Create(map[string]any{"name": "adm", "type": "testapp", "replicas": 0, "publish": []map[string]any{{"port": "http", "host_port": outside}}})
}

// TestPublishPortTakenOnHost: a host port another program listens on makes
// the deploy fail with words saying what to do; once the program lets go,
// moor's retry starts the container and the port answers. A port another
// Docker container publishes, or an address the host has not, says so.
func TestPublishPortTakenOnHost(t *testing.T) {
	e := NewEnv(t)
	m := e.Start()
	busy, byDocker := testenv.FreeTCPPort(t), testenv.FreeTCPPort(t)
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", busy))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()

	m.Create(map[string]any{"name": "db", "type": "testapp", "publish": []map[string]any{{"port": "http", "host_port": busy}}})
	c := m.WaitStatus("db", "failed", 60*time.Second)
	want := fmt.Sprintf("host port %d (127.0.0.1) is already in use on this host (by another program", busy)
	if !strings.HasPrefix(c.StatusReason, want) || !strings.Contains(c.StatusReason, "choose another host_port with PATCH /api/v1/containers/db") ||
		!strings.Contains(c.StatusReason, "moor tries again in") {
		t.Fatalf("status reason %q, want it to start %q", c.StatusReason, want)
	}
	l.Close()
	m.WaitStatus("db", "running", 60*time.Second)
	answersOnHost(t, busy)

	// A container moor does not manage holds the port.
	name := "moor-publish-test-" + randSuffix()
	docker(t, "run", "-d", "--name", name, "--label", testenv.TestLabel+"=1", "-p", fmt.Sprintf("127.0.0.1:%d:8080", byDocker), testenv.TestImageName)
	t.Cleanup(func() { dockerQuiet("rm", "-f", name) })
	m.Create(map[string]any{"name": "db2", "type": "testapp", "publish": []map[string]any{{"port": 8080, "host_port": byDocker}}})
	c = m.WaitStatus("db2", "failed", 60*time.Second)
	if want := fmt.Sprintf("host port %d (127.0.0.1) is already in use on this host (by a Docker container moor does not manage", byDocker); !strings.HasPrefix(c.StatusReason, want) {
		t.Fatalf("status reason %q, want it to start %q", c.StatusReason, want)
	}

	// An address the host has not (TEST-NET-1, never assigned).
	m.Create(map[string]any{"name": "db3", "type": "testapp", "publish": []map[string]any{{"port": 8080, "host_port": byDocker, "host_ip": "192.0.2.1"}}})
	c = m.WaitStatus("db3", "failed", 60*time.Second)
	if want := "host address 192.0.2.1 is not one of this host's addresses: choose another host_ip with PATCH /api/v1/containers/db3"; !strings.HasPrefix(c.StatusReason, want) {
		t.Fatalf("status reason %q, want it to start %q", c.StatusReason, want)
	}
}
