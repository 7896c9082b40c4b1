package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/moorhq/moor/internal/testenv"
)

// dashboardCompose is the stack the dashboard deploys: db with a health
// check and a named volume, web started once db is healthy, its MODE
// given; extra goes under web.
func dashboardCompose(image, webMode, extra string) string {
	return fmt.Sprintf(`services:
  db:
    image: %[1]s
    environment:
      MODE: db
    volumes:
      - db_data:/data
    healthcheck:
      test: ["CMD", "/testapp", "-check"]
      interval: 2s
      timeout: 2s
      retries: 5
  web:
    image: %[1]s
    environment:
      MODE: %[2]s
    depends_on:
      db:
        condition: service_healthy
%[3]svolumes:
  db_data:
`, image, webMode, extra)
}

// TestDashboardStacks: an operator deploys a compose file into the stacks
// page of a project, pasted, then read by the file picker; a refused key
// and an admin-only key are shown next to the text as the API words them; the stack's page follows the
// services up live; the containers list shows them as one group, folded
// and unfolded; the project's page lists the stack; an update of one
// service's environment rolls it (the other keeps its replica); a viewer
// sees the services but not the compose file, nor any control; a delete
// with the volumes leaves nothing behind.
func TestDashboardStacks(t *testing.T) {
	// Docker names are the host's: a project of its own per run.
	proj := "stk-" + randSuffix()
	e := NewEnv(t)
	m := e.Start()
	image := testenv.TestImage(t)
	if status, body := m.Do("POST", "/api/v1/projects", map[string]any{"name": proj}); status != 201 {
		t.Fatalf("create project: %d %s", status, body)
	}
	e.runInput(testPassword+"\n", "user", "add", "--username", "uma", "--role", "operator")
	e.runInput(testPassword+"\n", "user", "add", "--username", "val", "--role", "viewer")
	p := openPage(t, m, "operator")
	p.signIn("uma")

	// The stacks page, from the navigation, of the project in the switcher.
	p.until(fmt.Sprintf(`[...document.querySelectorAll("#project-select option")].some(o => o.value === %q)`, proj), "the project in the switcher", 10*time.Second)
	p.setValue("#project-select", proj)
	p.until(fmt.Sprintf(`location.pathname === "/projects/%s/containers"`, proj), "the project's containers", 10*time.Second)
	p.click(`#nav a[data-page=stacks]`)
	p.until(fmt.Sprintf(`location.pathname === "/projects/%s/stacks" && !document.querySelector("#stacks-empty").hidden`, proj),
		"the project's empty stacks page", 10*time.Second)
	p.check("stacks-empty")

	// Refused: a key moor does not map, named with its service, next to
	// the compose file; then a key only admins may use (403).
	compose := `#stack-form [name=compose]`
	p.setValue(`#stack-form [name=name]`, "shop")
	p.setValue(compose, dashboardCompose(image, "v1", "    container_name: shop-web\n"))
	p.click(`#stack-form button[type=submit]`)
	p.until(fmt.Sprintf(`document.querySelector(%q).getAttribute("aria-invalid") === "true"`, compose), "the compose file marked", 10*time.Second)
	fieldError := func() string {
		return eval[string](p, fmt.Sprintf(`(document.querySelector(%q).closest("label").querySelector(".field-error")||{}).textContent||""`, compose))
	}
	if msg := fieldError(); !strings.HasPrefix(msg, "services.web.container_name") {
		t.Errorf("the error next to the compose file: %q", msg)
	}
	p.check("stack-deploy-refused")
	p.setValue(compose, dashboardCompose(image, "v1", "    privileged: true\n"))
	p.click(`#stack-form button[type=submit]`)
	p.until(`(document.querySelector("#stack-form .field-error")||{}).textContent?.includes("services.web.privileged")`, "the admin-only key refused", 10*time.Second)
	if status, body := m.Do("GET", "/api/v1/projects/"+proj+"/containers", nil); status != 200 || strings.Contains(string(body), `"name"`) {
		t.Fatalf("refused stacks left containers: %d %s", status, body)
	}

	// Deploy the file read from the disk by the picker: the stack's page,
	// the services coming up live (web waits for db to be healthy).
	file := filepath.Join(t.TempDir(), "compose.yaml")
	if err := os.WriteFile(file, []byte(dashboardCompose(image, "v1", "")), 0o644); err != nil {
		t.Fatal(err)
	}
	p.setValue(compose, "")
	p.do(chromedp.SetUploadFiles(chromedp.CSS(`#stack-form [name=file]`), []string{file}))
	p.until(fmt.Sprintf(`document.querySelector(%q).value.includes("db_data") && !document.querySelector("#stack-form .field-error")`, compose),
		"the picked file in the box, the old error gone", 10*time.Second)
	p.recordStates(`#s-services tr[data-service="web"] .status`)
	p.click(`#stack-form button[type=submit]`)
	p.until(fmt.Sprintf(`location.pathname === "/projects/%s/stacks/shop"`, proj), "the stack's page", 10*time.Second)
	p.waitText("#s-name", "shop", 5*time.Second)
	p.recordStates(`#s-services tr[data-service="web"] .status`)
	p.waitText("#s-status", "2/2 running", 120*time.Second)
	if s := p.states(); !slices.ContainsFunc(s, func(v string) bool { return v != "running" && v != "" }) {
		t.Logf("web's pill went %v (no state before running seen)", s)
	}
	if got := p.text(`#s-services tr[data-service="web"] td[data-label="Depends on"]`); got != "db (healthy)" {
		t.Errorf("web's dependencies: %q", got)
	}
	if !strings.Contains(p.text("#s-compose"), "db_data") {
		t.Errorf("the compose file shown: %q", p.text("#s-compose"))
	}
	p.check("stack-page")

	// The containers list: one group, both services running under it.
	p.click(`#nav a[data-page=containers]`)
	group := `#containers tr[data-group="shop"]`
	p.until(fmt.Sprintf(`location.pathname === "/projects/%s/containers" && !!document.querySelector(%q)`, proj, group), "the stack's group", 10*time.Second)
	p.waitText(group+` td[data-label=Status] .status`, "2/2 running", 30*time.Second)
	for _, n := range []string{"shop-db", "shop-web"} {
		p.waitText(fmt.Sprintf(`#containers tr.in-group[data-name=%q] .status`, n), "running", 30*time.Second)
	}
	if order := eval[string](p, `[...document.querySelectorAll("#containers tbody tr")].map(r => r.dataset.group || r.dataset.name).join()`); order != "shop,shop-db,shop-web" {
		t.Errorf("the list's rows: %s", order)
	}
	p.check("containers-stack")
	p.click(group + ` button[data-action=fold]`)
	p.until(`!document.querySelector("#containers tr.in-group") && document.querySelector('#containers tr[data-group="shop"] button[data-action=fold]').getAttribute("aria-expanded") === "false"`,
		"the group folded", 5*time.Second)
	p.check("containers-stack-folded")
	p.click(group + ` button[data-action=fold]`)
	p.until(`document.querySelectorAll("#containers tr.in-group").length === 2`, "the group unfolded", 5*time.Second)
	// The filter finds a service in its group.
	p.setValue("#containers-filter", "web")
	p.until(`[...document.querySelectorAll("#containers tbody tr")].map(r => r.dataset.group || r.dataset.name).join() === "shop,shop-web"`, "the filter", 5*time.Second)
	p.setValue("#containers-filter", "")

	// The project's page lists the stack.
	p.visit("/projects/" + proj)
	p.until(`!!document.querySelector('#p-stacks li[data-stack="shop"]')`, "the stack on the project's page", 10*time.Second)
	p.waitContains(`#p-stacks li[data-stack="shop"]`, "2/2 running", 10*time.Second)
	p.check("project-stacks")

	// Update web's environment: web rolls, db keeps its replica.
	p.click(`#p-stacks li[data-stack="shop"] a`)
	p.until(fmt.Sprintf(`location.pathname === "/projects/%s/stacks/shop" && !document.querySelector("#s-edit").hidden`, proj), "the stack's page again", 10*time.Second)
	dbIDs := e.DockerIDs("shop-db")
	before, ok := m.Get(proj + "/shop-web")
	if !ok {
		t.Fatal("shop-web is gone")
	}
	p.click("#s-edit")
	p.until(`!document.querySelector("#s-edit-form").hidden`, "the update form", 5*time.Second)
	if got := eval[string](p, `document.querySelector("#s-edit-form [name=compose]").value`); !strings.Contains(got, "MODE: v1") {
		t.Errorf("the update form's text: %q", got)
	}
	editor := `#s-edit-form [name=compose]`
	p.setValue(editor, dashboardCompose(image, "v1", "    user: \"1000\"\n"))
	p.click(`#s-edit-form button[type=submit]`)
	p.until(`(document.querySelector("#s-edit-form .field-error")||{}).textContent?.startsWith("services.web.user")`, "the update's refused key", 10*time.Second)
	p.check("stack-update-refused")
	p.setValue(editor, dashboardCompose(image, "v2", ""))
	p.recordStates(`#s-services tr[data-service="web"] .status`)
	p.click(`#s-edit-form button[type=submit]`)
	p.until(`document.querySelector("#s-edit-form").hidden`, "the update form closed", 10*time.Second)
	after := m.WaitFor(proj+"/shop-web", 90*time.Second, "rolled out", func(c Container, ok bool) bool {
		return ok && c.Status == "running" && c.ConfigVersion > before.ConfigVersion && c.ObservedGeneration >= c.Generation
	})
	if after.Env["MODE"] != "v2" {
		t.Errorf("web's environment after the update: %v", after.Env)
	}
	p.waitText("#s-status", "2/2 running", 60*time.Second)
	p.waitContains("#s-compose", "MODE: v2", 10*time.Second)
	if s := p.states(); !slicesContains(s, "updating") {
		t.Errorf("web's pill went %v: no updating", s)
	}
	if now := e.DockerIDs("shop-db"); !slices.Equal(now, dbIDs) {
		t.Errorf("db was replaced by web's update: %v, then %v", dbIDs, now)
	}
	p.check("stack-updated")

	// A viewer: the services, not the compose file, no controls.
	v := openPage(t, m, "viewer")
	v.signIn("val")
	v.visit(fmt.Sprintf("/projects/%s/stacks/shop", proj))
	v.waitText("#s-status", "2/2 running", 10*time.Second)
	if eval[bool](v, `document.querySelector("#s-compose").getClientRects().length > 0 || document.querySelector("#s-compose-hidden").hidden`) {
		t.Error("a viewer is shown the compose file, or not told why not")
	}
	if n := eval[int](v, `[...document.querySelectorAll("#page-stack button, #page-stack form, #page-stack textarea")].filter(e => e.getClientRects().length).length`); n != 0 {
		t.Errorf("a viewer sees %d controls on the stack's page", n)
	}
	v.check("stack-viewer")
	v.visit(fmt.Sprintf("/projects/%s/stacks", proj))
	v.until(`!!document.querySelector('#stacks tr[data-stack="shop"]') && document.querySelector("#stack-form").getClientRects().length === 0`, "the viewer's list, no deploy form", 10*time.Second)
	v.waitContains(`#stacks tr[data-stack="shop"] td[data-label=Status]`, "2/2 running", 10*time.Second)
	v.check("stacks")

	// Delete with the volumes: the page says the stack is gone; nothing
	// is left.
	if vols := e.Volumes(); !slices.ContainsFunc(vols, func(v string) bool { return strings.Contains(v, "shop-db."+proj+"_db-data") }) {
		t.Errorf("db's volume is missing: %v", vols)
	}
	p.click("#s-remove-volumes")
	p.click(`#s-delete button[data-action=delete]`)
	p.waitText(`#s-delete button[data-action=delete]`, "Really delete?", 5*time.Second)
	p.click(`#s-delete button[data-action=delete]`)
	p.until(`!document.querySelector("#s-gone").hidden`, "the page to say the stack is gone", 90*time.Second)
	if status, _ := m.Do("GET", "/api/v1/projects/"+proj+"/stacks/shop", nil); status != 404 {
		t.Errorf("the stack after its deletion: %d", status)
	}
	if ids := e.DockerIDs(""); len(ids) != 0 {
		t.Errorf("Docker containers left: %v", ids)
	}
	if vols := e.Volumes(); len(vols) != 0 {
		t.Errorf("volumes left: %v", vols)
	}
	v.until(`document.querySelectorAll("#stacks tbody tr").length === 0 && !document.querySelector("#stacks-empty").hidden`, "the viewer's list emptied, live", 30*time.Second)
	status, body := m.Do("GET", "/api/v1/projects/"+proj+"/stacks", nil)
	var list struct{ Stacks []json.RawMessage }
	if status != 200 || json.Unmarshal(body, &list) != nil || len(list.Stacks) != 0 {
		t.Errorf("the stacks after the deletion: %d %s", status, body)
	}
	p.noProblems("401", "403", "422")
	v.noProblems("401")
}
