package e2e

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"testing"
)

const testPassword = "correct horse battery"

// browserish is an HTTP client with a cookie jar that sends what a browser
// on moor's own page sends.
type browserish struct {
	t      *testing.T
	m      *Moor
	c      *http.Client
	origin string
}

func newBrowserish(t *testing.T, m *Moor) *browserish {
	jar, _ := cookiejar.New(nil)
	return &browserish{t: t, m: m, c: &http.Client{Jar: jar}, origin: m.URL}
}

func (b *browserish) do(method, path string, body any) (int, string, *http.Response) {
	b.t.Helper()
	var rd *bytes.Reader
	if body != nil {
		j, _ := json.Marshal(body)
		rd = bytes.NewReader(j)
	} else {
		rd = bytes.NewReader(nil)
	}
	req, _ := http.NewRequest(method, b.m.URL+path, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if b.origin != "" && method != "GET" {
		req.Header.Set("Origin", b.origin)
	}
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out bytes.Buffer
	out.ReadFrom(resp.Body)
	return resp.StatusCode, out.String(), resp
}

// TestSessions: users sign in to a cookie the page's scripts cannot read and
// other sites cannot use; it ends on sign-out; guessing is throttled.
func TestSessions(t *testing.T) {
	e := NewEnv(t)
	m := e.Start()
	e.runInput(testPassword+"\n", "user", "add", "--username", "olga", "--role", "operator")
	e.runInput(testPassword+"\n", "user", "add", "--username", "vic", "--role", "viewer")

	b := newBrowserish(t, m)
	if status, body, _ := b.do("GET", "/api/v1/containers", nil); status != 401 {
		t.Fatalf("before signing in: %d %s", status, body)
	}
	for _, bad := range []map[string]string{
		{"username": "olga", "password": "wrong password!"},
		{"username": "nobody", "password": testPassword},
		{"username": "Olga`", "password": testPassword},
	} {
		if status, body, _ := b.do("POST", "/api/v1/session", bad); status != 401 || !strings.Contains(body, "wrong user name or password") {
			t.Errorf("sign-in as %v: %d %s, want 401 without saying which part was wrong", bad, status, body)
		}
	}
	status, body, resp := b.do("POST", "/api/v1/session", map[string]string{"username": "olga", "password": testPassword})
	var signedIn struct {
		User struct{ Kind, Name, Role string }
	}
	json.Unmarshal([]byte(body), &signedIn)
	if status != 200 || signedIn.User.Name != "olga" || signedIn.User.Role != "operator" {
		t.Fatalf("sign-in: %d %s", status, body)
	}
	var cookie *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == "moor_session" {
			cookie = c
		}
	}
	if cookie == nil || !cookie.HttpOnly || cookie.SameSite != http.SameSiteStrictMode || strings.Contains(body, cookie.Value) {
		t.Fatalf("session cookie %+v: want HttpOnly, SameSite=Strict, and its value not in the body", cookie)
	}
	if n := e.Count(`SELECT count(*) FROM sessions WHERE encode(hash, 'escape') LIKE '%' || $1 || '%'`, cookie.Value[:16]); n != 0 {
		t.Error("a session token is stored in clear")
	}

	// Signed in, the operator deploys, and the history names the user.
	name := "sess-" + randSuffix()
	if status, body, _ := b.do("POST", "/api/v1/containers", map[string]any{"name": name, "type": "testapp"}); status != 202 {
		t.Fatalf("deploy with the session: %d %s", status, body)
	}
	if n := e.Count(`SELECT count(*) FROM deployment_history WHERE container_name = $1 AND actor = 'user:olga'`, name); n == 0 {
		t.Error("the deploy's history does not name user:olga")
	}
	// The same cookie sent from another site's page changes nothing.
	b.origin = "http://evil.example"
	if status, body, _ := b.do("POST", "/api/v1/containers/"+name+"/stop", nil); status != 403 || !strings.Contains(body, "another site") {
		t.Errorf("cross-site stop: %d %s, want 403", status, body)
	}
	if status, body, _ := b.do("POST", "/api/v1/session", map[string]string{"username": "olga", "password": testPassword}); status != 403 {
		t.Errorf("cross-site sign-in: %d %s, want 403", status, body)
	}
	b.origin = m.URL
	if n := e.Count(`SELECT count(*) FROM containers WHERE name = $1 AND desired_state = 'running'`, name); n != 1 {
		t.Error("a cross-site request changed the container")
	}
	// A viewer's session reads but does not operate.
	v := newBrowserish(t, m)
	v.do("POST", "/api/v1/session", map[string]string{"username": "vic", "password": testPassword})
	if status, body, _ := v.do("GET", "/api/v1/containers/"+name, nil); status != 200 {
		t.Errorf("viewer read: %d %s", status, body)
	}
	if status, body, _ := v.do("POST", "/api/v1/containers/"+name+"/stop", nil); status != 403 {
		t.Errorf("viewer stop: %d %s, want 403", status, body)
	}

	// Sign-out ends the session in the database, not just in the browser.
	if status, body, _ := b.do("DELETE", "/api/v1/session", nil); status != 204 {
		t.Fatalf("sign-out: %d %s", status, body)
	}
	replay := &http.Client{}
	req, _ := http.NewRequest("GET", m.URL+"/api/v1/containers", nil)
	req.AddCookie(&http.Cookie{Name: "moor_session", Value: cookie.Value})
	if resp, err := replay.Do(req); err != nil || resp.StatusCode != 401 {
		t.Errorf("the old cookie after sign-out: %v %v, want 401", resp, err)
	}

	// Guessing is throttled (every attempt per address, failures per user
	// name): after 10 more failures, 429 even for the right password, with
	// Retry-After.
	g := newBrowserish(t, m)
	for i := 0; i < 10; i++ {
		g.do("POST", "/api/v1/session", map[string]string{"username": "vic", "password": "guess number " + string(rune('a'+i))})
	}
	status, _, resp = g.do("POST", "/api/v1/session", map[string]string{"username": "vic", "password": testPassword})
	if status != 429 || resp.Header.Get("Retry-After") == "" {
		t.Errorf("after 10 failures: %d (Retry-After %q), want 429", status, resp.Header.Get("Retry-After"))
	}
}
