package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/moorhq/moor/internal/testenv"
)

// tab is a browser tab on a moor, with the checks every dashboard page
// gets: screenshots at desktop and phone width, nothing wider than a phone,
// every control named.
type tab struct {
	t        *testing.T
	ctx      context.Context
	m        *Moor
	problems func() []string
	who      string // in screenshot names
}

func openPage(t *testing.T, m *Moor, who string) *tab {
	ctx, problems := browser(t)
	p := &tab{t: t, ctx: ctx, m: m, problems: problems, who: who}
	p.do(chromedp.EmulateViewport(1280, 900))
	return p
}

func (p *tab) do(steps ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	if err := chromedp.Do(p.ctx, steps...); err != nil {
		p.t.Fatal(err)
	}
}

// eval returns what a script gives.
func eval[T any](p *tab, expr string) T {
	p.t.Helper()
	v, err := chromedp.Run(p.ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		p.t.Fatalf("%s: %v", expr, err)
	}
	return v
}

// until waits for a script to give true.
func (p *tab) until(expr, what string, timeout time.Duration) {
	p.t.Helper()
	if _, err := chromedp.Run(p.ctx, chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingTimeout(timeout))); err != nil {
		text, _ := chromedp.Run(p.ctx, chromedp.Evaluate[string](`document.querySelector("main").innerText`))
		p.t.Fatalf("%s: not within %v (%v); the page shows:\n%s", what, timeout, err, text)
	}
}

// text is the trimmed text of the first element sel matches ("" if none).
func (p *tab) text(sel string) string {
	return strings.TrimSpace(eval[string](p, fmt.Sprintf(`(document.querySelector(%q)||{}).textContent||""`, sel)))
}

func (p *tab) waitText(sel, want string, timeout time.Duration) {
	p.t.Helper()
	p.until(fmt.Sprintf(`((document.querySelector(%q)||{}).textContent||"").trim() === %q`, sel, want),
		fmt.Sprintf("%s showing %q (it shows %q)", sel, want, p.text(sel)), timeout)
}

func (p *tab) waitContains(sel, want string, timeout time.Duration) {
	p.t.Helper()
	p.until(fmt.Sprintf(`((document.querySelector(%q)||{}).textContent||"").includes(%q)`, sel, want),
		fmt.Sprintf("%s containing %q", sel, want), timeout)
}

// visit loads a path of the dashboard anew (as a bookmark or a reload would).
func (p *tab) visit(path string) {
	p.t.Helper()
	p.do(chromedp.Navigate(p.m.URL + path))
	p.until(`document.readyState === "complete" && [...document.querySelectorAll("main > section")].some(s => !s.hidden)`, "the page to show", 10*time.Second)
}

// click follows an in-page link or presses a button.
func (p *tab) click(sel string) {
	p.t.Helper()
	p.do(chromedp.Click(chromedp.CSS(sel)))
}

// setValue fills a control as typing would: the value, then input and
// change events.
func (p *tab) setValue(sel, v string) {
	p.t.Helper()
	ok := eval[bool](p, fmt.Sprintf(`(() => { const e = document.querySelector(%q); if (!e) return false; e.value = %q;
		e.dispatchEvent(new Event("input", {bubbles: true})); e.dispatchEvent(new Event("change", {bubbles: true})); return true; })()`, sel, v))
	if !ok {
		p.t.Fatalf("no %s to fill", sel)
	}
}

// outputDir is where screenshots go: $MOOR_TEST_OUTPUT/ui, by default
// test-output/ui at the top of the repository.
func outputDir(t *testing.T) string {
	dir := os.Getenv("MOOR_TEST_OUTPUT")
	if dir == "" {
		_, file, _, _ := runtime.Caller(0)
		dir = filepath.Join(filepath.Dir(file), "..", "test-output")
	}
	dir = filepath.Join(dir, "ui")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// check takes the page as it is now at desktop and at phone width: a
// screenshot of each, no sideways scrolling on the phone, and every visible
// control with a name a screen reader can say.
func (p *tab) check(name string) {
	p.t.Helper()
	dir := outputDir(p.t)
	for _, size := range []struct {
		label         string
		width, height int64
		mobile        bool
	}{{"desktop", 1280, 900, false}, {"phone", 390, 844, true}} {
		opts := []chromedp.EmulateViewportOption{}
		if size.mobile {
			opts = append(opts, chromedp.EmulateMobile, chromedp.EmulateScale(2))
		}
		p.do(chromedp.EmulateViewport(size.width, size.height, opts...))
		time.Sleep(150 * time.Millisecond) // layout and fonts settle
		if size.mobile {
			if wide := eval[string](p, overflowing); wide != "" {
				p.t.Errorf("%s at phone width: wider than the screen: %s", name, wide)
			}
		}
		if unnamed := eval[[]string](p, unnamedControls); len(unnamed) > 0 {
			p.t.Errorf("%s (%s): controls without a name: %v", name, size.label, unnamed)
		}
		png, err := chromedp.Run(p.ctx, chromedp.FullScreenshot(100))
		if err != nil {
			p.t.Fatalf("screenshot %s: %v", name, err)
		}
		file := filepath.Join(dir, fmt.Sprintf("%s-%s-%s.png", name, p.who, size.label))
		if err := os.WriteFile(file, png, 0o644); err != nil {
			p.t.Fatal(err)
		}
	}
	p.do(chromedp.EmulateViewport(1280, 900))
}

// overflowing names what sticks out to the right of the viewport, if
// anything does.
const overflowing = `(() => {
  if (document.documentElement.scrollWidth <= window.innerWidth + 1) return "";
  const out = [];
  for (const e of document.querySelectorAll("body *")) {
    const r = e.getBoundingClientRect();
    if (r.width && r.right > window.innerWidth + 1) out.push(e.tagName.toLowerCase() + (e.id ? "#" + e.id : "") + "." + e.className + " right=" + Math.round(r.right));
  }
  return "page " + document.documentElement.scrollWidth + "px wide: " + out.slice(0, 5).join(", ");
})()`

// unnamedControls lists visible controls with no accessible name: no label,
// aria-label(ledby), title, or text of their own.
const unnamedControls = `(() => {
  const bad = [];
  for (const e of document.querySelectorAll("input, select, textarea, button, a[href]")) {
    if (e.type === "hidden" || e.closest("[hidden]") || !e.getClientRects().length) continue;
    const byRef = (e.getAttribute("aria-labelledby") || "").split(" ").map(id => (document.getElementById(id) || {}).textContent || "").join("");
    const name = [e.getAttribute("aria-label"), e.labels ? [...e.labels].map(l => l.textContent).join("") : "", byRef,
      ["BUTTON", "A"].includes(e.tagName) ? e.textContent : "", e.title].map(s => (s || "").trim()).find(Boolean);
    if (!name) bad.push(e.outerHTML.slice(0, 100));
  }
  return bad;
})()`

// noProblems fails the test for any script error or CSP refusal the page
// reported (a 401 on purpose aside).
func (p *tab) noProblems(allow ...string) {
	p.t.Helper()
outer:
	for _, pr := range p.problems() {
		for _, a := range allow {
			if strings.Contains(pr, a) {
				continue outer
			}
		}
		p.t.Errorf("%s's page reported: %s", p.who, pr)
	}
}

// addUser adds a user with the users page's form (the page open), and
// checks the list shows it with its role.
func (p *tab) addUser(name, role string) {
	p.t.Helper()
	p.setValue(`#user-form [name=username]`, name)
	p.setValue(`#user-form [name=password]`, testPassword)
	p.setValue(`#user-form [name=role]`, role)
	p.click(`#user-form button[type=submit]`)
	row := fmt.Sprintf(`#users tr[data-user=%q]`, name)
	p.until(fmt.Sprintf(`!!document.querySelector(%q)`, row), name+" in the list", 10*time.Second)
	if got := p.text(row + ` td:nth-child(2)`); got != role {
		p.t.Errorf("%s's role in the list: %q", name, got)
	}
}

func (p *tab) signIn(user string) {
	p.t.Helper()
	p.visit("/")
	p.until(`!document.querySelector("#login").hidden`, "the sign-in form", 10*time.Second)
	p.setValue(`#login-form [name=username]`, user)
	p.setValue(`#login-form [name=password]`, testPassword)
	p.click(`#login-form button[type=submit]`)
	p.until(`!document.querySelector("#nav").hidden`, "signed in", 10*time.Second)
}

// TestDashboardCatalogAndDeploy: the sign-in page is clean; the catalog's
// cards are searched and filtered by category, by mouse and by keyboard;
// the deploy form puts the server's errors next to their fields; a deploy
// lands on the container's own page, which follows it live to running
// with its URL, DNS names, ports, image and replicas with health.
func TestDashboardCatalogAndDeploy(t *testing.T) {
	e := NewEnv(t)
	hostPort := testenv.FreeTCPPort(t)
	m := e.Start(fmt.Sprintf("MOOR_PUBLISH_PORTS=%d", hostPort))
	e.runInput(testPassword+"\n", "user", "add", "--username", "uma", "--role", "operator")
	p := openPage(t, m, "operator")

	// Sign-in: no live badge, no field red before anything was typed.
	p.visit("/")
	p.until(`!document.querySelector("#login").hidden`, "the sign-in form", 10*time.Second)
	if eval[bool](p, `!document.querySelector("#live").hidden || !document.querySelector("#nav").hidden`) {
		t.Error("the sign-in page shows the live badge or the navigation")
	}
	if red := eval[int](p, `[...document.querySelectorAll("#login-form input")].filter(i => getComputedStyle(i).borderColor !== getComputedStyle(document.querySelector("#login-form button:not(.primary), #theme")).borderColor).length`); red != 0 {
		t.Errorf("%d sign-in fields have a border of another colour before any input", red)
	}
	p.check("signin")
	p.setValue(`#login-form [name=username]`, "uma")
	p.setValue(`#login-form [name=password]`, "not the password")
	p.click(`#login-form button[type=submit]`)
	p.waitText("#login-error", "wrong user name or password", 10*time.Second)
	p.signIn("uma")
	p.waitText("#whoami", "uma (operator)", 10*time.Second)
	p.waitText("#live", "live", 10*time.Second)
	p.until(`!document.querySelector("#containers-empty").hidden`, "the empty state", 5*time.Second)
	p.check("containers-empty")
	if eval[bool](p, `document.querySelector('#nav a[href="/admin/users"]').hidden === false`) {
		t.Error("an operator sees the admin pages in the navigation")
	}

	// The catalog: every type a card; search narrows; categories filter.
	status, body := m.Do("GET", "/api/v1/types", nil)
	var types struct{ Types []struct{ ID, Title string } }
	if status != 200 || json.Unmarshal(body, &types) != nil {
		t.Fatalf("types: %d %s", status, body)
	}
	p.click(`#nav a[href="/catalog"]`)
	p.until(fmt.Sprintf(`document.querySelectorAll("#catalog .card").length === %d`, len(types.Types)), "a card per type", 5*time.Second)
	if got := eval[string](p, `location.pathname`); got != "/catalog" {
		t.Errorf("the catalog's address: %s", got)
	}
	p.check("catalog")
	// Keyboard: "/" jumps to the search.
	p.do(chromedp.KeyEvent("/"))
	if !eval[bool](p, `document.activeElement === document.querySelector("#catalog-search")`) {
		t.Error(`"/" does not focus the catalog search`)
	}
	// (The protocol's synthetic "/" may still type itself; a real key does not.)
	p.do(js(`document.querySelector("#catalog-search").value = ""`), chromedp.KeyEvent("redis"))
	p.until(`[...document.querySelectorAll("#catalog .card")].map(c => c.dataset.type).join() === "redis"`, "the search to leave only redis", 5*time.Second)
	p.setValue("#catalog-search", "no such thing at all")
	p.waitContains("#catalog-count", "No type matches", 5*time.Second)
	p.setValue("#catalog-search", "")
	p.click(`#catalog-categories button[data-category="testing"]`)
	p.until(`[...document.querySelectorAll("#catalog .card")].every(c => [...c.querySelectorAll(".tag")].some(t => t.textContent === "testing"))
		&& document.querySelector('#catalog .card[data-type="testapp"]')
		&& !document.querySelector('#catalog .card[data-type="redis"]')`, "the testing category only", 5*time.Second)
	if pressed := p.text(`#catalog-categories button[aria-pressed="true"]`); !strings.HasPrefix(pressed, "testing") {
		t.Errorf("the pressed category chip: %q", pressed)
	}

	// Keyboard: Enter on the card's link opens the deploy form.
	p.do(js(`document.querySelector('#catalog .card[data-type="testapp"] a').focus()`), chromedp.KeyEvent("\r"))
	p.until(`location.pathname === "/catalog/testapp" && !document.querySelector("#page-deploy").hidden`, "the deploy page", 5*time.Second)
	if !eval[bool](p, `document.activeElement === document.querySelector("#deploy-title")`) {
		t.Error("after navigating, the focus is not on the new page's heading")
	}
	p.waitText("#deploy-title", "Test app", 5*time.Second)
	p.check("deploy-form")

	// A bad name: the server's error is next to the name field.
	p.setValue(`#deploy-form [name=name]`, "-bad-")
	p.click(`#deploy-form button[type=submit]`)
	p.until(`document.querySelector('#deploy-form [name=name]').getAttribute("aria-invalid") === "true"`, "the name field marked", 10*time.Second)
	msg := eval[string](p, `document.querySelector('#deploy-form [name=name]').closest("label").querySelector(".field-error").textContent`)
	if !strings.Contains(msg, "name") {
		t.Errorf("the error next to the name field: %q", msg)
	}
	// A value the type refuses: next to that variable's field.
	p.setValue(`#deploy-form [name=name]`, "ok-name")
	p.do(js(`(() => { const s = document.querySelector('#deploy-form [name="env.MODE"]'); s.append(new Option("bogus", "bogus")); s.value = "bogus"; })()`))
	p.click(`#deploy-form button[type=submit]`)
	p.until(`document.querySelector('#deploy-form [name="env.MODE"]').getAttribute("aria-invalid") === "true"`, "the MODE field marked", 10*time.Second)
	if eval[bool](p, `document.querySelector('#deploy-form [name=name]').getAttribute("aria-invalid") === "true"`) {
		t.Error("the earlier error on the name field stayed")
	}
	p.check("deploy-errors")
	p.do(js(`document.querySelector('#deploy-form [name="env.MODE"]').value = ""`))
	// A host port out of range: the error is by the publish field.
	p.do(js(`document.querySelector("#deploy-routing").open = true`))
	p.setValue(`#deploy-form [name=publish]`, "99999:8080")
	p.click(`#deploy-form button[type=submit]`)
	p.until(`document.querySelector('#deploy-form [name=publish]').getAttribute("aria-invalid") === "true"`, "the publish field marked", 10*time.Second)
	p.setValue(`#deploy-form [name=publish]`, fmt.Sprintf("%d:http", hostPort))

	// Deploy by keyboard: type the name and press Enter.
	name := "ui-" + randSuffix()
	p.do(js(`document.querySelector('#deploy-form [name=name]').value = ""`))
	p.do(chromedp.SendKeys(chromedp.CSS(`#deploy-form [name=name]`), name+"\r"))
	p.until(fmt.Sprintf(`location.pathname === "/containers/%s"`, name), "the container's page", 10*time.Second)
	p.waitText("#c-name", name, 5*time.Second)
	p.waitText("#c-status", "running", 90*time.Second)
	c := m.WaitStatus(name, "running", 30*time.Second)
	p.until(`document.querySelector("#c-replicas tbody tr td:nth-child(3)").textContent === "healthy"`, "the replica healthy", 30*time.Second)
	overview := p.text("#c-overview")
	for _, want := range []string{c.URL, c.DNS.Host, c.DNS.Container, "moor-testapp:latest", "8080/tcp", c.InternalIP, "by user:uma",
		fmt.Sprintf("127.0.0.1:%d → 8080/tcp", hostPort)} {
		if want == "" || !strings.Contains(overview, want) {
			t.Errorf("the overview lacks %q:\n%s", want, overview)
		}
	}
	if got := p.text(`#c-replicas tbody tr td:nth-child(5) code`); len(c.Instances) != 1 || !strings.HasPrefix(c.Instances[0].DockerID, got) || got == "" {
		t.Errorf("the replica's Docker id shown: %q (%+v)", got, c.Instances)
	}
	// The URL on the page answers (the embedded router).
	href := eval[string](p, `document.querySelector("#c-overview a[target=_blank]").href`)
	if status, body := getURL(t, href); status != 200 || !strings.Contains(body, "hello") {
		t.Errorf("the page's URL %s: %d %q", href, status, body)
	}
	// The published port answers on the host.
	if status, body := getURL(t, fmt.Sprintf("http://127.0.0.1:%d/", hostPort)); status != 200 || !strings.Contains(body, "hello") {
		t.Errorf("the published port %d: %d %q", hostPort, status, body)
	}
	p.check("container-running")

	// The containers page lists it with its URL; the filter finds it.
	p.click(`#nav a[href="/"]`)
	row := fmt.Sprintf(`#containers tr[data-name=%q]`, name)
	p.waitText(row+" .status", "running", 10*time.Second)
	p.waitText(row+" td.replicas", "1/1", 10*time.Second)
	p.setValue("#containers-filter", "zzz")
	p.until(fmt.Sprintf(`!document.querySelector(%q)`, row), "the filter to hide the row", 5*time.Second)
	p.setValue("#containers-filter", name[:6])
	p.until(fmt.Sprintf(`!!document.querySelector(%q)`, row), "the filter to show the row", 5*time.Second)
	p.check("containers")
	p.noProblems("401")
}

// getURL fetches a URL as a browser would: *.localhost is loopback.
func getURL(t *testing.T, url string) (int, string) {
	t.Helper()
	dial := (&net.Dialer{Timeout: 5 * time.Second}).DialContext
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			host, port, _ := net.SplitHostPort(addr)
			if strings.HasSuffix(host, ".localhost") {
				addr = net.JoinHostPort("127.0.0.1", port)
			}
			return dial(ctx, network, addr)
		}}}
	resp, err := client.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// setMedia emulates a preferred colour scheme ("" for none).
func setMedia(scheme string) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		var features []*emulation.MediaFeature
		if scheme != "" {
			features = []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: scheme}}
		}
		_, err := cdp.Call(ctx, t, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{Features: features})
		return chromedp.Void{}, err
	}
}

// recordStates keeps every word the status pill of sel shows from now on,
// so a transition that lasts a moment is seen.
func (p *tab) recordStates(sel string) {
	p.t.Helper()
	p.do(js(fmt.Sprintf(`(() => {
		window.__states = [];
		const note = () => { const e = document.querySelector(%[1]q); const s = e ? e.textContent : ""; if (window.__states[window.__states.length - 1] !== s) window.__states.push(s); };
		note();
		if (window.__observer) window.__observer.disconnect();
		window.__observer = new MutationObserver(note);
		window.__observer.observe(document.querySelector("main"), {subtree: true, childList: true, characterData: true});
	})()`, sel)))
}

func (p *tab) states() []string { return eval[[]string](p, `window.__states || []`) }

// TestDashboardContainerPage: a container's own page, as an operator uses
// it: history of this container only (not of an earlier one of the same
// name), credentials revealed on click, settings edited (a rolling
// update), logs followed live, each action's transitional state
// (stopping, starting, restarting, removing), errors next to what caused
// them; a reload keeps the event log; a viewer sees neither values nor
// controls.
func TestDashboardContainerPage(t *testing.T) {
	e := NewEnv(t)
	m := e.Start()
	e.runInput(testPassword+"\n", "user", "add", "--username", "uma", "--role", "operator")
	e.runInput(testPassword+"\n", "user", "add", "--username", "val", "--role", "viewer")

	// An earlier container of the same name, made and removed with the API key.
	name := "page-" + randSuffix()
	m.Create(map[string]any{"name": name, "type": "testapp", "env": map[string]any{"GREETING": "earlier"}})
	m.WaitStatus(name, "running", 60*time.Second)
	if status, body := m.Do("DELETE", "/api/v1/containers/"+name, nil); status != 202 {
		t.Fatalf("remove: %d %s", status, body)
	}
	m.WaitFor(name, 60*time.Second, "gone", func(_ Container, ok bool) bool { return !ok })

	p := openPage(t, m, "operator")
	p.signIn("uma")
	p.visit("/catalog/testapp")
	p.setValue(`#deploy-form [name=name]`, name)
	p.setValue(`#deploy-form [name="env.GREETING"]`, "ahoy")
	p.click(`#deploy-form button[type=submit]`)
	p.until(fmt.Sprintf(`location.pathname === "/containers/%s"`, name), "the container's page", 10*time.Second)
	p.waitText("#c-status", "running", 90*time.Second)

	// History: this container's only.
	p.waitContains("#c-history", "by user:uma", 10*time.Second)
	if h := p.text("#c-history"); strings.Contains(h, "apikey:") || strings.Contains(h, "removed") {
		t.Errorf("the history shows the earlier container of the same name:\n%s", h)
	}

	// Credentials: hidden until asked, then the stored values.
	if eval[bool](p, `!document.querySelector("#c-creds").hidden`) {
		t.Error("credentials shown before Reveal")
	}
	status, body := m.Do("GET", "/api/v1/containers/"+name+"/credentials", nil)
	var creds struct{ Credentials map[string]string }
	if status != 200 || json.Unmarshal(body, &creds) != nil || creds.Credentials["SECRET_TOKEN"] == "" {
		t.Fatalf("credentials: %d %s", status, body)
	}
	p.click("#creds-reveal")
	p.waitText("#cred-SECRET_TOKEN", creds.Credentials["SECRET_TOKEN"], 10*time.Second)
	if got := eval[string](p, `document.querySelector("#creds-reveal").getAttribute("aria-expanded")`); got != "true" {
		t.Errorf("Reveal's aria-expanded: %s", got)
	}
	p.check("container-credentials")
	p.click("#creds-reveal")
	p.until(`document.querySelector("#c-creds").hidden && !document.querySelector("#c-creds").textContent`, "credentials hidden again", 5*time.Second)

	// Logs, followed: what the replica writes arrives without a reload.
	p.waitContains("#c-logs", "testapp: ready", 20*time.Second)
	p.click("#logs-follow")
	p.until(`document.querySelector("#logs-follow").getAttribute("aria-pressed") === "true"`, "follow on", 5*time.Second)
	p.waitContains("#c-logs", "listening on", 10*time.Second)

	// Stop: "stopping" at once, then stopped; the followed log shows the
	// shutdown and the follow ends with the replica.
	p.recordStates("#c-status")
	p.click(`#c-actions button[data-action=stop]`)
	p.waitText("#c-status", "stopped", 60*time.Second)
	p.waitContains("#c-logs", "shutting down", 10*time.Second)
	p.waitContains("#logs-state", "follow ended", 10*time.Second)
	if s := p.states(); !slicesContains(s, "stopping") {
		t.Errorf("the pill went %v: no stopping", s)
	}
	p.recordStates("#c-status")
	p.click(`#c-actions button[data-action=start]`)
	p.waitText("#c-status", "running", 60*time.Second)
	if s := p.states(); !slicesContains(s, "starting") {
		t.Errorf("the pill went %v: no starting", s)
	}

	// Edit settings: a rolling update through PATCH.
	p.click("#edit-open")
	p.until(`!document.querySelector("#edit-form").hidden`, "the edit form", 5*time.Second)
	if v := eval[string](p, `document.querySelector('#edit-form [name="env.SECRET_TOKEN"]').value`); v != "" {
		t.Errorf("the edit form shows a secret's value: %q", v)
	}
	// A bad image: the error is next to the image field.
	p.setValue(`#edit-form [name=image]`, "somewhere-else/other:1")
	p.click(`#edit-form button[type=submit]`)
	p.until(`document.querySelector('#edit-form [name=image]').getAttribute("aria-invalid") === "true"`, "the image field marked", 10*time.Second)
	p.setValue(`#edit-form [name=image]`, "moor-testapp:latest")
	p.setValue(`#edit-form [name="env.GREETING"]`, "howdy")
	before := m.WaitStatus(name, "running", 5*time.Second)
	p.recordStates("#c-status")
	p.click(`#edit-form button[type=submit]`)
	p.until(`document.querySelector("#edit-form").hidden`, "the edit form closed", 10*time.Second)
	p.until(`[...document.querySelectorAll("#c-env tbody tr")].some(r => r.textContent.includes("GREETING") && r.textContent.includes("howdy"))`,
		"the new value in the settings", 10*time.Second)
	after := m.WaitFor(name, 90*time.Second, "rolled out", func(c Container, ok bool) bool {
		return ok && c.Status == "running" && c.ConfigVersion > before.ConfigVersion && c.ObservedGeneration >= c.Generation
	})
	if after.Env["GREETING"] != "howdy" {
		t.Errorf("env after the edit: %v", after.Env)
	}
	p.waitText("#c-status", "running", 60*time.Second)
	if s := p.states(); !slicesContains(s, "updating") {
		t.Errorf("the pill went %v: no updating", s)
	}
	p.waitContains("#c-history", "settings changed", 10*time.Second)

	// Restart from the page; scale beyond the limit: the error by the field.
	p.recordStates("#c-status")
	p.click(`#c-actions button[data-action=restart]`)
	p.until(`window.__states.includes("restarting")`, "restarting shown", 10*time.Second)
	p.waitText("#c-status", "running", 60*time.Second)

	// Redeploy: a new Docker container, "redeploying" meanwhile.
	oldID := eval[string](p, `document.querySelector("#c-replicas tbody tr td:nth-child(5) code").title`)
	p.recordStates("#c-status")
	p.click(`#c-actions button[data-action=redeploy]`)
	p.until(fmt.Sprintf(`document.querySelector("#c-replicas tbody tr td:nth-child(5) code").title !== %q && document.querySelector("#c-status").textContent === "running"`, oldID),
		"the replica replaced", 90*time.Second)
	if s := p.states(); !slicesContains(s, "redeploying") {
		t.Errorf("the pill went %v: no redeploying", s)
	}
	p.setValue(`#scale-form [name=replicas]`, "21")
	p.do(js(`document.querySelector("#scale-form [name=replicas]").removeAttribute("max")`))
	p.click(`#scale-form button[type=submit]`)
	p.until(`document.querySelector('#scale-form [name=replicas]').getAttribute("aria-invalid") === "true"`, "the replicas field marked", 10*time.Second)
	if msg := p.text("#scale-form .field-error"); !strings.Contains(msg, "replicas") {
		t.Errorf("the scale error: %q", msg)
	}
	p.check("container-page")

	// A reload: the event log is there at once, the page the same.
	p.visit("/")
	p.until(fmt.Sprintf(`[...document.querySelectorAll('#event-log li[data-kind="container.running"]')].some(li => li.textContent.includes(%q))`, name),
		"the event log backfilled after a reload", 10*time.Second)
	p.visit("/containers/" + name)
	p.waitText("#c-status", "running", 10*time.Second)

	// A viewer: no values, no credentials, no controls.
	v := openPage(t, m, "viewer")
	v.signIn("val")
	v.visit("/containers/" + name)
	v.waitText("#c-status", "running", 10*time.Second)
	if n := eval[int](v, `[...document.querySelectorAll("#page-container button, #page-container form")].filter(e => e.getClientRects().length).length`); n != 0 {
		t.Errorf("a viewer sees %d controls on the container page", n)
	}
	if txt := v.text("#c-env"); strings.Contains(txt, "howdy") || !strings.Contains(txt, "GREETING") {
		t.Errorf("a viewer's settings table: %q", txt)
	}
	v.check("container-viewer")

	// Remove, two presses of the keyboard: "removing", then the page says
	// it is gone and keeps the history.
	p.recordStates("#c-status")
	p.do(js(`document.querySelector("#c-actions button[data-action=remove]").focus()`), chromedp.KeyEvent("\r"))
	p.waitText(`#c-actions button[data-action=remove]`, "Really remove?", 5*time.Second)
	p.do(chromedp.KeyEvent("\r"))
	p.until(`!document.querySelector("#c-gone").hidden`, "the page to say the container is gone", 60*time.Second)
	if s := p.states(); !slicesContains(s, "removing") {
		t.Errorf("the pill went %v: no removing", s)
	}
	p.waitContains("#c-history", "removed", 10*time.Second)
	if eval[bool](p, `!document.querySelector("#c-overview-box").hidden || document.querySelector("#c-error").textContent !== ""`) {
		t.Error("the removed container's details or an old error stayed")
	}
	v.until(fmt.Sprintf(`!document.querySelector("#c-gone").hidden`), "the viewer's page to follow the removal", 30*time.Second)
	p.noProblems("401")
	v.noProblems("401")
}

func slicesContains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// TestDashboardPullProgress: a deploy whose image is being pulled shows a
// progress bar with the bytes so far; a reload in the middle shows the
// same pull, not an empty page; the bar completes and the container runs.
func TestDashboardPullProgress(t *testing.T) {
	reg := testenv.StartRegistry(t)
	ref := reg.PushImage(t, testenv.TestImage(t), fmt.Sprintf("moor-uipull-%s:v1", randSuffix()))
	t.Cleanup(func() { dockerQuiet("rmi", "-f", ref) })
	dir := imageTypes(t, map[string]string{"pulled": ref})
	e := NewEnvWith(t, func(e *Env) { e.CatalogDir = dir })
	m := e.Start()
	e.runInput(testPassword+"\n", "user", "add", "--username", "uma", "--role", "operator")
	release := reg.HoldBlobs()
	t.Cleanup(release)

	p := openPage(t, m, "operator")
	p.signIn("uma")
	name := "pull-" + randSuffix()
	p.visit("/catalog/pulled")
	p.setValue(`#deploy-form [name=name]`, name)
	p.click(`#deploy-form button[type=submit]`)
	p.until(fmt.Sprintf(`location.pathname === "/containers/%s"`, name), "the container's page", 10*time.Second)
	p.until(`!document.querySelector("#c-pull").hidden && document.querySelector("#c-pull-bar").value > 0`, "a pull progress bar with bytes in", 60*time.Second)
	label := p.text("#c-pull-label")
	if !strings.Contains(label, "Pulling "+ref) || !strings.Contains(label, " of ") {
		t.Errorf("the pull's label: %q", label)
	}
	if st := p.text(`#c-steps li[data-state=active]`); st != "Image" {
		t.Errorf("the active deploy step: %q", st)
	}
	p.check("container-pulling")

	// A reload in the middle of the pull: the same pull, the same progress.
	was := eval[float64](p, `document.querySelector("#c-pull-bar").value`)
	p.visit("/containers/" + name)
	p.until(`!document.querySelector("#c-pull").hidden`, "the pull shown after a reload", 10*time.Second)
	if got := eval[float64](p, `document.querySelector("#c-pull-bar").value`); got < was || got >= 1 {
		t.Errorf("after a reload the bar is at %v (was %v)", got, was)
	}
	if got := p.text("#c-pull-label"); !strings.Contains(got, "Pulling "+ref) {
		t.Errorf("after a reload the pull's label: %q", got)
	}

	release()
	p.waitText("#c-status", "running", 90*time.Second)
	p.until(`document.querySelector("#c-pull-bar").value === 1 && document.querySelector("#c-pull-label").textContent.startsWith("Pulled ")`,
		"the bar complete", 10*time.Second)
	p.noProblems("401")
}

// TestDashboardAdmin: an admin manages users, API keys and webhooks from
// their pages, errors next to their fields; a new key is shown once and
// works, revoked it stops; a user changes their own password; themes
// switch, and the system's dark preference is followed.
func TestDashboardAdmin(t *testing.T) {
	e := NewEnv(t)
	m := e.Start("MOOR_WEBHOOK_ALLOWED_HOSTS=127.0.0.1")
	e.runInput(testPassword+"\n", "user", "add", "--username", "ada", "--role", "admin")
	p := openPage(t, m, "admin")
	p.signIn("ada")

	// Users.
	p.click(`#nav a[href="/admin/users"]`)
	p.until(`document.querySelector('#users tr[data-user="ada"]')`, "the users list", 10*time.Second)
	if eval[bool](p, `!!document.querySelector('#users tr[data-user="ada"] button[data-action=remove]')`) {
		t.Error("an admin is offered to remove themselves")
	}
	p.setValue(`#user-form [name=username]`, "bob")
	p.setValue(`#user-form [name=password]`, "short")
	p.click(`#user-form button[type=submit]`)
	p.until(`document.querySelector('#user-form [name=password]').getAttribute("aria-invalid") === "true"`, "the password field marked", 10*time.Second)
	p.addUser("bob", "viewer")
	p.check("users")
	// Set bob's password, then remove him (two clicks).
	p.click(`#users tr[data-user="bob"] button[data-action=password]`)
	p.setValue(`#reset-form [name=password]`, "another long passphrase")
	p.click(`#reset-form button[type=submit]`)
	p.until(`document.querySelector("#reset-form").hidden`, "the password set", 10*time.Second)
	b := newBrowserish(t, m)
	if status, body, _ := b.do("POST", "/api/v1/session", map[string]any{"username": "bob", "password": "another long passphrase"}); status != 200 {
		t.Errorf("bob signs in with the password the admin set: %d %s", status, body)
	}
	p.click(`#users tr[data-user="bob"] button[data-action=remove]`)
	p.click(`#users tr[data-user="bob"] button[data-action=remove]`)
	p.until(`!document.querySelector('#users tr[data-user="bob"]')`, "bob gone", 10*time.Second)
	if n := e.Count(`SELECT count(*) FROM users WHERE username = 'bob'`); n != 0 {
		t.Error("bob is still in the database")
	}

	// API keys: created, shown once, working; revoked, refused.
	p.click(`#nav a[href="/admin/keys"]`)
	p.until(`document.querySelector('#keys tr[data-key-name="test-admin"]')`, "the keys list", 10*time.Second)
	p.setValue(`#key-form [name=name]`, "Bad Name!")
	p.click(`#key-form button[type=submit]`)
	p.until(`document.querySelector('#key-form [name=name]').getAttribute("aria-invalid") === "true"`, "the key name marked", 10*time.Second)
	p.setValue(`#key-form [name=name]`, "ci")
	p.setValue(`#key-form [name=role]`, "viewer")
	p.click(`#key-form button[type=submit]`)
	p.until(`!document.querySelector("#key-new").hidden`, "the new key shown", 10*time.Second)
	key := p.text("#key-new-value")
	if status, _ := m.Do("GET", "/api/v1/containers", nil, key); status != 200 {
		t.Errorf("the key shown works: %d", status)
	}
	p.check("keys")
	p.click(`#keys tr[data-key-name="ci"] button[data-action=revoke]`)
	p.click(`#keys tr[data-key-name="ci"] button[data-action=revoke]`)
	p.waitContains(`#keys tr[data-key-name="ci"]`, "revoked", 10*time.Second)
	if status, _ := m.Do("GET", "/api/v1/containers", nil, key); status != 401 {
		t.Errorf("a revoked key: %d", status)
	}

	// Webhooks.
	p.click(`#nav a[href="/admin/webhooks"]`)
	p.until(`!document.querySelector("#page-webhooks").hidden`, "the webhooks page", 10*time.Second)
	p.setValue(`#webhook-form [name=name]`, "n8n")
	p.setValue(`#webhook-form [name=url]`, "ftp://example.com/x")
	p.click(`#webhook-form button[type=submit]`)
	p.until(`document.querySelector('#webhook-form [name=url]').getAttribute("aria-invalid") === "true"`, "the URL marked", 10*time.Second)
	p.setValue(`#webhook-form [name=url]`, "http://127.0.0.1:9/hook")
	p.setValue(`#webhook-form [name=events]`, "container.*")
	p.click(`#webhook-form button[type=submit]`)
	p.until(`!document.querySelector("#webhook-new").hidden && document.querySelector('#webhooks tr[data-webhook="n8n"]')`, "the webhook and its secret", 10*time.Second)
	if secret := p.text("#webhook-new-value"); len(secret) < 16 {
		t.Errorf("the webhook's secret: %q", secret)
	}
	p.check("webhooks")
	p.click(`#webhooks tr[data-webhook="n8n"] button[data-action=remove]`)
	p.click(`#webhooks tr[data-webhook="n8n"] button[data-action=remove]`)
	p.until(`!document.querySelector('#webhooks tr[data-webhook="n8n"]')`, "the webhook gone", 10*time.Second)

	// The events page lists what happened, filterable.
	p.click(`#nav a[href="/events"]`)
	p.until(`document.querySelectorAll('#events-table tr[data-kind="webhook.created"]').length === 1`, "the events page", 10*time.Second)
	p.setValue("#events-filter", "apikey")
	p.until(`[...document.querySelectorAll("#events-table tbody tr")].every(r => r.dataset.kind.startsWith("apikey"))`, "the filter", 5*time.Second)
	p.check("events")

	// Own password: the current one is checked, next to its field.
	p.click("#whoami")
	p.until(`!document.querySelector("#page-account").hidden`, "the account page", 10*time.Second)
	p.setValue(`#password-form [name=current_password]`, "wrong wrong wrong")
	p.setValue(`#password-form [name=password]`, "a brand new passphrase")
	p.setValue(`#password-form [name=confirm]`, "a brand new passphrase")
	p.click(`#password-form button[type=submit]`)
	p.until(`document.querySelector('#password-form [name=current_password]').getAttribute("aria-invalid") === "true"`, "the current password marked", 10*time.Second)
	p.setValue(`#password-form [name=current_password]`, testPassword)
	p.setValue(`#password-form [name=password]`, "a brand new passphrase")
	p.setValue(`#password-form [name=confirm]`, "a brand new passphrase")
	p.click(`#password-form button[type=submit]`)
	p.waitContains("#account-who", "Password changed", 10*time.Second)
	if status, _, _ := newBrowserish(t, m).do("POST", "/api/v1/session", map[string]any{"username": "ada", "password": "a brand new passphrase"}); status != 200 {
		t.Errorf("signing in with the new password: %d", status)
	}
	p.check("account")

	// Themes: the button goes automatic -> light -> dark; each is another
	// look, kept across a reload; automatic follows the system.
	bg := func() string { return eval[string](p, `getComputedStyle(document.body).backgroundColor`) }
	p.do(setMedia("light"))
	light := bg()
	p.do(setMedia("dark"))
	if dark := bg(); dark == light {
		t.Errorf("automatic theme ignores the system's dark preference (%s)", dark)
	}
	p.click("#theme")
	if got := eval[string](p, `document.documentElement.dataset.theme || ""`); got != "light" || bg() != light {
		t.Errorf("after one press the theme is %q with background %s", got, bg())
	}
	p.click("#theme")
	dark := bg()
	if dark == light {
		t.Error("the dark theme looks like the light one")
	}
	p.visit("/admin/users")
	if bg() != dark {
		t.Error("the chosen theme is lost on reload")
	}
	p.check("users-dark")
	p.visit("/containers/nosuch")
	p.until(`!document.querySelector("#c-gone").hidden`, "a missing container's page", 10*time.Second)
	p.visit("/catalog/nosuch")
	p.waitText("#deploy-title", "No type “nosuch”", 10*time.Second)
	// A mistyped address: the dashboard's own not-found page (the API's
	// paths keep their JSON 404).
	p.visit("/no/such/page")
	p.until(`!document.querySelector("#page-missing").hidden`, "the not-found page", 10*time.Second)
	if status, body := m.Do("GET", "/api/v1/nosuch", nil); status != 404 || !strings.Contains(string(body), `"not_found"`) {
		t.Errorf("an unknown API path: %d %s", status, body)
	}
	p.noProblems("401", "404")

	// The watch on the page is real: content the policy refuses is reported.
	p.do(js(`document.body.append(Object.assign(document.createElement("img"), {src: "http://127.0.0.1:9/refused.png", alt: ""}))`))
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(strings.Join(p.problems(), "\n"), "refused.png") {
		if time.Now().After(deadline) {
			t.Fatalf("a CSP refusal went unnoticed; reported: %v", p.problems())
		}
		time.Sleep(100 * time.Millisecond)
	}
}
