package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moorhq/moor/internal/testenv"
)

// TestCLIStack drives a compose stack from the command line against a
// running moor: deploy a two-service stack from a file with --wait (both
// running when it returns), edit the file and deploy again (only web
// updated, db left running), list it, show it, and remove it with its
// volumes, --wait returning once everything is gone.
func TestCLIStack(t *testing.T) {
	e := NewEnv(t)
	m := e.Start()
	image := testenv.TestImage(t)
	c := newCLI(t)
	c.env = append(c.env, "MOOR_URL="+m.URL, "MOOR_API_KEY="+e.Admin)
	c.ok("", "project", "create", "cs")
	compose := func(mode string) string {
		return fmt.Sprintf(`services:
  db:
    image: %[1]s
    environment:
      MODE: db
    volumes:
      - data:/data
  web:
    image: %[1]s
    environment:
      MODE: %[2]s
    depends_on: [db]
volumes:
  data:
`, image, mode)
	}
	file := filepath.Join(t.TempDir(), "compose.yml")
	if err := os.WriteFile(file, []byte(compose("v1")), 0o600); err != nil {
		t.Fatal(err)
	}

	r := c.ok("", "stack", "deploy", "app", "-f", file, "-P", "cs", "--wait", "--timeout", "2m")
	want := "stack cs/app: service db: created\nstack cs/app: service web: created\nstack cs/app: running\n"
	if r.stdout != want || !strings.Contains(r.stderr, "cs/app-web: running") {
		t.Fatalf("stack deploy --wait: %s\nwant stdout %q", r, want)
	}
	for _, ref := range []string{"cs/app-db", "cs/app-web"} {
		if got, ok := m.Get(ref); !ok || got.Status != "running" {
			t.Fatalf("%s after stack deploy --wait: %+v", ref, got)
		}
	}
	dbIDs, webIDs := e.DockerIDs("app-db"), e.DockerIDs("app-web")

	// Edited: web's environment changes, db's does not.
	if err := os.WriteFile(file, []byte(compose("v2")), 0o600); err != nil {
		t.Fatal(err)
	}
	r = c.runEnv([]string{"MOOR_PROJECT=cs"}, "", "stack", "deploy", "app", "-f", file, "--wait", "--timeout", "2m")
	want = "stack cs/app: service db: unchanged\nstack cs/app: service web: updated\nstack cs/app: running\n"
	if r.code != 0 || r.stdout != want {
		t.Fatalf("stack deploy again: %s\nwant stdout %q", r, want)
	}
	if web, _ := m.Get("cs/app-web"); web.Status != "running" || web.ObservedGeneration != web.Generation || web.Env["MODE"] != "v2" {
		t.Fatalf("web after the re-deploy --wait: %+v", web)
	}
	if now := e.DockerIDs("app-db"); strings.Join(now, ",") != strings.Join(dbIDs, ",") {
		t.Errorf("db was replaced: %v, then %v", dbIDs, now)
	}
	if now := e.DockerIDs("app-web"); strings.Join(now, ",") == strings.Join(webIDs, ",") {
		t.Errorf("web was not replaced: %v", now)
	}
	// The same file once more: nothing changes.
	if r := c.ok("", "stack", "deploy", "app", "-f", file, "-P", "cs"); r.stdout != "stack cs/app: service db: unchanged\nstack cs/app: service web: unchanged\n" {
		t.Fatalf("stack deploy unchanged: %s", r)
	}

	r = c.ok("", "stack", "ls", "-P", "cs")
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 2 || strings.Join(strings.Fields(lines[0]), " ") != "NAME SERVICES RUNNING/TOTAL UPDATED" {
		t.Fatalf("stack ls: %s", r)
	}
	if f := strings.Fields(lines[1]); len(f) < 3 || f[0] != "app" || f[1] != "db,web" || f[2] != "2/2" {
		t.Fatalf("stack ls row: %s", r)
	}
	if r := c.ok("", "stack", "ls"); strings.Contains(r.stdout, "app") {
		t.Fatalf("the default project lists cs's stack: %s", r)
	}
	if r := c.ok("", "stack", "show", "app", "-P", "cs"); !strings.Contains(r.stdout, "app-web-cs.") || !strings.Contains(r.stdout, "running") {
		t.Fatalf("stack show: %s", r)
	}
	c.code(3, "stack", "show", "nosuch", "-P", "cs")

	if len(e.Volumes()) == 0 {
		t.Fatal("db has no volume")
	}
	if r := c.ok("", "stack", "rm", "app", "--volumes", "--wait", "-P", "cs"); r.stdout != "stack cs/app: removed\n" {
		t.Fatalf("stack rm --volumes --wait: %s", r)
	}
	c.code(3, "stack", "show", "app", "-P", "cs")
	if r := c.ok("", "stack", "ls", "-q", "-P", "cs"); r.stdout != "" {
		t.Fatalf("stack ls after rm: %s", r)
	}
	if ids := e.DockerIDs(""); len(ids) != 0 {
		t.Errorf("Docker containers left: %v", ids)
	}
	if vols := e.Volumes(); len(vols) != 0 {
		t.Errorf("volumes left: %v", vols)
	}
	c.ok("", "project", "rm", "cs")
}
