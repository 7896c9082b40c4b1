package e2e

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestFirstRun: a new installation prints a one-time setup link; the
// dashboard opened with it creates the first admin and signs in; without
// the token, or once someone exists, nobody can.
func TestFirstRun(t *testing.T) {
	e := NewEnv(t)
	m := e.Start()
	match := regexp.MustCompile(`\?setup=([A-Za-z0-9]+) `).FindStringSubmatch(m.Logs())
	if match == nil {
		t.Fatalf("no setup link printed:\n%s", m.Logs())
	}
	token := match[1]
	if status, body := m.Do("GET", "/api/v1/setup", nil, ""); status != 200 || !strings.Contains(string(body), `"needed": true`) {
		t.Fatalf("setup state: %d %s", status, body)
	}
	b := newBrowserish(t, m)
	if status, body, _ := b.do("POST", "/api/v1/setup", map[string]any{"username": "root", "password": testPassword, "token": "guessed"}); status != 422 ||
		!strings.Contains(body, `"field": "token"`) {
		t.Errorf("a wrong token: %d %s", status, body)
	}
	b.origin = "https://evil.example"
	if status, _, _ := b.do("POST", "/api/v1/setup", map[string]any{"username": "root", "password": testPassword, "token": token}); status != 403 {
		t.Errorf("setup from another site's page: %d", status)
	}

	ctx, problems := browser(t)
	if err := chromedp.Do(ctx,
		chromedp.Navigate(m.URL+"/?setup="+token),
		chromedp.WaitVisible("#setup-form"),
		chromedp.SetValue(`#setup-form [name=username]`, "root"),
		chromedp.SetValue(`#setup-form [name=password]`, testPassword),
		chromedp.Click(`#setup-form button[type=submit]`),
	); err != nil {
		t.Fatal(err)
	}
	waitText(t, ctx, "#whoami", "root (admin)", 10*time.Second)
	waitText(t, ctx, "#live", "live", 10*time.Second)

	url, err := chromedp.Run(ctx, chromedp.Evaluate[string](`location.href`))
	if err != nil || strings.Contains(url, token) {
		t.Errorf("the spent token stays in the address bar: %s", url)
	}
	if p := problems(); len(p) > 0 {
		t.Errorf("page problems: %v", p)
	}

	// Set up: the token is spent, the page offers sign-in.
	if status, body := m.Do("GET", "/api/v1/setup", nil, ""); status != 200 || !strings.Contains(string(body), `"needed": false`) {
		t.Errorf("after setup: %d %s", status, body)
	}
	b.origin = m.URL
	if status, body, _ := b.do("POST", "/api/v1/setup", map[string]any{"username": "eve", "password": testPassword, "token": token}); status != 409 {
		t.Errorf("a second setup: %d %s", status, body)
	}
	if n := e.Count(`SELECT count(*) FROM users WHERE role = 'admin'`); n != 1 {
		t.Errorf("%d admins", n)
	}
	// A restart with a user in place prints no link.
	m.Kill()
	m2 := e.Start()
	if strings.Contains(m2.Logs(), "?setup=") {
		t.Error("a set-up installation printed a setup link")
	}
}
