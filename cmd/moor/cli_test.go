package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/moorhq/moor/internal/client"
)

// fakeAPI records the requests the client commands send and answers with
// whatever a test put in answers (by "METHOD /path"); anything else 404.
type fakeAPI struct {
	mu       sync.Mutex
	requests []fakeRequest
	answers  map[string]func(w http.ResponseWriter, r *http.Request)
	srv      *httptest.Server
}

type fakeRequest struct {
	method, path, query, auth string
	body                      map[string]any
}

func newFakeAPI(t *testing.T) *fakeAPI {
	f := &fakeAPI{answers: map[string]func(http.ResponseWriter, *http.Request){}}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req := fakeRequest{method: r.Method, path: r.URL.Path, query: r.URL.RawQuery, auth: r.Header.Get("Authorization")}
		json.NewDecoder(r.Body).Decode(&req.body)
		f.mu.Lock()
		f.requests = append(f.requests, req)
		h := f.answers[r.Method+" "+r.URL.Path]
		f.mu.Unlock()
		if h == nil {
			apiError(w, 404, "not_found", "no such thing", "")
			return
		}
		h(w, r)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeAPI) answer(route string, status int, body string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.answers[route] = func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		io.WriteString(w, body)
	}
}

func (f *fakeAPI) last() fakeRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.requests) == 0 {
		return fakeRequest{}
	}
	return f.requests[len(f.requests)-1]
}

func (f *fakeAPI) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.requests)
}

func apiError(w http.ResponseWriter, status int, code, msg, field string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": code, "message": msg, "field": field}})
}

// runCLI runs the command line with env as the whole environment.
func runCLI(env map[string]string, stdin string, args ...string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	a := &app{ctx: context.Background(), stdin: strings.NewReader(stdin), stdout: &out, stderr: &errOut,
		getenv: func(k string) string { return env[k] }}
	code = a.run(args)
	return code, out.String(), errOut.String()
}

// clientEnv points the client at f with a key, and at a config file in a
// temporary directory.
func clientEnv(t *testing.T, f *fakeAPI) map[string]string {
	return map[string]string{"MOOR_URL": f.srv.URL, "MOOR_API_KEY": "moor_test", "MOOR_CONFIG": filepath.Join(t.TempDir(), "config.json")}
}

// TestExitCodes: each kind of failure has its documented code.
func TestExitCodes(t *testing.T) {
	for _, c := range []struct {
		err  error
		want int
	}{
		{nil, 0},
		{usagef("bad"), 1},
		{errors.New("anything else"), 1},
		{&client.APIError{Status: 400}, 2},
		{&client.APIError{Status: 409}, 2},
		{&client.APIError{Status: 422}, 2},
		{&client.APIError{Status: 404}, 3},
		{&client.APIError{Status: 401}, 4},
		{&client.APIError{Status: 403}, 4},
		{&client.APIError{Status: 429}, 5},
		{&client.APIError{Status: 500}, 5},
		{&client.APIError{Status: 503}, 5},
		{fmt.Errorf("x: %w", &client.UnreachableError{URL: "u", Err: errors.New("refused")}), 5},
		{&client.ProtocolError{URL: "u", Err: errors.New("html")}, 5},
		{&exitError{exitFailed, "failed"}, 6},
		{&exitError{exitTimeout, "slow"}, 7},
		{context.Canceled, 130},
	} {
		if got := exitCode(c.err); got != c.want {
			t.Errorf("exitCode(%v) = %d, want %d", c.err, got, c.want)
		}
	}
}

// TestAPIStatusesToExitCodes: the same through a command against an API.
func TestAPIStatusesToExitCodes(t *testing.T) {
	f := newFakeAPI(t)
	env := clientEnv(t, f)
	for status, want := range map[int]int{401: 4, 403: 4, 404: 3, 409: 2, 422: 2, 500: 5, 503: 5} {
		f.answer("GET /api/v1/containers", status, fmt.Sprintf(`{"error":{"code":"c%d","message":"m%d"}}`, status, status))
		code, _, stderr := runCLI(env, "", "ls")
		if code != want || !strings.Contains(stderr, fmt.Sprintf("m%d (%d c%d)", status, status, status)) {
			t.Errorf("answer %d: exit %d, stderr %q; want exit %d with moor's message", status, code, stderr, want)
		}
	}
	env["MOOR_URL"] = "http://127.0.0.1:1"
	if code, _, stderr := runCLI(env, "", "ls"); code != 5 || !strings.Contains(stderr, "cannot reach moor") {
		t.Errorf("unreachable: exit %d %q", code, stderr)
	}
	delete(env, "MOOR_API_KEY")
	if code, _, stderr := runCLI(env, "", "ls"); code != 4 || !strings.Contains(stderr, "moor login") {
		t.Errorf("no key: exit %d %q", code, stderr)
	}
}

// TestUsageErrors: a command line that cannot work exits 1 before any
// request.
func TestUsageErrors(t *testing.T) {
	f := newFakeAPI(t)
	env := clientEnv(t, f)
	for _, args := range [][]string{
		{},
		{"nosuch"},
		{"ls", "extra"},
		{"ls", "--nope"},
		{"ls", "-o", "yaml"},
		{"deploy", "testapp"},
		{"deploy", "testapp", "blog", "-e", "MODE"},
		{"deploy", "testapp", "blog", "-e", "=x"},
		{"deploy", "testapp", "blog", "--replicas", "two"},
		{"scale", "blog", "many"},
		{"deploy", "testapp", "blog", "-p", "8080"},
		{"deploy", "testapp", "blog", "-p", "web:8080"},
		{"update", "blog", "-p", "1:2", "--no-publish"},
		{"logs"},
		{"start"},
		{"keys", "create"},
		{"users", "passwd"},
		{"events", "--after", "x"},
	} {
		code, _, stderr := runCLI(env, "", args...)
		if code != 1 || stderr == "" {
			t.Errorf("moor %v: exit %d, stderr %q; want 1 with a message", args, code, stderr)
		}
	}
	if n := f.count(); n != 0 {
		t.Errorf("%d requests sent for bad command lines", n)
	}
}

// TestDeployRequest: flags become the API's body: -e K=V sets, K= sends
// null (left empty), --replicas only when given.
func TestDeployRequest(t *testing.T) {
	f := newFakeAPI(t)
	env := clientEnv(t, f)
	f.answer("POST /api/v1/containers", 202, `{"name":"blog","type":"testapp","status":"pending","desired_state":"running","replicas":2}`)
	code, stdout, stderr := runCLI(env, "", "deploy", "testapp", "blog", "-e", "MODE=web", "-e", "GREETING=", "-e", "X=a=b",
		"--replicas", "2", "--alias", "www.example.com", "--path", "/app", "--http-port", "8080")
	if code != 0 || stdout != "blog: pending (desired: running)\n" {
		t.Fatalf("deploy: exit %d %q %q", code, stdout, stderr)
	}
	got := f.last()
	body, _ := json.Marshal(got.body)
	want := `{"aliases":["www.example.com"],"env":{"GREETING":null,"MODE":"web","X":"a=b"},"http_port":8080,"name":"blog","path":"/app","replicas":2,"type":"testapp"}`
	if string(body) != want || got.auth != "Bearer moor_test" {
		t.Fatalf("body %s (auth %q)\nwant %s", body, got.auth, want)
	}
	runCLI(env, "", "deploy", "testapp", "blog")
	if body, _ := json.Marshal(f.last().body); string(body) != `{"name":"blog","type":"testapp"}` {
		t.Fatalf("deploy without flags sent %s", body)
	}
	f.answer("POST /api/v1/containers/blog/scale", 202, `{"name":"blog","status":"running","replicas":3}`)
	if code, _, _ := runCLI(env, "", "scale", "blog", "3"); code != 0 || fmt.Sprint(f.last().body) != "map[replicas:3]" {
		t.Fatalf("scale: exit %d body %v", code, f.last().body)
	}
	f.answer("DELETE /api/v1/containers/blog", 202, `{"name":"blog","status":"removing"}`)
	if code, stdout, _ := runCLI(env, "", "rm", "blog", "--keep-volumes"); code != 0 || f.last().query != "keep_volumes=true" || stdout != "blog: removing\n" {
		t.Fatalf("rm --keep-volumes: exit %d %q query %q", code, stdout, f.last().query)
	}
}

// TestPublishFlags: -p [HOST_IP:]HOST_PORT:PORT becomes the publish list
// (PORT a number or a name, an IPv6 address in brackets); update's -p
// replaces the list and --no-publish empties it.
func TestPublishFlags(t *testing.T) {
	f := newFakeAPI(t)
	env := clientEnv(t, f)
	f.answer("POST /api/v1/containers", 202, `{"name":"db","type":"postgres","status":"pending","desired_state":"running","replicas":1}`)
	if code, _, stderr := runCLI(env, "", "deploy", "postgres", "db", "-p", "15432:5432", "-p", "0.0.0.0:30080:http", "-p", "[::1]:15433:5432"); code != 0 {
		t.Fatalf("deploy: exit %d %s", code, stderr)
	}
	body, _ := json.Marshal(f.last().body)
	want := `{"name":"db","publish":[{"host_port":15432,"port":5432},{"host_ip":"0.0.0.0","host_port":30080,"port":"http"},{"host_ip":"::1","host_port":15433,"port":5432}],"type":"postgres"}`
	if string(body) != want {
		t.Fatalf("deploy sent %s\nwant %s", body, want)
	}
	f.answer("PATCH /api/v1/containers/db", 202, `{"name":"db","status":"running","replicas":1}`)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-p", "127.0.0.1:15434:db"}, `{"publish":[{"host_ip":"127.0.0.1","host_port":15434,"port":"db"}]}`},
		{[]string{"--no-publish"}, `{"publish":[]}`},
		{[]string{"-e", "A=1"}, `{"env":{"A":"1"}}`},
	} {
		if code, _, stderr := runCLI(env, "", append([]string{"update", "db"}, c.args...)...); code != 0 {
			t.Fatalf("update %v: exit %d %s", c.args, code, stderr)
		}
		if body, _ := json.Marshal(f.last().body); string(body) != c.want {
			t.Errorf("update %v sent %s, want %s", c.args, body, c.want)
		}
	}
}

// TestManyNames: a failure on one name does not stop the others; the
// first failure's code is the exit code.
func TestManyNames(t *testing.T) {
	f := newFakeAPI(t)
	env := clientEnv(t, f)
	f.answer("POST /api/v1/containers/b/stop", 202, `{"name":"b","status":"running","desired_state":"stopped"}`)
	code, stdout, stderr := runCLI(env, "", "stop", "a", "b")
	if code != 3 || !strings.Contains(stdout, "b: running") || !strings.Contains(stderr, "a: no such thing") {
		t.Fatalf("stop a b: exit %d %q %q", code, stdout, stderr)
	}
}

// TestLogsFollowRefused: a moor that refuses follow says so clearly.
func TestLogsFollowRefused(t *testing.T) {
	f := newFakeAPI(t)
	env := clientEnv(t, f)
	f.mu.Lock()
	f.answers["GET /api/v1/containers/blog/logs"] = func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("follow") == "true" {
			apiError(w, 422, "invalid", "follow: unknown parameter", "follow")
			return
		}
		io.WriteString(w, "line 1\nline 2\n")
	}
	f.mu.Unlock()
	if code, stdout, _ := runCLI(env, "", "logs", "blog", "--tail", "2"); code != 0 || stdout != "line 1\nline 2\n" || f.last().query != "tail=2" {
		t.Fatalf("logs: exit %d %q query %q", code, stdout, f.last().query)
	}
	code, _, stderr := runCLI(env, "", "logs", "-f", "blog")
	if code != 2 || !strings.Contains(stderr, "cannot follow logs") || !strings.Contains(stderr, "without -f") {
		t.Fatalf("logs -f refused: exit %d %q", code, stderr)
	}
}

// TestHelpShowsOwnFlags: -h of a client command lists its flags, not the
// server's; a bootstrap command lists its own and the database's; serve
// lists all; each exits 0.
func TestHelpShowsOwnFlags(t *testing.T) {
	for _, c := range []struct {
		args       []string
		want, not  []string
		wantStdout bool
	}{
		{[]string{"deploy", "-h"}, []string{"--wait", "--env", "--replicas", "--timeout"}, []string{"database-url", "dns-addr", "Global Flags"}, true},
		{[]string{"ls", "--help"}, []string{"--output", "--quiet"}, []string{"database-url", "--wait"}, true},
		{[]string{"help", "logs"}, []string{"--follow", "--tail"}, []string{"database-url"}, true},
		{[]string{"user", "add", "-h"}, []string{"-username", "-role", "-database-url"}, []string{"-dns-addr", "-http-addr", "-api-rate"}, true},
		{[]string{"apikey", "create", "--help"}, []string{"-name", "-role", "-database-url"}, []string{"-dns-addr"}, true},
		{[]string{"migrate", "-h"}, []string{"-down", "-database-url"}, []string{"-dns-addr"}, true},
		{[]string{"serve", "-h"}, []string{"-database-url", "-dns-addr", "-http-addr", "-api-rate"}, nil, true},
		{[]string{"help", "serve"}, []string{"-dns-addr"}, nil, true},
		{[]string{"-h"}, []string{"deploy", "keys", "users", "serve", "apikey", "completion", "Exit codes"}, nil, true},
	} {
		code, stdout, stderr := runCLI(map[string]string{}, "", c.args...)
		if code != 0 {
			t.Errorf("moor %v: exit %d (%s)", c.args, code, stderr)
		}
		for _, w := range c.want {
			if !strings.Contains(stdout, w) {
				t.Errorf("moor %v: no %q in\n%s", c.args, w, stdout)
			}
		}
		for _, n := range c.not {
			if strings.Contains(stdout, n) {
				t.Errorf("moor %v: %q in\n%s", c.args, n, stdout)
			}
		}
	}
}

// TestVersion: --version and version print the version alone.
func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"--version"}, {"version"}} {
		if code, stdout, _ := runCLI(nil, "", args...); code != 0 || stdout != version+"\n" {
			t.Errorf("moor %v: exit %d %q", args, code, stdout)
		}
	}
}

// TestCompletion: scripts for the usual shells, and names asked of moor.
func TestCompletion(t *testing.T) {
	for _, sh := range []string{"bash", "zsh", "fish", "powershell"} {
		if code, stdout, _ := runCLI(nil, "", "completion", sh); code != 0 || !strings.Contains(stdout, "moor") {
			t.Errorf("completion %s: exit %d", sh, code)
		}
	}
	f := newFakeAPI(t)
	env := clientEnv(t, f)
	f.answer("GET /api/v1/containers", 200, `{"containers":[{"name":"blog","type":"testapp","status":"running"},{"name":"db","type":"postgres","status":"stopped"}]}`)
	code, stdout, _ := runCLI(env, "", "__complete", "stop", "blog", "")
	if code != 0 || !strings.Contains(stdout, "db\tpostgres, stopped") || strings.Contains(stdout, "blog\t") {
		t.Fatalf("completing stop blog: %q", stdout)
	}
}

// TestConfigFile: login checks the key with moor and writes it 0600 (its
// directory 0700), a refused key writes nothing, variables win over the
// file, a file others can read is refused, logout removes it.
func TestConfigFile(t *testing.T) {
	f := newFakeAPI(t)
	f.mu.Lock()
	f.answers["GET /api/v1/session"] = func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer moor_good" {
			apiError(w, 401, "unauthorized", "invalid API key", "")
			return
		}
		io.WriteString(w, `{"user":{"kind":"apikey","name":"me","role":"admin"}}`)
	}
	f.mu.Unlock()
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "moor", "config.json")
	env := map[string]string{"MOOR_CONFIG": path}

	if code, _, stderr := runCLI(env, "moor_bad\n", "login", f.srv.URL); code != 4 || !strings.Contains(stderr, "invalid API key") {
		t.Fatalf("login with a bad key: exit %d %q", code, stderr)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("a refused login wrote the file: %v", err)
	}
	code, stdout, stderr := runCLI(env, "moor_good\n", "login", "--url", f.srv.URL+"/")
	if code != 0 || !strings.Contains(stdout, "as apikey:me (admin)") {
		t.Fatalf("login: exit %d %q %q", code, stdout, stderr)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	dst, _ := os.Stat(filepath.Dir(path))
	if runtime.GOOS != "windows" && (st.Mode().Perm() != 0o600 || dst.Mode().Perm() != 0o700) {
		t.Fatalf("file mode %04o, directory %04o; want 0600 and 0700", st.Mode().Perm(), dst.Mode().Perm())
	}
	b, _ := os.ReadFile(path)
	if want := fmt.Sprintf("{\n  \"url\": %q,\n  \"api_key\": \"moor_good\"\n}\n", f.srv.URL); string(b) != want {
		t.Fatalf("file %q, want %q", b, want)
	}

	cfg, err := loadClientConfig(func(k string) string { return env[k] })
	if err != nil || cfg.URL != f.srv.URL || cfg.APIKey != "moor_good" || cfg.KeyFrom != path {
		t.Fatalf("loaded %+v, %v", cfg, err)
	}
	env["MOOR_API_KEY"] = "moor_env"
	cfg, _ = loadClientConfig(func(k string) string { return env[k] })
	if cfg.APIKey != "moor_env" || cfg.KeyFrom != "MOOR_API_KEY" || cfg.URL != f.srv.URL {
		t.Fatalf("with MOOR_API_KEY: %+v", cfg)
	}
	delete(env, "MOOR_API_KEY")

	if runtime.GOOS != "windows" {
		os.Chmod(path, 0o644)
		if code, _, stderr := runCLI(env, "", "ls"); code != 1 || !strings.Contains(stderr, "chmod 600") {
			t.Fatalf("a readable config file: exit %d %q", code, stderr)
		}
		// Both variables set: the file is not even read.
		if _, err := loadClientConfig(func(k string) string {
			return map[string]string{"MOOR_CONFIG": path, "MOOR_URL": "http://x:1", "MOOR_API_KEY": "k"}[k]
		}); err != nil {
			t.Fatalf("variables set, readable file: %v", err)
		}
		os.Chmod(path, 0o600)
	}
	if code, stdout, _ := runCLI(env, "", "logout"); code != 0 || !strings.Contains(stdout, "removed") {
		t.Fatalf("logout: exit %d %q", code, stdout)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("logout left the file: %v", err)
	}
	// Nothing configured: the default URL, no key.
	cfg, _ = loadClientConfig(func(k string) string { return env[k] })
	if cfg.URL != defaultURL || cfg.APIKey != "" {
		t.Fatalf("defaults: %+v", cfg)
	}
}

// TestConfigPath: MOOR_CONFIG, else XDG_CONFIG_HOME/moor/config.json.
func TestConfigPath(t *testing.T) {
	p, _ := configPath(func(k string) string {
		return map[string]string{"MOOR_CONFIG": "/a/b.json", "XDG_CONFIG_HOME": "/x"}[k]
	})
	q, _ := configPath(func(k string) string { return map[string]string{"XDG_CONFIG_HOME": "/x"}[k] })
	if p != "/a/b.json" || q != filepath.Join("/x", "moor", "config.json") {
		t.Fatalf("paths %q %q", p, q)
	}
}

// TestPlainHTTPWarning: only a key sent in clear beyond this machine.
func TestPlainHTTPWarning(t *testing.T) {
	for u, warn := range map[string]bool{
		"http://127.0.0.1:8080": false, "http://localhost:8080": false, "http://[::1]:8080": false,
		"http://blog.moor.localhost": false, "https://moor.example": false, "http://moor.example": true, "http://10.0.0.5:8080": true,
	} {
		if got := plainHTTPWarning(u) != ""; got != warn {
			t.Errorf("%s: warning %v, want %v", u, got, warn)
		}
	}
}
