package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moorhq/moor/internal/testenv"
)

// cli runs the moor binary as a person would in a shell of their own: a
// HOME of its own, none of the server's MOOR_* settings (the client
// commands need no database), MOOR_URL and MOOR_API_KEY only when a test
// sets them.
type cli struct {
	t    *testing.T
	home string
	env  []string
}

func newCLI(t *testing.T) *cli {
	c := &cli{t: t, home: t.TempDir()}
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "MOOR_") || strings.HasPrefix(kv, "XDG_CONFIG_HOME=") || strings.HasPrefix(kv, "HOME=") {
			continue
		}
		c.env = append(c.env, kv)
	}
	c.env = append(c.env, "HOME="+c.home)
	return c
}

// cliResult is one run: its exit code and output.
type cliResult struct {
	code           int
	stdout, stderr string
}

func (r cliResult) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
}

// runEnv runs moor with stdin and extra environment variables.
func (c *cli) runEnv(extra []string, stdin string, args ...string) cliResult {
	c.t.Helper()
	cmd := exec.Command(moorBinary(c.t), args...)
	cmd.Env = append(append([]string{}, c.env...), extra...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	code := 0
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		c.t.Fatalf("moor %s: %v", strings.Join(args, " "), err)
	}
	return cliResult{code, stdout.String(), stderr.String()}
}

// ok runs moor and wants exit 0.
func (c *cli) ok(stdin string, args ...string) cliResult {
	c.t.Helper()
	r := c.runEnv(nil, stdin, args...)
	if r.code != 0 {
		c.t.Fatalf("moor %s: %s", strings.Join(args, " "), r)
	}
	return r
}

// code runs moor and wants the exit code.
func (c *cli) code(want int, args ...string) cliResult {
	c.t.Helper()
	r := c.runEnv(nil, "", args...)
	if r.code != want {
		c.t.Fatalf("moor %s: want exit %d, got %s", strings.Join(args, " "), want, r)
	}
	return r
}

// bg is moor running in the background, its stdout read line by line.
type bg struct {
	out    *bufio.Reader
	exited chan struct{} // closed once it has exited
	err    error         // then: Wait's result
}

// start runs moor in the background: for -f. Its stdout is a pipe of our
// own, so Wait (in a goroutine from the start) never closes it before
// every line is read.
func (c *cli) start(args ...string) *bg {
	c.t.Helper()
	cmd := exec.Command(moorBinary(c.t), args...)
	cmd.Env = c.env
	r, w, err := os.Pipe()
	if err != nil {
		c.t.Fatal(err)
	}
	cmd.Stdout = w
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	w.Close()
	b := &bg{out: bufio.NewReader(r), exited: make(chan struct{})}
	go func() { b.err = cmd.Wait(); close(b.exited) }()
	c.t.Cleanup(func() {
		cmd.Process.Kill()
		<-b.exited
		r.Close()
		if c.t.Failed() {
			c.t.Logf("moor %s: stderr:\n%s", strings.Join(args, " "), stderr.String())
		}
	})
	return b
}

// readLineWith reads lines until one contains want, failing after timeout.
func readLineWith(t *testing.T, r *bufio.Reader, want string, timeout time.Duration) string {
	t.Helper()
	type line struct {
		s   string
		err error
	}
	var seen []string
	deadline := time.After(timeout)
	for {
		ch := make(chan line, 1)
		go func() { s, err := r.ReadString('\n'); ch <- line{s, err} }()
		select {
		case l := <-ch:
			seen = append(seen, l.s)
			if strings.Contains(l.s, want) {
				return l.s
			}
			if l.err != nil {
				t.Fatalf("stream ended (%v) before a line with %q; read:\n%s", l.err, want, strings.Join(seen, ""))
			}
		case <-deadline:
			t.Fatalf("no line with %q within %s; read:\n%s", want, timeout, strings.Join(seen, ""))
		}
	}
}

// TestCLIClient drives the client commands against a running moor, as a
// user in a terminal would: log in, deploy and wait, list, read logs,
// operate, manage keys and users, and get the documented exit codes.
func TestCLIClient(t *testing.T) {
	e := NewEnv(t)
	m := e.Start()
	c := newCLI(t)

	// Without a login: exit 4 and how to fix it.
	if r := c.code(4, "ls"); !strings.Contains(r.stderr, "moor login") {
		t.Fatalf("ls before login: %s", r)
	}
	// Login reads the key from stdin and writes the config file, 0600.
	r := c.ok(e.Admin+"\n", "login", "--url", m.URL)
	if !strings.Contains(r.stdout, "apikey:test-admin (admin)") {
		t.Fatalf("login: %s", r)
	}
	cfgPath := filepath.Join(c.home, ".config", "moor", "config.json")
	st, err := os.Stat(cfgPath)
	if err != nil {
		t.Fatalf("config file: %v", err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("config file mode %04o, want 0600", st.Mode().Perm())
	}
	var saved struct {
		URL    string `json:"url"`
		APIKey string `json:"api_key"`
	}
	b, _ := os.ReadFile(cfgPath)
	if err := json.Unmarshal(b, &saved); err != nil || saved.URL != m.URL || saved.APIKey != e.Admin {
		t.Fatalf("config file %s: %v", b, err)
	}
	// A wrong key is refused (exit 4) and not saved.
	wrongCfg := filepath.Join(c.home, "wrong.json")
	if r := c.runEnv([]string{"MOOR_CONFIG=" + wrongCfg}, "moor_"+strings.Repeat("x", 43)+"\n", "login", "--url", m.URL); r.code != 4 {
		t.Fatalf("login with a wrong key: %s", r)
	}
	if _, err := os.Stat(wrongCfg); !os.IsNotExist(err) {
		t.Fatalf("a refused login wrote %s", wrongCfg)
	}
	if r := c.ok("", "whoami"); !strings.Contains(r.stdout, "apikey:test-admin") || strings.Contains(r.stdout, e.Admin) {
		t.Fatalf("whoami: %s", r)
	}

	// The catalog, as a table and as JSON.
	if r := c.ok("", "types"); !strings.Contains(r.stdout, "TYPE") || !strings.Contains(r.stdout, "testapp") {
		t.Fatalf("types: %s", r)
	}
	var types []struct{ ID string }
	if err := json.Unmarshal([]byte(c.ok("", "types", "-o", "json").stdout), &types); err != nil || len(types) == 0 {
		t.Fatalf("types -o json: %v %v", types, err)
	}
	if r := c.ok("", "types", "testapp"); !strings.Contains(r.stdout, "MODE") || !strings.Contains(r.stdout, "web|worker") {
		t.Fatalf("types testapp: %s", r)
	}

	// Deploy and wait: it ends with the container running.
	r = c.ok("", "deploy", "testapp", "web1", "--wait", "-e", "GREETING=hi from the cli")
	if !strings.Contains(r.stdout, "web1: running") || !strings.Contains(r.stderr, "web1: deploying testapp") || !strings.Contains(r.stderr, "web1: running") {
		t.Fatalf("deploy --wait: %s", r)
	}
	if got, _ := m.Get("web1"); got.Status != "running" || got.Env["GREETING"] != "hi from the cli" {
		t.Fatalf("after deploy --wait: %+v", got)
	}

	// ls: a table, and JSON for scripts.
	r = c.ok("", "ls")
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "NAME") || !strings.Contains(lines[1], "web1") ||
		!strings.Contains(lines[1], "running") || !strings.Contains(lines[1], "1/1") {
		t.Fatalf("ls: %s", r)
	}
	var list []Container
	if err := json.Unmarshal([]byte(c.ok("", "ls", "-o", "json").stdout), &list); err != nil || len(list) != 1 || list[0].Name != "web1" || list[0].Status != "running" {
		t.Fatalf("ls -o json: %+v %v", list, err)
	}
	if r := c.ok("", "inspect", "web1"); !strings.Contains(r.stdout, "status:") || !strings.Contains(r.stdout, "REPLICA") {
		t.Fatalf("inspect: %s", r)
	}

	// Logs, and logs -f: the first lines at once, then what the replica
	// prints as it stops (below); the stream ends with the replica.
	if r := c.ok("", "logs", "web1"); !strings.Contains(r.stdout, "listening on") {
		t.Fatalf("logs: %s", r)
	}
	follow := c.start("logs", "-f", "web1")
	readLineWith(t, follow.out, "listening on", 15*time.Second)

	// Follow events while the container is operated on, from the newest
	// event now (so none can pass before the websocket is open).
	var evs struct{ Events []struct{ Seq int64 } }
	if _, body := m.Do("GET", "/api/v1/events?limit=1000", nil); json.Unmarshal(body, &evs) != nil || len(evs.Events) == 0 {
		t.Fatalf("events: %s", body)
	}
	events := c.start("events", "-f", "--container", "web1", "--after", fmt.Sprint(evs.Events[len(evs.Events)-1].Seq))

	// stop and start with --wait, then scale.
	if r := c.ok("", "stop", "web1", "--wait"); !strings.Contains(r.stdout, "web1: stopped") {
		t.Fatalf("stop --wait: %s", r)
	}
	if got, _ := m.Get("web1"); got.Status != "stopped" {
		t.Fatalf("after stop --wait: %s", got.Status)
	}
	readLineWith(t, events.out, "container.stopped", 15*time.Second)
	readLineWith(t, follow.out, "signal received, shutting down", 15*time.Second)
	select {
	case <-follow.exited:
		if follow.err != nil {
			t.Fatalf("logs -f after the replica stopped: %v", follow.err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("logs -f still running 15s after the replica stopped")
	}
	c.ok("", "start", "web1", "--wait")
	if got, _ := m.Get("web1"); got.Status != "running" {
		t.Fatalf("after start --wait: %s", got.Status)
	}
	readLineWith(t, events.out, "container.running", 15*time.Second)
	c.ok("", "scale", "web1", "2", "--wait")
	if got, _ := m.Get("web1"); len(got.Instances) != 2 || got.Instances[0].Status != "running" || got.Instances[1].Status != "running" {
		t.Fatalf("after scale --wait: %+v", got.Instances)
	}
	// restart --wait returns once every replica was restarted and takes
	// traffic again (the status stays running throughout: the generation
	// the restart's answer carried decides).
	restartedAfter := time.Now()
	if r := c.ok("", "restart", "web1", "--wait"); !strings.Contains(r.stdout, "web1: running") {
		t.Fatalf("restart --wait: %s", r)
	}
	_, raw := m.Do("GET", "/api/v1/containers/web1", nil)
	var gens struct {
		G         int64 `json:"generation"`
		OG        int64 `json:"observed_generation"`
		Instances []struct {
			DockerID string `json:"docker_id"`
			Status   string `json:"status"`
		} `json:"instances"`
	}
	if err := json.Unmarshal(raw, &gens); err != nil || gens.OG != gens.G || len(gens.Instances) != 2 {
		t.Fatalf("after restart --wait: %s", raw)
	}
	for _, in := range gens.Instances {
		started, err := time.Parse(time.RFC3339Nano, docker(t, "inspect", "-f", "{{.State.StartedAt}}", in.DockerID))
		if err != nil || in.Status != "running" || !started.After(restartedAfter.Add(-time.Second)) {
			t.Fatalf("replica %s after restart --wait: %s, started %v (%v)", in.DockerID, in.Status, started, err)
		}
	}

	// events: a table, and JSON lines.
	if r := c.ok("", "events", "--container", "web1", "--limit", "1000"); !strings.Contains(r.stdout, "container.scale_requested") {
		t.Fatalf("events: %s", r)
	}
	r = c.ok("", "events", "--kind", "container.", "--limit", "1000", "-o", "json")
	seqs := func(out string) []int64 {
		var s []int64
		for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
			var ev struct{ Seq int64 }
			if err := json.Unmarshal([]byte(l), &ev); err != nil || ev.Seq == 0 {
				t.Fatalf("events -o json line %q: %v", l, err)
			}
			s = append(s, ev.Seq)
		}
		return s
	}
	seqs(r.stdout)
	// Without --after: the latest, oldest first; with it, the first after.
	first := seqs(c.ok("", "events", "--container", "web1", "--after", "0", "--limit", "1", "-o", "json").stdout)
	latest := seqs(c.ok("", "events", "--container", "web1", "--limit", "2", "-o", "json").stdout)
	if len(first) != 1 || len(latest) != 2 || latest[0] >= latest[1] || latest[0] <= first[0] {
		t.Fatalf("events --limit 2 gave %v, the first event is %v", latest, first)
	}

	// Keys: create (the key alone on stdout), list, use, revoke.
	key := strings.TrimSpace(c.ok("", "keys", "create", "ci", "--role", "operator").stdout)
	if !strings.HasPrefix(key, "moor_") || strings.Contains(key, "\n") {
		t.Fatalf("keys create printed %q, want the key alone", key)
	}
	if r := c.ok("", "keys", "ls"); !strings.Contains(r.stdout, "ci") || !strings.Contains(r.stdout, "operator") || strings.Contains(r.stdout, key) {
		t.Fatalf("keys ls: %s", r)
	}
	// The environment wins over the file.
	if r := c.runEnv([]string{"MOOR_API_KEY=" + key}, "", "whoami"); r.code != 0 || !strings.Contains(r.stdout, "apikey:ci (operator)") {
		t.Fatalf("whoami with MOOR_API_KEY: %s", r)
	}
	if r := c.runEnv([]string{"MOOR_API_KEY=" + key}, "", "keys", "ls"); r.code != 4 {
		t.Fatalf("keys ls as an operator: want exit 4 (403), got %s", r)
	}
	c.ok("", "keys", "revoke", "ci")
	if r := c.runEnv([]string{"MOOR_API_KEY=" + key}, "", "ls"); r.code != 4 {
		t.Fatalf("ls with a revoked key: want exit 4, got %s", r)
	}

	// Users: add (password on stdin), list, set a password, remove.
	if r := c.ok("correct horse battery staple\n", "users", "add", "ann", "--role", "operator"); !strings.Contains(r.stdout, "added user ann (operator)") {
		t.Fatalf("users add: %s", r)
	}
	if r := c.ok("", "users", "ls"); !strings.Contains(r.stdout, "ann") {
		t.Fatalf("users ls: %s", r)
	}
	c.ok("a different long passphrase\n", "users", "passwd", "ann")
	if status, _ := m.Do("POST", "/api/v1/session", map[string]string{"username": "ann", "password": "a different long passphrase"}, ""); status != 200 {
		t.Fatalf("sign-in with the new password: %d", status)
	}
	if r := c.runEnv(nil, "short\n", "users", "passwd", "ann"); r.code != 2 || !strings.Contains(r.stderr, "password") {
		t.Fatalf("users passwd with a short password: want exit 2 naming the password, got %s", r)
	}
	c.ok("", "users", "rm", "ann")
	if r := c.ok("", "users", "ls"); strings.Contains(r.stdout, "ann") {
		t.Fatalf("users ls after rm: %s", r)
	}

	// Exit codes that say what happened.
	if r := c.code(3, "logs", "nosuch"); !strings.Contains(r.stderr, "nosuch") {
		t.Fatalf("logs of an unknown container: %s", r)
	}
	c.code(3, "rm", "nosuch")
	if r := c.code(2, "deploy", "testapp", "Bad_Name"); !strings.Contains(r.stderr, "name") {
		t.Fatalf("deploy with a bad name: %s", r)
	}
	if r := c.code(2, "deploy", "testapp", "web2", "-e", "MODE=nope"); !strings.Contains(r.stderr, "env.MODE") {
		t.Fatalf("deploy with a bad value: %s", r)
	}
	c.code(2, "deploy", "testapp", "web1") // 409: taken
	c.code(2, "scale", "web1", "99")
	c.code(1, "scale", "web1", "many")
	c.code(1, "ls", "--no-such-flag")
	c.code(1, "deploy", "testapp")
	if r := c.runEnv([]string{"MOOR_URL=http://127.0.0.1:1"}, "", "ls"); r.code != 5 {
		t.Fatalf("ls of an unreachable moor: want exit 5, got %s", r)
	}
	// --wait that runs out of time: exit 7; the deploy itself goes on.
	if r := c.code(7, "deploy", "testapp", "slow", "--wait", "--timeout", "1ms"); !strings.Contains(r.stderr, "not running after") {
		t.Fatalf("deploy --timeout 1ms: %s", r)
	}

	// rm --wait: gone when it returns.
	c.ok("", "rm", "web1", "slow", "--wait")
	if _, ok := m.Get("web1"); ok {
		t.Fatal("web1 still there after rm --wait")
	}
	if _, ok := m.Get("slow"); ok {
		t.Fatal("slow still there after rm --wait")
	}
	// history: kept after removal; a new web1 has its own, --all both.
	if r := c.ok("", "history", "web1"); !strings.Contains(r.stdout, "removed") || !strings.Contains(r.stdout, "scale_requested") {
		t.Fatalf("history after removal: %s", r)
	}
	c.ok("", "deploy", "testapp", "web1")
	if r := c.ok("", "history", "web1"); strings.Contains(r.stdout, "scale_requested") || !strings.Contains(r.stdout, "created") {
		t.Fatalf("history of the new web1 shows the old one's: %s", r)
	}
	if r := c.ok("", "history", "web1", "--all"); !strings.Contains(r.stdout, "scale_requested") {
		t.Fatalf("history --all lacks the old web1's: %s", r)
	}
	c.ok("", "rm", "web1", "--wait")
	if ids := e.DockerIDs("web1"); len(ids) != 0 {
		t.Fatalf("docker containers left after rm --wait: %v", ids)
	}

	c.ok("", "logout")
	if _, err := os.Stat(cfgPath); !os.IsNotExist(err) {
		t.Fatalf("logout left %s", cfgPath)
	}
	c.code(4, "ls")
}

// TestCLIPull deploys with --wait a type whose image must be pulled (from a
// registry the test runs): the pull's progress is shown, and a missing
// image ends in exit 6 naming moor's reason.
func TestCLIPull(t *testing.T) {
	reg := testenv.StartRegistry(t)
	ref := reg.PushImage(t, testenv.TestImage(t), fmt.Sprintf("moor-clipull-%s:v1", randSuffix()))
	missing := strings.TrimSuffix(ref, ":v1") + ":nope"
	t.Cleanup(func() { dockerQuiet("rmi", "-f", ref) })
	dir := imageTypes(t, map[string]string{"pulled": ref, "missing": missing})
	e := NewEnvWith(t, func(e *Env) { e.CatalogDir = dir })
	m := e.Start()
	c := newCLI(t)
	c.env = append(c.env, "MOOR_URL="+m.URL, "MOOR_API_KEY="+e.Admin)

	r := c.ok("", "deploy", "pulled", "p", "--wait")
	// Not a terminal: plain lines, one per finished layer, then the total.
	if !strings.Contains(r.stderr, "p: pulling "+ref) || !strings.Contains(r.stderr, "p: pulled "+ref) ||
		!strings.Contains(r.stderr, "Pull complete") || strings.Contains(r.stderr, "\x1b[") {
		t.Fatalf("deploy --wait of an image to pull: %s", r)
	}
	if !strings.Contains(r.stdout, "p: running") {
		t.Fatalf("deploy --wait: %s", r)
	}
	r = c.code(6, "deploy", "missing", "q", "--wait")
	if !strings.Contains(r.stderr, "q failed") || !strings.Contains(r.stderr, missing) {
		t.Fatalf("deploy --wait of a missing image: want exit 6 naming the image, got %s", r)
	}
}
