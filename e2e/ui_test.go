package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/moorhq/moor/internal/testenv"
)

// browser starts a headless Chromium of its own (own profile, so its own
// cookies) and collects what the page throws or logs as an error.
func browser(t *testing.T) (context.Context, func() []string) {
	t.Helper()
	var bin string
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			bin = p
			break
		}
	}
	if bin == "" {
		testenv.Unavailable(t, "Chromium not installed (Debian: chromium)")
	}
	// Its profile and its temporary files (singleton sockets) stay in the
	// test's directory, which the test removes.
	dir := t.TempDir()
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(bin), chromedp.UserDataDir(filepath.Join(dir, "profile")),
		chromedp.Env("TMPDIR="+dir), chromedp.Flag("disable-dev-shm-usage", true))
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox)
	}
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(alloc)
	ctx, cancelTimeout := context.WithTimeout(ctx, 4*time.Minute)
	t.Cleanup(func() { cancelTimeout(); cancelCtx(); cancelAlloc() })

	var mu sync.Mutex
	var problems []string
	listen := func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch ev := ev.(type) {
		case *runtime.EventExceptionThrown:
			problems = append(problems, fmt.Sprintf("exception: %s %+v", ev.ExceptionDetails.Text, ev.ExceptionDetails.Exception))
		case *runtime.EventConsoleAPICalled:
			if ev.Type == runtime.ConsoleAPICalledTypeError {
				var parts []string
				for _, a := range ev.Args {
					parts = append(parts, string(a.Value)+a.Description)
				}
				problems = append(problems, "console.error: "+strings.Join(parts, " "))
			}
		}
	}
	if err := chromedp.Listen(ctx, listen); err != nil { // starts the browser
		t.Fatalf("start Chromium: %v", err)
	}
	return ctx, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), problems...)
	}
}

// waitText polls until the text of sel equals want.
func waitText(t *testing.T, ctx context.Context, sel, want string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got, err := chromedp.Run(ctx, chromedp.Evaluate[string](fmt.Sprintf(`(document.querySelector(%q)||{}).textContent||""`, sel)))
		if err == nil && strings.TrimSpace(got) == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: text %q, want %q (err %v)", sel, got, want, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func signIn(t *testing.T, ctx context.Context, url, user, password string) {
	t.Helper()
	if err := chromedp.Do(ctx,
		chromedp.Navigate(url),
		chromedp.WaitVisible("#login-form"),
		chromedp.SetValue(`#login-form [name=username]`, user),
		chromedp.SetValue(`#login-form [name=password]`, password),
		chromedp.Click(`#login-form button[type=submit]`),
	); err != nil {
		t.Fatal(err)
	}
}

// TestDashboard drives the web UI in a real Chromium: sign in, deploy from
// the catalog form, watch the status go live over the websocket, operate
// the container from its row, and see changes made by others appear
// without a reload. A viewer sees no controls.
func TestDashboard(t *testing.T) {
	e := NewEnv(t)
	m := e.Start()
	e.runInput(testPassword+"\n", "user", "add", "--username", "uma", "--role", "operator")
	e.runInput(testPassword+"\n", "user", "add", "--username", "val", "--role", "viewer")
	ctx, problems := browser(t)

	signIn(t, ctx, m.URL, "uma", "not the password")
	waitText(t, ctx, "#login-error", "wrong user name or password", 10*time.Second)
	signIn(t, ctx, m.URL, "uma", testPassword)
	waitText(t, ctx, "#whoami", "uma (operator)", 10*time.Second)
	waitText(t, ctx, "#live", "live", 10*time.Second)

	// A bad name is refused by the server, which names the field.
	name := "ui-" + randSuffix()
	row := fmt.Sprintf(`tr[data-name=%q]`, name)
	if err := chromedp.Do(ctx,
		chromedp.SetValue(`#deploy-form [name=type]`, "testapp"),
		js(`document.querySelector("#deploy-form [name=type]").dispatchEvent(new Event("change"))`),
		chromedp.SetValue(`#deploy-form [name=name]`, "-bad-"),
		// Past the browser's own pattern check, to the server's.
		js(`document.querySelector("#deploy-form [name=name]").removeAttribute("pattern"), true`),
		chromedp.Click(`#deploy-form button[type=submit]`),
	); err != nil {
		t.Fatal(err)
	}
	errText, _ := chromedp.Run(ctx, chromedp.Poll[string](`document.querySelector("#deploy-error").textContent`, chromedp.WithPollingTimeout(10*time.Second)))
	if !strings.Contains(errText, "name") {
		t.Errorf("deploy with a bad name: error %q, want one naming the field", errText)
	}

	// Deploy; the row follows the container to running with no reload.
	if err := chromedp.Do(ctx,
		chromedp.SetValue(`#deploy-form [name=name]`, name),
		chromedp.Click(`#deploy-form button[type=submit]`),
	); err != nil {
		t.Fatal(err)
	}
	waitText(t, ctx, row+" .status", "running", 90*time.Second)
	// The live event log shows it.
	if _, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](fmt.Sprintf(
		`[...document.querySelectorAll('#event-log li[data-kind="container.running"]')].some(li => li.textContent.includes(%q))`, name),
		chromedp.WithPollingTimeout(10*time.Second))); err != nil {
		t.Errorf("the event log does not show %s running: %v", name, err)
	}
	if n := e.Count(`SELECT count(*) FROM deployment_history WHERE container_name = $1 AND actor = 'user:uma'`, name); n == 0 {
		t.Error("the deploy from the dashboard is not in the history as user:uma")
	}

	// Stop from the row.
	if err := chromedp.Do(ctx, chromedp.Click(row+` button[data-action=stop]`)); err != nil {
		t.Fatal(err)
	}
	waitText(t, ctx, row+" .status", "stopped", 60*time.Second)

	// Someone else starts it through the API: the page sees it live.
	if status, body := m.Do("POST", "/api/v1/containers/"+name+"/start", nil); status != 202 {
		t.Fatalf("start: %d %s", status, body)
	}
	waitText(t, ctx, row+" .status", "running", 60*time.Second)

	// Scale from the row: the replicas column follows.
	if err := chromedp.Do(ctx,
		chromedp.SetValue(row+` input.replicas`, "2"),
		chromedp.Click(row+` button[data-action=scale]`),
	); err != nil {
		t.Fatal(err)
	}
	waitText(t, ctx, row+" td:nth-child(4)", "2", 30*time.Second)
	if n := e.Count(`SELECT count(*) FROM containers WHERE name = $1 AND replicas = 2`, name); n != 1 {
		t.Error("scaling from the dashboard did not reach the database")
	}

	// The detail shows the history, and the logs to an operator.
	if err := chromedp.Do(ctx, chromedp.Click(row+` button.name`)); err != nil {
		t.Fatal(err)
	}
	chromedp.Run(ctx, chromedp.Poll[chromedp.Void](`document.querySelector("#detail-history").textContent.includes("start_requested by apikey:")`,
		chromedp.WithPollingTimeout(10*time.Second)))
	history, _ := chromedp.Run(ctx, chromedp.Text("#detail-history"))
	if !strings.Contains(history, "by user:uma") || !strings.Contains(history, "start_requested by apikey:") {
		t.Errorf("history in the dashboard:\n%s", history)
	}

	// A viewer, in a browser of their own, sees the container and no controls.
	vctx, vproblems := browser(t)
	signIn(t, vctx, m.URL, "val", testPassword)
	waitText(t, vctx, row+" .status", "running", 20*time.Second)
	controls, _ := chromedp.Run(vctx, chromedp.Evaluate[int](`document.querySelectorAll("td.actions button").length`))
	deployHidden, _ := chromedp.Run(vctx, chromedp.Evaluate[bool](`document.querySelector("#deploy").hidden`))
	if controls != 0 || !deployHidden {
		t.Errorf("viewer sees %d row controls, deploy form hidden=%v", controls, deployHidden)
	}

	// Remove (two clicks): the row goes.
	if err := chromedp.Do(ctx,
		chromedp.Click(row+` button[data-action=remove]`),
		chromedp.Click(row+` button[data-action=remove]`),
	); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](fmt.Sprintf(`!document.querySelector(%q)`, row),
		chromedp.WithPollingTimeout(60*time.Second))); err != nil {
		t.Errorf("the removed container's row stayed: %v", err)
	}
	if _, err := chromedp.Run(vctx, chromedp.Poll[chromedp.Void](fmt.Sprintf(`!document.querySelector(%q)`, row),
		chromedp.WithPollingTimeout(20*time.Second))); err != nil {
		t.Errorf("the viewer still sees the removed container: %v", err)
	}

	// Sign out: back to the form, and the API refuses the old session.
	if err := chromedp.Do(ctx, chromedp.Click("#logout"), chromedp.WaitVisible("#login-form")); err != nil {
		t.Fatal(err)
	}
	status, _ := chromedp.Run(ctx, chromedp.Evaluate[int](`fetch("/api/v1/containers").then(r => r.status)`, chromedp.EvalAwaitPromise))
	if status != 401 {
		t.Errorf("API after sign-out: %d, want 401", status)
	}
	for _, p := range append(problems(), vproblems()...) {
		if !strings.Contains(p, "401") { // the failed sign-in and the fetch above
			t.Errorf("page error: %s", p)
		}
	}
}

// js runs a script step whose value does not matter.
func js(expr string) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		_, err := chromedp.Evaluate[any](expr)(ctx, t)
		return chromedp.Void{}, err
	}
}
