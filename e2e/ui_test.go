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

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
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

	// Console errors, exceptions, and the browser's own error log (CSP
	// refusals among them; failed requests, e.g. a 401 or a logo that
	// cannot load offline, are the network's and left out). A listener
	// added to every page reports CSP violations too, whatever the log.
	var mu sync.Mutex
	var problems []string
	if err := chromedp.Do(ctx, addScript(`document.addEventListener("securitypolicyviolation",
		(e) => console.error("CSP violation: " + e.violatedDirective + " " + e.blockedURI));`)); err != nil {
		t.Fatalf("start Chromium: %v", err)
	}
	messages := chromedp.Console(ctx)
	go func() {
		for msg, err := range messages {
			if err != nil {
				return
			}
			bad := msg.IsException() || msg.Type == chromedp.ConsoleError && msg.Source != "network"
			if bad {
				mu.Lock()
				problems = append(problems, msg.String())
				mu.Unlock()
			}
		}
	}()
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

// js runs a script step whose value does not matter.
func js(expr string) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		_, err := chromedp.Evaluate[any](expr)(ctx, t)
		return chromedp.Void{}, err
	}
}

// addScript runs source in every page the tab loads, before its own scripts.
func addScript(source string) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		_, err := cdp.Call(ctx, t, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: source})
		return chromedp.Void{}, err
	}
}
