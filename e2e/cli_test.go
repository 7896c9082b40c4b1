package e2e

import (
	"bytes"
	"os/exec"
	"strings"
	"testing"
)

// TestCLI covers the subcommands a user runs by hand.
func TestCLI(t *testing.T) {
	e := NewEnv(t)
	if out := e.run("migrate"); !strings.Contains(out, "up to date") {
		t.Fatalf("second migrate: %q", out)
	}
	if out := e.run("version"); strings.TrimSpace(out) == "" || e.run("--version") != out {
		t.Fatalf("version %q, --version %q", out, e.run("--version"))
	}
	// -h exits 0 and lists the command's own flags: all of serve's, the
	// database's and its own for a bootstrap command.
	if out := e.run("serve", "-h"); !strings.Contains(out, "-dns-addr") {
		t.Fatalf("serve -h: %q", out)
	}
	if out := e.run("user", "add", "-h"); !strings.Contains(out, "-username") || strings.Contains(out, "-dns-addr") {
		t.Fatalf("user add -h: %q", out)
	}
	key := strings.TrimSpace(e.run("apikey", "create", "--name", "ci", "--role", "operator"))
	if !strings.HasPrefix(key, "moor_") || strings.Contains(key, "\n") {
		t.Fatalf("apikey create printed %q, want the key alone", key)
	}
	if n := e.Count(`SELECT count(*) FROM api_keys WHERE name = 'ci' AND role = 'operator'`); n != 1 {
		t.Fatalf("%d keys named ci", n)
	}
	cases := []struct {
		args  []string
		stdin string
		want  string // in stderr
	}{
		{[]string{"apikey", "create", "--name", "ci", "--role", "admin"}, "", "already exists"},
		{[]string{"apikey", "create", "--name", "Bad Name", "--role", "admin"}, "", "name"},
		{[]string{"apikey", "create", "--name", "x", "--role", "root"}, "", "role"},
		{[]string{"user", "add", "--username", "ann", "--role", "viewer"}, "short\n", "password"},
		{[]string{"nosuch"}, "", "unknown command"},
	}
	for _, c := range cases {
		cmd := exec.Command(moorBinary(t), c.args...)
		cmd.Env = e.environ()
		cmd.Stdin = strings.NewReader(c.stdin)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Run(); err == nil || !strings.Contains(stderr.String(), c.want) {
			t.Errorf("moor %v: err %v, stderr %q, want it to mention %q", c.args, err, stderr.String(), c.want)
		}
	}
	cmd := exec.Command(moorBinary(t), "user", "add", "--username", "ann", "--role", "operator")
	cmd.Env = e.environ()
	cmd.Stdin = strings.NewReader("correct horse battery staple\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("user add: %v %s", err, out)
	}
	rows := e.Query(`SELECT role, password_hash FROM users WHERE username = 'ann'`)
	if len(rows) != 1 || rows[0][0] != "operator" || !strings.HasPrefix(rows[0][1].(string), "$2") || strings.Contains(rows[0][1].(string), "horse") {
		t.Fatalf("users: %v", rows)
	}
}
