package e2e

import (
	"bytes"
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/moorhq/moor/internal/testenv"
)

// runCode runs a moor subcommand with the installation's settings and
// extra ones (later entries win), stdin not a terminal; it returns the
// exit code and both outputs.
func (e *Env) runCode(stdin string, extra []string, args ...string) (int, string, string) {
	e.t.Helper()
	cmd := exec.Command(moorBinary(e.t), args...)
	cmd.Env = e.environ(extra...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		return ee.ExitCode(), stdout.String(), stderr.String()
	case err != nil:
		e.t.Fatalf("moor %s: %v", strings.Join(args, " "), err)
	}
	return 0, stdout.String(), stderr.String()
}

// dockerLabelled lists the Docker objects of a kind ("ps -a", "volume ls",
// "network ls") carrying a label.
func dockerLabelled(t *testing.T, kind, label string) []string {
	t.Helper()
	args := append(strings.Fields(kind), "-q", "--filter", "label="+label)
	if out := docker(t, args...); out != "" {
		return strings.Fields(out)
	}
	return nil
}

// TestUninstall: moor uninstall removes every container, volume and
// network of its installation and deletes their records (history kept);
// it refuses without a terminal or --yes and while moor serve runs, and
// --keep-volumes keeps the data for a later run.
func TestUninstall(t *testing.T) {
	e := NewEnv(t)
	m := e.Start()
	m.Create(map[string]any{"name": "a", "type": "testapp", "replicas": 2})
	m.Create(map[string]any{"name": "b", "type": "testapp"})
	m.WaitStatus("a", "running", 60*time.Second)
	m.WaitStatus("b", "running", 60*time.Second)
	owner := "moor.owner=" + e.Installation()
	if n := len(dockerLabelled(t, "ps -a", owner)); n != 3 {
		t.Fatalf("%d containers deployed", n)
	}
	kept := func() {
		t.Helper()
		if len(dockerLabelled(t, "ps -a", owner)) != 3 || len(dockerLabelled(t, "volume ls", owner)) != 3 || e.Count(`SELECT count(*) FROM containers`) != 2 {
			t.Fatal("a refused uninstall removed something")
		}
	}

	// Refused while moor serve runs: its reconciler would redeploy.
	code, _, stderr := e.runCode("", nil, "uninstall", "--yes")
	if code != 1 || !strings.Contains(stderr, "a moor server is running on this database") || !strings.Contains(stderr, "stop it first") {
		t.Fatalf("uninstall with moor running: exit %d, %s", code, stderr)
	}
	kept()
	m.Kill()

	// No terminal, no --yes: the plan is shown, nothing is removed.
	code, stdout, stderr := e.runCode("y\n", nil, "uninstall")
	if code != 1 || !strings.Contains(stderr, "--yes") || !strings.Contains(stdout, "3 containers: moor-a-0, moor-a-1, moor-b-0") ||
		!strings.Contains(stdout, "3 volumes") || !strings.Contains(stdout, "1 network: "+e.Network) || !strings.Contains(stdout, "2 container records") {
		t.Fatalf("uninstall without a terminal: exit %d\n%s\n%s", code, stdout, stderr)
	}
	kept()

	// --keep-volumes: containers, network and records go, the data stays.
	code, stdout, stderr = e.runCode("", nil, "uninstall", "--yes", "--keep-volumes")
	if code != 0 || !strings.Contains(stdout, "removed container moor-a-1") || !strings.Contains(stdout, "removed network "+e.Network) ||
		!strings.Contains(stdout, "moor uninstall --owner "+e.Installation()) {
		t.Fatalf("uninstall --keep-volumes: exit %d\n%s\n%s", code, stdout, stderr)
	}
	if c, v, n := dockerLabelled(t, "ps -a", owner), dockerLabelled(t, "volume ls", owner), dockerLabelled(t, "network ls", owner); len(c) != 0 || len(v) != 3 || len(n) != 0 {
		t.Fatalf("after --keep-volumes: containers %v, volumes %v, networks %v", c, v, n)
	}
	// The database agrees: no container recorded, their removal in history.
	if n := e.Count(`SELECT count(*) FROM containers`); n != 0 {
		t.Fatalf("%d containers still recorded", n)
	}
	if n := e.Count(`SELECT count(*) FROM deployment_history WHERE action = 'removed' AND actor = 'system:uninstall'`); n != 2 {
		t.Fatalf("%d removals recorded", n)
	}
	if n := e.Count(`SELECT count(*) FROM events WHERE kind = 'container.removed' AND actor = 'system:uninstall'`); n != 2 {
		t.Fatalf("%d removal events", n)
	}

	// Run again: the kept volumes go; then nothing is left to do.
	if code, stdout, stderr = e.runCode("", nil, "uninstall", "--yes"); code != 0 || !strings.Contains(stdout, "removed volume moor-a_data_0") {
		t.Fatalf("second uninstall: exit %d\n%s\n%s", code, stdout, stderr)
	}
	if v := dockerLabelled(t, "volume ls", owner); len(v) != 0 {
		t.Fatalf("volumes left: %v", v)
	}
	if code, stdout, _ = e.runCode("", nil, "uninstall"); code != 0 || !strings.Contains(stdout, "nothing to remove") {
		t.Fatalf("third uninstall: exit %d\n%s", code, stdout)
	}
	// A moor started again finds nothing to bring back.
	m = e.Start()
	time.Sleep(3 * time.Second) // beyond a resync (MOOR_RESYNC=2s)
	if c := dockerLabelled(t, "ps -a", owner); len(c) != 0 {
		t.Fatalf("moor recreated %v", c)
	}
	// --database: moor's tables go too.
	m.Kill()
	if code, stdout, stderr = e.runCode("", nil, "uninstall", "--yes", "--database"); code != 0 || !strings.Contains(stdout, "dropped moor's tables") {
		t.Fatalf("uninstall --database: exit %d\n%s\n%s", code, stdout, stderr)
	}
	if n := e.Count(`SELECT count(*) FROM pg_tables WHERE schemaname = 'public'`); n != 0 {
		t.Fatalf("%d tables left", n)
	}
}

// TestUninstallOwner: a deploy whose Docker name is held by another moor
// installation's container fails saying whose it is and the command; moor
// uninstall --owner removes what that installation left (without its
// database), and the deploy then goes through by itself. Without a
// database, uninstall lists the owners found.
func TestUninstallOwner(t *testing.T) {
	other := "e2e-lost-" + randSuffix()
	name := "held" + randSuffix()
	held := "moor-" + name + "-0"
	// Another name whose data volume only is the lost installation's.
	vname := "vheld" + randSuffix()
	heldVolume := "moor-" + vname + "_data_0"
	test := testenv.TestLabel + "=1"
	docker(t, "volume", "create", "--label", "moor.owner="+other, "--label", test, heldVolume)
	t.Cleanup(func() { dockerQuiet("volume", "rm", "-f", heldVolume) })
	docker(t, "network", "create", "--label", "moor.owner="+other, "--label", test, "moor-lost-"+name)
	t.Cleanup(func() { dockerQuiet("network", "rm", "moor-lost-"+name) })
	docker(t, "create", "--name", held, "--label", "moor.owner="+other, "--label", "moor.id=theirs", "--label", test,
		"--network", "moor-lost-"+name, "moor-testapp:latest")
	t.Cleanup(func() { dockerQuiet("rm", "-f", held) })

	e := NewEnv(t)
	m := e.Start()
	m.Create(map[string]any{"name": name, "type": "testapp"})
	c := m.WaitStatus(name, "failed", 60*time.Second)
	for _, want := range []string{"held by moor installation " + other, "moor uninstall --owner " + other, "docker rm -f " + held, "deploy under another name"} {
		if !strings.Contains(c.StatusReason, want) {
			t.Errorf("reason %q does not say %q", c.StatusReason, want)
		}
	}
	// Its volume is not taken over: that data is the other installation's.
	m.Create(map[string]any{"name": vname, "type": "testapp"})
	vc := m.WaitStatus(vname, "failed", 60*time.Second)
	for _, want := range []string{"the Docker volume " + heldVolume + " is held by moor installation " + other,
		"moor uninstall --owner " + other, "docker volume rm " + heldVolume} {
		if !strings.Contains(vc.StatusReason, want) {
			t.Errorf("reason %q does not say %q", vc.StatusReason, want)
		}
	}
	if ids := e.DockerIDs(vname); len(ids) != 0 {
		t.Errorf("a replica was created on the other installation's volume: %v", ids)
	}

	// Without a database: the owners found, with the command for each.
	code, _, stderr := e.runCode("", []string{"MOOR_DATABASE_URL="}, "uninstall")
	if code != 1 || !strings.Contains(stderr, "moor uninstall --owner "+other+"    (1 containers, 1 volumes, 1 networks)") {
		t.Fatalf("uninstall without a database: exit %d\n%s", code, stderr)
	}

	// --owner needs no database (and leaves this one, and its running
	// moor, alone).
	code, stdout, stderr := e.runCode("", []string{"MOOR_DATABASE_URL="}, "uninstall", "--owner", other, "--yes")
	if code != 0 || !strings.Contains(stdout, "removed container "+held) || !strings.Contains(stdout, "removed network moor-lost-"+name) {
		t.Fatalf("uninstall --owner: exit %d\n%s\n%s", code, stdout, stderr)
	}
	for _, kind := range []string{"ps -a", "volume ls", "network ls"} {
		if left := dockerLabelled(t, kind, "moor.owner="+other); len(left) != 0 {
			t.Errorf("%s: %v left", kind, left)
		}
	}
	// moor retries the failed deploys by itself.
	m.WaitStatus(name, "running", 60*time.Second)
	m.WaitStatus(vname, "running", 60*time.Second)
}
