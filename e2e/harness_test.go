// Package e2e runs the moor binary against real PostgreSQL and the real
// Docker engine, as a user would.
package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/moorhq/moor/internal/testenv"
)

func TestMain(m *testing.M) { testenv.RunMain(m) }

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// moorBinary builds cmd/moor once per test process.
func moorBinary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "moor-e2e-bin-")
		if err != nil {
			buildErr = err
			return
		}
		testenv.AtExit(func() { os.RemoveAll(dir) })
		binPath = filepath.Join(dir, "moor")
		_, file, _, _ := runtime.Caller(0)
		root := filepath.Dir(filepath.Dir(file))
		args := []string{"build", "-o", binPath}
		if testenv.Race {
			args = append(args, "-race")
		}
		cmd := exec.Command("go", append(args, "./cmd/moor")...)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("build moor: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

func randSuffix() string {
	b := make([]byte, 4)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// Env is one moor installation under test: its own database, network, data
// directory and API keys.
type Env struct {
	t       testing.TB
	DBURL   string
	Network string
	DataDir string
	Admin   string // admin API key
	Extra   []string
	// CatalogDir replaces e2e/testdata/catalog when set.
	CatalogDir string
}

// Moor is one running moor process.
type Moor struct {
	env  *Env
	URL  string
	cmd  *exec.Cmd
	logs *syncBuffer
	done chan struct{}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// NewEnv prepares an installation: database migrated, admin key, and a
// cleanup that removes every Docker object it created, even on failure.
func NewEnv(t testing.TB, extra ...string) *Env {
	t.Helper()
	return NewEnvWith(t, func(e *Env) { e.Extra = extra })
}

// NewEnvWith is NewEnv with settings changed by set before anything runs.
func NewEnvWith(t testing.TB, set func(*Env)) *Env {
	t.Helper()
	testenv.TestImage(t)
	e := &Env{t: t, DBURL: testenv.Postgres(t), Network: "moor-t-" + randSuffix(), DataDir: t.TempDir()}
	set(e)
	out := e.run("migrate")
	if !strings.Contains(out, "0001_core") {
		t.Fatalf("migrate printed %q", out)
	}
	e.Admin = strings.TrimSpace(e.run("apikey", "create", "--name", "test-admin", "--role", "admin"))
	t.Cleanup(e.cleanupDocker)
	return e
}

// imageTypes writes a catalog directory with one type per id -> image: a
// web server on port 8080, as the test image is (for NewEnvWith's
// CatalogDir).
func imageTypes(t testing.TB, images map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for id, image := range images {
		yaml := fmt.Sprintf("id: %s\ntitle: %s\nimage: %s\ncategories: [test]\nports:\n  - name: http\n    port: 8080\n    http: true\n", id, id, image)
		if err := os.WriteFile(filepath.Join(dir, id+".yaml"), []byte(yaml), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func (e *Env) environ(extra ...string) []string {
	_, file, _, _ := runtime.Caller(0)
	catalogDir := filepath.Join(filepath.Dir(file), "testdata", "catalog")
	if e.CatalogDir != "" {
		catalogDir = e.CatalogDir
	}
	env := append(os.Environ(),
		"MOOR_DATABASE_URL="+e.DBURL,
		"MOOR_NETWORK="+e.Network,
		"MOOR_DATA_DIR="+e.DataDir,
		"MOOR_CATALOG_DIR="+catalogDir,
		"MOOR_RESYNC=2s",
		"MOOR_LOG_LEVEL=debug",
		// Short drains keep the suite fast; TestTraefikDrain sets its own.
		"MOOR_DRAIN=100ms",
	)
	env = append(env, e.Extra...)
	return append(env, extra...)
}

// run runs a moor subcommand to completion and returns its stdout.
func (e *Env) run(args ...string) string {
	e.t.Helper()
	return e.runInput("", args...)
}

// runInput is run with stdin.
func (e *Env) runInput(stdin string, args ...string) string {
	e.t.Helper()
	cmd := exec.Command(moorBinary(e.t), args...)
	cmd.Env = e.environ()
	cmd.Stdin = strings.NewReader(stdin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		e.t.Fatalf("moor %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return string(out)
}

// Start runs `moor serve` and waits until it answers /healthz.
func (e *Env) Start(extra ...string) *Moor {
	e.t.Helper()
	port := testenv.FreeTCPPort(e.t)
	m := &Moor{env: e, URL: fmt.Sprintf("http://127.0.0.1:%d", port), logs: &syncBuffer{}, done: make(chan struct{})}
	m.cmd = exec.Command(moorBinary(e.t), "serve")
	// Each process gets its own ports; extra (later entries win) may override.
	m.cmd.Env = e.environ(append([]string{
		fmt.Sprintf("MOOR_HTTP_ADDR=127.0.0.1:%d", port),
		fmt.Sprintf("MOOR_DNS_ADDR=127.0.0.1:%d", testenv.FreeTCPPort(e.t)),
	}, extra...)...)
	m.cmd.Stdout, m.cmd.Stderr = m.logs, m.logs
	m.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := m.cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	go func() { m.cmd.Wait(); close(m.done) }()
	e.t.Cleanup(func() {
		m.Kill()
		if strings.Contains(m.logs.String(), "WARNING: DATA RACE") {
			e.t.Errorf("moor (built with -race) reported a data race")
		}
		if e.t.Failed() {
			e.t.Logf("moor logs (%s):\n%s", m.URL, m.logs.String())
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(m.URL + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return m
			}
		}
		select {
		case <-m.done:
			e.t.Fatalf("moor exited early:\n%s", m.logs.String())
		default:
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("moor did not answer /healthz:\n%s", m.logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Kill sends SIGKILL, as a crash would, and waits for the process to go.
func (m *Moor) Kill() {
	if m.cmd.Process != nil {
		m.cmd.Process.Signal(syscall.SIGKILL)
	}
	<-m.done
}

// Logs returns what moor printed so far.
func (m *Moor) Logs() string { return m.logs.String() }

// Do sends a request with the admin key, or with key when given.
func (m *Moor) Do(method, path string, body any, key ...string) (int, []byte) {
	m.env.t.Helper()
	return m.DoCT(method, path, body, "application/json", key...)
}

// DoCT is Do with a Content-Type for the body.
func (m *Moor) DoCT(method, path string, body any, contentType string, key ...string) (int, []byte) {
	m.env.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, _ := json.Marshal(b)
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, m.URL+path, rd)
	if err != nil {
		m.env.t.Fatal(err)
	}
	k := m.env.Admin
	if len(key) > 0 {
		k = key[0]
	}
	if k != "" {
		req.Header.Set("Authorization", "Bearer "+k)
	}
	if rd != nil {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		m.env.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

// Container is the API's view of a container, as tests read it.
type Container struct {
	ID           string            `json:"id"`
	Name         string            `json:"name"`
	Project      string            `json:"project"`
	Type         string            `json:"type"`
	Image        string            `json:"image"`
	Status       string            `json:"status"`
	StatusReason string            `json:"status_reason"`
	DesiredState string            `json:"desired_state"`
	Replicas     int               `json:"replicas"`
	InternalIP   string            `json:"internal_ip"`
	Env          map[string]string `json:"env"`
	DNS          struct{ Host, Container string }
	URL          string `json:"url"`
	// Generation rises with each change; ObservedGeneration follows once
	// the change is real.
	Generation         int64 `json:"generation"`
	ObservedGeneration int64 `json:"observed_generation"`
	ConfigVersion      int   `json:"config_version"`
	Instances          []struct {
		Index      int    `json:"index"`
		DockerID   string `json:"docker_id"`
		InternalIP string `json:"internal_ip"`
		Status     string `json:"status"`
	} `json:"instances"`
	Ports []struct {
		Name string `json:"name"`
		Port int    `json:"port"`
	} `json:"ports"`
}

// containerPath is the API path of a container named as the CLI does:
// NAME in the default project, PROJECT/NAME in another.
func containerPath(ref string) string {
	if project, name, ok := strings.Cut(ref, "/"); ok {
		return "/api/v1/projects/" + project + "/containers/" + name
	}
	return "/api/v1/containers/" + ref
}

// Get returns the container (NAME or PROJECT/NAME), or ok=false on 404.
func (m *Moor) Get(name string) (Container, bool) {
	m.env.t.Helper()
	status, body := m.Do("GET", containerPath(name), nil)
	if status == 404 {
		return Container{}, false
	}
	if status != 200 {
		m.env.t.Fatalf("GET %s: %d %s", name, status, body)
	}
	var c Container
	if err := json.Unmarshal(body, &c); err != nil {
		m.env.t.Fatal(err)
	}
	return c, true
}

// WaitFor polls until cond holds for the container (ok=false: it is gone).
func (m *Moor) WaitFor(name string, timeout time.Duration, what string, cond func(c Container, ok bool) bool) Container {
	m.env.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		c, ok := m.Get(name)
		if cond(c, ok) {
			return c
		}
		if time.Now().After(deadline) {
			m.env.t.Fatalf("%s: not %s after %s; last: %+v", name, what, timeout, c)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// WaitStatus waits for a status.
func (m *Moor) WaitStatus(name, status string, timeout time.Duration) Container {
	m.env.t.Helper()
	return m.WaitFor(name, timeout, status, func(c Container, ok bool) bool { return ok && c.Status == status })
}

// Create posts a container and expects 202.
func (m *Moor) Create(body map[string]any) Container {
	m.env.t.Helper()
	status, out := m.Do("POST", "/api/v1/containers", body)
	if status != 202 {
		m.env.t.Fatalf("create %v: %d %s", body, status, out)
	}
	var c Container
	json.Unmarshal(out, &c)
	return c
}

// Query runs SQL against the installation's database.
func (e *Env) Query(sql string, args ...any) [][]any {
	e.t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, e.DBURL)
	if err != nil {
		e.t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, sql, args...)
	if err != nil {
		e.t.Fatal(err)
	}
	var out [][]any
	for rows.Next() {
		v, err := rows.Values()
		if err != nil {
			e.t.Fatal(err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		e.t.Fatal(err)
	}
	return out
}

// Count runs a COUNT query.
func (e *Env) Count(sql string, args ...any) int64 {
	e.t.Helper()
	rows := e.Query(sql, args...)
	return rows[0][0].(int64)
}

// Installation is the owner label of this installation's Docker objects.
func (e *Env) Installation() string {
	e.t.Helper()
	rows := e.Query(`SELECT id::text FROM installation`)
	return rows[0][0].(string)
}

// docker runs the docker CLI, as a user (or an attacker) behind moor's back.
func docker(t testing.TB, args ...string) string {
	t.Helper()
	out, err := exec.Command("docker", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// DockerIDs lists this installation's Docker containers, optionally of one
// moor container.
func (e *Env) DockerIDs(name string) []string {
	e.t.Helper()
	args := []string{"ps", "-aq", "--filter", "label=moor.owner=" + e.Installation()}
	if name != "" {
		args = append(args, "--filter", "label=moor.name="+name)
	}
	out := docker(e.t, args...)
	if out == "" {
		return nil
	}
	return strings.Fields(out)
}

// Volumes lists this installation's volumes.
func (e *Env) Volumes() []string {
	e.t.Helper()
	out := docker(e.t, "volume", "ls", "-q", "--filter", "label=moor.owner="+e.Installation())
	if out == "" {
		return nil
	}
	return strings.Fields(out)
}

func (e *Env) cleanupDocker() {
	inst := ""
	if rows, err := func() (id string, err error) {
		ctx := context.Background()
		conn, err := pgx.Connect(ctx, e.DBURL)
		if err != nil {
			return "", err
		}
		defer conn.Close(ctx)
		err = conn.QueryRow(ctx, `SELECT id::text FROM installation`).Scan(&id)
		return id, err
	}(); err == nil {
		inst = rows
	}
	if inst != "" {
		if out, _ := exec.Command("docker", "ps", "-aq", "--filter", "label=moor.owner="+inst).Output(); len(out) > 0 {
			exec.Command("docker", append([]string{"rm", "-f", "-v"}, strings.Fields(string(out))...)...).Run()
		}
		if out, _ := exec.Command("docker", "volume", "ls", "-q", "--filter", "label=moor.owner="+inst).Output(); len(out) > 0 {
			exec.Command("docker", append([]string{"volume", "rm", "-f"}, strings.Fields(string(out))...)...).Run()
		}
		// Projects' networks (named after e.Network, so the sweep at exit
		// finds them too).
		if out, _ := exec.Command("docker", "network", "ls", "--format", "{{.Name}}", "--filter", "label=moor.owner="+inst).Output(); len(out) > 0 {
			for _, n := range strings.Fields(string(out)) {
				if n != e.Network {
					removeNetwork(n, 10*time.Second)
					sweepAtExit(n)
				}
			}
		}
	}
	// The engine may still be detaching endpoints of just-removed
	// containers: try for a while. And once more when all tests are done,
	// in any case: a network create moor sent just before it was killed can
	// land after the removal here (a short test ends within a second of
	// its first deploy), and a loaded engine has been seen to take longer
	// than the first try.
	removeNetwork(e.Network, 10*time.Second)
	sweepAtExit(e.Network)
}

var sweep struct {
	once     sync.Once
	mu       sync.Mutex
	networks []string
}

// sweepAtExit removes network, if it exists then, when every test is done.
func sweepAtExit(network string) {
	sweep.mu.Lock()
	sweep.networks = append(sweep.networks, network)
	sweep.mu.Unlock()
	sweep.once.Do(func() {
		testenv.AtExit(func() {
			out, _ := exec.Command("docker", "network", "ls", "-q", "--format", "{{.Name}}", "--filter", "name=moor-t-").Output()
			present := strings.Fields(string(out))
			sweep.mu.Lock()
			defer sweep.mu.Unlock()
			for _, n := range sweep.networks {
				if slices.Contains(present, n) && !removeNetwork(n, time.Minute) {
					fmt.Fprintf(os.Stderr, "e2e: network %s could not be removed\n", n)
				}
			}
		})
	})
}

func removeNetwork(name string, patience time.Duration) bool {
	for deadline := time.Now().Add(patience); ; time.Sleep(200 * time.Millisecond) {
		out, err := exec.Command("docker", "network", "rm", name).CombinedOutput()
		if err == nil || strings.Contains(string(out), "not found") {
			return true
		}
		if ids, _ := exec.Command("docker", "ps", "-aq", "--filter", "network="+name).Output(); len(ids) > 0 {
			exec.Command("docker", append([]string{"rm", "-f", "-v"}, strings.Fields(string(ids))...)...).Run()
		}
		if time.Now().After(deadline) {
			return false
		}
	}
}

// dockerQuiet runs the docker CLI for cleanup, ignoring failures.
func dockerQuiet(args ...string) { exec.Command("docker", args...).Run() }

// routedOK waits until the container answers 200 through moor's embedded
// router, then keeps asking in the background, as a user reloading the
// page; stop ends that and returns the answers and the failures.
func routedOK(t *testing.T, m *Moor, name string) (stop func() (ok, failed int64, last any)) {
	t.Helper()
	get := func(c *http.Client) (int, error) {
		req, _ := http.NewRequest("GET", m.URL+"/", nil)
		req.Host = name + ".moor.localhost"
		resp, err := c.Do(req)
		if err != nil {
			return 0, err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if code, _ := get(http.DefaultClient); code == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never answered through the router", name)
		}
	}
	var ok, failed atomic.Int64
	var last atomic.Value
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		c := &http.Client{Timeout: 5 * time.Second}
		for {
			select {
			case <-done:
				return
			default:
			}
			code, err := get(c)
			switch {
			case err != nil:
				failed.Add(1)
				last.Store(err.Error())
			case code != 200:
				failed.Add(1)
				last.Store(fmt.Sprint(code))
			default:
				ok.Add(1)
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
	return func() (int64, int64, any) {
		close(done)
		wg.Wait()
		return ok.Load(), failed.Load(), last.Load()
	}
}
