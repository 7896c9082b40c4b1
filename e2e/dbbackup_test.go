package e2e

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moorhq/moor/internal/testenv"
)

// runMoor runs a moor subcommand of env and returns its stdout, stderr
// and error, for commands expected to fail.
func runMoor(e *Env, stdin []byte, args ...string) (string, string, error) {
	e.t.Helper()
	cmd := exec.Command(moorBinary(e.t), args...)
	cmd.Env = e.environ()
	cmd.Stdin = bytes.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.String(), stderr.String(), err
}

// names lists the "name" (or "username") of each object in the list
// field of a JSON answer, sorted.
func names(t *testing.T, m *Moor, path, field string) []string {
	t.Helper()
	status, body := m.Do("GET", path, nil)
	if status != 200 {
		t.Fatalf("GET %s: %d %s", path, status, body)
	}
	var answer map[string][]map[string]any
	if err := json.Unmarshal(body, &answer); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	var out []string
	for _, o := range answer[field] {
		n, _ := o["name"].(string)
		if n == "" {
			n, _ = o["username"].(string)
		}
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// TestDatabaseBackup: moor backup dumps a running installation's database;
// moor restore brings it into an empty one, where a moor started on it
// answers the same containers, projects, users and installation id, and
// the keys made before work. A damaged file, a database that is not empty
// and a running server are refused, with nothing changed.
func TestDatabaseBackup(t *testing.T) {
	e := NewEnv(t)
	m := e.Start()
	if status, body := m.Do("POST", "/api/v1/projects", map[string]any{"name": "shop"}); status != 201 {
		t.Fatalf("project: %d %s", status, body)
	}
	m.Create(map[string]any{"name": "web", "type": "testapp"})
	if status, body := m.Do("POST", "/api/v1/projects/shop/containers", map[string]any{"name": "api", "type": "testapp"}); status != 202 {
		t.Fatalf("container in shop: %d %s", status, body)
	}
	if status, body := m.Do("POST", "/api/v1/users", map[string]any{"username": "ann", "password": testPassword, "role": "operator"}); status != 201 {
		t.Fatalf("user: %d %s", status, body)
	}
	status, body := m.Do("POST", "/api/v1/apikeys", map[string]any{"name": "ops", "role": "operator"})
	var made struct{ Key string }
	if json.Unmarshal(body, &made); status != 201 || made.Key == "" {
		t.Fatalf("key: %d %s", status, body)
	}
	web := m.WaitStatus("web", "running", 60*time.Second)
	status, creds := m.Do("GET", "/api/v1/containers/web/credentials", nil)
	if status != 200 {
		t.Fatalf("credentials: %d %s", status, creds)
	}
	type state struct{ containers, shop, projects, users, keys []string }
	read := func(m *Moor) state {
		return state{
			containers: names(t, m, "/api/v1/containers", "containers"),
			shop:       names(t, m, "/api/v1/projects/shop/containers", "containers"),
			projects:   names(t, m, "/api/v1/projects", "projects"),
			users:      names(t, m, "/api/v1/users", "users"),
			keys:       names(t, m, "/api/v1/apikeys", "apikeys"),
		}
	}
	before := read(m)
	if !slices.Equal(before.containers, []string{"web"}) || !slices.Equal(before.shop, []string{"api"}) || !slices.Contains(before.users, "ann") {
		t.Fatalf("state before: %+v", before)
	}
	installation := e.Installation()

	// The dump, taken while moor runs.
	dir := t.TempDir()
	dump := filepath.Join(dir, "moor.dump")
	_, stderr, err := runMoor(e, nil, "backup", "-o", dump)
	if err != nil {
		t.Fatalf("backup: %v\n%s", err, stderr)
	}
	if !strings.Contains(stderr, "installation "+installation) || !strings.Contains(stderr, "schema version ") ||
		!strings.Contains(stderr, "secret key is NOT in the dump") || !strings.Contains(stderr, "KiB") {
		t.Errorf("backup said %q", stderr)
	}
	if fi, err := os.Stat(dump); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("the dump: %v %v", fi, err)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".*partial")); len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}
	data, err := os.ReadFile(dump)
	if err != nil {
		t.Fatal(err)
	}
	// Plain pg_dump custom format: pg_restore -l lists it.
	if !bytes.HasPrefix(data, []byte("PGDMP")) {
		t.Fatalf("not a custom-format dump: %q", data[:16])
	}

	// A second installation's database, fresh and empty; the same data
	// directory (its secret key), as a disaster recovery keeps it.
	r := &Env{t: t, DBURL: testenv.Postgres(t), Network: e.Network, DataDir: e.DataDir, Admin: e.Admin}
	empty := func() {
		t.Helper()
		if n := r.Count(`SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public'`); n != 0 {
			t.Fatalf("the database was changed: %d relations", n)
		}
	}

	// Damaged files change nothing: cut short, a flipped byte, not a dump.
	for name, bad := range map[string][]byte{
		"truncated": data[:len(data)*2/3],
		"flipped":   flip(data, len(data)-200),
		"text":      []byte("-- PostgreSQL database dump\nCREATE TABLE x (a int);\n"),
		"other":     []byte("PGDMP not really"),
	} {
		f := filepath.Join(dir, name)
		if err := os.WriteFile(f, bad, 0o600); err != nil {
			t.Fatal(err)
		}
		_, stderr, err := runMoor(r, nil, "restore", f)
		if err == nil || !strings.Contains(stderr, "nothing was changed") {
			t.Errorf("restore of a %s file: %v %q", name, err, stderr)
		}
		empty()
	}

	// A running server holds its database: --force is refused there.
	if _, stderr, err := runMoor(e, nil, "restore", "--force", dump); err == nil || !strings.Contains(stderr, "server is running") {
		t.Errorf("restore --force under a running moor: %v %q", err, stderr)
	}

	// The restore, from stdin.
	out, stderr, err := runMoor(r, data, "restore", "-")
	if err != nil {
		t.Fatalf("restore: %v\n%s", err, stderr)
	}
	if !strings.Contains(out, "restored moor installation "+installation) || !strings.Contains(out, "2 containers, 2 projects, 1 users, 2 API keys") ||
		strings.Contains(out, "moor migrate") || !strings.Contains(out, "secret key is NOT in the dump") {
		t.Errorf("restore said %q", out)
	}
	// Not again into a database that holds it, unless --force.
	if _, stderr, err := runMoor(r, nil, "restore", dump); err == nil || !strings.Contains(stderr, "not empty") ||
		!strings.Contains(stderr, installation) || !strings.Contains(stderr, "containers") || !strings.Contains(stderr, "--force") {
		t.Errorf("restore into a database that is not empty: %v %q", err, stderr)
	}
	// A damaged file under --force drops nothing either.
	if _, stderr, err := runMoor(r, nil, "restore", "--force", filepath.Join(dir, "truncated")); err == nil || r.Count(`SELECT count(*) FROM containers`) != 2 {
		t.Errorf("restore --force of a damaged file: %v %q", err, stderr)
	}
	if out, stderr, err := runMoor(r, nil, "restore", "--force", dump); err != nil || !strings.Contains(stderr, "dropped") || !strings.Contains(out, installation) {
		t.Errorf("restore --force: %v %q %q", err, stderr, out)
	}

	// moor on the restored database: the same state, the same keys.
	m.Kill()
	m2 := r.Start()
	if got := read(m2); !slices.Equal(got.containers, before.containers) || !slices.Equal(got.shop, before.shop) ||
		!slices.Equal(got.projects, before.projects) || !slices.Equal(got.users, before.users) || !slices.Equal(got.keys, before.keys) {
		t.Errorf("restored state %+v, want %+v", got, before)
	}
	if got := r.Installation(); got != installation {
		t.Errorf("installation %s, want %s", got, installation)
	}
	if status, body := m2.Do("GET", "/api/v1/containers", nil, made.Key); status != 200 {
		t.Errorf("the operator key made before the backup: %d %s", status, body)
	}
	// The container is the same one, adopted and running; its credentials
	// read with the same secret key.
	if c := m2.WaitStatus("web", "running", 30*time.Second); c.ID != web.ID {
		t.Errorf("web is %s, was %s", c.ID, web.ID)
	}
	if status, body := m2.Do("GET", "/api/v1/containers/web/credentials", nil); status != 200 || !bytes.Equal(body, creds) {
		t.Errorf("credentials after the restore: %d %s, want %s", status, body, creds)
	}
}

// flip returns data with the byte at i inverted.
func flip(data []byte, i int) []byte {
	out := slices.Clone(data)
	out[i] ^= 0xff
	return out
}
