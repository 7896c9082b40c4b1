package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestDashboardProjects: an admin creates a project with quotas on the
// projects page (errors next to their fields), deploys into it through the
// header's switcher and the catalog, sees the container in that project's
// list and not in default's, sees its use against the quotas, changes a
// quota, cannot delete the project while it has containers, adds a user
// with no instance-wide role as a member and creates an API key limited
// to the project. That user signs in and lands in the project (the
// default project is not theirs): one project in the switcher, no admin
// controls, its events only, its list following live deploys while
// default's list does not.
func TestDashboardProjects(t *testing.T) {
	// Docker names are the host's: a project of its own per run.
	shop := "shop-" + randSuffix()
	sh := func(s string) string { return strings.ReplaceAll(s, "SHOP", shop) }
	e := NewEnv(t)
	m := e.Start()
	e.runInput(testPassword+"\n", "user", "add", "--username", "ada", "--role", "admin")
	p := openPage(t, m, "admin")
	p.signIn("ada")

	// The projects page: default, then a new project with quotas.
	p.click(`#nav a[href="/projects"]`)
	p.until(`location.pathname === "/projects" && document.querySelector('#projects tr[data-project="default"]')`, "the projects page", 10*time.Second)
	p.setValue(`#project-form [name=name]`, "Bad_Name")
	p.click(`#project-form button[type=submit]`)
	p.until(`document.querySelector('#project-form [name=name]').getAttribute("aria-invalid") === "true"`, "the name field marked", 10*time.Second)
	p.setValue(`#project-form [name=name]`, sh("SHOP"))
	p.setValue(`#project-form [name=max_cpus]`, "-1")
	p.click(`#project-form button[type=submit]`)
	p.until(`document.querySelector('#project-form [name=max_cpus]').getAttribute("aria-invalid") === "true"`, "the CPU quota marked", 10*time.Second)
	if msg := p.text(`#project-form .field-error`); !strings.Contains(msg, "0 or more") {
		t.Errorf("the CPU quota's error: %q", msg)
	}
	p.check("project-create-errors")
	p.setValue(`#project-form [name=max_cpus]`, "1")
	p.setValue(`#project-form [name=max_containers]`, "3")
	p.setValue(`#project-form [name=max_memory_mb]`, "256")
	p.click(`#project-form button[type=submit]`)
	shopRow := sh(`#projects tr[data-project="SHOP"]`)
	p.until(fmt.Sprintf(`!!document.querySelector(%q)`, shopRow), sh("SHOP in the list"), 10*time.Second)
	if got := p.text(shopRow + ` td[data-label=Containers]`); !strings.Contains(got, "0 of 3") {
		t.Errorf("the project's containers: %q", got)
	}
	status, body := m.Do("GET", sh("/api/v1/projects/SHOP"), nil)
	var quotas struct {
		MaxContainers *int     `json:"max_containers"`
		MaxMemoryMB   *int     `json:"max_memory_mb"`
		MaxCPUs       *float64 `json:"max_cpus"`
	}
	if status != 200 || json.Unmarshal(body, &quotas) != nil || quotas.MaxContainers == nil || *quotas.MaxContainers != 3 ||
		quotas.MaxMemoryMB == nil || *quotas.MaxMemoryMB != 256 || quotas.MaxCPUs == nil || *quotas.MaxCPUs != 1 {
		t.Fatalf("the project as created: %d %s", status, body)
	}

	// The switcher: shop's (empty) containers at /projects/shop/containers;
	// deploy from the catalog into shop.
	p.until(sh(`[...document.querySelectorAll("#project-select option")].map(o => o.value).join() === "default,SHOP"`), "both projects in the switcher", 10*time.Second)
	p.setValue("#project-select", sh("SHOP"))
	p.until(sh(`location.pathname === "/projects/SHOP/containers" && !document.querySelector("#containers-empty").hidden`), sh("SHOP's empty list"), 10*time.Second)
	p.waitText(`#page-containers h1 .in-project`, sh("SHOP"), 5*time.Second)
	p.click(`#page-containers .page-head a.button`)
	p.until(sh(`location.pathname === "/projects/SHOP/catalog" && document.querySelector('#catalog .card[data-type="testapp-small"]')`), sh("SHOP's catalog"), 10*time.Second)
	p.click(`#catalog .card[data-type="testapp-small"] a`)
	p.until(sh(`location.pathname === "/projects/SHOP/catalog/testapp-small" && !document.querySelector("#page-deploy").hidden`), sh("the deploy form in SHOP"), 10*time.Second)
	p.waitContains("#deploy-where", sh("SHOP"), 5*time.Second)
	p.check("project-deploy-form")
	p.setValue(`#deploy-form [name=name]`, "web")
	p.click(`#deploy-form button[type=submit]`)
	p.until(sh(`location.pathname === "/projects/SHOP/containers/web"`), sh("the container's page in SHOP"), 10*time.Second)
	p.waitText("#c-status", "running", 90*time.Second)
	status, body = m.Do("GET", sh("/api/v1/projects/SHOP/containers/web"), nil)
	var web struct{ Project string }
	if status != 200 || json.Unmarshal(body, &web) != nil || web.Project != shop {
		t.Fatalf("the project's web by the API: %d %s", status, body)
	}
	if status, _ := m.Do("GET", "/api/v1/containers/web", nil); status != 404 {
		t.Errorf("web is in the default project too: %d", status)
	}
	p.check("project-container")

	// shop's list has it; default's has not.
	p.click(`#page-container .crumbs a`)
	p.until(sh(`location.pathname === "/projects/SHOP/containers"`), sh("back to SHOP's list"), 10*time.Second)
	p.waitText(`#containers tr[data-name="web"] .status`, "running", 10*time.Second)
	p.check("project-containers")
	p.setValue("#project-select", "default")
	p.until(`location.pathname === "/" && !document.querySelector("#containers-empty").hidden`, "default's list, empty", 10*time.Second)
	if eval[bool](p, `!!document.querySelector('#containers tr[data-name="web"]')`) {
		t.Error("default's list shows the project's container")
	}
	// An old link keeps working: the default project's list at /.
	p.visit("/")
	p.until(`document.querySelector("#project-select").value === "default" && location.pathname === "/"`, "the default project after a reload", 10*time.Second)

	// The use against the quotas (testapp-small: 64 MB, a quarter CPU).
	p.click(`#nav a[href="/projects"]`)
	p.until(fmt.Sprintf(`(document.querySelector(%q)||{}).textContent?.includes("1 of 3")`, shopRow+` td[data-label=Containers]`), sh("SHOP's use"), 10*time.Second)
	if got := p.text(shopRow + ` td[data-label=Memory]`); !strings.Contains(got, "64 of 256 MB") {
		t.Errorf("the project's memory: %q", got)
	}
	if got := p.text(shopRow + ` td[data-label=CPUs]`); !strings.Contains(got, "0.25 of 1") {
		t.Errorf("the project's CPUs: %q", got)
	}
	if n := eval[int](p, fmt.Sprintf(`document.querySelectorAll(%q).length`, shopRow+` meter`)); n != 3 {
		t.Errorf("the project's row has %d meters, want 3", n)
	}
	p.check("projects")

	// A user with no instance-wide role, from the users page.
	p.click(`#nav a[href="/admin/users"]`)
	p.until(`document.querySelector('#users tr[data-user="ada"]')`, "the users list", 10*time.Second)
	if hint := p.text("#user-role-hint"); !strings.Contains(hint, "member") {
		t.Errorf("the role's help: %q", hint)
	}
	p.addUser("ann", "none")

	// shop's page: quotas changed (one cleared), deletion refused while it
	// has containers, ann made a member.
	p.visit(sh("/projects/SHOP"))
	p.until(`!document.querySelector("#page-project").hidden && document.querySelector("#quota-form [name=max_containers]").value === "3"`, sh("SHOP's page"), 10*time.Second)
	p.setValue(`#quota-form [name=max_containers]`, "")
	p.setValue(`#quota-form [name=max_memory_mb]`, "512")
	p.click(`#quota-form button[type=submit]`)
	p.waitContains("#p-use", "64 of 512 MB", 10*time.Second)
	p.waitContains("#p-use", "no limit", 10*time.Second)
	status, body = m.Do("GET", sh("/api/v1/projects/SHOP"), nil)
	quotas.MaxContainers, quotas.MaxMemoryMB = nil, nil
	if status != 200 || json.Unmarshal(body, &quotas) != nil || quotas.MaxContainers != nil || quotas.MaxMemoryMB == nil || *quotas.MaxMemoryMB != 512 {
		t.Errorf("the project after the quota change: %d %s", status, body)
	}
	p.click(`#p-delete button[data-action=delete]`)
	p.click(`#p-delete button[data-action=delete]`)
	p.waitContains("#p-delete-error", "web", 10*time.Second)
	p.setValue(`#member-form [name=name]`, "nobody")
	p.click(`#member-form button[type=submit]`)
	p.until(`document.querySelector("#member-form .field-error, #member-error:not(:empty)")`, "an unknown member refused", 10*time.Second)
	p.setValue(`#member-form [name=name]`, "ann")
	p.setValue(`#member-form [name=role]`, "operator")
	p.click(`#member-form button[type=submit]`)
	annRow := `#p-members tr[data-member="user/ann"]`
	p.until(fmt.Sprintf(`!!document.querySelector(%q)`, annRow), "ann a member", 10*time.Second)
	if role := p.text(annRow + ` td[data-label=Role]`); role != "operator" {
		t.Errorf("ann's role in the project: %q", role)
	}
	p.check("project-page")

	// An API key limited to shop.
	p.click(`#nav a[href="/admin/keys"]`)
	p.until(sh(`[...document.querySelectorAll("#key-form [name=project] option")].some(o => o.value === "SHOP")`), sh("SHOP among the keys' projects"), 10*time.Second)
	p.setValue(`#key-form [name=name]`, sh("ci-SHOP"))
	p.setValue(`#key-form [name=project]`, sh("SHOP"))
	p.click(`#key-form button[type=submit]`)
	p.until(sh(`!document.querySelector("#key-new").hidden && document.querySelector('#keys tr[data-key-name="ci-SHOP"]')`), "the key", 10*time.Second)
	if got := p.text(sh(`#keys tr[data-key-name="ci-SHOP"] td[data-label=Project]`)); got != sh("SHOP") {
		t.Errorf("the key's project in the list: %q", got)
	}
	if got := p.text(`#keys tr[data-key-name="test-admin"] td[data-label=Project]`); got != "every project" {
		t.Errorf("an instance-wide key's project in the list: %q", got)
	}
	key := p.text("#key-new-value")
	if status, _ := m.Do("GET", sh("/api/v1/projects/SHOP/containers"), nil, key); status != 200 {
		t.Errorf("the limited key in the project: %d", status)
	}
	if status, _ := m.Do("GET", "/api/v1/containers", nil, key); status != 403 {
		t.Errorf("the limited key in default: %d", status)
	}
	p.check("keys-projects")

	// ann: lands in shop, the only project she sees; no admin controls.
	a := openPage(t, m, "member")
	a.signIn("ann")
	a.until(sh(`location.pathname === "/projects/SHOP/containers" && !!document.querySelector('#containers tr[data-name="web"]')`), sh("ann in SHOP's list"), 10*time.Second)
	if opts := eval[string](a, `[...document.querySelectorAll("#project-select option")].map(o => o.value).join()`); opts != sh("SHOP") {
		t.Errorf("ann's switcher: %q", opts)
	}
	a.waitText("#whoami", "ann (operator)", 5*time.Second)
	if n := eval[int](a, `[...document.querySelectorAll("#nav a[data-instance-role]")].filter(e => e.getClientRects().length).length`); n != 0 {
		t.Errorf("ann sees %d admin pages in the navigation", n)
	}
	a.check("member-containers")
	a.click(`#nav a[data-page=events]`)
	a.until(sh(`location.pathname === "/projects/SHOP/events" && document.querySelector("#events-table tbody tr")`), "ann's events", 10*time.Second)
	if other := eval[int](a, `[...document.querySelectorAll("#events-table tbody tr")].filter(r => /user added|API key/.test(r.textContent)).length`); other != 0 {
		t.Errorf("ann sees %d events of accounts", other)
	}
	a.click(`#nav a[href="/projects"]`)
	a.until(sh(`document.querySelectorAll("#projects tbody tr").length === 1 && document.querySelector('#projects tr[data-project="SHOP"]')`), "ann's projects", 10*time.Second)
	if eval[bool](a, `document.querySelector("#project-form").getClientRects().length > 0`) {
		t.Error("ann is offered to create a project")
	}
	a.check("member-projects")
	a.click(sh(`#projects tr[data-project="SHOP"] a.name-link`))
	a.until(`!document.querySelector("#page-project").hidden && document.querySelector("#p-use dd")`, sh("SHOP's page for ann"), 10*time.Second)
	if n := eval[int](a, `[...document.querySelectorAll("#page-project button, #page-project form")].filter(e => e.getClientRects().length).length`); n != 0 {
		t.Errorf("ann sees %d controls on the project's page", n)
	}
	a.check("member-project-page")
	// Her default-project link lands in shop.
	a.visit("/catalog")
	a.until(sh(`location.pathname === "/projects/SHOP/catalog"`), sh("the catalog of SHOP"), 10*time.Second)

	// Live: a deploy into shop shows in ann's list of shop; the admin's
	// list of default does not take it.
	a.click(`#nav a[data-page=containers]`)
	a.until(sh(`location.pathname === "/projects/SHOP/containers"`), "ann's list", 10*time.Second)
	p.visit("/")
	p.until(`!document.querySelector("#containers-empty").hidden`, "default's empty list", 10*time.Second)
	status, body = m.Do("POST", sh("/api/v1/projects/SHOP/containers"), map[string]any{"name": "api", "type": "testapp-small"})
	if status != 202 {
		t.Fatalf("deploy the project's api: %d %s", status, body)
	}
	a.waitText(`#containers tr[data-name="api"] .status`, "running", 90*time.Second)
	if eval[bool](p, `!!document.querySelector('#containers tr[data-name="api"]') || document.querySelector("#containers-empty").hidden`) {
		t.Error("default's list took the project's container from the stream")
	}
	if eval[bool](p, `[...document.querySelectorAll("#event-log a")].some(a => a.textContent === "api")`) {
		t.Error("default's recent events show the project's container")
	}

	// Empty shop, then delete it from its page.
	for _, n := range []string{"web", "api"} {
		if status, body := m.Do("DELETE", sh("/api/v1/projects/SHOP/containers/")+n, nil); status != 202 {
			t.Fatalf("remove %s: %d %s", n, status, body)
		}
	}
	a.until(`document.querySelectorAll("#containers tbody tr").length === 0`, sh("SHOP emptied, live"), 60*time.Second)
	p.visit(sh("/projects/SHOP"))
	p.until(`!document.querySelector("#page-project").hidden && document.querySelector("#p-use dd")`, sh("SHOP's page"), 10*time.Second)
	// Empty: no container left, none being removed either (a deletion
	// would be refused).
	p.until(`document.querySelector("#p-use").textContent.includes("0 of 512 MB") && document.querySelector("#p-use dd").textContent.startsWith("0 ")`,
		"the project empty", 60*time.Second)
	p.click(`#p-delete button[data-action=delete]`)
	p.click(`#p-delete button[data-action=delete]`)
	p.until(sh(`location.pathname === "/projects" && !document.querySelector('#projects tr[data-project="SHOP"]')`), sh("SHOP deleted"), 10*time.Second)
	if status, _ := m.Do("GET", sh("/api/v1/projects/SHOP"), nil); status != 404 {
		t.Errorf("the project after its deletion: %d", status)
	}
	p.noProblems("401", "403", "404", "409", "422")
	a.noProblems("401", "403")
}
