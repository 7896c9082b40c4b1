package e2e

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestCLIProjects drives projects from the command line against a running
// moor: create one, deploy into it with -P (a name the default project
// holds too), list every project's containers with ls -A, see project rm
// refused while the project has a container, then deleted (its network
// with it) once the container is removed.
func TestCLIProjects(t *testing.T) {
	e := NewEnv(t)
	m := e.Start()
	c := newCLI(t)
	c.env = append(c.env, "MOOR_URL="+m.URL, "MOOR_API_KEY="+e.Admin)
	network := e.Network + "-p-shop"

	if r := c.ok("", "project", "create", "shop", "--max-containers", "3"); !strings.Contains(r.stdout, "project shop: created, network "+network) {
		t.Fatalf("project create: %s", r)
	}
	if r := c.code(2, "project", "create", "shop"); !strings.Contains(r.stderr, "shop") {
		t.Fatalf("project create twice: %s", r)
	}
	c.code(1, "project", "create", "Bad_Name")

	// web in the default project and in shop.
	if r := c.ok("", "deploy", "testapp", "web", "--wait"); !strings.Contains(r.stdout, "web: running") {
		t.Fatalf("deploy web: %s", r)
	}
	r := c.ok("", "deploy", "testapp", "web", "-P", "shop", "--wait")
	if !strings.Contains(r.stdout, "shop/web: running") || !strings.Contains(r.stderr, "shop/web: deploying testapp") {
		t.Fatalf("deploy -P shop web: %s", r)
	}
	if got, ok := m.Get("shop/web"); !ok || got.Status != "running" {
		t.Fatalf("shop/web after deploy --wait: %+v", got)
	}
	if out := docker(t, "ps", "-q", "--filter", "label=moor.project=shop", "--filter", "network="+network); out == "" {
		t.Fatalf("no container of shop on %s", network)
	}

	// ls: the current project's; -A: every project's, with a PROJECT column.
	if r := c.ok("", "ls", "-q"); r.stdout != "web\n" {
		t.Fatalf("ls -q: %s", r)
	}
	if r := c.runEnv([]string{"MOOR_PROJECT=shop"}, "", "ls"); r.code != 0 || !strings.Contains(r.stdout, "web") || strings.Contains(r.stdout, "PROJECT") {
		t.Fatalf("MOOR_PROJECT=shop ls: %s", r)
	}
	r = c.ok("", "ls", "-A")
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 3 || strings.Fields(lines[0])[0] != "PROJECT" {
		t.Fatalf("ls -A: %s", r)
	}
	rows := map[string]bool{}
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		rows[f[0]+" "+f[1]+" "+f[3]] = true
	}
	if !rows["default web running"] || !rows["shop web running"] {
		t.Fatalf("ls -A rows %v: %s", rows, r)
	}
	if r := c.ok("", "ls", "-A", "-q"); r.stdout != "web\nshop/web\n" {
		t.Fatalf("ls -A -q: %s", r)
	}

	// project ls and show.
	r = c.ok("", "project", "ls")
	var shopLine string
	for _, l := range strings.Split(r.stdout, "\n") {
		if strings.HasPrefix(l, "shop ") {
			shopLine = l
		}
	}
	if f := strings.Fields(shopLine); len(f) != 7 || f[1] != "no" || f[2] != "1" || f[3] != "3" || f[4] != "-" || f[6] != network {
		t.Fatalf("project ls: shop's line %q in %s", shopLine, r)
	}
	var shop struct {
		Name          string
		Containers    int
		MaxContainers *int `json:"max_containers"`
	}
	if err := json.Unmarshal([]byte(c.ok("", "project", "show", "shop", "-o", "json").stdout), &shop); err != nil ||
		shop.Containers != 1 || shop.MaxContainers == nil || *shop.MaxContainers != 3 {
		t.Fatalf("project show -o json: %+v %v", shop, err)
	}
	c.code(3, "project", "show", "nosuch")

	// Not empty: refused, naming the container; removed once it is gone.
	if r := c.code(2, "project", "rm", "shop"); !strings.Contains(r.stderr, "still has 1 container(s): web") {
		t.Fatalf("project rm of a project with a container: %s", r)
	}
	if r := c.ok("", "rm", "-P", "shop", "web", "--wait"); r.stdout != "shop/web: removed\n" {
		t.Fatalf("rm -P shop web --wait: %s", r)
	}
	if _, ok := m.Get("web"); !ok {
		t.Fatal("removing shop/web removed the default project's web")
	}
	if r := c.ok("", "project", "rm", "shop"); r.stdout != "project shop: deleted\n" {
		t.Fatalf("project rm: %s", r)
	}
	c.code(3, "project", "show", "shop")
	c.code(3, "ls", "-P", "shop")
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		if err := exec.Command("docker", "network", "inspect", network).Run(); err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("network %s still there 30s after its project was deleted", network)
		}
	}
	c.ok("", "rm", "web", "--wait")
}
